"""Structured logs, each line with the request id of the request (or message) it serves."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import sys
from contextvars import ContextVar
from typing import Any, TextIO

from opentelemetry import trace
from pydantic_core import to_json

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")


# uvicorn's own loggers: their lines go through the root handler, as JSON like ours.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi")


class JsonFormatter(logging.Formatter):
    """One JSON object per line. With ``traces``, a line written inside a span also carries
    its ``trace_id`` and ``span_id`` (hex, as trace backends show them)."""

    def __init__(self, service: str | None = None, *, traces: bool = False) -> None:
        super().__init__()
        # Without a name (uvicorn's log config, before the app is loaded): the one the
        # service's settings will read, when set.
        self._service = service or os.environ.get("SERVICE_NAME", "-")
        self._traces = traces

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        if self._traces:
            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                entry["trace_id"] = format(context.trace_id, "032x")
                entry["span_id"] = format(context.span_id, "016x")
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # pydantic's encoder (Rust): less per line than json's (docs/benchmarks.md).
        return to_json(entry, fallback=str).decode()


class LoopBatchedHandler(logging.StreamHandler[TextIO]):
    """Lines logged on a running event loop are written together, once per loop iteration:
    one write and one flush for every line the iteration logged (an access line per
    request), instead of one each. Lines from elsewhere (startup, other threads) are written
    at once, after any still waiting. ``flush`` (called at exit) writes what waits.

    uvicorn's own lines (start, shutdown) are written at once too: after a signal, uvicorn
    ends the loop and raises the signal again, so the process ends with no exit hooks and
    whatever still waited would be lost."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or record.name.startswith("uvicorn"):
            with self.lock or contextlib.nullcontext():
                self._write_waiting()
            super().emit(record)
            return
        try:
            self._waiting.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)
            return
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        with self.lock or contextlib.nullcontext():
            self._write_waiting()
            super().flush()

    def _write_waiting(self) -> None:
        self._scheduled = False
        if self._waiting:
            text, self._waiting = "".join(self._waiting), []
            self.stream.write(text)


def configure_logging(service: str, level: str = "INFO", *, traces: bool = False) -> None:
    # Nothing here prints where a call came from, nor thread or process: the logging HOWTO's
    # "Optimization" switches spare collecting them for every record (a stack walk included).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = LoopBatchedHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service, traces=traces))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in UVICORN_LOGGERS:
        # uvicorn gave them plain-text handlers of their own before the app was loaded
        # (unless started with servicekit/uvicorn-logging.json): from now on, ours.
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True


# Request ids need to be unique, not secret: a random prefix for this process and a counter
# (32 hex digits, like a UUID's) cost no system call per request.
_REQUEST_ID_PREFIX = secrets.token_hex(8)
_request_numbers = itertools.count(1)


def new_request_id() -> str:
    return f"{_REQUEST_ID_PREFIX}{next(_request_numbers):016x}"
