"""Authentication tags on what the services leave in a shared store (Redis): whoever can write
there cannot make a service believe something the other service did not say.

A tagged value is the JSON object that was given, with one more member at its end:
``{...,"tag":"<expires>.<mac>"}``, where ``mac`` is keyed BLAKE2b (RFC 7693's MAC mode, 32
bytes, base64url, unpadded) over the place the value is meant for (a cache key, a channel),
the expiry (Unix seconds) and the exact bytes of the object without the tag. Readers that
parse the JSON see one member more and ignore it; the checker restores the exact bytes
without parsing anything. Keyed BLAKE2b rather than HMAC-SHA256: a MAC by design, with one
hash state to copy per use instead of two.

Bound to its place, a value cannot be copied under another key or channel; bound to its
expiry, a value captured once cannot be replayed after it. Keys rotate: the first signs, any
verifies.

``TaggedCache`` and ``TaggedBus`` put this around any cache or bus: a value without a valid
tag is logged and counts as absent (a miss; a message not received). A cache entry is read
many times as it was written: ``TaggedCache`` remembers the entries it verified, byte for
byte, and checks only their expiry when the same bytes come again (``RememberedTags``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Collection, Sequence

from servicekit.bus import Handler, MessageBus
from servicekit.cache import Cache

log = logging.getLogger(__name__)

_TAG_MEMBER = b'"tag":"'
_MAC_LENGTH = 43  # base64url of 32 bytes, unpadded
# Set apart from any other use of the same key with BLAKE2b (its personalization, 16 bytes).
_PERSON = b"servicekit.tags"


class BadTag(ValueError):
    """The value carries no tag, a malformed one, an expired one, or one no key made."""


class Tags:
    """Signs and checks values under shared keys (at least one; the first signs)."""

    def __init__(self, keys: Sequence[bytes], *, clock: Callable[[], float] = time.time) -> None:
        if not keys:
            raise ValueError("at least one key")
        # A keyed hash per key, copied for each use: cheaper than keying one anew each time.
        self._macs = [_keyed(key) for key in keys]
        self._clock = clock

    def sign(self, place: str, value: bytes, ttl_seconds: int) -> bytes:
        """``value`` (a JSON object's bytes) with its tag as the last member."""
        if not (value.startswith(b"{") and value.endswith(b"}")):
            raise ValueError("only a JSON object can carry a tag")
        expires = b"%d" % (int(self._clock()) + ttl_seconds)
        mac = _encode(self._mac(self._macs[0], place, expires, value))
        separator = b"" if value == b"{}" else b","
        return b'%s%s%s%s.%s"}' % (value[:-1], separator, _TAG_MEMBER, expires, mac)

    def verify(self, place: str, tagged: bytes) -> bytes:
        """The value as it was signed, without its tag; ``BadTag`` unless a key made the tag
        for this place and it has not expired."""
        return self.check(place, tagged)[0]

    def check(self, place: str, tagged: bytes) -> tuple[bytes, int]:
        """``verify``, and the expiry (Unix seconds) the tag carries."""
        start = tagged.rfind(_TAG_MEMBER)
        if start < 0 or not tagged.endswith(b'"}'):
            raise BadTag("no tag")
        tag = tagged[start + len(_TAG_MEMBER) : -2]
        expires, dot, mac = tag.partition(b".")
        if not dot or len(mac) != _MAC_LENGTH or not expires.isdigit():
            raise BadTag("a malformed tag")
        head = tagged[:start]
        if head.endswith(b",") and len(head) > 2:
            value = head[:-1] + b"}"
        elif head == b"{":
            value = b"{}"
        else:
            raise BadTag("a malformed tag")
        given = _decode(mac)
        # Every key is tried, also after a match: the time taken says nothing about which.
        matched = False
        for keyed in self._macs:
            matched |= hmac.compare_digest(self._mac(keyed, place, expires, value), given)
        if not matched:
            raise BadTag("a tag no key of ours made")
        expiry = int(expires)
        if self.expired(expiry):
            raise BadTag("an expired tag")
        return value, expiry

    def expired(self, expires: int) -> bool:
        """Whether a tag with this expiry no longer holds."""
        return expires < self._clock()

    @staticmethod
    def _mac(keyed: hashlib.blake2b, place: str, expires: bytes, value: bytes) -> bytes:
        mac = keyed.copy()
        mac.update(b"%s\n%s\n" % (place.encode(), expires))
        mac.update(value)
        return mac.digest()


def _keyed(key: bytes) -> hashlib.blake2b:
    # BLAKE2b takes keys of up to 64 bytes; a longer one is hashed down, as HMAC does.
    if len(key) > hashlib.blake2b.MAX_KEY_SIZE:
        key = hashlib.blake2b(key).digest()
    return hashlib.blake2b(key=key, digest_size=32, person=_PERSON)


def _encode(mac: bytes) -> bytes:
    return base64.urlsafe_b64encode(mac).rstrip(b"=")


def _decode(mac: bytes) -> bytes:
    try:
        return base64.urlsafe_b64decode(mac + b"=")
    except ValueError:
        return b""


# How many places (cache keys) a ``TaggedCache`` remembers its last verified entry for. Each
# holds one entry's bytes twice (with and without its tag), and only entries a key of ours
# signed get in, so the bound is one on memory as well.
REMEMBERED_PLACES = 4096


class RememberedTags:
    """``Tags.verify`` for values that are read again and again, as cache entries are: the last
    entry verified for each place is remembered byte for byte, with its value and expiry, for
    up to ``capacity`` places (beyond it, the place verified longest ago is forgotten). The
    same bytes at the same place need no second MAC: they carry the tag that was checked the
    first time. Their expiry is checked on every read. Other bytes go through the full check.

    The bytes compared against were read from the store, no secret; the comparison is
    constant-time all the same. A plain dict, looked up once per read: a least-recently-read
    order would cost every hit a second operation, for little, as each place holds one entry."""

    def __init__(self, tags: Tags, capacity: int = REMEMBERED_PLACES) -> None:
        if capacity < 0:
            raise ValueError("a capacity of 0 or more")
        self._check = tags.check
        self._expired = tags.expired
        self._capacity = capacity
        self._known: dict[str, tuple[bytes, bytes, int]] = {}

    def __len__(self) -> int:
        return len(self._known)

    def verify(self, place: str, tagged: bytes) -> bytes:
        known = self._known.get(place)
        if known is not None and hmac.compare_digest(known[0], tagged):
            if self._expired(known[2]):
                del self._known[place]
                raise BadTag("an expired tag")
            return known[1]
        value, expires = self._check(place, tagged)
        self._known.pop(place, None)  # to the end of the order
        self._known[place] = (tagged, value, expires)
        if len(self._known) > self._capacity:
            del self._known[next(iter(self._known))]
        return value


class TaggedCache:
    """A cache whose values are tagged on the way in and checked on the way out; an entry
    without a valid tag is logged and read as a miss. Versioned writes still see the
    ``version`` member: the tag is appended, nothing else changes. An entry read again as it
    was needs no second MAC (``RememberedTags``, ``remember`` places)."""

    def __init__(self, cache: Cache, tags: Tags, *, remember: int = REMEMBERED_PLACES) -> None:
        self._cache = cache
        self._tags = tags
        self._verified = RememberedTags(tags, remember)

    async def get(self, key: str) -> bytes | None:
        tagged = await self._cache.get(key)
        if tagged is None:
            return None
        try:
            return self._verified.verify(key, tagged)
        except BadTag as exc:
            log.warning("ignored the cache entry under %s: %s (read as a miss)", key, exc)
            return None

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        await self._cache.set(key, self._tags.sign(key, value, ttl_seconds), ttl_seconds)

    async def set_if_newer(self, key: str, value: bytes, version: int, ttl_seconds: int) -> bool:
        tagged = self._tags.sign(key, value, ttl_seconds)
        return await self._cache.set_if_newer(key, tagged, version, ttl_seconds)

    async def delete(self, key: str) -> None:
        await self._cache.delete(key)


# Long enough for any clock difference between two hosts, short against a replay: a reply
# also names its request, and every request id is new.
MESSAGE_TTL_SECONDS = 60


class TaggedBus:
    """A bus whose messages on the given channels are tagged when published and checked when
    received; a message without a valid tag is logged and dropped. Other channels pass as
    they are."""

    def __init__(
        self,
        bus: MessageBus,
        tags: Tags,
        channels: Collection[str],
        *,
        ttl_seconds: int = MESSAGE_TTL_SECONDS,
    ) -> None:
        self._bus = bus
        self._tags = tags
        self._channels = frozenset(channels)
        self._ttl_seconds = ttl_seconds

    def subscribe(self, channel: str, handler: Handler) -> None:
        if channel in self._channels:
            handler = self._checked(channel, handler)
        self._bus.subscribe(channel, handler)

    async def start(self) -> None:
        await self._bus.start()

    async def close(self) -> None:
        await self._bus.close()

    async def publish(self, channel: str, message: bytes) -> int:
        if channel in self._channels:
            message = self._tags.sign(channel, message, self._ttl_seconds)
        return await self._bus.publish(channel, message)

    def _checked(self, channel: str, handler: Handler) -> Handler:
        tags = self._tags

        async def checked(message: bytes) -> None:
            try:
                value = tags.verify(channel, message)
            except BadTag as exc:
                log.warning("dropped a message on %s: %s", channel, exc)
                return
            await handler(value)

        return checked
