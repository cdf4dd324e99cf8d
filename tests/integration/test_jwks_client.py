"""The order service's JWKS client against the real user service app (over ASGI)."""

from pathlib import Path

import httpx
import pytest

from contracts import JWKS_PATH
from devstack import free_port
from servicekit.errors import ServiceUnavailable
from servicekit.jwks import JwksKeySource
from tests.support.deployments import single


async def test_keys_are_fetched_once_and_random_kids_cannot_force_refetches(
    tmp_path: Path,
) -> None:
    async with single(tmp_path) as deployment:
        kid = (await deployment.users.get(JWKS_PATH)).json()["keys"][0]["kid"]
        fetches: list[str] = []

        async def count(request: httpx.Request) -> None:
            fetches.append(request.url.path)

        deployment.users.event_hooks["request"].append(count)
        keys = JwksKeySource(deployment.users, JWKS_PATH, cooldown=60)
        assert await keys.get_key(kid) is not None
        assert await keys.get_key(kid) is not None
        for n in range(20):
            assert await keys.get_key(f"forged-{n}") is None
        assert fetches == [JWKS_PATH]  # the first look-up; the forged kids met the cooldown


async def test_an_unreachable_issuer_is_503_not_401(tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{free_port()}", timeout=1) as http:
        keys = JwksKeySource(http, JWKS_PATH, cooldown=60, retry_after_failure=0)
        with pytest.raises(ServiceUnavailable):
            await keys.get_key("any")
