"""Signing-key rotation without downtime, with real processes: two user-service replicas and
an order service, under concurrent load, following the README's procedure ("Sessions and
keys"): add the new key as verify-only, rolling restart; make it the signer, rolling
restart; retire the old one, rolling restart.

Throughout, clients keep refreshing their tokens at either replica and using them on the
order service and on the user service: no answer to a valid token may be a refusal. A token
signed by the retired key, accepted by the order service just before the retirement, is
refused once the JWKS's max-age (short here) has passed.
"""

import asyncio
import contextlib
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from contracts import JWKS_PATH
from devstack.aio import ServerProcess
from tests.support.api import PASSWORD, order_body
from tests.support.deployments import INTERNAL_TOKEN
from tests.support.distributed import DistributedStack, distributed_stack
from user_service.core.auth import signing_key_from_pem

MAX_AGE = 3  # JWKS_MAX_AGE_SECONDS of the user services
WORKERS = 4


def new_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def kid_of(pem: str) -> str:
    return signing_key_from_pem(pem.encode()).kid


@dataclass
class Load:
    """Clients that refresh at a live replica and use each new token at once."""

    stack: DistributedStack
    draining: set[int] = field(default_factory=set)  # replicas no client may pick
    outcomes: Counter[str] = field(default_factory=Counter)
    refusals: list[str] = field(default_factory=list)
    rounds: list[int] = field(default_factory=lambda: [0] * WORKERS)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def live(self) -> list[ServerProcess]:
        return [s for i, s in enumerate(self.stack.user_services) if i not in self.draining]

    async def run(self, worker: int, refresh_token: str, http: httpx.AsyncClient) -> None:
        while not self.stop.is_set():
            users = random.choice(self.live()).url
            try:
                answer = await http.post(
                    f"{users}/auth/token",
                    data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                )
            except httpx.ConnectError:
                # Picked just before it was drained, and not sent: the token is unspent.
                self.outcomes["not connected"] += 1
                continue
            self.record(f"refresh at {users}", answer)
            if answer.status_code != 200:
                return
            tokens = answer.json()
            refresh_token = tokens["refresh_token"]
            auth = {"Authorization": f"Bearer {tokens['access_token']}"}
            checks = [
                await http.post(
                    f"{self.stack.order_service.url}/orders", json=order_body(), headers=auth
                )
            ]
            with contextlib.suppress(httpx.ConnectError):  # drained meanwhile: not a refusal
                me = await http.get(f"{random.choice(self.live()).url}/users/me", headers=auth)
                checks.append(me)
            for check in checks:
                self.record(f"{check.request.method} {check.request.url}", check)
            self.rounds[worker] += 1

    def record(self, what: str, answer: httpx.Response) -> None:
        self.outcomes[str(answer.status_code)] += 1
        if answer.status_code >= 400:
            self.refusals.append(f"{what}: {answer.status_code} {answer.text}")

    async def settle(self) -> None:
        """Until every client has made two rounds from now: none holds an older token."""
        start = list(self.rounds)
        async with asyncio.timeout(60):
            while any(now < then + 2 for now, then in zip(self.rounds, start, strict=True)):
                assert not self.refusals, self.refusals[:5]
                await asyncio.sleep(0.05)


async def sign_up(http: httpx.AsyncClient, users: str) -> str:
    email = f"rotation-{uuid.uuid4().hex[:12]}@example.com"
    registered = await http.post(
        f"{users}/users", json={"email": email, "password": PASSWORD, "full_name": "Rot Ation"}
    )
    assert registered.status_code == 201, registered.text
    logged_in = await http.post(
        f"{users}/auth/token", data={"username": email, "password": PASSWORD}
    )
    assert logged_in.status_code == 200, logged_in.text
    token: str = logged_in.json()["refresh_token"]
    return token


async def rolling_restart(load: Load, **env: str) -> None:
    """One replica at a time: taken out of the clients' rotation, stopped (in-flight requests
    finish), started with the new settings on the same port, put back."""
    for index, service in enumerate(load.stack.user_services):
        load.draining.add(index)
        await asyncio.sleep(0.2)  # requests already sent to it finish
        await service.stop()
        service.env.update(env)
        await service.start()
        load.draining.discard(index)
        await load.stack.wait_for_subscribers()


async def published_kids(http: httpx.AsyncClient, stack: DistributedStack) -> list[set[str]]:
    sets = []
    for service in stack.user_services:
        answer = await http.get(f"{service.url}{JWKS_PATH}")
        assert answer.headers["cache-control"] == f"public, max-age={MAX_AGE}"
        sets.append({key["kid"] for key in answer.json()["keys"]})
    return sets


@contextlib.asynccontextmanager
async def two_replicas(tmp_path: Path, old: str) -> AsyncIterator[DistributedStack]:
    env = {
        "JWT_PRIVATE_KEYS": old,
        "JWKS_MAX_AGE_SECONDS": str(MAX_AGE),
        "LOGIN_MAX_ATTEMPTS_PER_ADDRESS": "1000000",
    }
    async with distributed_stack(
        tmp_path, internal_token=INTERNAL_TOKEN, extra_env=env, user_services=2
    ) as stack:
        yield stack


async def test_keys_rotate_under_load_without_refusing_a_valid_token(tmp_path: Path) -> None:
    old, new = new_pem(), new_pem()
    old_kid, new_kid = kid_of(old), kid_of(new)
    async with two_replicas(tmp_path, old) as stack, httpx.AsyncClient(timeout=10.0) as http:
        refresh_tokens = [await sign_up(http, stack.user_service.url) for _ in range(WORKERS)]
        # A token of the old key that the order service accepts now, kept for the end.
        probe_refresh = await sign_up(http, stack.user_service.url)
        probe = await http.post(
            f"{stack.user_service.url}/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": probe_refresh},
        )
        probe_auth = {"Authorization": f"Bearer {probe.json()['access_token']}"}
        orders = f"{stack.order_service.url}/orders"
        assert (await http.get(orders, headers=probe_auth)).status_code == 200

        load = Load(stack)
        workers = [
            asyncio.create_task(load.run(i, token, http)) for i, token in enumerate(refresh_tokens)
        ]
        try:
            await load.settle()
            # 1. The new key, verify-only: published by every replica, the old one signs.
            await rolling_restart(load, JWT_PRIVATE_KEYS=old + new, JWT_SIGNING_KID=old_kid)
            assert await published_kids(http, stack) == [{old_kid, new_kid}] * 2
            await asyncio.sleep(MAX_AGE)  # every verifier has fetched the new key
            await load.settle()
            # 2. The new key signs; the old one still verifies.
            await rolling_restart(load, JWT_SIGNING_KID=new_kid)
            await load.settle()  # no client holds a token of the old key any more
            # (in production: wait the access-token TTL plus max-age here)
            still = await http.get(orders, headers=probe_auth)
            assert still.status_code == 200, still.text
            # 3. The old key retires.
            await rolling_restart(load, JWT_PRIVATE_KEYS=new, JWT_SIGNING_KID=new_kid)
            assert await published_kids(http, stack) == [{new_kid}] * 2
            await asyncio.sleep(MAX_AGE + 1)
            await load.settle()
        finally:
            load.stop.set()
            await asyncio.gather(*workers)

        print(f"\nrotation under load: answers {dict(load.outcomes)}, rounds {load.rounds}")
        assert not load.refusals, load.refusals[:5]
        assert load.outcomes["200"] + load.outcomes["201"] > 0
        assert min(load.rounds) > 6
        refused = await http.get(orders, headers=probe_auth)
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "invalid_token"
        for service in stack.user_services:
            at_user = await http.get(f"{service.url}/users/me", headers=probe_auth)
            assert at_user.status_code == 401
