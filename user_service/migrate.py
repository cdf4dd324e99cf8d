"""Apply the User Service's migrations: ``python -m user_service.migrate``; with
``--wait SECONDS`` apply nothing, only wait until the schema is at head."""

from __future__ import annotations

import sys

from servicekit.migrations import migrate_command, wait_argument
from servicekit.settings import load_settings
from user_service.core.config import UserSettings
from user_service.core.database import MIGRATIONS, VERSION_TABLE

if __name__ == "__main__":
    wait = wait_argument(sys.argv[1:])
    settings = load_settings(UserSettings)
    migrate_command(
        settings.database_url, MIGRATIONS, VERSION_TABLE, name="user_service", wait=wait
    )
