"""Several signing keys: which one signs, what the settings accept, and a verifier that
forgets the tokens of a key withdrawn from its JWKS."""

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from servicekit.jwks import JwksKeySource, max_age_of
from servicekit.settings import load_settings
from servicekit.tokens import StaticKeySource, TokenError, TokenVerifier
from user_service.core.auth import TokenIssuer, key_ring_from_pems, signing_key_from_pem
from user_service.core.config import UserSettings, configured_signing_keys

REQUIRED: dict[str, Any] = {
    "database_url": "sqlite+aiosqlite:///unused.db",
    "internal_api_token": "internal-token-for-tests",
}


def new_pem() -> str:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def kid_of(pem: str) -> str:
    return signing_key_from_pem(pem.encode()).kid


def test_the_first_key_signs_unless_a_kid_is_named() -> None:
    a, b = new_pem(), new_pem()
    ring = key_ring_from_pems(a + b + a)
    assert [key.kid for key in ring.keys] == [kid_of(a), kid_of(b)]
    assert ring.signer.kid == kid_of(a)
    assert key_ring_from_pems(a + b, signing_kid=kid_of(b)).signer.kid == kid_of(b)
    with pytest.raises(ValueError, match="JWT_SIGNING_KID"):
        key_ring_from_pems(a, signing_kid="no-such-kid")


def test_settings_take_both_variables_and_stop_on_a_bad_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b = new_pem(), new_pem()
    settings = UserSettings(**REQUIRED, jwt_private_key=a, jwt_private_keys=b)
    ring = configured_signing_keys(settings)
    assert ring is not None
    assert [key.kid for key in ring.keys] == [kid_of(a), kid_of(b)]
    assert configured_signing_keys(UserSettings(**REQUIRED)) is None
    for bad, words in [
        ({"jwt_private_keys": "not a pem"}, "no PEM block"),
        ({"jwt_private_keys": a, "jwt_signing_kid": "other"}, "JWT_SIGNING_KID"),
        ({"jwt_signing_kid": kid_of(a)}, "no JWT_PRIVATE_KEY"),
    ]:
        with pytest.raises(SystemExit):
            load_settings(UserSettings, **REQUIRED, **bad)
        line = capsys.readouterr().err.strip()
        assert line.startswith("configuration error (UserSettings): ")
        assert words in line
        assert "BEGIN" not in line  # a key is never repeated


def test_max_age_is_read_from_cache_control() -> None:
    assert max_age_of("public, max-age=300") == 300
    assert max_age_of('max-age="5"') == 5
    assert max_age_of("public, s-maxage=10") is None
    assert max_age_of("no-store, max-age=60") is None
    assert max_age_of(None) is None


class Issuer:
    """A JWKS endpoint whose key set and max-age the test changes."""

    def __init__(self, *pems: str) -> None:
        self.pems = list(pems)
        self.fetches = 0
        self.fetched = asyncio.Event()

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        self.fetched.set()
        keys: list[dict[str, Any]] = [
            signing_key_from_pem(p.encode()).public_jwk() for p in self.pems
        ]
        return httpx.Response(
            200, content=json.dumps({"keys": keys}), headers={"Cache-Control": "max-age=1"}
        )

    async def next_fetch(self) -> None:
        self.fetched.clear()
        await asyncio.wait_for(self.fetched.wait(), 10)
        await asyncio.sleep(0)  # the fetch's keys are in place


async def test_keys_are_refetched_on_max_age_and_a_withdrawn_key_takes_its_tokens() -> None:
    old, new = new_pem(), new_pem()
    issuer = Issuer(old)
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(issuer.handle), base_url="http://users"
    ) as http:
        keys = JwksKeySource(http, "/jwks", cooldown=60, min_max_age=1)
        verifier = TokenVerifier(keys, issuer="iss", audience="aud", remember_seconds=3600)
        mint = TokenIssuer(
            signing_key_from_pem(old.encode()), issuer="iss", audience="aud", ttl_seconds=600
        )
        token = mint.issue(uuid.uuid4(), client_id="c", session_epoch=2)
        keys.start()
        try:
            claims = await verifier.verify(token)  # the first fetch
            assert claims.session_epoch == 2
            issuer.pems = [old, new]  # a key added: remembered tokens stay remembered
            await issuer.next_fetch()
            assert await verifier.verify(token) == claims
            generation = keys.generation
            issuer.pems = [new]  # the old key withdrawn, found by the schedule, not a kid
            await issuer.next_fetch()
            assert keys.generation == generation + 1
            with pytest.raises(TokenError, match="unknown kid"):
                await verifier.verify(token)
        finally:
            await keys.close()
        assert issuer.fetches >= 3


@pytest.mark.parametrize("epoch", ["1", -1, 1.5, True, None, [1]])
async def test_a_session_epoch_that_is_not_a_count_is_refused(epoch: object) -> None:
    key = signing_key_from_pem(new_pem().encode())
    verifier = TokenVerifier(
        StaticKeySource({key.kid: key.public_key}), issuer="iss", audience="aud"
    )
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "iss",
        "aud": "aud",
        "sub": str(uuid.uuid4()),
        "jti": "j",
        "iat": now,
        "exp": now + 60,
    }
    headers = {"kid": key.kid, "typ": "at+jwt"}
    without = jwt.encode(claims, key.private_key, algorithm="ES256", headers=headers)
    assert (await verifier.verify(without)).session_epoch == 0
    forged = jwt.encode(
        {**claims, "session_epoch": epoch}, key.private_key, algorithm="ES256", headers=headers
    )
    with pytest.raises(TokenError, match="session_epoch"):
        await verifier.verify(forged)
