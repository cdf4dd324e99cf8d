"""The User Service's settings, read from the environment once, in its composition root."""

from __future__ import annotations

import os

from pydantic import Field, SecretStr, model_validator

from servicekit.cors import CorsOrigins, check_cors_policy
from servicekit.settings import ServiceSettings

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
