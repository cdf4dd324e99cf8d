"""The user API, over HTTP, the same against every deployment."""

import jwt

from tests.support.api import PASSWORD, Api, assert_problem, unique_email


async def test_register_returns_the_user_without_secrets(api: Api) -> None:
    email = unique_email()
    response = await api.register(email.upper(), full_name="  Ada Lovelace ")
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == email
    assert body["full_name"] == "Ada Lovelace"
    assert body["is_active"] is True
    assert set(body) == {"id", "email", "full_name", "is_active", "created_at"}
    assert PASSWORD not in response.text
    assert "argon2" not in response.text


async def test_register_twice_is_409_whatever_the_case(api: Api) -> None:
    email = unique_email()
    assert (await api.register(email)).status_code == 201
    assert_problem(await api.register(email.upper()), 409, "email_taken")


async def test_register_rejects_an_invalid_email(api: Api) -> None:
    body = assert_problem(await api.register("not-an-email"), 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "email"]
    assert "input" not in body["errors"][0]


async def test_register_rejects_a_password_below_the_minimum(api: Api) -> None:
    body = assert_problem(await api.register(password="x" * 14), 422, "password_too_short")
    assert "15" in body["detail"]
    assert (await api.register(password="x" * 15)).status_code == 201


async def test_register_rejects_a_password_over_128_characters(api: Api) -> None:
    body = assert_problem(await api.register(password="x" * 129), 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "password"]
    assert "x" * 129 not in str(body)
    assert (await api.register(password="x" * 128)).status_code == 201


async def test_login_returns_a_bearer_token(api: Api) -> None:
    email = unique_email()
    await api.register(email)
    response = await api.login(email.upper())
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["access_token"].count(".") == 2
    assert response.headers["cache-control"] == "no-store"


async def test_login_failures_are_identical(api: Api) -> None:
    email = unique_email()
    await api.register(email)
    unknown = await api.login(unique_email())
    wrong = await api.login(email, PASSWORD + "!")
    for response in (unknown, wrong):
        assert_problem(response, 401, "invalid_credentials")
        assert response.headers["www-authenticate"] == "Bearer"
    assert unknown.json() == wrong.json()


async def test_me_needs_a_token(api: Api) -> None:
    response = await api.users.get("/users/me")
    assert_problem(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_me_rejects_a_bad_token(api: Api) -> None:
    response = await api.me("not.a.token")
    assert_problem(response, 401, "invalid_token")
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_me_returns_my_account(api: Api) -> None:
    account = await api.account()
    response = await api.me(account.token)
    assert response.status_code == 200
    assert response.json()["id"] == account.id
    assert response.json()["email"] == account.email


async def test_change_my_full_name(api: Api) -> None:
    account = await api.account()
    response = await api.users.patch(
        "/users/me", json={"full_name": "Augusta Ada King"}, headers=account.auth
    )
    assert response.status_code == 200
    assert response.json()["full_name"] == "Augusta Ada King"
    assert (await api.me(account.token)).json()["full_name"] == "Augusta Ada King"


async def test_change_my_password_needs_the_current_one(api: Api) -> None:
    account = await api.account()
    new = "a brand new passphrase"
    wrong = await api.users.patch(
        "/users/me", json={"password": new, "current_password": "nope"}, headers=account.auth
    )
    assert_problem(wrong, 403, "wrong_current_password")
    missing = await api.users.patch("/users/me", json={"password": new}, headers=account.auth)
    assert_problem(missing, 422, "validation_error")
    short = await api.users.patch(
        "/users/me", json={"password": "short", "current_password": PASSWORD}, headers=account.auth
    )
    assert_problem(short, 422, "password_too_short")
    ok = await api.users.patch(
        "/users/me", json={"password": new, "current_password": PASSWORD}, headers=account.auth
    )
    assert ok.status_code == 200
    assert_problem(await api.login(account.email), 401, "invalid_credentials")
    assert (await api.login(account.email, new)).status_code == 200


async def test_patch_needs_something_to_change(api: Api) -> None:
    account = await api.account()
    response = await api.users.patch("/users/me", json={}, headers=account.auth)
    assert_problem(response, 422, "validation_error")
    unknown = await api.users.patch("/users/me", json={"is_active": False}, headers=account.auth)
    assert_problem(unknown, 422, "validation_error")


async def test_deactivate_me(api: Api) -> None:
    account = await api.account()
    response = await api.deactivate(account.token)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await api.login(account.email), 401, "invalid_credentials")
    assert_problem(await api.me(account.token), 401, "invalid_token")
    assert_problem(await api.deactivate(account.token), 401, "invalid_token")


async def test_jwks_publishes_one_ec_public_key(api: Api) -> None:
    response = await api.users.get("/.well-known/jwks.json")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert key["kty"] == "EC"
    assert key["crv"] == "P-256"
    assert key["alg"] == "ES256"
    assert "d" not in key
    account = await api.account()
    header = jwt.get_unverified_header(account.token)
    assert header == {"alg": "ES256", "kid": key["kid"], "typ": "at+jwt"}
    claims = jwt.decode(
        account.token,
        jwt.PyJWK.from_dict(key).key,
        algorithms=["ES256"],
        audience="user-order-api",
        issuer="user-service",
    )
    assert claims["sub"] == account.id
    assert {"iss", "aud", "sub", "exp", "iat", "jti"} <= set(claims)


async def test_internal_verification_needs_the_service_credential(api: Api) -> None:
    account = await api.account()
    path = f"/internal/users/{account.id}/verification"
    assert_problem(await api.users.get(path), 401, "invalid_service_credential")
    user_token = await api.users.get(path, headers=account.auth)
    assert_problem(user_token, 401, "invalid_service_credential")
    internal = {"Authorization": f"Bearer {api.deployment.internal_token}"}
    response = await api.users.get(path, headers=internal)
    assert response.status_code == 200
    assert response.json() == {
        "user_id": account.id,
        "exists": True,
        "active": True,
        "session_epoch": 0,
    }
    unknown = await api.users.get(
        "/internal/users/00000000-0000-4000-8000-000000000000/verification", headers=internal
    )
    assert unknown.json()["exists"] is False


async def test_health_answers(api: Api) -> None:
    for client in (api.users, api.orders):
        response = await client.get("/health")
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
        ready = await client.get("/ready")
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"].values()) == {"ok"}


async def test_unknown_route_is_a_json_404(api: Api) -> None:
    assert_problem(await api.users.get("/nope"), 404, "not_found")
