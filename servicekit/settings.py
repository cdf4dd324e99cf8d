"""Settings base: every service reads its own class, built once in its composition root."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

S = TypeVar("S", bound=BaseSettings)

# A key shorter than the tags' MAC (32 bytes) would be the weak part of the tag.
SIGNING_KEY_MIN_LENGTH = 32

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
    # Every connection to Redis (cache, rate limiter, bus) authenticates with these when the
    # password is set (an ACL user, or the default user when the username is empty) ...
    redis_username: str | None = None
    redis_password: SecretStr | None = None
    # ... and speaks TLS when asked, checking the server's certificate against this CA file
    # (the system's trust store when unset) and its name against REDIS_HOST.
    redis_ssl: bool = False
    redis_ssl_ca_certs: Path | None = None
    # The keys of the tags on what the services leave in Redis (servicekit.tags): one key, or
    # several separated by commas while rotating (the first signs, any of them verifies).
    # Required by the distributed deployment (``require_signing_key``).
    redis_signing_key: SecretStr | None = None
    data_dir: Path = Path("data")
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    # GET /metrics and the counting behind it; off only to measure what they cost.
    metrics_enabled: bool = True
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

    @field_validator(
        "redis_username", "redis_password", "redis_ssl_ca_certs", "redis_signing_key", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `make` and compose pass an unset variable on as an empty one.
        return None if value == "" else value

    @field_validator("redis_signing_key")
    @classmethod
    def _long_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            shortest = min(len(key) for key in value.get_secret_value().split(","))
            if shortest < SIGNING_KEY_MIN_LENGTH:
                raise ValueError(
                    f"at least {SIGNING_KEY_MIN_LENGTH} characters per key, got {shortest}"
                )
        return value

    @field_validator("redis_ssl_ca_certs")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    def redis_signing_keys(self) -> list[bytes]:
        """The signing keys, the one that signs first; empty when none is configured."""
        if self.redis_signing_key is None:
            return []
        return [key.encode() for key in self.redis_signing_key.get_secret_value().split(",")]


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings from the environment; on a bad or missing value, stop with one clear line."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        print(f"configuration error ({cls.__name__}): {describe(cls, exc)}", file=sys.stderr)
        raise SystemExit(2) from None


def require_settings(settings: S, *names: str, reason: str) -> S:
    """Settings optional in general that this deployment needs: unset, one clear line and
    exit, as for a missing required setting (``REDIS_SIGNING_KEY: required by ..., not set``)."""
    missing = [name.upper() for name in names if getattr(settings, name) is None]
    if missing:
        problems = "; ".join(f"{name}: required {reason}, not set" for name in missing)
        print(f"configuration error ({type(settings).__name__}): {problems}", file=sys.stderr)
        raise SystemExit(2)
    return settings


# The unit of a setting's number, from its name (the environment variable's name says it).
UNITS_BY_SUFFIX = (
    ("_seconds", "seconds"),
    ("_timeout", "seconds"),
    ("_hours", "hours"),
    ("_bytes", "bytes"),
    ("_kib", "KiB"),
    ("_length", "characters"),
)
_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}
_LENGTHS = {
    "too_short": ("min_length", "at least"),
    "string_too_short": ("min_length", "at least"),
    "too_long": ("max_length", "at most"),
    "string_too_long": ("max_length", "at most"),
}


def describe(cls: type[BaseSettings], exc: ValidationError) -> str:
    """Each problem as ``NAME: what is wrong``, in the unit the setting is in
    (``INTERNAL_API_TOKEN: at least 16 characters, got 5``). A value is never repeated for a
    length (it may be a secret); a number out of bounds is."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']).upper() or 'settings'}: {_problem(cls, err)}"
        for err in exc.errors()
    )


def _problem(cls: type[BaseSettings], err: ErrorDetails) -> str:
    kind, ctx = err["type"], err.get("ctx", {})
    field = str(err["loc"][0]) if err["loc"] else ""
    if kind == "missing":
        return "required, not set"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        unit = _unit_of(field)
        return f"{words} {_number(ctx[key])}{' ' + unit if unit else ''}, got {err['input']}"
    if kind in _LENGTHS:
        key, words = _LENGTHS[kind]
        unit = "characters" if _holds_text(cls, field) else "items"
        given = ctx.get("actual_length")
        if given is None and isinstance(err["input"], str):
            given = len(err["input"])
        return f"{words} {ctx[key]} {unit}" + (f", got {given}" if given is not None else "")
    return err["msg"]


def _unit_of(field: str) -> str:
    return next((unit for suffix, unit in UNITS_BY_SUFFIX if field.endswith(suffix)), "")


def _holds_text(cls: type[BaseSettings], field: str) -> bool:
    info = cls.model_fields.get(field)
    if info is None:
        return False
    annotation = info.annotation
    kinds = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else ()
    return any(kind in (str, SecretStr) for kind in (annotation, *kinds))


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
