from alembic import context

from servicekit.migrations import run_env
from user_service.models import metadata

run_env(context, metadata)
