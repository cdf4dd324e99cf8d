"""A private ``redis-server``: ours alone, on a free port, without persistence.

Pub/sub channels are not scoped by database number and the channel names are fixed, so two
runs must never share a server. Options beyond the defaults (ACL users, TLS) are
``RedisOptions``: more server arguments, and the client options that go with them.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypedDict, Unpack

import redis
import redis.asyncio

from devstack.ports import free_port
from devstack.process import ServerProcess


def redis_server_problem() -> str | None:
    """Why no private redis-server can run here, or None."""
    if shutil.which("redis-server") is None:
        return "no redis-server binary on PATH (apt-get install redis-server)"
    return None


@dataclass(frozen=True)
class RedisTls:
    cert_file: Path
    key_file: Path
    ca_file: Path

    def server_args(self, port: int) -> list[str]:
        return [
            *("--port", "0", "--tls-port", str(port)),
            *("--tls-cert-file", str(self.cert_file), "--tls-key-file", str(self.key_file)),
            *("--tls-ca-cert-file", str(self.ca_file), "--tls-auth-clients", "no"),
        ]

    def client_options(self) -> dict[str, Any]:
        return {"ssl": True, "ssl_ca_certs": str(self.ca_file), "ssl_cert_reqs": "required"}


class RedisOptions(TypedDict, total=False):
    """What a server may have beyond the defaults; each a new key here, read in one place."""

    # More redis-server arguments: ``--user ...`` (ACL users), ``--requirepass ...``.
    server_args: Sequence[str]
    # Passed to the clients of this server (its readiness probe too): ``username``, ``ssl``...
    client_options: Mapping[str, Any]
    # TLS only, on the free port: the server's certificate and key, and the CA that signed it
    # (client certificates are not asked for). Its clients check it against that CA.
    tls: RedisTls


@dataclass(eq=False)
class RedisServer(ServerProcess):
    """Ready when it answers PING; ``client()`` is a client of it with the same options."""

    client_options: dict[str, Any] = field(default_factory=dict)
    poll_interval: ClassVar[float] = 0.05

    @classmethod
    def on_free_port(cls, workdir: Path, **options: Unpack[RedisOptions]) -> RedisServer:
        """A server (not started) whose log and working directory are ``workdir``."""
        port = free_port()
        tls = options.get("tls")
        return cls(
            name=f"redis-server:{port}",
            # An argument list, not a command line: the empty --save value disables RDB.
            argv=[
                *("redis-server", "--port", str(port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(workdir)),
                *(tls.server_args(port) if tls is not None else ()),
                *options.get("server_args", ()),
            ],
            port=port,
            log_path=workdir / "redis.log",
            client_options={
                **(tls.client_options() if tls is not None else {}),
                **options.get("client_options", {}),
            },
        )

    def is_ready(self) -> bool:
        client = redis.Redis(socket_timeout=1.0, **self._client_settings())
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def client(self) -> redis.asyncio.Redis:
        """An asyncio client of this server (tests: watch channels, read keys)."""
        return redis.asyncio.Redis(**self._client_settings())

    def _client_settings(self) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "socket_connect_timeout": 1.0,
            **self.client_options,
        }
