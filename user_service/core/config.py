"""The User Service's settings, read from the environment once, in its composition root."""

from __future__ import annotations

import os

from pydantic import Field, SecretStr, model_validator

from servicekit.cors import CorsOrigins, check_cors_policy
from servicekit.settings import ServiceSettings
from user_service.core.auth import KeyRing, key_ring_from_pems

PASSWORD_MIN_LENGTH = 15  # the default of PASSWORD_MIN_LENGTH
PASSWORD_MAX_LENGTH = 128
OWASP_ARGON2_MEMORY_KIB = 19 * 1024
OWASP_ARGON2_TIME_COST = 2
# The origins of the order service's docs in development (`make run-order-service`, compose).
DEV_CORS_ALLOW_ORIGINS = ("http://127.0.0.1:8002", "http://localhost:8002")


class UserSettings(ServiceSettings):
    service_name: str = "user-service"
    password_min_length: int = Field(PASSWORD_MIN_LENGTH, ge=8, le=128)
    access_token_ttl_seconds: int = Field(900, ge=60, le=86_400)
    jwt_private_key: SecretStr | None = Field(
        None, description="PEM of the EC P-256 signing key; a development key is made if unset"
    )
    # Key rotation: several PEMs one after the other, all published in the JWKS. The one
    # named by JWT_SIGNING_KID signs (its RFC 7638 thumbprint, as the JWKS shows it); if
    # unset, the first key (JWT_PRIVATE_KEY, else the first of JWT_PRIVATE_KEYS) signs.
    jwt_private_keys: SecretStr | None = Field(
        None, description="PEMs of EC P-256 keys: the signer and the keys that only verify"
    )
    jwt_signing_kid: str | None = Field(None, min_length=1, max_length=200)
    # How long a verifier may keep the JWKS (Cache-Control: max-age): a retired key is
    # refused by the order service at most this long after it left the set.
    jwks_max_age_seconds: int = Field(300, ge=1, le=86_400)
    # How many users' standings each replica keeps in memory to answer verify_user without a
    # read (the oldest goes first); each costs a few hundred bytes.
    user_standings_memory_max: int = Field(100_000, ge=1, le=10_000_000)
    refresh_token_ttl_seconds: int = Field(30 * 86_400, ge=60, le=365 * 86_400)
    # How often each replica deletes the refresh tokens past their expiry.
    refresh_token_purge_interval_seconds: float = Field(600.0, ge=0.1, le=86_400)
    argon2_memory_kib: int = Field(OWASP_ARGON2_MEMORY_KIB, ge=OWASP_ARGON2_MEMORY_KIB)
    argon2_time_cost: int = Field(OWASP_ARGON2_TIME_COST, ge=OWASP_ARGON2_TIME_COST)
    password_hash_concurrency: int = Field(max(1, (os.cpu_count() or 2) - 1), ge=1, le=64)
    # Login rate limits. Only failed logins count per account (normalized email); every
    # attempt counts per client address (the ASGI client host: behind a proxy that needs
    # trusted-proxy handling, X-Forwarded-For is not trusted).
    login_max_failures_per_account: int = Field(10, ge=1, le=10_000)
    login_window_seconds: int = Field(900, ge=1, le=86_400)
    login_max_attempts_per_address: int = Field(100, ge=1, le=1_000_000)
    login_address_window_seconds: int = Field(60, ge=1, le=86_400)
    # Web pages of these origins may call the API from a browser: the order service's docs
    # log in here. Comma-separated in the environment; empty: no cross-origin access.
    cors_allow_origins: CorsOrigins = DEV_CORS_ALLOW_ORIGINS
    cors_allow_credentials: bool = False

    @model_validator(mode="after")
    def _cors_policy(self) -> UserSettings:
        check_cors_policy(self.cors_allow_origins, allow_credentials=self.cors_allow_credentials)
        return self

    @model_validator(mode="after")
    def _signing_keys(self) -> UserSettings:
        # Read once here so that a bad PEM or an unknown JWT_SIGNING_KID stops the start
        # with one line; the composition root reads them again from the same text.
        configured_signing_keys(self)
        return self


def configured_signing_keys(settings: UserSettings) -> KeyRing | None:
    """The keys of JWT_PRIVATE_KEY and JWT_PRIVATE_KEYS, or None if neither is set (then a
    development key is made in the data folder)."""
    pems = "".join(
        secret.get_secret_value() + "\n"
        for secret in (settings.jwt_private_key, settings.jwt_private_keys)
        if secret is not None
    )
    if not pems.strip():
        if settings.jwt_signing_kid is not None:
            raise ValueError("JWT_SIGNING_KID: set, but no JWT_PRIVATE_KEY(S) to choose from")
        return None
    return key_ring_from_pems(pems, signing_kid=settings.jwt_signing_kid)
