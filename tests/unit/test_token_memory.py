"""The token verifier remembers accepted tokens, never past their expiry nor its window."""

import uuid
from pathlib import Path

import jwt
import pytest

from servicekit.tokens import StaticKeySource, TokenError, TokenVerifier
from user_service.core.auth import TokenIssuer, load_or_create_dev_key


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, clock: Clock) -> tuple[TokenIssuer, TokenVerifier, StaticKeySource]:
    key = load_or_create_dev_key(tmp_path)
    issuer = TokenIssuer(key, issuer="iss", audience="aud", ttl_seconds=300)
    keys = StaticKeySource({key.kid: key.public_key})
    verifier = TokenVerifier(keys, issuer="iss", audience="aud", remember_seconds=60, clock=clock)
    return issuer, verifier, keys


async def test_a_remembered_token_is_accepted_without_its_key(tmp_path: Path) -> None:
    clock = Clock(0)
    issuer, verifier, keys = make(tmp_path, clock)
    token = issuer.issue(uuid.uuid4(), client_id="c")
    clock.now = float(issuer_iat(token))
    first = await verifier.verify(token)
    keys._keys.clear()  # only the memory can accept it now
    assert await verifier.verify(token) == first
    clock.now += 61  # past the window: the full check runs again, and fails without the key
    with pytest.raises(TokenError):
        await verifier.verify(token)


async def test_a_remembered_token_expires_with_its_exp(tmp_path: Path) -> None:
    clock = Clock(0)
    issuer, verifier, keys = make(tmp_path, clock)
    verifier._remember_seconds = 10_000
    token = issuer.issue(uuid.uuid4(), client_id="c")
    clock.now = float(issuer_iat(token))
    claims = await verifier.verify(token)
    keys._keys.clear()
    clock.now = claims.expires_at - 1
    assert await verifier.verify(token) == claims
    clock.now = claims.expires_at
    with pytest.raises(TokenError):
        await verifier.verify(token)


async def test_a_rejected_token_is_not_remembered(tmp_path: Path) -> None:
    clock = Clock(0)
    issuer, verifier, _ = make(tmp_path, clock)
    token = issuer.issue(uuid.uuid4(), client_id="c")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(TokenError):
            await verifier.verify(forged)
    assert forged not in verifier._accepted


def issuer_iat(token: str) -> int:
    return int(jwt.decode(token, options={"verify_signature": False})["iat"])


async def test_the_memory_keeps_at_most_remember_max_tokens_the_oldest_going_first(
    tmp_path: Path,
) -> None:
    clock = Clock(0)
    issuer, _, keys = make(tmp_path, clock)
    verifier = TokenVerifier(
        keys, issuer="iss", audience="aud", remember_seconds=60, remember_max=2, clock=clock
    )
    first, second, third = (issuer.issue(uuid.uuid4(), client_id="c") for _ in range(3))
    clock.now = float(issuer_iat(third))
    for token in (first, second, third):
        await verifier.verify(token)
    assert len(verifier._accepted) == 2
    keys._keys.clear()  # only the memory can accept a token now
    await verifier.verify(second)
    await verifier.verify(third)
    with pytest.raises(TokenError):
        await verifier.verify(first)
