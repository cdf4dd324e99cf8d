"""Login rate limits, over HTTP, on deployments built with small limits.

Each test gets its own deployment (the per-address counter would otherwise be shared by the
whole suite, which logs in from one address), built with the limits as settings overrides:
in-process counters in the single process, Redis ones in the distributed deployment.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.api import PASSWORD, Api, assert_problem, unique_email
from tests.support.deployments import DEPLOYMENTS

ACCOUNT_LIMIT = 3
ADDRESS_LIMIT = 12


@pytest.fixture(params=sorted(DEPLOYMENTS))
async def limited(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    factory = DEPLOYMENTS[request.param]
    overrides = {
        "login_max_failures_per_account": ACCOUNT_LIMIT,
        "login_window_seconds": 900,
        "login_max_attempts_per_address": ADDRESS_LIMIT,
        "login_address_window_seconds": 60,
    }
    async with factory(tmp_path, **overrides) as deployment:
        yield Api(deployment)


async def test_an_account_is_locked_after_the_failures_allowed(limited: Api) -> None:
    email = unique_email()
    assert (await limited.register(email)).status_code == 201
    # Every spelling of the address counts for the one account: case, spaces, fullwidth (NFKC).
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in email)
    spellings = [email.upper(), f"  {email} ", fullwidth]
    assert len(spellings) == ACCOUNT_LIMIT
    for typed in spellings:
        assert_problem(await limited.login(typed, "wrong password!"), 401, "invalid_credentials")
    for password in ("wrong password!", PASSWORD):
        refused = await limited.login(email, password)
        body = assert_problem(refused, 429, "too_many_requests")
        assert int(refused.headers["retry-after"]) >= 1
        assert int(refused.headers["retry-after"]) <= 900
        assert "access_token" not in body
    # Another spelling of the same email is the same account.
    assert_problem(await limited.login(email.upper(), PASSWORD), 429, "too_many_requests")


async def test_another_account_logs_in_during_someone_elses_failures(limited: Api) -> None:
    victim, bystander = unique_email(), unique_email()
    assert (await limited.register(victim)).status_code == 201
    assert (await limited.register(bystander)).status_code == 201
    for _ in range(ACCOUNT_LIMIT + 2):
        await limited.login(victim, "wrong password!")
    assert_problem(await limited.login(victim, PASSWORD), 429, "too_many_requests")
    ok = await limited.login(bystander)
    assert ok.status_code == 200, ok.text
    assert_problem(await limited.login(bystander, "nope nope nope"), 401, "invalid_credentials")


async def test_successful_logins_do_not_count_toward_the_account_limit(limited: Api) -> None:
    email = unique_email()
    assert (await limited.register(email)).status_code == 201
    for _ in range(ACCOUNT_LIMIT + 2):
        assert (await limited.login(email)).status_code == 200


async def test_an_unknown_email_is_limited_like_a_known_one(limited: Api) -> None:
    ghost = unique_email()
    for _ in range(ACCOUNT_LIMIT):
        assert_problem(await limited.login(ghost, "wrong password!"), 401, "invalid_credentials")
    assert_problem(await limited.login(ghost, "wrong password!"), 429, "too_many_requests")


async def test_an_address_is_limited_across_accounts_and_outcomes(limited: Api) -> None:
    email = unique_email()
    assert (await limited.register(email)).status_code == 201
    outcomes = []
    for i in range(ADDRESS_LIMIT):
        # Successes count too; failures spread over many accounts stay under each one's limit.
        response = await (limited.login(email) if i % 2 else limited.login(unique_email(), "x"))
        outcomes.append(response.status_code)
    assert sorted(set(outcomes)) == [200, 401]
    refused = await limited.login(email)
    assert_problem(refused, 429, "too_many_requests")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Registration is not a login: it is not limited by this counter.
    assert (await limited.register()).status_code == 201


async def refresh(api: Api, token: str) -> int:
    answer = await api.users.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": token}
    )
    return answer.status_code


async def test_refreshes_count_against_the_address_as_logins_do(limited: Api) -> None:
    email = unique_email()
    assert (await limited.register(email)).status_code == 201
    token = (await limited.login(email)).json()["refresh_token"]
    outcomes = []
    for _ in range(ADDRESS_LIMIT - 1):  # the login above was one attempt
        outcomes.append(await refresh(limited, "never-issued"))
    assert set(outcomes) == {400}
    refused = await limited.users.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": token}
    )
    assert_problem(refused, 429, "too_many_requests")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert_problem(await limited.login(email), 429, "too_many_requests")


async def test_failed_refreshes_of_an_account_count_as_its_failed_logins(limited: Api) -> None:
    email = unique_email()
    assert (await limited.register(email)).status_code == 201
    spent = (await limited.login(email)).json()["refresh_token"]
    assert await refresh(limited, spent) == 200
    for _ in range(ACCOUNT_LIMIT):
        assert await refresh(limited, spent) == 400  # reuse, then a revoked family
    assert_problem(await limited.login(email), 429, "too_many_requests")
