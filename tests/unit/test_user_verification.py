"""The order service's user lookup over the in-process bus and cache: cache, then bus, then
fallback, then unavailable."""

import asyncio
import uuid

import pytest

from contracts import (
    USER_VERIFICATION_RESPONSE_CHANNEL,
    VERIFY_USER_CHANNEL,
    CachedUser,
    UserVerification,
    VerifyUser,
    user_cache_key,
)
from order_service.adapters.user_verifier import CachedBusUserVerifier
from order_service.domain import UserStanding
from order_service.errors import UserVerificationUnavailable
from servicekit.bus import InMemoryBus
from servicekit.cache import InMemoryCache


class Responder:
    """A stand-in user service on the bus: answers each request ``copies`` times."""

    def __init__(self, bus: InMemoryBus, known: dict[uuid.UUID, bool], copies: int = 1) -> None:
        self.requests: list[VerifyUser] = []
        self._bus = bus
        self._known = known
        self._copies = copies
        bus.subscribe(VERIFY_USER_CHANNEL, self.handle)

    async def handle(self, raw: bytes) -> None:
        request = VerifyUser.model_validate_json(raw)
        self.requests.append(request)
        for _ in range(self._copies):
            reply = UserVerification(
                request_id=request.request_id,
                user_id=request.user_id,
                exists=request.user_id in self._known,
                active=self._known.get(request.user_id, False),
            )
            await self._bus.publish(
                USER_VERIFICATION_RESPONSE_CHANNEL, reply.model_dump_json().encode()
            )


class Fallback:
    def __init__(self, answer: UserStanding | None) -> None:
        self.calls: list[uuid.UUID] = []
        self._answer = answer

    async def verify(self, user_id: uuid.UUID) -> UserStanding:
        self.calls.append(user_id)
        if self._answer is None:
            raise UserVerificationUnavailable("down")
        return self._answer


async def test_a_cache_hit_sends_no_message() -> None:
    bus, cache = InMemoryBus(), InMemoryCache()
    user_id = uuid.uuid4()
    responder = Responder(bus, {user_id: True})
    verifier = CachedBusUserVerifier(cache, bus, timeout=0.5)
    cached = CachedUser(id=user_id, email="a@example.com", active=False, version=3)
    await cache.set(user_cache_key(user_id), cached.model_dump_json().encode(), 60)
    check = await verifier.verify(user_id)
    assert check == UserStanding(exists=True, active=False, source="cache")
    assert responder.requests == []


async def test_a_miss_asks_the_bus_once_and_takes_the_first_of_duplicate_answers() -> None:
    bus, cache = InMemoryBus(), InMemoryCache()
    user_id = uuid.uuid4()
    responder = Responder(bus, {user_id: True}, copies=3)
    verifier = CachedBusUserVerifier(cache, bus, timeout=0.5)
    check = await verifier.verify(user_id)
    assert check == UserStanding(exists=True, active=True, source="bus")
    assert [r.user_id for r in responder.requests] == [user_id]
    unknown = await verifier.verify(uuid.uuid4())
    assert (unknown.exists, unknown.active) == (False, False)
    await bus.close()


async def test_nobody_listening_goes_straight_to_the_fallback() -> None:
    bus, cache = InMemoryBus(), InMemoryCache()
    fallback = Fallback(UserStanding(exists=True, active=True, source="http"))
    verifier = CachedBusUserVerifier(cache, bus, timeout=30, fallback=fallback)
    user_id = uuid.uuid4()
    # A 30 s timeout would hang this test if the verifier waited for a reply nobody sends.
    check = await asyncio.wait_for(verifier.verify(user_id), 5)
    assert check.source == "http"
    assert fallback.calls == [user_id]


async def test_a_silent_listener_times_out_into_the_fallback() -> None:
    bus, cache = InMemoryBus(), InMemoryCache()
    heard: list[bytes] = []

    async def deaf(raw: bytes) -> None:
        heard.append(raw)

    bus.subscribe(VERIFY_USER_CHANNEL, deaf)
    fallback = Fallback(UserStanding(exists=True, active=False, source="http"))
    verifier = CachedBusUserVerifier(cache, bus, timeout=0.05, fallback=fallback)
    check = await verifier.verify(uuid.uuid4())
    assert check.source == "http"
    assert len(heard) == 1


async def test_no_path_left_is_unavailable() -> None:
    bus, cache = InMemoryBus(), InMemoryCache()
    verifier = CachedBusUserVerifier(cache, bus, timeout=0.05, fallback=Fallback(None))
    with pytest.raises(UserVerificationUnavailable):
        await verifier.verify(uuid.uuid4())
    bare = CachedBusUserVerifier(cache, bus, timeout=0.05)
    with pytest.raises(UserVerificationUnavailable):
        await bare.verify(uuid.uuid4())


async def test_an_answer_about_another_user_is_ignored() -> None:
    bus, cache = InMemoryBus(), InMemoryCache()

    async def liar(raw: bytes) -> None:
        request = VerifyUser.model_validate_json(raw)
        reply = UserVerification(
            request_id=request.request_id, user_id=uuid.uuid4(), exists=True, active=True
        )
        await bus.publish(USER_VERIFICATION_RESPONSE_CHANNEL, reply.model_dump_json().encode())

    bus.subscribe(VERIFY_USER_CHANNEL, liar)
    verifier = CachedBusUserVerifier(cache, bus, timeout=0.05)
    with pytest.raises(UserVerificationUnavailable):
        await verifier.verify(uuid.uuid4())


async def test_a_malformed_cache_entry_is_treated_as_a_miss() -> None:
    bus, cache = InMemoryBus(), InMemoryCache()
    user_id = uuid.uuid4()
    Responder(bus, {user_id: True})
    await cache.set(user_cache_key(user_id), b"{not json", 60)
    verifier = CachedBusUserVerifier(cache, bus, timeout=0.5)
    assert (await verifier.verify(user_id)).source == "bus"


@pytest.mark.parametrize("active", ['"yes"', "1", '"true"', "null"])
async def test_a_flag_that_is_not_a_json_bool_is_a_miss(active: str) -> None:
    """Only a JSON ``true`` in the entry says "active": anything else is asked again."""
    bus, cache = InMemoryBus(), InMemoryCache()
    user_id = uuid.uuid4()
    Responder(bus, {user_id: False})
    entry = f'{{"id":"{user_id}","email":"a@example.com","active":{active},"version":1}}'
    await cache.set(user_cache_key(user_id), entry.encode(), 60)
    standing = await CachedBusUserVerifier(cache, bus, timeout=0.5).verify(user_id)
    assert (standing.source, standing.active) == ("bus", False)
