"""A concurrent client for fault tests: a bounded stream of order creations, each recorded.

``OrderLoad`` runs ``concurrency`` workers that create orders round-robin over some accounts,
every request with its own ``Idempotency-Key`` and ``X-Request-ID`` and a client timeout. It
stops by itself after ``max_requests`` or ``max_seconds``, or when told. Every outcome is kept
(status, error class, order id, ``Retry-After``, the phase it started in), so a test can check
each request and then the database against them. Nothing here asserts anything about speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.api import Account, order_body

# Bounds for failures only: a test fails when one is exceeded, no assertion is about speed.
CLIENT_TIMEOUT = 20.0
PATIENCE = 30.0


@dataclass
class Outcome:
    account: Account
    key: str
    request_id: str
    phase: str
    status: int | None = None
    error: str | None = None
    order_id: str | None = None
    retry_after: str | None = None
    code: str | None = None
    replayed: bool = False
    ended_in: str | None = None
    seconds: float = 0.0

    @property
    def created(self) -> bool:
        return self.status == 201

    @property
    def timed_out(self) -> bool:
        return self.error is not None and "Timeout" in self.error

    @property
    def refused(self) -> bool:
        """Never reached the server: nothing can have been accepted."""
        return self.error == "ConnectError"

    @property
    def label(self) -> str:
        return str(self.status) if self.status is not None else str(self.error)


@dataclass
class OrderLoad:
    base_url: str
    accounts: Sequence[Account]
    concurrency: int = 6
    max_requests: int = 2000
    max_seconds: float = 40.0
    timeout: float = CLIENT_TIMEOUT
    body: dict[str, Any] = field(default_factory=order_body)
    outcomes: list[Outcome] = field(default_factory=list)
    phase: str = "before"
    _started: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _progress: asyncio.Condition = field(default_factory=asyncio.Condition)

    def enter(self, phase: str) -> None:
        """Requests started from now on are tagged with ``phase``."""
        self.phase = phase

    def stop(self) -> None:
        self._stop.set()

    def in_phase(self, phase: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.phase == phase]

    def summary(self, phase: str | None = None) -> dict[str, int]:
        """Outcomes by status (or error), of the requests that ended in ``phase``."""
        chosen = (
            self.outcomes if phase is None else [o for o in self.outcomes if o.ended_in == phase]
        )
        return dict(Counter(o.label for o in chosen))

    def report(self) -> dict[str, object]:
        """What the docs table shows: outcomes per phase, and the slowest answer (seen, not
        asserted)."""
        phases = dict.fromkeys(o.ended_in or "" for o in self.outcomes)
        return {
            "requests": len(self.outcomes),
            **{phase: self.summary(phase) for phase in phases},
            "slowest_s": round(max((o.seconds for o in self.outcomes), default=0.0), 2),
        }

    async def run_phase(
        self, phase: str, requests: int, *, status: int | None = None, within: float = PATIENCE
    ) -> None:
        """Tag requests started from now on with ``phase`` and wait until ``requests`` more of
        them (with ``status``, if given) have ended in it."""
        target = self.ended(phase, status) + requests
        self.enter(phase)
        await self.wait_for(
            f"{requests} x {status or 'any'} in {phase}",
            lambda run: run.ended(phase, status) >= target,
            within,
        )

    async def wait_for(
        self, description: str, done: Callable[[OrderLoad], bool], within: float = PATIENCE
    ) -> None:
        """Wait until ``done(self)``; fail (not assert on speed) after ``within`` seconds or
        when the load ended first."""
        try:
            async with asyncio.timeout(within), self._progress:
                while not done(self):
                    if self._stop.is_set() or self._started >= self.max_requests:
                        if done(self):
                            break
                        raise AssertionError(f"load ended before {description}: {self.summary()}")
                    await self._progress.wait()
        except TimeoutError:
            raise AssertionError(
                f"not seen within {within}s: {description}; so far {self.summary()}"
            ) from None

    def ended(self, phase: str, status: int | None = None) -> int:
        """How many requests ended in ``phase`` (with ``status``, if given)."""
        return sum(
            1
            for o in self.outcomes
            if o.ended_in == phase and (status is None or o.status == status)
        )

    async def _worker(self, http: httpx.AsyncClient) -> None:
        while not self._stop.is_set() and self._started < self.max_requests:
            account = self.accounts[self._started % len(self.accounts)]
            self._started += 1
            outcome = Outcome(
                account=account,
                key=f"load-{uuid.uuid4().hex}",
                request_id=f"fault-{uuid.uuid4().hex}",
                phase=self.phase,
            )
            await send_order(http, outcome, self.body)
            outcome.ended_in = self.phase
            self.outcomes.append(outcome)
            async with self._progress:
                self._progress.notify_all()
            if not outcome.created:
                # A refusal or a 503 returns at once; do not spin on it.
                await asyncio.sleep(0.05)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout, limits=limits
        ) as http:
            workers = [asyncio.create_task(self._worker(http)) for _ in range(self.concurrency)]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.max_seconds):
                    await asyncio.gather(*workers)
            self._stop.set()
            await asyncio.gather(*workers, return_exceptions=True)
        async with self._progress:
            self._progress.notify_all()


async def send_order(http: httpx.AsyncClient, outcome: Outcome, body: dict[str, Any]) -> None:
    """One order creation, its result written into ``outcome``; never raises on HTTP faults."""
    headers = {
        **outcome.account.auth,
        "Idempotency-Key": outcome.key,
        "X-Request-ID": outcome.request_id,
    }
    started = time.monotonic()
    try:
        response = await http.post("/orders", json=body, headers=headers)
    except httpx.HTTPError as exc:
        outcome.error = type(exc).__name__
        return
    finally:
        outcome.seconds = time.monotonic() - started
    outcome.status = response.status_code
    outcome.retry_after = response.headers.get("retry-after")
    outcome.replayed = response.headers.get("idempotent-replayed") == "true"
    with contextlib.suppress(ValueError):
        payload = response.json()
        if isinstance(payload, dict):
            outcome.order_id = payload.get("id") if response.status_code == 201 else None
            outcome.code = payload.get("code")


@contextlib.asynccontextmanager
async def order_load(
    base_url: str, accounts: Sequence[Account], **options: Any
) -> AsyncIterator[OrderLoad]:
    """Runs the load for the duration of the block; on leaving, stops it and waits for every
    request in flight to end (each bounded by the client timeout)."""
    load = OrderLoad(base_url, accounts, **options)
    runner = asyncio.create_task(load._run(), name="order-load")
    try:
        yield load
    finally:
        load.stop()
        await runner
