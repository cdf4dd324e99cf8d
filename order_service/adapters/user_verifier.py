"""Adapters of the ``UserVerifier`` port: how the Order Service learns a user's standing.

``CachedBusUserVerifier`` follows the original design over whatever bus and cache it is given:
1. the cache under ``user:{user_id}``: a hit costs one GET;
2. on a miss, a ``VerifyUser`` on ``verify_user`` and the first ``UserVerification`` with the
   same request id on ``user_verification_response``, within a short timeout (no wait at all
   when PUBLISH reports no listener);
3. then, if configured, the user service's internal HTTP endpoint;
4. else ``UserVerificationUnavailable`` (503).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Protocol

import httpx
import pydantic
from opentelemetry.trace import SpanKind, Tracer

from contracts import (
    INTERNAL_VERIFICATION_PATH,
    USER_VERIFICATION_RESPONSE_CHANNEL,
    VERIFY_USER_CHANNEL,
    CachedUser,
    UserVerification,
    VerifyUser,
    user_cache_key,
)
from order_service.core.metrics import OrderMetrics
from order_service.domain import UserStanding
from order_service.errors import UserVerificationUnavailable
from servicekit.bus import MessageBus
from servicekit.cache import Cache
from servicekit.errors import DependencyUnavailable
from servicekit.logs import request_id_var
from servicekit.tracing import traceparent_of

log = logging.getLogger(__name__)


class StandingSource(Protocol):
    async def verify(self, user_id: uuid.UUID) -> UserStanding: ...


class HttpUserVerifier:
    """The fallback: ask the user service directly, with a service credential."""

    def __init__(self, http: httpx.AsyncClient, *, token: str) -> None:
        self._http = http
        self._headers = {"Authorization": f"Bearer {token}"}

    async def verify(self, user_id: uuid.UUID) -> UserStanding:
        try:
            response = await self._http.get(
                INTERNAL_VERIFICATION_PATH.format(user_id=user_id),
                headers={**self._headers, "X-Request-ID": request_id_var.get()},
            )
            response.raise_for_status()
            body = response.json()
            exists, active = body["exists"], body["active"]
            epoch = body.get("session_epoch", 0)  # absent from older user services
            if not (isinstance(exists, bool) and isinstance(active, bool)):
                raise TypeError("exists and active must be JSON booleans")
            if type(epoch) is not int or epoch < 0:
                raise TypeError("session_epoch must be a JSON integer, 0 or more")
            return UserStanding(exists=exists, active=active, source="http", session_epoch=epoch)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("user service did not answer the verification of %s: %r", user_id, exc)
            raise UserVerificationUnavailable() from None


class CachedBusUserVerifier:
    def __init__(
        self,
        cache: Cache,
        bus: MessageBus,
        *,
        timeout: float,
        fallback: StandingSource | None = None,
        metrics: OrderMetrics | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._cache = cache
        self._bus = bus
        self._timeout = timeout
        self._fallback = fallback
        self._metrics = metrics or OrderMetrics.off()
        self._tracer = tracer
        self._pending: dict[str, tuple[uuid.UUID, asyncio.Future[UserVerification]]] = {}
        bus.subscribe(USER_VERIFICATION_RESPONSE_CHANNEL, self._on_reply)

    async def verify(self, user_id: uuid.UUID) -> UserStanding:
        try:
            standing = await self._verify(user_id)
        except UserVerificationUnavailable:
            self._metrics.verified("unavailable")
            raise
        self._metrics.verified(standing.source)
        return standing

    async def _verify(self, user_id: uuid.UUID) -> UserStanding:
        cached = await self._from_cache(user_id)
        if cached is not None:
            return cached
        if self._tracer is None:
            answered = await self._ask_bus(user_id)
        else:
            with self._tracer.start_as_current_span(
                f"{VERIFY_USER_CHANNEL} publish",
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.operation.type": "send",
                    "messaging.destination.name": VERIFY_USER_CHANNEL,
                },
            ):
                answered = await self._ask_bus(user_id)
        if answered is not None:
            return answered
        if self._fallback is not None:
            return await self._fallback.verify(user_id)
        log.warning("no answer on the bus for %s, and no fallback", user_id)
        raise UserVerificationUnavailable()

    async def _from_cache(self, user_id: uuid.UUID) -> UserStanding | None:
        try:
            raw = await self._cache.get(user_cache_key(user_id))
        except DependencyUnavailable as exc:
            log.warning("user cache unreadable: %r", exc)
            return None
        if raw is None:
            return None
        try:
            user = CachedUser.model_validate_json(raw)
        except pydantic.ValidationError:
            log.warning("ignored a malformed cache entry for user %s", user_id)
            return None
        if user.id != user_id:
            return None
        return UserStanding(
            exists=True, active=user.active, source="cache", session_epoch=user.session_epoch
        )

    async def _ask_bus(self, user_id: uuid.UUID) -> UserStanding | None:
        request_id = uuid.uuid4().hex
        reply: asyncio.Future[UserVerification] = asyncio.get_running_loop().create_future()
        # Registered before publishing, so an answer cannot arrive before we listen for it.
        self._pending[request_id] = (user_id, reply)
        try:
            message = VerifyUser(
                request_id=request_id,
                user_id=user_id,
                trace_id=request_id_var.get(),
                traceparent=traceparent_of() if self._tracer is not None else None,
            )
            asked_at = time.perf_counter()
            receivers = await self._bus.publish(
                VERIFY_USER_CHANNEL, message.model_dump_json().encode()
            )
            if receivers == 0:
                log.info("nobody listens on %s", VERIFY_USER_CHANNEL)
                return None
            answer = await asyncio.wait_for(reply, self._timeout)
            self._metrics.bus_round_trip.observe(time.perf_counter() - asked_at)
        except TimeoutError:
            log.warning(
                "no reply on %s within %.2fs", USER_VERIFICATION_RESPONSE_CHANNEL, self._timeout
            )
            return None
        except DependencyUnavailable as exc:
            log.warning("could not publish on %s: %r", VERIFY_USER_CHANNEL, exc)
            return None
        finally:
            del self._pending[request_id]
        return UserStanding(
            exists=answer.exists,
            active=answer.active,
            source="bus",
            session_epoch=answer.session_epoch,
        )

    async def _on_reply(self, raw: bytes) -> None:
        try:
            answer = UserVerification.model_validate_json(raw)
        except pydantic.ValidationError:
            return
        waiting = self._pending.get(answer.request_id)
        if waiting is None:
            return  # another process's request, or a duplicate after the first answer
        user_id, reply = waiting
        if answer.user_id == user_id and not reply.done():
            reply.set_result(answer)
