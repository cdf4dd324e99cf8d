"""Where the User Service's migrations live and which table records their version."""

from __future__ import annotations

from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "user_service_alembic_version"
