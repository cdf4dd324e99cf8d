from alembic import context

from servicekit.migrations import run_env
from user_service.models import Base

run_env(context, Base.metadata)
