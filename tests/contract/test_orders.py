"""The order API, over HTTP, the same against every deployment."""

import asyncio
import uuid

from tests.support.api import Api, assert_problem, order_body


async def test_create_order_computes_the_total_exactly(api: Api) -> None:
    account = await api.account()
    body = order_body(
        currency="USD",
        items=[
            {"sku": "A", "quantity": 3, "unit_price": "0.10"},
            {"sku": "B", "quantity": 1, "unit_price": 0.2},
            {"sku": "C", "quantity": 7, "unit_price": "1.05"},
        ],
    )
    response = await api.create_order(account.token, body)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["total"] == "7.85"  # 0.30 + 0.20 + 7.35, no float on the way
    assert [i["line_total"] for i in order["items"]] == ["0.30", "0.20", "7.35"]
    assert order["status"] == "pending"
    assert order["currency"] == "USD"
    assert order["user_id"] == account.id
    assert response.headers["location"] == f"/orders/{order['id']}"
    assert "idempotent-replayed" not in response.headers


async def test_create_order_rejects_invalid_items(api: Api) -> None:
    account = await api.account()
    cases = [
        order_body(items=[]),
        order_body(items=[{"sku": "A", "quantity": 0, "unit_price": "1"}]),
        order_body(items=[{"sku": "A", "quantity": 1, "unit_price": "-0.01"}]),
        order_body(items=[{"sku": "A", "quantity": 1, "unit_price": "1.00001"}]),
        order_body(items=[{"sku": "A", "quantity": 1, "unit_price": "NaN"}]),
        order_body(items=[{"sku": "", "quantity": 1, "unit_price": "1"}]),
        order_body(currency="eur"),
        order_body(currency="EURO"),
        {**order_body(), "total": "0.01"},
    ]
    for body in cases:
        problem = assert_problem(
            await api.create_order(account.token, body), 422, "validation_error"
        )
        assert problem["errors"], body
    listed = await api.list_orders(account.token)
    assert listed.json()["items"] == []  # nothing half-written


async def test_create_order_needs_a_token(api: Api) -> None:
    response = await api.orders.post("/orders", json=order_body())
    assert_problem(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_same_idempotency_key_and_body_replays_one_order(api: Api) -> None:
    account = await api.account()
    first = await api.create_order(account.token, key="key-1")
    again = await api.create_order(account.token, key="key-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    listed = await api.list_orders(account.token)
    assert [o["id"] for o in listed.json()["items"]] == [first.json()["id"]]


async def test_same_idempotency_key_with_another_body_is_422(api: Api) -> None:
    account = await api.account()
    assert (await api.create_order(account.token, key="key-2")).status_code == 201
    other = order_body(items=[{"sku": "OTHER", "quantity": 1, "unit_price": "1"}])
    assert_problem(
        await api.create_order(account.token, other, key="key-2"), 422, "idempotency_key_reused"
    )


async def test_idempotency_keys_are_scoped_to_the_user(api: Api) -> None:
    alice, bob = await api.account(), await api.account()
    a = await api.create_order(alice.token, key="shared-key")
    b = await api.create_order(bob.token, order_body(currency="GBP"), key="shared-key")
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    assert b.json()["user_id"] == bob.id


async def test_concurrent_retries_with_one_key_make_one_order(api: Api) -> None:
    account = await api.account()
    responses = await asyncio.gather(
        *(api.create_order(account.token, key="burst") for _ in range(8))
    )
    created = [r for r in responses if r.status_code == 201]
    in_flight = [r for r in responses if r.status_code == 409]
    assert len(created) + len(in_flight) == 8, [r.text for r in responses]
    assert created, "at least the first request succeeds"
    assert {r.json()["id"] for r in created} == {created[0].json()["id"]}
    for response in in_flight:
        assert_problem(response, 409, "idempotency_key_in_use")
    listed = await api.list_orders(account.token)
    assert len(listed.json()["items"]) == 1


async def test_list_is_newest_first_and_paginated(api: Api) -> None:
    account = await api.account()
    ids = [(await api.create_order(account.token)).json()["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.list_orders(account.token, **params)).json()
        seen += [o["id"] for o in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert pages == 3


async def test_list_rejects_bad_limits_and_cursors(api: Api) -> None:
    account = await api.account()
    for limit in (0, 101, "x"):
        assert_problem(await api.list_orders(account.token, limit=limit), 422, "validation_error")
    assert_problem(await api.list_orders(account.token, cursor="garbage!"), 422, "invalid_cursor")


async def test_list_shows_only_my_orders(api: Api) -> None:
    alice, bob = await api.account(), await api.account()
    await api.create_order(alice.token)
    listed = await api.list_orders(bob.token)
    assert listed.status_code == 200
    assert listed.json() == {"items": [], "next_cursor": None}


async def test_get_my_order(api: Api) -> None:
    account = await api.account()
    created = (await api.create_order(account.token)).json()
    response = await api.get_order(account.token, created["id"])
    assert response.status_code == 200
    assert response.json() == created


async def test_someone_elses_order_is_404(api: Api) -> None:
    alice, bob = await api.account(), await api.account()
    order_id = (await api.create_order(alice.token)).json()["id"]
    assert_problem(await api.get_order(bob.token, order_id), 404, "order_not_found")
    assert_problem(await api.cancel_order(bob.token, order_id), 404, "order_not_found")
    assert_problem(await api.get_order(bob.token, str(uuid.uuid4())), 404, "order_not_found")
    assert (await api.get_order(alice.token, order_id)).json()["status"] == "pending"


async def test_order_id_must_be_a_uuid(api: Api) -> None:
    account = await api.account()
    assert_problem(await api.get_order(account.token, "1 OR 1=1"), 422, "validation_error")


async def test_cancel_a_pending_order_once(api: Api) -> None:
    account = await api.account()
    order_id = (await api.create_order(account.token)).json()["id"]
    cancelled = await api.cancel_order(account.token, order_id)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert_problem(await api.cancel_order(account.token, order_id), 409, "order_not_cancellable")
    assert (await api.get_order(account.token, order_id)).json()["status"] == "cancelled"


async def test_deactivated_user_cannot_order_with_an_old_token(api: Api) -> None:
    account = await api.account()
    order_id = (await api.create_order(account.token)).json()["id"]
    assert (await api.deactivate(account.token)).status_code == 204
    for response in (
        await api.create_order(account.token),
        await api.list_orders(account.token),
        await api.get_order(account.token, order_id),
        await api.cancel_order(account.token, order_id),
    ):
        assert_problem(response, 403, "user_not_allowed")
