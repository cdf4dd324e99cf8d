"""The Redis and SQL tracing hooks on a real redis-server and a real SQLite file: a command or
statement is a span inside a trace the sampler chose, and costs the instrumentation nothing
anywhere else (no span at all, not even an unrecorded one)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, use_span
from redis.asyncio import Redis
from sqlalchemy import text

from servicekit.database import create_engine
from servicekit.tracing import instrument_engine, instrument_redis


@pytest.fixture
def recorded() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A provider that samples every span it is asked for, even under a parent left out:
    with it, the instrumentations alone would record every command and statement."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@contextlib.contextmanager
def left_out() -> Iterator[None]:
    """Inside a request the sampler left out: a valid trace, not sampled."""
    context = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(0))
    with use_span(NonRecordingSpan(context)):
        yield


async def test_redis_commands_are_spans_only_in_a_sampled_trace(
    redis_client: Redis, recorded: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = recorded
    instrument_redis(redis_client, provider)
    await redis_client.set("traced:a", b"1")  # in no trace
    with left_out():
        assert await redis_client.get("traced:a") == b"1"
    assert exporter.get_finished_spans() == ()
    with provider.get_tracer("t").start_as_current_span("request") as request:
        assert await redis_client.get("traced:a") == b"1"
    [command, parent] = exporter.get_finished_spans()
    assert command.name == "GET"
    assert command.attributes is not None
    assert command.attributes["db.system"] == "redis"
    assert command.parent is not None
    assert command.parent.span_id == request.get_span_context().span_id
    assert parent.name == "request"


async def test_sql_statements_are_spans_only_in_a_sampled_trace(
    tmp_path: Path, recorded: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = recorded
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'traced.db'}", application_name="t")
    instrument_engine(engine, provider)
    try:
        async with engine.begin() as conn:  # in no trace
            await conn.execute(text("CREATE TABLE thing (id INTEGER PRIMARY KEY)"))
        with left_out():
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO thing (id) VALUES (1)"))
        assert exporter.get_finished_spans() == ()
        with provider.get_tracer("t").start_as_current_span("request"):
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT count(*) FROM thing"))).scalar() == 1
    finally:
        await engine.dispose()
    statements = [s for s in exporter.get_finished_spans() if s.name != "request"]
    assert [s.name.split()[0] for s in statements] == ["SELECT"]
    attributes = statements[0].attributes
    assert attributes is not None
    assert attributes["db.system"] == "sqlite"
