"""The bus entrypoint: answers ``verify_user`` requests on ``user_verification_response``.

Like an HTTP route it only translates: parse the message, ask the service, publish the reply.
"""

from __future__ import annotations

import logging

import pydantic
from opentelemetry.trace import SpanKind, Tracer

from contracts import (
    USER_VERIFICATION_RESPONSE_CHANNEL,
    VERIFY_USER_CHANNEL,
    UserVerification,
    VerifyUser,
)
from servicekit.bus import Handler, MessageBus
from servicekit.faults import is_dependency_fault
from servicekit.logs import request_id_var
from servicekit.tracing import context_of
from user_service.domain import UserStanding
from user_service.routers.dependencies import UserServiceState
from user_service.services.verification import verify_user

log = logging.getLogger(__name__)


def verification_handler(
    state: UserServiceState, bus: MessageBus, *, tracer: Tracer | None = None
) -> Handler:
    """With a ``tracer``, each request is handled in a consumer span, child of the asking
    span the message's ``traceparent`` names."""

    async def handle(raw: bytes) -> None:
        try:
            request = VerifyUser.model_validate_json(raw)
        except pydantic.ValidationError:
            log.warning("dropped a malformed verify_user message")
            return
        request_id_var.set(request.trace_id or request.request_id)
        if tracer is None:
            await respond(request)
            return
        with tracer.start_as_current_span(
            f"{VERIFY_USER_CHANNEL} process",
            context=context_of(request.traceparent),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.operation.type": "process",
                "messaging.destination.name": VERIFY_USER_CHANNEL,
            },
        ):
            await respond(request)

    async def respond(request: VerifyUser) -> None:

        async def reply(standing: UserStanding | None) -> None:
            answer = UserVerification(
                request_id=request.request_id,
                user_id=request.user_id,
                exists=standing is not None,
                active=standing is not None and standing.is_active,
                session_epoch=standing.session_epoch if standing is not None else 0,
            )
            await bus.publish(USER_VERIFICATION_RESPONSE_CHANNEL, answer.model_dump_json().encode())

        try:
            await verify_user(
                state.user_standings, state.cache, user_id=request.user_id, reply=reply
            )
        except Exception as exc:
            if not is_dependency_fault(exc):
                raise
            # No answer: the asker falls back to HTTP, which answers 503 while this lasts.
            log.warning("could not answer verify_user for %s: %r", request.user_id, exc)

    return handle
