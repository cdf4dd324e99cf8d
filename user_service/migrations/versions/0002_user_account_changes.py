"""Notify ``user_account_changed`` with the user's id on every change to user_account.

Postgres only: the notification tells every replica's memory of user states to forget that
user (``RememberedUserStandings``). It is sent at commit, from the database itself, so no writer
can change a user without it. SQLite has one process and keeps no such memory.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION user_account_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                PERFORM pg_notify('user_account_changed', OLD.id::text);
            ELSE
                PERFORM pg_notify('user_account_changed', NEW.id::text);
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER user_account_changed
        AFTER INSERT OR UPDATE OR DELETE ON user_account
        FOR EACH ROW EXECUTE FUNCTION user_account_changed()
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER user_account_changed ON user_account")
    op.execute("DROP FUNCTION user_account_changed()")
