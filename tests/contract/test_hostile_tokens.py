"""Hostile tokens, over HTTP, against every endpoint that needs one.

Each forged token names a real user (the victim) and would act on the victim's real order,
so that a token wrongly accepted shows up as a 200, not as a 404. Tokens that test a single
claim are signed with the service's own key (when the deployment exposes it), and a control
test proves that the same forging path, with sound claims, is accepted.
"""

import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support import forge
from tests.support.api import Account, Api, assert_problem, order_body
from tests.support.deployments import Deployment

ENDPOINTS: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("users", "GET", "/users/me", None),
    ("users", "PATCH", "/users/me", {"full_name": "Mallory"}),
    ("users", "DELETE", "/users/me", None),
    ("orders", "POST", "/orders", order_body()),
    ("orders", "GET", "/orders", None),
    ("orders", "GET", "/orders/{order_id}", None),
    ("orders", "POST", "/orders/{order_id}/cancel", None),
]


@dataclass
class Target:
    api: Api
    victim: Account
    order_id: str
    issuer: str
    audience: str
    jwk: dict[str, Any]
    our_key: ec.EllipticCurvePrivateKey

    @property
    def kid(self) -> str:
        return str(self.jwk["kid"])

    def claims(self, **changes: Any) -> dict[str, Any]:
        claims = forge.access_claims(
            issuer=self.issuer, audience=self.audience, subject=self.victim.id
        )
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not DROP}

    def header(self, **changes: Any) -> dict[str, Any]:
        header = {"alg": "ES256", "typ": "at+jwt", "kid": self.kid, **changes}
        return {k: v for k, v in header.items() if v is not DROP}

    def ours(self, header: dict[str, Any], claims: dict[str, Any]) -> str:
        return forge.signed_es256(self.our_key, header, claims)


DROP = object()


@pytest.fixture(scope="module")
async def target(deployment: Deployment) -> Target:
    api = Api(deployment)
    victim = await api.account()
    created = await api.create_order(victim.token)
    assert created.status_code == 201, created.text
    jwks = (await api.users.get("/.well-known/jwks.json")).json()
    header, claims, _ = forge.unverified_parts(victim.token)
    [jwk] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    # Every deployment exposes its signing key, so claims can be changed one at a time.
    our_key = serialization.load_pem_private_key(deployment.extra["signing_key_pem"], password=None)
    assert isinstance(our_key, ec.EllipticCurvePrivateKey)
    return Target(
        api=api,
        victim=victim,
        order_id=created.json()["id"],
        issuer=claims["iss"],
        audience=claims["aud"],
        jwk=jwk,
        our_key=our_key,
    )


async def call_every_endpoint(
    target: Target, headers: list[tuple[str, str]]
) -> list[tuple[str, httpx.Response]]:
    results = []
    for side, method, path, body in ENDPOINTS:
        client = target.api.users if side == "users" else target.api.orders
        url = path.format(order_id=target.order_id)
        response = await client.request(method, url, json=body, headers=headers)
        results.append((f"{method} {url}", response))
    return results


async def assert_victim_untouched(target: Target) -> None:
    me = await target.api.me(target.victim.token)
    assert me.status_code == 200, me.text
    assert me.json()["full_name"] == "Ada Lovelace"
    order = await target.api.get_order(target.victim.token, target.order_id)
    assert order.json()["status"] == "pending"
    listed = await target.api.list_orders(target.victim.token)
    assert [o["id"] for o in listed.json()["items"]] == [target.order_id]


def _attacker_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, str]:
    return forge.public_jwk(key.public_key(), kid)


def _pem(target: Target) -> bytes:
    return forge.pem_of(forge.public_key_of(target.jwk))


def _tampered(target: Target, **changes: Any) -> str:
    header, claims, signature = forge.unverified_parts(target.victim.token)
    claims.update(changes)
    return f"{forge.b64url_json(header)}.{forge.b64url_json(claims)}.{signature}"


def _rekeyed(target: Target) -> str:
    header, claims, signature = forge.unverified_parts(target.victim.token)
    header["kid"] = secrets.token_urlsafe(16)
    return f"{forge.b64url_json(header)}.{forge.b64url_json(claims)}.{signature}"


def _stripped(target: Target) -> str:
    return target.victim.token.rsplit(".", 1)[0] + "."


attacker = forge.new_key()
Forger = Callable[[Target], str]

# Tokens that need no key of ours: their signature (or its absence) is what is wrong.
UNSIGNED_OR_FOREIGN: dict[str, Forger] = {
    **{
        f"alg {alg}": (lambda t, alg=alg: forge.unsigned(t.header(alg=alg), t.claims()))  # type: ignore[misc]
        for alg in ("none", "None", "NONE", "nOnE")
    },
    "alg none without kid": lambda t: forge.unsigned(t.header(alg="none", kid=DROP), t.claims()),
    "HS256 keyed with the public key PEM": lambda t: forge.signed_hs256(
        _pem(t), t.header(alg="HS256"), t.claims()
    ),
    "HS256 keyed with the PEM, no newline": lambda t: forge.signed_hs256(
        _pem(t).strip(), t.header(alg="HS256"), t.claims()
    ),
    "HS256 keyed with the JWK JSON": lambda t: forge.signed_hs256(
        json.dumps(t.jwk).encode(), t.header(alg="HS256"), t.claims()
    ),
    "HS256 keyed with the compact JWK JSON": lambda t: forge.signed_hs256(
        json.dumps(t.jwk, separators=(",", ":"), sort_keys=True).encode(),
        t.header(alg="HS256"),
        t.claims(),
    ),
    "ES256 by another key, our kid": lambda t: forge.signed_es256(attacker, t.header(), t.claims()),
    "ES256 by another key, random kid": lambda t: forge.signed_es256(
        attacker, t.header(kid=uuid.uuid4().hex), t.claims()
    ),
    "ES256 by another key, no kid": lambda t: forge.signed_es256(
        attacker, t.header(kid=DROP), t.claims()
    ),
    "another key embedded as jwk, our kid": lambda t: forge.signed_es256(
        attacker, t.header(jwk=_attacker_jwk(attacker, t.kid)), t.claims()
    ),
    "another key embedded as jwk, its own kid": lambda t: forge.signed_es256(
        attacker, t.header(kid="attacker", jwk=_attacker_jwk(attacker, "attacker")), t.claims()
    ),
    "another key behind jku": lambda t: forge.signed_es256(
        attacker,
        t.header(kid="attacker", jku="http://attacker.invalid/.well-known/jwks.json"),
        t.claims(),
    ),
    "another key behind x5u": lambda t: forge.signed_es256(
        attacker, t.header(kid="attacker", x5u="http://attacker.invalid/cert.pem"), t.claims()
    ),
    "real token, kid changed to an unknown one": _rekeyed,
    "real token, signature stripped": _stripped,
    "real token, payload names another subject": lambda t: _tampered(t, sub=str(uuid.uuid4())),
    "real token, payload lifetime extended": lambda t: _tampered(
        t, exp=int(time.time()) + 86_400 * 365
    ),
    "real token, payload audience changed": lambda t: _tampered(t, aud="somebody-else"),
    "not a JWT: a word": lambda t: "hello",
    "not a JWT: three dots": lambda t: "a.b.c",
    "not a JWT: empty segments": lambda t: "..",
    "not a JWT: base64 junk": lambda t: "eyJ.eyJ.eyJ",
    "not a JWT: JSON": lambda t: json.dumps(t.claims()),
    "not a JWT: too long": lambda t: t.victim.token + "A" * 5000,
    "JWE-shaped: five segments": lambda t: "eyJhbGciOiJkaXIifQ....x",
}

# Tokens signed with our own key: only the named claim or header member is wrong.
SIGNED_BY_US: dict[str, Forger] = {
    "expired": lambda t: t.ours(
        t.header(), t.claims(iat=int(time.time()) - 3600, exp=int(time.time()) - 60)
    ),
    "nbf in the future": lambda t: t.ours(t.header(), t.claims(nbf=int(time.time()) + 600)),
    "iat in the future": lambda t: t.ours(
        t.header(), t.claims(iat=int(time.time()) + 600, exp=int(time.time()) + 900)
    ),
    "wrong iss": lambda t: t.ours(t.header(), t.claims(iss="https://attacker.invalid")),
    "wrong aud": lambda t: t.ours(t.header(), t.claims(aud="another-api")),
    "aud list without ours": lambda t: t.ours(t.header(), t.claims(aud=["a", "b"])),
    **{
        f"missing {claim}": (lambda t, claim=claim: t.ours(t.header(), t.claims(**{claim: DROP})))  # type: ignore[misc]
        for claim in ("iss", "aud", "sub", "exp", "iat", "jti")
    },
    "sub not a user id": lambda t: t.ours(t.header(), t.claims(sub="admin")),
    "sub a number": lambda t: t.ours(t.header(), t.claims(sub=12345)),
    "exp a string": lambda t: t.ours(t.header(), t.claims(exp="tomorrow")),
    "typ JWT": lambda t: t.ours(t.header(typ="JWT"), t.claims()),
    "typ missing": lambda t: t.ours(t.header(typ=DROP), t.claims()),
    "typ id token style": lambda t: t.ours(t.header(typ="id+jwt"), t.claims()),
    "kid missing": lambda t: t.ours(t.header(kid=DROP), t.claims()),
    "alg ES384 claimed": lambda t: t.ours(t.header(alg="ES384"), t.claims()),
    "crit header not understood": lambda t: t.ours(
        t.header(crit=["exp-v2"], **{"exp-v2": 1}), t.claims()
    ),
}


@pytest.mark.parametrize("name", sorted(UNSIGNED_OR_FOREIGN) + sorted(SIGNED_BY_US))
async def test_a_hostile_token_is_401_everywhere(target: Target, name: str) -> None:
    token = {**UNSIGNED_OR_FOREIGN, **SIGNED_BY_US}[name](target)
    for endpoint, response in await call_every_endpoint(
        target, [("Authorization", f"Bearer {token}")]
    ):
        assert response.status_code == 401, f"{endpoint}: {response.status_code} {response.text}"
        assert_problem(response, 401, "invalid_token")
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"', endpoint
    await assert_victim_untouched(target)


async def test_no_authorization_header_is_401_everywhere(target: Target) -> None:
    for endpoint, response in await call_every_endpoint(target, []):
        assert response.status_code == 401, endpoint
        assert_problem(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer", endpoint


MALFORMED: dict[str, Callable[[str], list[tuple[str, str]]]] = {
    "Basic credentials": lambda tok: [("Authorization", "Basic dXNlcjpjb3JyZWN0IGhvcnNl")],
    "Bearer with no token": lambda tok: [("Authorization", "Bearer")],
    "two tokens after Bearer": lambda tok: [("Authorization", f"Bearer {tok} {tok}")],
    "two tokens, comma separated": lambda tok: [("Authorization", f"Bearer {tok},{tok}")],
    "token without a scheme": lambda tok: [("Authorization", tok)],
    "another scheme": lambda tok: [("Authorization", f"Token {tok}")],
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_a_malformed_authorization_header_is_401_everywhere(
    target: Target, name: str
) -> None:
    headers = MALFORMED[name](target.victim.token)
    for endpoint, response in await call_every_endpoint(target, headers):
        assert response.status_code == 401, f"{endpoint}: {response.text}"
        assert_problem(response, 401, "invalid_token")
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"', endpoint
    await assert_victim_untouched(target)


async def test_two_authorization_headers_are_400_everywhere(target: Target) -> None:
    """Which one would count depends on who reads them (a proxy may keep the last)."""
    headers = [("Authorization", f"Bearer {target.victim.token}"), ("Authorization", "Bearer x")]
    for endpoint, response in await call_every_endpoint(target, headers):
        body = assert_problem(response, 400, "duplicate_header")
        assert body["detail"] == "The header Authorization must be sent once.", endpoint
    await assert_victim_untouched(target)


READ_ENDPOINTS = [("users", "/users/me"), ("orders", "/orders"), ("orders", "/orders/{order_id}")]


async def _read_all(target: Target, token: str) -> list[httpx.Response]:
    headers = {"Authorization": f"Bearer {token}"}
    return [
        await (target.api.users if side == "users" else target.api.orders).get(
            path.format(order_id=target.order_id), headers=headers
        )
        for side, path in READ_ENDPOINTS
    ]


async def test_control_a_token_forged_with_our_key_and_sound_claims_is_accepted(
    target: Target,
) -> None:
    """Proves the forging path works, so the 401s above are about the claim under test."""
    for response in await _read_all(target, target.ours(target.header(), target.claims())):
        assert response.status_code == 200, response.text
    lower = await target.api.users.get(
        "/users/me", headers={"Authorization": f"bearer {target.victim.token}"}
    )
    assert lower.status_code == 200


async def test_key_pointing_headers_are_ignored_on_a_token_signed_by_us(target: Target) -> None:
    header = target.header(
        jku="http://attacker.invalid/.well-known/jwks.json",
        x5u="http://attacker.invalid/cert.pem",
        jwk=_attacker_jwk(attacker, target.kid),
    )
    for response in await _read_all(target, target.ours(header, target.claims())):
        assert response.status_code == 200, response.text


async def test_a_token_of_a_user_deactivated_after_issue(api: Api) -> None:
    """403 on the order service (the token is sound, the account may not act); 401 on the
    user service, where the account no longer exists for the token."""
    account = await api.account()
    created = await api.create_order(account.token)
    assert created.status_code == 201
    order_id = created.json()["id"]
    assert (await api.deactivate(account.token)).status_code == 204
    auth = account.auth
    for response in [
        await api.orders.post("/orders", json=order_body(), headers=auth),
        await api.orders.get("/orders", headers=auth),
        await api.orders.get(f"/orders/{order_id}", headers=auth),
        await api.orders.post(f"/orders/{order_id}/cancel", headers=auth),
    ]:
        assert_problem(response, 403, "user_not_allowed")
    for response in [
        await api.users.get("/users/me", headers=auth),
        await api.users.patch("/users/me", json={"full_name": "Back"}, headers=auth),
        await api.users.delete("/users/me", headers=auth),
    ]:
        assert_problem(response, 401, "invalid_token")
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    relogin = await api.login(account.email)
    assert_problem(relogin, 401, "invalid_credentials")
