"""Real servers on this machine, for the tests and the benchmarks: free ports, private
redis-servers, scratch Postgres databases and service processes started as their images start
them. Never part of an image; no service imports it.

The core is plain blocking code (``subprocess``, polling with a deadline); ``devstack.aio``
is its face for callers inside an event loop, the same objects with awaitable waits.
"""

from devstack.ports import free_port
from devstack.postgres import (
    DEFAULT_ADMIN_DSN,
    ScratchDatabases,
    database_url,
    postgres_address,
    postgres_problem,
)
from devstack.process import START_TIMEOUT, STOP_TIMEOUT, ServerProcess, tail
from devstack.redis_server import RedisOptions, RedisServer, RedisTls, redis_server_problem
from devstack.service import dockerfile_instruction, image_process, uvicorn_process, venv_path

__all__ = [
    "DEFAULT_ADMIN_DSN",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "RedisOptions",
    "RedisServer",
    "RedisTls",
    "ScratchDatabases",
    "ServerProcess",
    "database_url",
    "dockerfile_instruction",
    "free_port",
    "image_process",
    "postgres_address",
    "postgres_problem",
    "redis_server_problem",
    "tail",
    "uvicorn_process",
    "venv_path",
]
