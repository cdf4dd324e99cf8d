"""The Order Service's database wiring: where its migrations live and their version table."""

from __future__ import annotations

from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "order_service_alembic_version"
