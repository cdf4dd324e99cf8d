"""An index on ``refresh_token.expires_at``: the service's purge of expired refresh tokens
finds them by it, without reading the whole table.

On Postgres the index is built ``CONCURRENTLY``: until this release the table kept every token
ever issued, and a plain build would hold up every login and refresh for as long as it takes.
That runs outside a transaction; an invalid index left by a build that failed half-way is
dropped first, so that the migration can simply run again.

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

INDEX = "ix_refresh_token_expires_at"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(op.f(INDEX), "refresh_token", ["expires_at"])
        return
    with op.get_context().autocommit_block():
        op.drop_index(
            op.f(INDEX), table_name="refresh_token", if_exists=True, postgresql_concurrently=True
        )
        op.create_index(op.f(INDEX), "refresh_token", ["expires_at"], postgresql_concurrently=True)


def downgrade() -> None:
    op.drop_index(op.f(INDEX), table_name="refresh_token")
