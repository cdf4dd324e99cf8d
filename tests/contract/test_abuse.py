"""Hostile input, over HTTP: oversized bodies, out-of-bounds parameters, strings that look
like SQL or markup, and other users' orders."""

import base64
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.support.api import Api, assert_problem, order_body, unique_email

MAX_BODY_BYTES = 64 * 1024  # the default MAX_BODY_BYTES
SQL = "'; DROP TABLE customer_order; --"
MARKUP = "<script>alert(1)</script>"
ODD = [SQL, MARKUP, "Robert'); DROP TABLE user_account;--", '" OR "1"="1', "{{7*7}} ${7*7}"]


# --- body size -------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_413(api: Api) -> None:
    account = await api.account()
    huge = {"email": unique_email(), "password": "x" * 20, "full_name": "A" * MAX_BODY_BYTES}
    assert_problem(await api.users.post("/users", json=huge), 413, "payload_too_large")
    items = [{"sku": "S" * 60, "quantity": 1, "unit_price": "1.00"}] * 2000
    response = await api.orders.post(
        "/orders", json={"currency": "EUR", "items": items}, headers=account.auth
    )
    assert_problem(response, 413, "payload_too_large")
    assert (await api.list_orders(account.token)).json()["items"] == []


async def test_a_chunked_body_over_the_limit_is_413_without_content_length(api: Api) -> None:
    account = await api.account()
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"currency": "EUR", "items": ['
        for _ in range(200):
            chunk = b'{"sku": "' + b"S" * 1000 + b'", "quantity": 1, "unit_price": "1"},'
            sent += len(chunk)
            yield chunk
        yield b'{"sku": "X", "quantity": 1, "unit_price": "1"}]}'

    response = await api.orders.post(
        "/orders",
        content=chunks(),
        headers={**account.auth, "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413, "payload_too_large")
    assert (await api.list_orders(account.token)).json()["items"] == []


async def test_a_body_just_under_the_limit_is_read(api: Api) -> None:
    body = {"email": "not-an-email", "password": "x" * 20, "full_name": "A" * 60_000}
    assert_problem(await api.users.post("/users", json=body), 422, "validation_error")


# --- bounds ----------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1e3", "99999999999999999999"])
async def test_list_limit_is_bounded(api: Api, limit: str) -> None:
    account = await api.account()
    body = assert_problem(
        await api.list_orders(account.token, limit=limit), 422, "validation_error"
    )
    assert body["errors"][0]["loc"] == ["query", "limit"]


async def test_list_limit_bounds_are_inclusive(api: Api) -> None:
    account = await api.account()
    for limit in (1, 100):
        assert (await api.list_orders(account.token, limit=limit)).status_code == 200


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"items": []}, ["body", "items"]),
        ({"items": [{"sku": "A", "quantity": 1, "unit_price": "1"}] * 101}, ["body", "items"]),
        ({"items": [{"sku": "S" * 65, "quantity": 1, "unit_price": "1"}]}, ["body", "items", 0]),
        ({"items": [{"sku": "", "quantity": 1, "unit_price": "1"}]}, ["body", "items", 0]),
        ({"items": [{"sku": "A\x00B", "quantity": 1, "unit_price": "1"}]}, ["body", "items", 0]),
        ({"items": [{"sku": "A", "quantity": 0, "unit_price": "1"}]}, ["body", "items", 0]),
        ({"items": [{"sku": "A", "quantity": 10_001, "unit_price": "1"}]}, ["body", "items", 0]),
        ({"items": [{"sku": "A", "quantity": 1, "unit_price": "-0.01"}]}, ["body", "items", 0]),
        ({"items": [{"sku": "A", "quantity": 1, "unit_price": "0.00001"}]}, ["body", "items", 0]),
        ({"items": [{"sku": "A", "quantity": 1, "unit_price": "1e12"}]}, ["body", "items", 0]),
        ({"items": [{"sku": "A", "quantity": 1, "unit_price": "NaN"}]}, ["body", "items", 0]),
        ({"currency": "eur"}, ["body", "currency"]),
        ({"currency": "EURO"}, ["body", "currency"]),
        ({"extra": True}, ["body", "extra"]),
    ],
)
async def test_order_bodies_are_bounded(
    api: Api, change: dict[str, object], where: list[object]
) -> None:
    account = await api.account()
    response = await api.create_order(account.token, order_body(**change))
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["loc"][: len(where)] == where
    assert (await api.list_orders(account.token)).json()["items"] == []


async def test_account_strings_are_bounded(api: Api) -> None:
    too_long_name = await api.register(full_name="N" * 201)
    assert_problem(too_long_name, 422, "validation_error")
    long_email = "a" * 310 + "@example.com"
    assert_problem(await api.register(long_email), 422, "validation_error")
    account = await api.account()
    patch = await api.users.patch("/users/me", json={"full_name": "N" * 201}, headers=account.auth)
    assert_problem(patch, 422, "validation_error")
    login = await api.users.post(
        "/auth/token", data={"username": account.email, "password": "p" * 1025}
    )
    assert_problem(login, 422, "validation_error")


async def test_header_and_cursor_strings_are_bounded(api: Api) -> None:
    account = await api.account()
    long_key = await api.create_order(account.token, key="k" * 256)
    assert_problem(long_key, 422, "validation_error")
    long_cursor = await api.list_orders(account.token, cursor="c" * 201)
    assert_problem(long_cursor, 422, "validation_error")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        base64.urlsafe_b64encode(b"v1|0001-01-01T00:00:00+01:00|" + str(uuid.uuid4()).encode())
        .decode()
        .rstrip("="),
        base64.urlsafe_b64encode(b"v1|2024-01-01T00:00:00|x").decode(),
    ],
)
async def test_a_forged_cursor_is_422_not_500(api: Api, cursor: str) -> None:
    account = await api.account()
    assert_problem(await api.list_orders(account.token, cursor=cursor), 422, "invalid_cursor")


# --- strings that look like code ---------------------------------------------------------


async def test_sql_and_markup_in_an_order_are_stored_and_returned_literally(api: Api) -> None:
    account = await api.account()
    items = [{"sku": s, "quantity": 1, "unit_price": "1.00"} for s in ODD]
    created = await api.create_order(account.token, order_body(items=items))
    assert created.status_code == 201, created.text
    assert created.headers["content-type"] == "application/json"
    read = await api.get_order(account.token, created.json()["id"])
    assert [item["sku"] for item in read.json()["items"]] == ODD
    assert MARKUP in read.text  # JSON, not HTML-escaped: the client decides how to render
    listed = await api.list_orders(account.token)
    assert [item["sku"] for item in listed.json()["items"][0]["items"]] == ODD
    # The table the SQL names is still there, with other users' orders in it.
    other = await api.account()
    assert (await api.create_order(other.token)).status_code == 201


@pytest.mark.parametrize("name", ODD)
async def test_sql_and_markup_in_a_name_are_stored_and_returned_literally(
    api: Api, name: str
) -> None:
    email = unique_email()
    registered = await api.register(email, full_name=name)
    assert registered.status_code == 201, registered.text
    assert registered.json()["full_name"] == name
    token = (await api.login(email)).json()["access_token"]
    assert (await api.me(token)).json()["full_name"] == name
    renamed = await api.users.patch(
        "/users/me", json={"full_name": name + " 2"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert renamed.json()["full_name"] == name + " 2"


async def test_sql_in_the_login_form_is_just_a_wrong_email(api: Api) -> None:
    for username in ("' OR '1'='1", "admin'--", "a@b.c' OR 1=1 --"):
        assert_problem(await api.login(username, "' OR '1'='1"), 401, "invalid_credentials")


# --- other users' orders -----------------------------------------------------------------


async def test_users_cannot_read_cancel_or_list_each_others_orders(api: Api) -> None:
    alice, mallory = await api.account(), await api.account()
    ids = []
    for _ in range(3):
        created = await api.create_order(alice.token)
        assert created.status_code == 201
        ids.append(created.json()["id"])
    mine = await api.create_order(mallory.token)
    candidates = [*ids, *(i.upper() for i in ids), *(str(uuid.uuid4()) for _ in range(5))]
    for order_id in candidates:
        assert_problem(await api.get_order(mallory.token, order_id), 404, "order_not_found")
        assert_problem(await api.cancel_order(mallory.token, order_id), 404, "order_not_found")
    # Alice's cursor, in Mallory's hands, pages through Mallory's orders only.
    page = await api.list_orders(alice.token, limit=1)
    cursor = page.json()["next_cursor"]
    assert cursor
    for params in ({}, {"cursor": cursor}, {"limit": 100}):
        listed = await api.list_orders(mallory.token, **params)
        assert listed.status_code == 200
        assert {o["user_id"] for o in listed.json()["items"]} <= {mallory.id}
        assert not set(ids) & {o["id"] for o in listed.json()["items"]}
    assert [o["id"] for o in (await api.list_orders(mallory.token)).json()["items"]] == [
        mine.json()["id"]
    ]
    # Alice's orders are untouched and still hers.
    for order_id in ids:
        read = await api.get_order(alice.token, order_id)
        assert read.json()["status"] == "pending"
        assert read.json()["user_id"] == alice.id


@pytest.mark.parametrize(
    "order_id", ["1", "not-a-uuid", "' OR '1'='1", "00000000-0000-0000-0000-00000000000g", "%00"]
)
async def test_an_order_id_that_is_not_a_uuid_is_422(api: Api, order_id: str) -> None:
    account = await api.account()
    for response in (
        await api.get_order(account.token, order_id),
        await api.cancel_order(account.token, order_id),
    ):
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"][0]["loc"] == ["path", "order_id"]
