"""Sessions over HTTP, on both deployments: refresh tokens (RFC 6749 section 6, RFC 9700),
logout (RFC 7009), and the end of every session at a password change or a deactivation."""

import asyncio
from typing import Any

import httpx

from contracts import JWKS_PATH
from tests.support.api import PASSWORD, Api, assert_problem, order_body, unique_email

NEW_PASSWORD = "another correct horse, battery staple"


async def open_session(api: Api, **form: str) -> tuple[str, dict[str, Any]]:
    """A new account and its login's token answer."""
    email = unique_email()
    assert (await api.register(email)).status_code == 201
    response = await api.users.post(
        "/auth/token", data={"username": email, "password": PASSWORD, **form}
    )
    assert response.status_code == 200, response.text
    return email, response.json()


def assert_invalid_grant(response: httpx.Response) -> None:
    """RFC 6749 section 5.2 inside our problem body."""
    body = assert_problem(response, 400, "invalid_grant")
    assert body["error"] == "invalid_grant"
    assert "access_token" not in body


async def test_a_login_returns_an_opaque_refresh_token(api: Api) -> None:
    _, tokens = await open_session(api)
    assert tokens["token_type"] == "bearer"
    refresh = tokens["refresh_token"]
    assert isinstance(refresh, str)
    assert len(refresh) >= 40
    assert refresh.count(".") == 0  # opaque: not a JWT
    assert refresh != tokens["access_token"]


async def test_a_refresh_returns_new_tokens_and_spends_the_one_presented(api: Api) -> None:
    _, first = await open_session(api)
    refreshed = await api.refresh(first["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.headers["cache-control"] == "no-store"
    second = refreshed.json()
    assert set(second) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (await api.me(second["access_token"])).status_code == 200
    assert (await api.create_order(second["access_token"])).status_code == 201
    # The next refresh takes the new token.
    third = await api.refresh(second["refresh_token"])
    assert third.status_code == 200, third.text


async def test_reuse_of_a_spent_token_revokes_its_whole_family(api: Api) -> None:
    email, first = await open_session(api)
    second = (await api.refresh(first["refresh_token"])).json()
    other_login = (await api.login(email)).json()  # another family of the same user

    assert_invalid_grant(await api.refresh(first["refresh_token"]))
    # The family is gone: its live token too, however often it is tried.
    assert_invalid_grant(await api.refresh(second["refresh_token"]))
    # Another login of the same user is another family: untouched.
    assert (await api.refresh(other_login["refresh_token"])).status_code == 200


async def test_two_concurrent_refreshes_with_one_token_at_most_one_succeeds(api: Api) -> None:
    _, first = await open_session(api)
    answers = await asyncio.gather(*(api.refresh(first["refresh_token"]) for _ in range(6)))
    succeeded = [a for a in answers if a.status_code == 200]
    assert len(succeeded) <= 1
    for answer in answers:
        if answer.status_code != 200:
            assert_invalid_grant(answer)


async def test_unknown_and_malformed_refresh_requests(api: Api) -> None:
    assert_invalid_grant(await api.refresh("not-a-token-this-service-issued"))
    missing = await api.users.post("/auth/token", data={"grant_type": "refresh_token"})
    body = assert_problem(missing, 400, "invalid_request")
    assert body["error"] == "invalid_request"
    no_password = await api.users.post("/auth/token", data={"username": unique_email()})
    assert_problem(no_password, 400, "invalid_request")
    other_grant = await api.users.post(
        "/auth/token", data={"grant_type": "client_credentials", "refresh_token": "x"}
    )
    assert_problem(other_grant, 422, "validation_error")


async def test_a_refresh_token_is_bound_to_its_client(api: Api) -> None:
    _, tokens = await open_session(api, client_id="mobile-app")
    assert_invalid_grant(await api.refresh(tokens["refresh_token"], client_id="web-app"))
    # Refused for the wrong client, still live for its own.
    own = await api.refresh(tokens["refresh_token"], client_id="mobile-app")
    assert own.status_code == 200, own.text


async def test_logout_revokes_the_family_and_answers_200_for_any_token(api: Api) -> None:
    email, first = await open_session(api)
    second = (await api.refresh(first["refresh_token"])).json()
    other_login = (await api.login(email)).json()

    revoked = await api.revoke(second["refresh_token"])
    assert revoked.status_code == 200
    assert revoked.content == b""
    assert_invalid_grant(await api.refresh(second["refresh_token"]))
    assert (await api.refresh(other_login["refresh_token"])).status_code == 200

    for token in (second["refresh_token"], "never-issued", other_login["access_token"]):
        assert (await api.revoke(token)).status_code == 200
    assert_problem(await api.users.post("/auth/revoke", data={}), 422, "validation_error")


async def test_a_password_change_ends_every_session_at_once(api: Api) -> None:
    email, before = await open_session(api)
    old_access = {"Authorization": f"Bearer {before['access_token']}"}
    order_id = (await api.create_order(before["access_token"])).json()["id"]

    changed = await api.users.patch(
        "/users/me",
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
        headers=old_access,
    )
    assert changed.status_code == 200, changed.text
    # Logged in again at once, very likely within the same second as the change: an epoch,
    # not a timestamp, tells the two tokens apart.
    after = (await api.login(email, NEW_PASSWORD)).json()

    for response in [
        await api.users.get("/users/me", headers=old_access),
        await api.users.patch("/users/me", json={"full_name": "Mallory"}, headers=old_access),
        await api.users.delete("/users/me", headers=old_access),
        await api.orders.post("/orders", json=order_body(), headers=old_access),
        await api.orders.get("/orders", headers=old_access),
        await api.orders.get(f"/orders/{order_id}", headers=old_access),
        await api.orders.post(f"/orders/{order_id}/cancel", headers=old_access),
    ]:
        assert_problem(response, 401, "invalid_token")
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert_invalid_grant(await api.refresh(before["refresh_token"]))

    assert (await api.me(after["access_token"])).status_code == 200
    assert (await api.create_order(after["access_token"])).status_code == 201
    assert (await api.refresh(after["refresh_token"])).status_code == 200


async def test_a_name_change_ends_no_session(api: Api) -> None:
    _, tokens = await open_session(api)
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    renamed = await api.users.patch("/users/me", json={"full_name": "Ada King"}, headers=auth)
    assert renamed.status_code == 200
    assert (await api.me(tokens["access_token"])).status_code == 200
    assert (await api.create_order(tokens["access_token"])).status_code == 201
    assert (await api.refresh(tokens["refresh_token"])).status_code == 200


async def test_a_deactivation_ends_refresh_tokens(api: Api) -> None:
    _, tokens = await open_session(api)
    assert (await api.deactivate(tokens["access_token"])).status_code == 204
    assert_invalid_grant(await api.refresh(tokens["refresh_token"]))
    assert_problem(await api.me(tokens["access_token"]), 401, "invalid_token")


async def test_the_key_set_says_how_long_it_may_be_kept(api: Api) -> None:
    response = await api.users.get(JWKS_PATH)
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = response.json()["keys"]
    assert len(keys) >= 1
    assert all("d" not in key for key in keys)
