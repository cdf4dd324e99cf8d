"""Verified entries remembered byte for byte (servicekit.tags.RememberedTags): a second read of
the same bytes needs no MAC, and nothing else changes about what is refused."""

from __future__ import annotations

import logging

import pytest

from servicekit.cache import InMemoryCache
from servicekit.tags import BadTag, RememberedTags, TaggedCache, Tags

KEY = b"k" * 32
ENTRY = b'{"id":"7","email":"ada@example.com","active":false,"version":3}'


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class CountedTags(Tags):
    """Tags that count their full checks (the MACs computed on reads)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__([KEY], clock=clock)
        self.checks = 0

    def check(self, place: str, tagged: bytes) -> tuple[bytes, int]:
        self.checks += 1
        return super().check(place, tagged)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tags(clock: Clock) -> CountedTags:
    return CountedTags(clock)


def test_the_same_bytes_again_need_no_second_check(tags: CountedTags) -> None:
    remembered = RememberedTags(tags, 8)
    tagged = tags.sign("user:7", ENTRY, 3600)
    assert remembered.verify("user:7", tagged) == ENTRY
    assert remembered.verify("user:7", bytes(bytearray(tagged))) == ENTRY  # equal, not the same
    assert tags.checks == 1


def test_a_forged_or_altered_entry_is_refused_where_one_is_remembered(tags: CountedTags) -> None:
    remembered = RememberedTags(tags, 8)
    tagged = tags.sign("user:7", ENTRY, 3600)
    remembered.verify("user:7", tagged)
    forgeries = [
        tagged.replace(b'"active":false', b'"active":true'),
        tagged.replace(b'"active":false', b'"active":true '),
        ENTRY,
        tagged + b" ",
        tagged[:-4] + b'A"}',
    ]
    for forged in forgeries:
        with pytest.raises(BadTag):
            remembered.verify("user:7", forged)
    assert tags.checks == 1 + len(forgeries)
    assert remembered.verify("user:7", tagged) == ENTRY  # the genuine one is still known
    assert tags.checks == 1 + len(forgeries)


def test_remembered_bytes_hold_for_their_place_only(tags: CountedTags) -> None:
    remembered = RememberedTags(tags, 8)
    tagged = tags.sign("user:7", ENTRY, 3600)
    remembered.verify("user:7", tagged)
    with pytest.raises(BadTag, match="no key"):
        remembered.verify("user:8", tagged)  # copied under another key


def test_a_remembered_entry_expires_all_the_same(tags: CountedTags, clock: Clock) -> None:
    remembered = RememberedTags(tags, 8)
    tagged = tags.sign("user:7", ENTRY, 60)
    remembered.verify("user:7", tagged)
    clock.now += 60
    assert remembered.verify("user:7", tagged) == ENTRY
    assert tags.checks == 1  # answered from memory, expiry and all
    clock.now += 1
    with pytest.raises(BadTag, match="expired"):
        remembered.verify("user:7", tagged)
    assert len(remembered) == 0
    with pytest.raises(BadTag, match="expired"):
        remembered.verify("user:7", tagged)  # now refused by the full check
    assert tags.checks == 2


def test_the_capacity_bounds_what_is_remembered(tags: CountedTags, clock: Clock) -> None:
    remembered = RememberedTags(tags, 3)
    entries = {f"user:{n}": tags.sign(f"user:{n}", ENTRY, 3600) for n in range(5)}
    for place in ["user:0", "user:1", "user:2", "user:0", "user:3"]:
        remembered.verify(place, entries[place])
        assert len(remembered) <= 3
    assert tags.checks == 4
    # The place verified longest ago went first, however recently it was read.
    for place, checks in [("user:1", 4), ("user:2", 4), ("user:3", 4), ("user:0", 5)]:
        remembered.verify(place, entries[place])
        assert tags.checks == checks
    assert len(remembered) == 3
    # A place verified anew (a new entry there) goes to the end: user:3 goes, not user:2.
    clock.now += 1
    entries["user:2"] = tags.sign("user:2", ENTRY, 3600)
    for place, checks in [("user:2", 6), ("user:4", 7), ("user:2", 7), ("user:3", 8)]:
        remembered.verify(place, entries[place])
        assert tags.checks == checks
    assert len(remembered) == 3


def test_a_new_entry_at_a_place_replaces_the_remembered_one(
    tags: CountedTags, clock: Clock
) -> None:
    remembered = RememberedTags(tags, 8)
    first = tags.sign("user:7", ENTRY, 3600)
    remembered.verify("user:7", first)
    clock.now += 1
    second = tags.sign("user:7", ENTRY.replace(b'"version":3', b'"version":4'), 3600)
    assert remembered.verify("user:7", second) != ENTRY
    assert len(remembered) == 1
    remembered.verify("user:7", second)
    assert tags.checks == 2


def test_a_capacity_of_zero_remembers_nothing(tags: CountedTags) -> None:
    remembered = RememberedTags(tags, 0)
    tagged = tags.sign("user:7", ENTRY, 3600)
    for _ in range(3):
        assert remembered.verify("user:7", tagged) == ENTRY
    assert (tags.checks, len(remembered)) == (3, 0)
    with pytest.raises(ValueError, match="capacity"):
        RememberedTags(tags, -1)


async def test_the_tagged_cache_reads_a_forged_entry_as_a_miss_after_a_remembered_one(
    tags: CountedTags, caplog: pytest.LogCaptureFixture
) -> None:
    store = InMemoryCache()
    cache = TaggedCache(store, tags, remember=8)
    await cache.set("user:7", ENTRY, 3600)
    assert await cache.get("user:7") == ENTRY
    assert await cache.get("user:7") == ENTRY
    assert tags.checks == 1
    tagged = await store.get("user:7")
    assert tagged is not None
    await store.set("user:7", tagged.replace(b'"active":false', b'"active":true'), 3600)
    with caplog.at_level(logging.WARNING, "servicekit.tags"):
        assert await cache.get("user:7") is None
    assert "ignored the cache entry under user:7: a tag no key of ours made" in caplog.text
