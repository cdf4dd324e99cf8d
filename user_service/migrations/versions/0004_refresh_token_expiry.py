"""An index on ``refresh_token.expires_at``: the service's purge of ended sessions finds
their tokens by it, without reading the whole table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_refresh_token_expires_at"), "refresh_token", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_refresh_token_expires_at"), table_name="refresh_token")
