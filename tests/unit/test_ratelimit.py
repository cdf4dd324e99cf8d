"""The in-process rate limiter: fixed windows on an injected clock."""

from servicekit.ratelimit import InMemoryRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_hits_are_allowed_up_to_the_limit_then_refused_until_the_window_ends() -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter(clock)
    decisions = [await limiter.hit("k", limit=3, window_seconds=60) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.count for d in decisions] == [1, 2, 3, 4, 5]
    clock.now += 45
    refused = await limiter.hit("k", limit=3, window_seconds=60)
    assert not refused.allowed
    assert refused.retry_after == 15
    clock.now += 15
    assert (await limiter.hit("k", limit=3, window_seconds=60)).count == 1


async def test_peek_does_not_count() -> None:
    limiter = InMemoryRateLimiter(Clock())
    for _ in range(3):
        assert (await limiter.peek("k", limit=2, window_seconds=60)).allowed
    await limiter.hit("k", limit=2, window_seconds=60)
    assert (await limiter.peek("k", limit=2, window_seconds=60)).allowed
    await limiter.hit("k", limit=2, window_seconds=60)
    blocked = await limiter.peek("k", limit=2, window_seconds=60)
    assert not blocked.allowed
    assert blocked.count == 2
    assert blocked.retry_after == 60


async def test_keys_are_independent() -> None:
    limiter = InMemoryRateLimiter(Clock())
    await limiter.hit("a", limit=1, window_seconds=60)
    assert not (await limiter.hit("a", limit=1, window_seconds=60)).allowed
    assert (await limiter.hit("b", limit=1, window_seconds=60)).allowed


async def test_ended_windows_are_swept_so_many_keys_do_not_grow_memory() -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter(clock, sweep_above=100)
    for i in range(100):
        await limiter.hit(f"old-{i}", limit=5, window_seconds=10)
    clock.now += 11
    await limiter.hit("new", limit=5, window_seconds=10)
    assert len(limiter._windows) == 1
