"""The Order Service's settings, read from the environment once, in its composition root."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field

from servicekit.settings import ServiceSettings


class OrderSettings(ServiceSettings):
    service_name: str = "order-service"
    user_service_url: AnyHttpUrl = AnyHttpUrl("http://localhost:8001")
    user_verification_timeout: float = Field(0.5, gt=0, le=10, description="pub/sub reply wait, s")
    user_service_timeout: float = Field(1.0, gt=0, le=30, description="HTTP fallback and JWKS, s")
    jwks_cooldown_seconds: float = Field(30.0, ge=1, le=3600)
    idempotency_ttl_hours: int = Field(24, ge=24, le=24 * 30)
    # How often the service deletes Idempotency-Key records past their TTL.
    idempotency_purge_interval_seconds: float = Field(600.0, ge=0.1, le=86_400)
    public_token_url: str = Field(
        "http://localhost:8001/auth/token",
        description="the user service's login, as a browser reaches it (the docs' Authorize)",
    )
