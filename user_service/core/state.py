"""What the User Service's entrypoints get from its composition root, typed."""

from __future__ import annotations

from dataclasses import dataclass, field

from servicekit.cache import Cache
from servicekit.ratelimit import RateLimiter
from servicekit.tokens import TokenVerifier
from servicekit.uow import UnitOfWorkFactory
from user_service.core.auth import PasswordHasher, SigningKey, TokenIssuer
from user_service.core.config import UserSettings
from user_service.core.database import UserUnitOfWork
from user_service.core.metrics import UserMetrics
from user_service.repositories.user_repository import UserStates


@dataclass(frozen=True)
class UserServiceState:
    settings: UserSettings
    new_uow: UnitOfWorkFactory[UserUnitOfWork]
    user_states: UserStates
    cache: Cache
    hasher: PasswordHasher
    limiter: RateLimiter
    issuer: TokenIssuer
    token_verifier: TokenVerifier
    signing_keys: tuple[SigningKey, ...]
    metrics: UserMetrics = field(default_factory=UserMetrics.off)
