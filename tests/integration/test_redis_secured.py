"""Redis with AUTH (an ACL user) and with TLS (certificates made here), on real redis-servers:
the cache, the rate limiter and the bus each work over both, with the options the services
build from their settings; a refused credential or certificate stops a start with one line
naming the address; an unreachable server does not."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.asyncio import Redis

from contracts import USER_VERIFICATION_RESPONSE_CHANNEL, VERIFY_USER_CHANNEL, user_cache_key
from devstack import RedisOptions, RedisTls, free_port
from devstack.aio import RedisServer
from servicekit.errors import StartRefused
from servicekit.redis import RedisCache, RedisRateLimiter, check_redis_access, create_redis
from servicekit.redis_bus import RedisBus
from servicekit.tags import TaggedBus, TaggedCache, Tags
from tests.integration.test_service_processes import run_image_command
from tests.support.api import Api
from tests.support.backing import postgres_database, private_redis
from tests.support.deployments import INTERNAL_TOKEN, Deployment
from tests.support.distributed import USER_DOCKERFILE, distributed_stack

PASSWORD = "an-acl-password-" + uuid.uuid4().hex
USER = "orders-and-users"
PATIENCE = 15.0


def make_certificates(folder: Path, *, names: tuple[str, ...] = ("localhost",)) -> RedisTls:
    """A CA, and a server certificate it signs for ``names`` and 127.0.0.1."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA " + folder.name)])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    *(x509.DNSName(name) for name in names),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    tls = RedisTls(folder / "server.crt", folder / "server.key", folder / "ca.crt")
    tls.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    tls.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tls.key_file.chmod(0o600)
    return tls


ACL_ARGS = ["--user", USER, "on", f">{PASSWORD}", "~*", "&*", "+@all", "--user", "default", "off"]


@dataclass(frozen=True)
class Secured:
    """A server and the client options the services' settings give for it."""

    server: RedisServer
    options: dict[str, Any]

    def client(self, **changes: Any) -> Redis:
        options = {**self.options, **changes}
        return create_redis(
            "127.0.0.1",
            self.server.port,
            name="secured-test",
            connect_timeout=1.0,
            timeout=1.0,
            **options,
        )


@pytest.fixture(scope="module")
async def acl_redis() -> AsyncIterator[Secured]:
    client_options = {"username": USER, "password": PASSWORD}
    async with private_redis(server_args=ACL_ARGS, client_options=client_options) as server:
        yield Secured(server, {"username": USER, "password": PASSWORD})


@pytest.fixture(scope="module")
async def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Secured]:
    tls = make_certificates(tmp_path_factory.mktemp("redis-tls"))
    async with private_redis(tls=tls) as server:
        yield Secured(server, {"tls": True, "tls_ca_file": tls.ca_file})


@pytest.fixture(params=["acl", "tls"])
def secured(request: pytest.FixtureRequest) -> Secured:
    fixture: Secured = request.getfixturevalue(f"{request.param}_redis")
    return fixture


async def test_the_cache_the_rate_limiter_and_the_bus_work_over_a_secured_redis(
    secured: Secured,
) -> None:
    client = secured.client()
    tags = Tags([b"s" * 32])
    bus = TaggedBus(RedisBus(client), tags, {USER_VERIFICATION_RESPONSE_CHANNEL})
    try:
        await check_redis_access(client)

        cache = TaggedCache(RedisCache(client), tags)
        user_id = uuid.uuid4()
        key = user_cache_key(user_id)
        entry = b'{"id":"%s","email":"a@example.com","active":true,"version":2}' % (
            str(user_id).encode()
        )
        assert await cache.set_if_newer(key, entry, 2, 60)
        assert not await cache.set_if_newer(key, entry.replace(b":2", b":1"), 1, 60)
        assert await cache.get(key) == entry

        limiter = RedisRateLimiter(client)
        first = await limiter.hit(f"secured:{user_id}", limit=1, window_seconds=60)
        second = await limiter.hit(f"secured:{user_id}", limit=1, window_seconds=60)
        assert (first.allowed, first.count, second.allowed, second.count) == (True, 1, False, 2)

        # The protocol's request and tagged reply, through the bus's own connections.
        replies: asyncio.Queue[bytes] = asyncio.Queue()

        async def answer(request: bytes) -> None:
            await bus.publish(USER_VERIFICATION_RESPONSE_CHANNEL, b'{"re":%s}' % request)

        async def collect(reply: bytes) -> None:
            await replies.put(reply)

        bus.subscribe(VERIFY_USER_CHANNEL, answer)
        bus.subscribe(USER_VERIFICATION_RESPONSE_CHANNEL, collect)
        await bus.start()
        assert await bus.publish(VERIFY_USER_CHANNEL, b'"ask"') == 1
        async with asyncio.timeout(PATIENCE):
            assert await replies.get() == b'{"re":"ask"}'
    finally:
        await bus.close()
        await client.aclose()


@pytest.mark.parametrize(
    "change",
    [
        {"password": "not-the-password"},
        {"username": "nobody"},
        {"username": None, "password": None},
    ],
    ids=["wrong-password", "unknown-user", "no-credentials"],
)
async def test_a_refused_credential_stops_the_start_naming_the_address(
    acl_redis: Secured, change: dict[str, Any]
) -> None:
    client = acl_redis.client(**change)
    try:
        with pytest.raises(StartRefused) as refused:
            await check_redis_access(client)
    finally:
        await client.aclose()
    line = str(refused.value)
    assert f"redis at 127.0.0.1:{acl_redis.server.port} refused our credentials" in line
    assert "\n" not in line
    assert PASSWORD not in line
    assert "not-the-password" not in line


async def test_a_certificate_from_another_ca_stops_the_start_naming_the_address(
    tls_redis: Secured, tmp_path: Path
) -> None:
    stranger = make_certificates(tmp_path / "another-ca")
    client = tls_redis.client(tls_ca_file=stranger.ca_file)
    try:
        with pytest.raises(StartRefused, match="TLS failed") as refused:
            await check_redis_access(client)
    finally:
        await client.aclose()
    assert f"redis at 127.0.0.1:{tls_redis.server.port}: TLS failed" in str(refused.value)


async def test_the_bus_refused_names_the_address_and_never_the_password(
    acl_redis: Secured, caplog: pytest.LogCaptureFixture
) -> None:
    client = acl_redis.client(password="not-the-password")
    bus = RedisBus(client, reconnect_delay=0.01, max_reconnect_delay=0.01)

    async def ignore(_: bytes) -> None:
        return None

    bus.subscribe("anything", ignore)
    try:
        with caplog.at_level(logging.DEBUG, "servicekit.redis_bus"):
            await bus.start(ready_timeout=0.3)
        with pytest.raises(Exception, match=f"redis at 127.0.0.1:{acl_redis.server.port}"):
            await bus.publish("anything", b"x")
    finally:
        await bus.close()
        await client.aclose()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([w for w in warnings if "cannot subscribe" in w]) == 1, warnings
    assert f"127.0.0.1:{acl_redis.server.port}" in warnings[0]
    assert "WRONGPASS" in caplog.text
    assert "not-the-password" not in caplog.text
    assert PASSWORD not in caplog.text


async def test_an_unreachable_redis_does_not_stop_the_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    client = create_redis("127.0.0.1", port, name="t", connect_timeout=0.25, timeout=0.25)
    try:
        with caplog.at_level(logging.WARNING, "servicekit.redis"):
            await check_redis_access(client)
    finally:
        await client.aclose()
    assert f"redis at 127.0.0.1:{port} is unavailable at start" in caplog.text


# The services as processes on a secured Redis: what each one's settings say for it.
def acl_env() -> dict[str, str]:
    return {"REDIS_USERNAME": USER, "REDIS_PASSWORD": PASSWORD}


def tls_env(tls: RedisTls) -> dict[str, str]:
    return {"REDIS_SSL": "true", "REDIS_SSL_CA_CERTS": str(tls.ca_file)}


@pytest.mark.parametrize("mode", ["acl", "tls"])
async def test_the_verification_protocol_runs_between_the_services_over_a_secured_redis(
    mode: str, tmp_path: Path
) -> None:
    """Cache hit, then a miss answered on the bus with a tagged reply, then the rate limiter's
    counters: every part of the protocol through the services' own connections."""
    if mode == "acl":
        options: RedisOptions = {
            "server_args": ACL_ARGS,
            "client_options": {"username": USER, "password": PASSWORD},
        }
        env = acl_env()
    else:
        tls = make_certificates(tmp_path / "tls")
        options = {"tls": tls}
        env = tls_env(tls)
    async with (
        distributed_stack(
            tmp_path / "stack", internal_token=INTERNAL_TOKEN, extra_env=env, redis_options=options
        ) as stack,
        httpx.AsyncClient(base_url=stack.user_service.url, timeout=10.0) as users,
        httpx.AsyncClient(base_url=stack.order_service.url, timeout=10.0) as orders,
        stack.redis.client() as watcher,
        watcher.pubsub() as replies,
    ):
        api = Api(Deployment(mode, users, orders, INTERNAL_TOKEN))
        account = await api.account()
        key = user_cache_key(account.id)
        entry = await watcher.get(key)
        assert entry is not None
        assert b'"tag":"' in entry, entry
        assert (await api.create_order(account.token)).status_code == 201  # from the cache

        await replies.subscribe(USER_VERIFICATION_RESPONSE_CHANNEL)
        await watcher.delete(key)
        assert (await api.create_order(account.token)).status_code == 201  # from the bus
        async with asyncio.timeout(PATIENCE):
            while True:
                message = await replies.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    break
        reply = json.loads(message["data"])
        assert reply["user_id"] == account.id
        assert reply["active"] is True
        assert "tag" in reply

        counters = [name async for name in watcher.scan_iter(match="ratelimit:*")]
        assert counters, "the login's rate-limit counters are in this Redis"


@pytest.fixture(scope="module")
async def database_url() -> AsyncIterator[str]:
    async with postgres_database("secured") as url:
        yield url


def service_env(database_url: str, server: Secured) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "INTERNAL_API_TOKEN": "a-service-credential-of-some-length",
        "REDIS_SIGNING_KEY": "a-signing-key-of-at-least-32-characters",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(server.server.port),
        "REDIS_USERNAME": USER,
        "REDIS_PASSWORD": PASSWORD,
    }


async def test_a_missing_signing_key_stops_the_service_with_one_line(
    acl_redis: Secured, database_url: str
) -> None:
    env = service_env(database_url, acl_redis)
    del env["REDIS_SIGNING_KEY"]
    code, stderr = await run_image_command(USER_DOCKERFILE, env)
    assert code == 2, stderr
    lines = [line for line in stderr.splitlines() if "REDIS_SIGNING_KEY" in line]
    assert lines == [
        "configuration error (UserSettings): REDIS_SIGNING_KEY: required by the distributed"
        " deployment, not set"
    ], stderr
    assert "Traceback" not in stderr


async def test_a_wrong_redis_password_stops_the_service_with_one_line(
    acl_redis: Secured, database_url: str
) -> None:
    env = {**service_env(database_url, acl_redis), "REDIS_PASSWORD": "not-the-password"}
    code, stderr = await run_image_command(USER_DOCKERFILE, env)
    assert code != 0, stderr
    # Every line is JSON, uvicorn's too (its log config, servicekit/uvicorn-logging.json).
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    errors = [line["msg"] for line in lines if line["level"] == "error"]
    assert errors[0].startswith(
        f"redis at 127.0.0.1:{acl_redis.server.port} refused our credentials"
    ), stderr
    assert errors[1:] == ["Application startup failed. Exiting."], stderr
    assert "Traceback" not in stderr
    assert "not-the-password" not in stderr
