"""Apply the Order Service's migrations: ``python -m order_service.migrate``; with
``--wait SECONDS`` apply nothing, only wait until the schema is at head."""

from __future__ import annotations

import sys

from order_service.core.config import OrderSettings
from order_service.core.database import MIGRATIONS, VERSION_TABLE
from servicekit.migrations import migrate_command, wait_argument
from servicekit.settings import load_settings

if __name__ == "__main__":
    wait = wait_argument(sys.argv[1:])
    settings = load_settings(OrderSettings)
    migrate_command(
        settings.database_url, MIGRATIONS, VERSION_TABLE, name="order_service", wait=wait
    )
