"""Tags on what the services leave in Redis (servicekit.tags), over the in-memory ports."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging

import pytest

from servicekit.bus import InMemoryBus
from servicekit.cache import InMemoryCache
from servicekit.tags import BadTag, TaggedBus, TaggedCache, Tags

KEY = b"k" * 32
OTHER = b"o" * 32
ENTRY = b'{"id":"7","email":"ada@example.com","active":false,"version":3}'


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_signed_value_is_the_same_json_with_a_tag_and_verifies_to_its_exact_bytes() -> None:
    tags = Tags([KEY])
    tagged = tags.sign("user:7", ENTRY, 3600)
    assert json.loads(tagged) == {**json.loads(ENTRY), "tag": json.loads(tagged)["tag"]}
    assert tags.verify("user:7", tagged) == ENTRY
    assert tags.verify("p", tags.sign("p", b"{}", 10)) == b"{}"


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (lambda tagged: ENTRY, "no tag"),
        (lambda tagged: tagged.replace(b'"active":false', b'"active":true '), "no key"),
        (lambda tagged: tagged.replace(b'"active":false', b'"active":true'), "no key"),
        (lambda tagged: tagged[:-4] + b'A"}', "malformed"),
        (lambda tagged: tagged.replace(b'"tag":"', b'"tag":"x'), "malformed"),
        (lambda tagged: b'{"tag":' + tagged[tagged.rfind(b'"tag":') + 6 :], "no key"),
        (lambda tagged: tagged[:-2] + b'="}', "malformed"),
        (lambda tagged: tagged + b" ", "no tag"),
    ],
)
def test_a_changed_or_missing_tag_is_refused(forge, reason) -> None:  # type: ignore[no-untyped-def]
    tags = Tags([KEY])
    with pytest.raises(BadTag, match=reason):
        tags.verify("user:7", forge(tags.sign("user:7", ENTRY, 3600)))


def test_a_tag_holds_for_its_place_and_its_keys_only() -> None:
    tagged = Tags([KEY]).sign("user:7", ENTRY, 3600)
    with pytest.raises(BadTag, match="no key"):
        Tags([KEY]).verify("user:8", tagged)  # copied under another key
    with pytest.raises(BadTag, match="no key"):
        Tags([OTHER]).verify("user:7", tagged)


def test_a_tag_expires() -> None:
    clock = Clock()
    tags = Tags([KEY], clock=clock)
    tagged = tags.sign("user:7", ENTRY, 60)
    clock.now += 60
    assert tags.verify("user:7", tagged) == ENTRY
    clock.now += 1
    with pytest.raises(BadTag, match="expired"):
        tags.verify("user:7", tagged)


def test_keys_rotate_the_first_signs_any_verifies() -> None:
    old = Tags([OTHER]).sign("user:7", ENTRY, 3600)
    rotating = Tags([KEY, OTHER])
    assert rotating.verify("user:7", old) == ENTRY
    assert Tags([KEY]).verify("user:7", rotating.sign("user:7", ENTRY, 3600)) == ENTRY
    with pytest.raises(ValueError, match="at least one key"):
        Tags([])


def test_the_mac_is_keyed_blake2b_over_place_expiry_and_exact_bytes() -> None:
    clock = Clock()
    tagged = Tags([KEY], clock=clock).sign("user:7", ENTRY, 60)
    expires = b"%d" % (clock.now + 60)
    mac = hashlib.blake2b(
        b"user:7\n%s\n%s" % (expires, ENTRY), key=KEY, digest_size=32, person=b"servicekit.tags"
    ).digest()
    tag = b"%s.%s" % (expires, base64.urlsafe_b64encode(mac).rstrip(b"="))
    assert tagged == ENTRY[:-1] + b',"tag":"%s"}' % tag


def test_a_key_longer_than_blake2b_takes_is_hashed_down() -> None:
    long_key, other_long_key = b"L" * 100, b"L" * 99 + b"M"
    tagged = Tags([long_key]).sign("user:7", ENTRY, 3600)
    assert Tags([long_key]).verify("user:7", tagged) == ENTRY
    with pytest.raises(BadTag, match="no key"):
        Tags([other_long_key]).verify("user:7", tagged)
    with pytest.raises(BadTag, match="no key"):
        Tags([long_key[:64]]).verify("user:7", tagged)


def test_only_a_json_object_is_signed() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        Tags([KEY]).sign("p", b"[1]", 10)


async def test_the_tagged_cache_reads_an_untagged_or_forged_entry_as_a_miss(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = InMemoryCache()
    cache = TaggedCache(store, Tags([KEY]))
    await cache.set("user:7", ENTRY, 3600)
    assert await cache.get("user:7") == ENTRY
    assert await store.get("user:7") != ENTRY  # stored with its tag
    assert await cache.get("user:8") is None

    await store.set("user:7", ENTRY.replace(b"false", b"true "), 3600)  # a forged entry
    with caplog.at_level(logging.WARNING, "servicekit.tags"):
        assert await cache.get("user:7") is None
    assert "ignored the cache entry under user:7: no tag (read as a miss)" in caplog.text


async def test_the_tagged_cache_keeps_versioned_writes() -> None:
    store = InMemoryCache()
    cache = TaggedCache(store, Tags([KEY]))
    assert await cache.set_if_newer("user:7", ENTRY, 3, 3600)
    older = ENTRY.replace(b'"version":3', b'"version":2')
    assert not await cache.set_if_newer("user:7", older, 2, 3600)
    assert await cache.get("user:7") == ENTRY
    await cache.delete("user:7")
    assert await store.get("user:7") is None


async def test_the_tagged_bus_drops_untagged_messages_on_its_channels(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = InMemoryBus()
    bus = TaggedBus(inner, Tags([KEY]), {"replies"})
    received: list[tuple[str, bytes]] = []

    def collect(channel: str):  # type: ignore[no-untyped-def]
        async def handler(message: bytes) -> None:
            received.append((channel, message))

        return handler

    bus.subscribe("replies", collect("replies"))
    bus.subscribe("requests", collect("requests"))
    await bus.start()
    assert await bus.publish("replies", b'{"a":1}') == 1
    assert await inner.publish("replies", b'{"a":2}') == 1  # not through the tagged bus
    assert await bus.publish("requests", b"plain") == 1
    with caplog.at_level(logging.WARNING, "servicekit.tags"):
        await asyncio.sleep(0)
        await bus.close()
    assert sorted(received) == [("replies", b'{"a":1}'), ("requests", b"plain")]
    assert "dropped a message on replies: no tag" in caplog.text
