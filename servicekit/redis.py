"""Redis adapters: the one way to build a client (explicit timeouts, at most one retry, a
process name), the cache and the rate limiter on it. Every fault leaves here as the kit's
``DependencyUnavailable``, naming the server's address.

redis-py's defaults turn a dead Redis into seconds-long stalls (several retries with backoff
and no connect timeout); every call here is bounded by the timeouts given.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from pathlib import Path

import redis.exceptions
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from servicekit.errors import DependencyUnavailable, StartRefused
from servicekit.faults import REDIS_FAULTS, fault_text
from servicekit.ratelimit import RateDecision
from servicekit.settings import ServiceSettings

log = logging.getLogger(__name__)


def create_redis(
    host: str,
    port: int,
    *,
    name: str,
    connect_timeout: float,
    timeout: float,
    max_connections: int = 64,
    username: str | None = None,
    password: str | None = None,
    tls: bool = False,
    tls_ca_file: Path | None = None,
) -> Redis:
    """A client that authenticates on every connection when ``password`` is given (as the ACL
    user ``username``, or the default user) and speaks TLS when ``tls`` is set, checking the
    server's certificate against ``tls_ca_file`` (else the system's trust store) and its name
    against ``host``. The bus (``servicekit.resp``) connects with these same options."""
    options: dict[str, object] = {}
    if tls:
        options = {
            "ssl": True,
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": True,
            "ssl_ca_certs": str(tls_ca_file) if tls_ca_file is not None else None,
            "ssl_min_version": ssl.TLSVersion.TLSv1_2,
        }
    return Redis(
        host=host,
        port=port,
        socket_connect_timeout=connect_timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), retries=1),
        client_name=name,
        max_connections=max_connections,
        health_check_interval=10,
        username=username if password is not None else None,
        password=password,
        **options,  # type: ignore[arg-type]
    )


def create_service_redis(settings: ServiceSettings) -> Redis:
    """The service's client, from its settings: address, timeouts, credentials, TLS."""
    return create_redis(
        settings.redis_host,
        settings.redis_port,
        name=settings.service_name,
        connect_timeout=settings.redis_connect_timeout,
        timeout=settings.redis_timeout,
        username=settings.redis_username,
        password=(
            settings.redis_password.get_secret_value()
            if settings.redis_password is not None
            else None
        ),
        tls=settings.redis_ssl,
        tls_ca_file=settings.redis_ssl_ca_certs,
    )


# What a server answers a client it will not let in: wrong or missing credentials, or an ACL
# user without the commands or keys the services need.
_REFUSALS = ("WRONGPASS", "NOAUTH", "NOPERM", "invalid username-password")


async def check_redis_access(client: Redis) -> None:
    """Once at start: a server that refuses our credentials, or a TLS handshake that fails,
    is a configuration to fix and stops the start (``StartRefused``, one line naming the
    address); a server that does not answer is an outage the service lives through, logged
    once."""
    address = address_of(client)
    try:
        await client.ping()
    except redis.exceptions.AuthenticationError as exc:
        raise StartRefused(f"redis at {address} refused our credentials: {exc}") from None
    except redis.exceptions.ResponseError as exc:
        if any(refusal in str(exc) for refusal in _REFUSALS):
            raise StartRefused(f"redis at {address} refused our credentials: {exc}") from None
        raise StartRefused(f"redis at {address} refused a PING: {exc}") from None
    except REDIS_FAULTS as exc:
        failed_tls = _tls_failure(exc)
        if failed_tls is not None:
            raise StartRefused(f"redis at {address}: TLS failed: {failed_tls}") from None
        log.warning(
            "redis at %s is unavailable at start (%s); starting without it, it is tried again",
            address,
            fault_text(exc),
        )


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def address_of(client: Redis) -> str:
    """``host:port`` of the client's server, for messages (never a credential)."""
    kwargs = client.connection_pool.connection_kwargs
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


FaultObserver = Callable[[BaseException], None]


def ignore_fault(_: BaseException) -> None:
    return None


def unavailable(address: str, cause: object) -> DependencyUnavailable:
    reason = fault_text(cause) if isinstance(cause, BaseException) else str(cause)
    return DependencyUnavailable(f"redis at {address} is unavailable: {reason}")


def _as_bytes(value: bytes | str | None) -> bytes | None:
    return value if value is None or isinstance(value, bytes) else value.encode()


# Compare and set in one step on the server, so two writers cannot interleave.
_SET_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and tonumber(decoded['version']) and
     tonumber(decoded['version']) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"""


class RedisCache:
    """The cache on Redis. Reads that arrive together share a round trip: while one read is
    out, the next ones queue and go as a single MGET. Each answer is still what Redis held
    after its read began, since the MGET is sent after every read it carries. At low load
    a read is one GET, as before; under load redis-py's cost per command is paid once per
    batch instead of once per read (docs/benchmarks.md)."""

    def __init__(
        self, client: Redis, *, max_batch: int = 64, on_fault: FaultObserver | None = None
    ) -> None:
        self._client = client
        self._on_fault = on_fault or ignore_fault
        self._address = address_of(client)
        self._set_if_newer = client.register_script(_SET_IF_NEWER)
        self._max_batch = max_batch
        self._reading = False
        self._queued: list[tuple[str, asyncio.Future[bytes | None]]] = []
        self._drain: asyncio.Task[None] | None = None  # held: the loop keeps only a weak one

    async def get(self, key: str) -> bytes | None:
        try:
            return await self._get(key)
        except REDIS_FAULTS as exc:
            self._on_fault(exc)
            raise unavailable(self._address, exc) from exc

    async def _get(self, key: str) -> bytes | None:
        if self._reading:
            queued: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
            self._queued.append((key, queued))
            return await queued
        self._reading = True
        try:
            value = await self._client.get(key)
        finally:
            self._hand_over()
        return _as_bytes(value)

    def _hand_over(self) -> None:
        if self._queued:
            self._drain = asyncio.get_running_loop().create_task(self._read_queued())
        else:
            self._reading = False

    async def _read_queued(self) -> None:
        try:
            while self._queued:
                batch = self._queued[: self._max_batch]
                del self._queued[: self._max_batch]
                try:
                    values = await self._client.mget([key for key, _ in batch])
                except Exception as exc:
                    for _, waiting in batch:
                        if not waiting.done():
                            waiting.set_exception(exc)
                    continue
                except BaseException:  # cancelled: so are the reads it carried
                    for _, waiting in batch:
                        waiting.cancel()
                    raise
                for (_, waiting), value in zip(batch, values, strict=True):
                    if not waiting.done():
                        waiting.set_result(_as_bytes(value))
        finally:
            for _, waiting in self._queued:  # only when cancelled: nobody will read these
                waiting.cancel()
            self._queued.clear()
            self._reading = False
            self._drain = None

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        try:
            await self._client.set(key, value, ex=ttl_seconds)
        except REDIS_FAULTS as exc:
            self._on_fault(exc)
            raise unavailable(self._address, exc) from exc

    async def set_if_newer(self, key: str, value: bytes, version: int, ttl_seconds: int) -> bool:
        try:
            stored = await self._set_if_newer(keys=[key], args=[value, version, ttl_seconds])
        except REDIS_FAULTS as exc:
            self._on_fault(exc)
            raise unavailable(self._address, exc) from exc
        return bool(stored)

    async def delete(self, key: str) -> None:
        try:
            await self._client.delete(key)
        except REDIS_FAULTS as exc:
            self._on_fault(exc)
            raise unavailable(self._address, exc) from exc


# INCR and EXPIRE in one step on the server: no window can be left without an expiry.
_HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""

_PEEK = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('TTL', KEYS[1])
return {count, ttl}
"""


class RedisRateLimiter:
    """Counters shared by every replica. Fails open (allowed, with a warning) on a Redis fault."""

    def __init__(
        self, client: Redis, *, prefix: str = "ratelimit:", on_fault: FaultObserver | None = None
    ) -> None:
        self._address = address_of(client)
        self._on_fault = on_fault or ignore_fault
        self._prefix = prefix
        self._hit = client.register_script(_HIT)
        self._peek = client.register_script(_PEEK)

    async def hit(self, key: str, *, limit: int, window_seconds: int) -> RateDecision:
        try:
            count, ttl = await self._hit(keys=[self._prefix + key], args=[window_seconds])
        except REDIS_FAULTS as exc:
            self._on_fault(exc)
            log.warning(
                "rate limiter: redis at %s unavailable, allowing the request (fail open): %s",
                self._address,
                fault_text(exc),
            )
            return RateDecision(True, 0, window_seconds)
        count = int(count)
        return RateDecision(count <= limit, count, max(1, int(ttl)))

    async def peek(self, key: str, *, limit: int, window_seconds: int) -> RateDecision:
        try:
            count, ttl = await self._peek(keys=[self._prefix + key], args=[])
        except REDIS_FAULTS as exc:
            self._on_fault(exc)
            log.warning(
                "rate limiter: redis at %s unavailable, allowing the request (fail open): %s",
                self._address,
                fault_text(exc),
            )
            return RateDecision(True, 0, window_seconds)
        count = int(count)
        ttl = int(ttl)
        return RateDecision(count < limit, count, ttl if ttl > 0 else window_seconds)
