"""Log lines: batched per loop iteration on the event loop, written at once elsewhere."""

import asyncio
import io
import json
import logging
import threading

from servicekit.logs import JsonFormatter, LoopBatchedHandler, new_request_id


def _logger(stream: io.StringIO) -> tuple[logging.Logger, LoopBatchedHandler]:
    handler = LoopBatchedHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    logger = logging.getLogger(f"test-logs-{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, handler


def _messages(stream: io.StringIO) -> list[str]:
    return [json.loads(line)["msg"] for line in stream.getvalue().splitlines()]


async def test_lines_of_one_loop_iteration_are_written_together_and_in_order() -> None:
    stream = io.StringIO()
    logger, _ = _logger(stream)
    for n in range(3):
        logger.info("line %d", n)
    assert stream.getvalue() == ""  # still this iteration
    await asyncio.sleep(0)
    assert _messages(stream) == ["line 0", "line 1", "line 2"]


async def test_a_line_off_the_loop_is_written_at_once_after_those_waiting() -> None:
    stream = io.StringIO()
    logger, _ = _logger(stream)
    logger.info("on the loop")
    other = threading.Thread(target=logger.info, args=("from another thread",))
    other.start()
    other.join()  # blocks the loop: its iteration has not ended
    assert _messages(stream) == ["on the loop", "from another thread"]


async def test_flush_writes_what_waits() -> None:
    stream = io.StringIO()
    logger, handler = _logger(stream)
    logger.info("waiting")
    handler.flush()
    assert _messages(stream) == ["waiting"]
    await asyncio.sleep(0)
    assert _messages(stream) == ["waiting"]  # the scheduled flush finds nothing left


def test_request_ids_are_unique_32_hex_digits() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
