"""The memory of user standings, with a stand-in for the database read that can be held open."""

from __future__ import annotations

import asyncio
import uuid

from user_service.adapters.user_standings import RememberedUserStandings
from user_service.domain import UserStanding


class HeldStandings:
    """A database of user standings whose reads can be held until released."""

    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, UserStanding] = {}
        self.reads = 0
        self.release = asyncio.Event()
        self.release.set()

    def add(self, *, active: bool = True, version: int = 1) -> uuid.UUID:
        user_id = uuid.uuid4()
        self.rows[user_id] = UserStanding(user_id, f"{user_id.hex}@example.com", active, version)
        return user_id

    async def get(self, user_id: uuid.UUID) -> UserStanding | None:
        self.reads += 1
        row = self.rows.get(user_id)  # what the database returned when asked
        await self.release.wait()
        return row


class Live:
    def __init__(self) -> None:
        self.value = True

    def __call__(self) -> bool:
        return self.value


async def test_a_read_is_kept_and_answered_again_until_its_user_changes() -> None:
    database, live = HeldStandings(), Live()
    states = RememberedUserStandings(database, live=live)
    user_id = database.add()
    assert await states.get(user_id) == await states.get(user_id)
    assert database.reads == 1
    database.rows[user_id] = UserStanding(user_id, "new@example.com", False, 2)
    states.changed(str(user_id))
    assert await states.get(user_id) == database.rows[user_id]
    assert database.reads == 2


async def test_a_read_in_flight_when_a_change_arrives_is_returned_but_not_kept() -> None:
    """The database answered before the change committed; keeping that answer would hide
    the change for good, since its notification has already been heard."""
    database, live = HeldStandings(), Live()
    states = RememberedUserStandings(database, live=live)
    user_id = database.add()
    database.release.clear()
    reading = asyncio.create_task(states.get(user_id))
    await asyncio.sleep(0)  # the read has reached the database
    states.changed(str(uuid.uuid4()))  # any change: the read cannot tell whose
    database.release.set()
    assert await reading == database.rows[user_id]
    assert len(states) == 0
    await states.get(user_id)
    assert database.reads == 2


async def test_nothing_is_kept_or_answered_from_memory_while_not_live() -> None:
    database, live = HeldStandings(), Live()
    states = RememberedUserStandings(database, live=live)
    user_id = database.add()
    await states.get(user_id)
    live.value = False  # the feed is down: changes may go unheard
    database.rows[user_id] = UserStanding(user_id, "x@example.com", False, 2)
    assert await states.get(user_id) == database.rows[user_id]
    other = database.add()
    await states.get(other)
    assert len(states) == 1  # the first user's entry, unused, and nothing new
    states.forget_all()  # what the feed does when it is live again
    live.value = True
    assert await states.get(user_id) == database.rows[user_id]


async def test_unknown_users_are_not_kept_and_the_oldest_entry_goes_first() -> None:
    database, live = HeldStandings(), Live()
    states = RememberedUserStandings(database, live=live, capacity=2)
    missing = uuid.uuid4()
    assert await states.get(missing) is None
    assert len(states) == 0
    first, second, third = database.add(), database.add(), database.add()
    for user_id in (first, second, third):
        await states.get(user_id)
    assert len(states) == 2
    reads = database.reads
    await states.get(third)
    await states.get(second)
    assert database.reads == reads
    await states.get(first)
    assert database.reads == reads + 1


async def test_a_notification_that_is_not_a_user_id_forgets_everything() -> None:
    database, live = HeldStandings(), Live()
    states = RememberedUserStandings(database, live=live)
    await states.get(database.add())
    states.changed("not-a-uuid")
    assert len(states) == 0
