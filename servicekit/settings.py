"""Settings base: every service reads its own class, built once in its composition root."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

S = TypeVar("S", bound=BaseSettings)

# The async drivers the services are built and pinned for.
DATABASE_DRIVERS = ("postgresql+asyncpg", "sqlite+aiosqlite")


class ServiceSettings(BaseSettings):
    """What every service process needs. Field names are the environment variable names."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True)

    service_name: str = "service"
    database_url: str = Field(
        description="SQLAlchemy async URL (postgresql+asyncpg or sqlite+aiosqlite)"
    )
    redis_host: str = "localhost"
    redis_port: int = Field(6379, ge=1, le=65535)
    redis_connect_timeout: float = Field(0.25, gt=0, le=10)
    redis_timeout: float = Field(0.25, gt=0, le=10)
    data_dir: Path = Path("data")
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    db_pool_size: int = Field(20, ge=1, le=200)
    # A round trip per checkout, to catch even connections whose death the driver has not
    # seen (closed ones are dropped at checkout anyway, without a round trip).
    db_pool_pre_ping: bool = False
    # Bounds on every database wait: a dead or hung database answers 503 within them.
    db_connect_timeout: float = Field(3.0, gt=0, le=60)
    db_statement_timeout: float = Field(10.0, gt=0, le=300)
    migrate_on_start: bool = True
    # Tokens: minted by the user service, checked by both.
    jwt_issuer: str = "user-service"
    jwt_audience: str = "user-order-api"
    # The service-to-service credential of the internal verification endpoint.
    internal_api_token: SecretStr = Field(min_length=16)

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        # Caught here, a typo is one line at start, not a traceback from the first connection.
        try:
            driver = make_url(value).drivername
        except ArgumentError:
            driver = ""
        if driver not in DATABASE_DRIVERS:
            raise ValueError(f"must be a {' or '.join(d + '://' for d in DATABASE_DRIVERS)} URL")
        return value


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings from the environment; on a bad or missing value, stop with one clear line."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper() or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        print(f"configuration error ({cls.__name__}): {problems}", file=sys.stderr)
        raise SystemExit(2) from None
