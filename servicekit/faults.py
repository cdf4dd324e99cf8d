"""Driver faults of the backing services, for the adapters that translate them and the
handlers that are the last line: a fault the client may retry, that heals when the part
comes back."""

from __future__ import annotations

import asyncpg.exceptions
import redis.exceptions
import sqlalchemy.exc

from servicekit.errors import DependencyUnavailable

DEPENDENCY_FAULTS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    sqlalchemy.exc.DisconnectionError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    # asyncpg's own, from reads that bypass the engine (servicekit.postgres.PostgresLookups):
    # connection lost, refused, or the server shutting down or starting up.
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    ConnectionError,
    TimeoutError,
)


def is_dependency_fault(exc: BaseException) -> bool:
    if isinstance(exc, (*DEPENDENCY_FAULTS, DependencyUnavailable)):
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc.orig, OSError)
    return False


# What a Redis call can raise: the client's own errors and the socket's.
REDIS_FAULTS: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)


def fault_text(exc: BaseException) -> str:
    """A fault for a log line: its type and message. redis-py's own ``repr`` keeps only a
    category (``network:ConnectionError``), which names neither the server nor the cause.
    Driver messages name addresses, never a password."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
