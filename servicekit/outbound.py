"""What every outbound HTTP request of a service carries: the request id it serves, so the
callee's log lines of that call share it (the trace context is the tracer's to send)."""

from __future__ import annotations

import httpx

from servicekit.logs import request_id_var

REQUEST_ID_HEADER = "X-Request-ID"


async def send_request_id(request: httpx.Request) -> None:
    """An ``httpx`` request hook: ``event_hooks={"request": [send_request_id]}``."""
    request_id = request_id_var.get()
    if request_id != "-":
        request.headers[REQUEST_ID_HEADER] = request_id
