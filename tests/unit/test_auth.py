"""Password hashing and token signing in the user service's core."""

import time
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from servicekit.tokens import StaticKeySource, TokenError, TokenVerifier
from user_service.core.auth import (
    PasswordHasher,
    TokenIssuer,
    load_or_create_dev_key,
    normalize_password,
    thumbprint,
)


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(memory_kib=19 * 1024, time_cost=2, max_concurrency=1)


async def test_argon2id_with_owasp_parameters(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash("correct horse battery staple")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await hasher.verify("correct horse battery staple", hashed) == (True, None)
    assert (await hasher.verify("correct horse battery stapl", hashed))[0] is False


async def test_passwords_are_nfkc_normalised(hasher: PasswordHasher) -> None:
    composed, decomposed = (
        "caf\u00e9 au lait, s'il vous pla\u00eet",
        "cafe\u0301 au lait, s'il vous plai\u0302t",
    )
    assert normalize_password(decomposed) == composed
    hashed = await hasher.hash(composed)
    assert (await hasher.verify(decomposed, hashed))[0] is True


async def test_weaker_stored_hashes_are_upgraded(hasher: PasswordHasher) -> None:
    weak = PasswordHasher(memory_kib=19 * 1024, time_cost=3, max_concurrency=1)
    old = await weak.hash("a long enough password")
    matches, new_hash = await hasher.verify("a long enough password", old)
    assert matches is True
    assert new_hash is not None
    assert "t=2" in new_hash


def test_dev_key_is_made_once_and_reused(tmp_path: Path) -> None:
    first = load_or_create_dev_key(tmp_path)
    second = load_or_create_dev_key(tmp_path)
    assert first.kid == second.kid == thumbprint(first.public_key)
    assert (tmp_path / "jwt-signing-key.pem").stat().st_mode & 0o777 == 0o600


async def test_issued_tokens_verify_and_carry_the_required_claims(tmp_path: Path) -> None:
    key = load_or_create_dev_key(tmp_path)
    issuer = TokenIssuer(key, issuer="iss", audience="aud", ttl_seconds=60)
    verifier = TokenVerifier(
        StaticKeySource({key.kid: key.public_key}), issuer="iss", audience="aud"
    )
    subject = uuid.uuid4()
    token = issuer.issue(subject, client_id="cli")
    claims = await verifier.verify(token)
    assert claims.subject == str(subject)
    assert claims.expires_at - claims.issued_at == 60
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": key.kid, "typ": "at+jwt"}

    other_audience = TokenVerifier(
        StaticKeySource({key.kid: key.public_key}), issuer="iss", audience="elsewhere"
    )
    with pytest.raises(TokenError):
        await other_audience.verify(token)


async def test_a_token_signed_by_another_key_with_our_kid_is_refused(tmp_path: Path) -> None:
    key = load_or_create_dev_key(tmp_path)
    verifier = TokenVerifier(
        StaticKeySource({key.kid: key.public_key}), issuer="iss", audience="aud"
    )
    now = int(time.time())
    forged = jwt.encode(
        {"iss": "iss", "aud": "aud", "sub": "x", "iat": now, "exp": now + 60, "jti": "j"},
        ec.generate_private_key(ec.SECP256R1()),
        algorithm="ES256",
        headers={"kid": key.kid, "typ": "at+jwt"},
    )
    with pytest.raises(TokenError):
        await verifier.verify(forged)
