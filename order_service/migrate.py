"""Apply the Order Service's migrations: ``python -m order_service.migrate``."""

from __future__ import annotations

from order_service.core.config import OrderSettings
from order_service.core.database import MIGRATIONS, VERSION_TABLE
from servicekit.migrations import migrate_command
from servicekit.settings import load_settings

if __name__ == "__main__":
    settings = load_settings(OrderSettings)
    migrate_command(settings.database_url, MIGRATIONS, VERSION_TABLE, name="order_service")
