"""The ASGI middleware around every request: request id, body bound, access log."""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.errors import PayloadTooLarge
from servicekit.handlers import problem
from servicekit.logs import new_request_id, request_id_var
from servicekit.metrics import HttpMetrics, route_template

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = logging.getLogger("access")


class RequestContextMiddleware:
    """Per request: a request id (taken from ``X-Request-ID`` or made), echoed on the response
    and set for logs; a bound on the body size (413); one access-log line; the HTTP server
    metrics, when given (the duration measured once serves the log line and the metric)."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, metrics: HttpMetrics | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics if metrics is not None and metrics.on else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = _header(scope, b"x-request-id")
        request_id = (
            incoming if incoming and _VALID_REQUEST_ID.match(incoming) else new_request_id()
        )
        token = request_id_var.set(request_id)
        status = 500
        metrics = self.metrics
        method = HttpMetrics.method_label(scope["method"])
        if metrics is not None:
            metrics.started(method)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            declared = _header(scope, b"content-length")
            if declared is None:
                # A chunked body: read it here, bounded, so an oversize one is a clean 413.
                body = await self._read_bounded(receive)
                if body is None:
                    await self._too_large(scope, receive, send_with_id)
                    return
                receive = _replay(body, receive)
            elif not declared.isdigit() or int(declared) > self.max_body_bytes:
                await self._too_large(scope, receive, send_with_id)
                return
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            if metrics is not None:
                metrics.finished(method, route_template(scope), status, seconds)
            access_log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "fields": {
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                    }
                },
            )
            request_id_var.reset(token)

    async def _read_bounded(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, PayloadTooLarge.code, PayloadTooLarge.detail)
        await response(scope, receive, send)


def _replay(body: bytes, then: Receive) -> Receive:
    """The body read already, then whatever the server says next (a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
