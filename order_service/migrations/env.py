from alembic import context

from order_service.models import Base
from servicekit.migrations import run_env

run_env(context, Base.metadata)
