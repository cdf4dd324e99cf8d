"""Apply the User Service's migrations: ``python -m user_service.migrate``."""

from __future__ import annotations

from servicekit.migrations import migrate_command
from servicekit.settings import load_settings
from user_service.core.config import UserSettings
from user_service.core.database import MIGRATIONS, VERSION_TABLE

if __name__ == "__main__":
    settings = load_settings(UserSettings)
    migrate_command(settings.database_url, MIGRATIONS, VERSION_TABLE, name="user_service")
