"""The user API, over HTTP, the same against every deployment."""

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
    assert PASSWORD not in response.text and "argon2" not in response.text


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
