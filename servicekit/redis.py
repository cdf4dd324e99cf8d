"""The one way to build a Redis client: explicit timeouts, at most one retry, a process name.

redis-py's defaults turn a dead Redis into seconds-long stalls (several retries with backoff
and no connect timeout); every call here is bounded by the timeouts given.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def create_redis(
    host: str,
    port: int,
    *,
    name: str,
    connect_timeout: float,
    timeout: float,
    max_connections: int = 64,
) -> Redis:
    return Redis(
        host=host,
        port=port,
        socket_connect_timeout=connect_timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), retries=1),
        client_name=name,
        max_connections=max_connections,
        health_check_interval=10,
    )
