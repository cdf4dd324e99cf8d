"""Browsers on the configured origins may log in and read the token keys from another origin
(the order service's docs log in at the user service); other origins are refused. The same
against every deployment: both run with the development default origins."""

import httpx

from tests.support.api import PASSWORD, Api, assert_problem, unique_email

ALLOWED = "http://127.0.0.1:8002"  # a development default of CORS_ALLOW_ORIGINS
OTHER = "http://evil.example:8002"


def preflight(origin: str, method: str, headers: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def test_a_login_preflight_from_an_allowed_origin_is_answered(api: Api) -> None:
    # What Swagger UI's "Authorize" asks before it posts the password form.
    response = await api.users.options(
        "/auth/token", headers=preflight(ALLOWED, "POST", "x-requested-with")
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "x-requested-with" in allowed_headers
    assert "authorization" in allowed_headers
    assert "access-control-allow-credentials" not in response.headers


async def test_a_login_from_an_allowed_origin_can_be_read_by_the_page(api: Api) -> None:
    email = unique_email()
    assert (await api.register(email)).status_code == 201
    form = {"username": email, "password": PASSWORD, "grant_type": "password"}
    response = await api.users.post("/auth/token", data=form, headers={"Origin": ALLOWED})
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "origin" in response.headers["vary"].lower()
    assert response.json()["token_type"] == "bearer"


async def test_a_failed_login_is_readable_too_with_its_problem_body(api: Api) -> None:
    form = {"username": unique_email(), "password": PASSWORD}
    response = await api.users.post("/auth/token", data=form, headers={"Origin": ALLOWED})
    assert_problem(response, 401, "invalid_credentials")
    assert response.headers["access-control-allow-origin"] == ALLOWED


async def test_the_token_keys_are_readable_from_an_allowed_origin(api: Api) -> None:
    response = await api.users.get("/.well-known/jwks.json", headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.json()["keys"]


async def test_a_preflight_from_another_origin_is_refused_as_a_problem(api: Api) -> None:
    response = await api.users.options(
        "/auth/token", headers=preflight(OTHER, "POST", "x-requested-with")
    )
    body = assert_problem(response, 400, "cors_not_allowed")
    assert "origin" in body["detail"]
    assert "access-control-allow-origin" not in response.headers


async def test_another_origin_gets_no_permission_to_read(api: Api) -> None:
    response = await api.users.get("/.well-known/jwks.json", headers={"Origin": OTHER})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_a_preflight_for_a_header_not_allowed_is_refused(api: Api) -> None:
    response = await api.users.options(
        "/auth/token", headers=preflight(ALLOWED, "POST", "x-not-allowed")
    )
    body = assert_problem(response, 400, "cors_not_allowed")
    assert "headers" in body["detail"]


async def test_a_request_without_origin_gets_no_cors_headers(api: Api) -> None:
    response: httpx.Response = await api.users.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert not [name for name in response.headers if name.startswith("access-control-")]
