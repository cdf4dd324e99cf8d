"""HTTP itself, against every deployment: header bounds, repeated headers, HEAD, Allow, and no
redirect built from the Host header."""

import uuid

import pytest

from tests.support.api import Account, Api, assert_problem, order_body


async def test_a_1_mib_header_is_431(api: Api) -> None:
    padding = {"X-Padding": "p" * (1 << 20)}
    for client, path in ((api.users, "/health"), (api.orders, "/orders")):
        body = assert_problem(
            await client.get(path, headers=padding), 431, "request_header_fields_too_large"
        )
        assert "at most 16384" in body["detail"]


async def test_headers_under_the_bound_are_served(api: Api, shared_account: Account) -> None:
    account = shared_account
    headers = {**account.auth, "X-Padding": "p" * 12_000}
    assert (await api.orders.get("/orders", headers=headers)).status_code == 200


async def test_two_idempotency_keys_are_400_and_create_nothing(
    api: Api, shared_account: Account
) -> None:
    account = shared_account
    prefix = uuid.uuid4().hex
    before = (await api.list_orders(account.token)).json()["items"]
    response = await api.orders.post(
        "/orders",
        json=order_body(),
        headers=[
            ("Authorization", f"Bearer {account.token}"),
            ("Idempotency-Key", f"{prefix}-one"),
            ("Idempotency-Key", f"{prefix}-two"),
        ],
    )
    body = assert_problem(response, 400, "duplicate_header")
    assert body["detail"] == "The header Idempotency-Key must be sent once."
    assert (await api.list_orders(account.token)).json()["items"] == before
    # Each key alone is still free.
    for key in (f"{prefix}-one", f"{prefix}-two"):
        assert (await api.create_order(account.token, key=key)).status_code == 201


@pytest.mark.parametrize("header", ["Content-Type", "X-Request-ID"])
async def test_other_deciding_headers_sent_twice_are_400(api: Api, header: str) -> None:
    response = await api.users.post(
        "/users",
        content=b"{}",
        headers=[(header, "application/json"), (header, "text/plain")],
    )
    body = assert_problem(response, 400, "duplicate_header")
    assert header.lower() in body["detail"].lower()


async def test_head_is_served_wherever_get_is(api: Api, shared_account: Account) -> None:
    account = shared_account
    order = (await api.create_order(account.token)).json()
    for client, path, auth in (
        (api.users, "/health", {}),
        (api.orders, "/health", {}),
        (api.users, "/users/me", account.auth),
        (api.orders, "/orders", account.auth),
        (api.orders, f"/orders/{order['id']}", account.auth),
        (api.users, "/.well-known/jwks.json", {}),
    ):
        got = await client.get(path, headers=auth)
        head = await client.head(path, headers=auth)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path
        assert head.headers["content-length"] == got.headers["content-length"], path


async def test_head_without_a_token_is_401_like_get(api: Api) -> None:
    head = await api.orders.head("/orders")
    assert head.status_code == 401
    assert head.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("side", "method", "path", "allow"),
    [
        ("users", "OPTIONS", "/users/me", "DELETE, GET, HEAD, PATCH"),
        ("users", "PUT", "/users/me", "DELETE, GET, HEAD, PATCH"),
        ("users", "GET", "/users", "POST"),
        ("users", "GET", "/auth/token", "POST"),
        ("orders", "OPTIONS", "/orders", "GET, HEAD, POST"),
        ("orders", "DELETE", "/orders", "GET, HEAD, POST"),
        ("orders", "GET", "/orders/00000000-0000-0000-0000-000000000000/cancel", "POST"),
        ("orders", "POST", "/health", "GET, HEAD"),
    ],
)
async def test_405_lists_every_method_of_the_path(
    api: Api, side: str, method: str, path: str, allow: str
) -> None:
    client = api.users if side == "users" else api.orders
    response = await client.request(method, path)
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allow


@pytest.mark.parametrize("path", ["/orders/", "/users/me/", "/health/", "//orders"])
async def test_no_redirect_is_built_from_the_host_header(
    api: Api, shared_account: Account, path: str
) -> None:
    account = shared_account
    client = api.users if path.startswith("/users") else api.orders
    response = await client.get(
        path, headers={**account.auth, "Host": "evil.example"}, follow_redirects=False
    )
    assert_problem(response, 404, "not_found")
    assert "location" not in response.headers
