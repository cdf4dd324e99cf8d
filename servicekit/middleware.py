"""The ASGI middleware around every request: request id, header and body bounds, HEAD, access
log."""

from __future__ import annotations

import logging
import re
import time

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.errors import DuplicateHeader, PayloadTooLarge, RequestHeadersTooLarge
from servicekit.handlers import problem
from servicekit.logs import new_request_id, request_id_var
from servicekit.metrics import UNMATCHED_ROUTE, HttpMetrics, route_template
from servicekit.tracing import ServerSpans

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = logging.getLogger("access")

# Every request header together, names and values: far above what a client of this API sends
# (a bearer token, an idempotency key), far below what would let one request hold much memory.
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
# Headers that decide what a request does. Sent twice, which one counts would depend on who
# reads them: a proxy keeping the last and a server keeping the first would disagree (two
# orders for one Idempotency-Key, or one user authorized and another logged).
SINGLE_HEADERS = frozenset(
    {
        b"authorization",
        b"content-length",
        b"content-type",
        b"host",
        b"idempotency-key",
        b"origin",
        b"transfer-encoding",
        b"x-request-id",
    }
)


class RequestContextMiddleware:
    """Per request: a request id (taken from ``X-Request-ID`` or made), echoed on the response
    and set for logs; a bound on all headers together (431); a header of ``SINGLE_HEADERS``
    sent twice is refused (400); a bound on the body size (413); ``HEAD`` answered wherever
    ``GET`` is, without the body; one access-log line; the HTTP server metrics, when given
    (the duration measured once serves the log line and the metric); a server span, when
    given ``spans`` (tracing on), current for all of it, the access line included."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        metrics: HttpMetrics | None = None,
        spans: ServerSpans | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.metrics = metrics if metrics is not None and metrics.on else None
        self.spans = spans

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"]
        incoming = _header(scope, b"x-request-id")
        request_id = (
            incoming if incoming and _VALID_REQUEST_ID.match(incoming) else new_request_id()
        )
        token = request_id_var.set(request_id)
        status = 500
        metrics = self.metrics
        method_label = HttpMetrics.method_label(method)
        if metrics is not None:
            metrics.started(method_label)
        spans = self.spans
        traced = spans.start(scope, method_label) if spans is not None else None
        failure: BaseException | None = None

        async def stamp_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        send_with_id: Send = stamp_id
        try:
            refusal = self._refuse_headers(scope)
            if refusal is not None:
                await refusal(scope, receive, send_with_id)
                return
            if scope["method"] == "HEAD":
                # The GET route answers; its body is not sent, its headers are.
                scope = {**scope, "method": "GET"}
                send_with_id = _without_body(send_with_id)
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
        except BaseException as exc:
            failure = exc
            raise
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            if metrics is not None:
                metrics.finished(method_label, route, status, seconds)
            access_log.info(
                "%s %s %s",
                method,
                scope["path"],
                status,
                extra={
                    "fields": {
                        "method": method,
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                    }
                },
            )
            if traced is not None:
                assert spans is not None
                span, span_token = traced
                spans.finish(
                    span,
                    span_token,
                    scope,
                    method=method_label,
                    route=None if route == UNMATCHED_ROUTE else route,
                    status=status,
                    failure=failure,
                )
            request_id_var.reset(token)

    def _refuse_headers(self, scope: Scope) -> JSONResponse | None:
        size = 0
        seen: set[bytes] = set()
        repeated: bytes | None = None
        for name, value in scope["headers"]:
            size += len(name) + len(value) + 4  # ": " and CRLF, as on the wire
            if name in SINGLE_HEADERS:
                if name in seen and repeated is None:
                    repeated = name
                seen.add(name)
        if size > self.max_header_bytes:
            return problem(
                431,
                RequestHeadersTooLarge.code,
                f"The request headers take {size} bytes; at most {self.max_header_bytes}.",
            )
        if repeated is not None:
            return problem(
                400,
                DuplicateHeader.code,
                f"The header {repeated.decode('latin-1').title()} must be sent once.",
            )
        return None

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


def _without_body(send: Send) -> Send:
    """The answer to a HEAD: what the GET sends, with empty body messages."""

    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_head


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
