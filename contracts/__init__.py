"""What the two services agree on, and nothing else: the original design's channel names,
cache key and TTL, and the messages that travel on them."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

VERIFY_USER_CHANNEL = "verify_user"
USER_VERIFICATION_RESPONSE_CHANNEL = "user_verification_response"
USER_CACHE_TTL_SECONDS = 3600
INTERNAL_VERIFICATION_PATH = "/internal/users/{user_id}/verification"
JWKS_PATH = "/.well-known/jwks.json"
# What travels on these channels, as what is cached under ``user:{user_id}``, carries an
# authentication tag (``servicekit.tags``: a last member ``"tag"`` in the JSON object) made
# with a key only the two services hold; without a valid one it is not believed.
TAGGED_CHANNELS = (USER_VERIFICATION_RESPONSE_CHANNEL,)


def user_cache_key(user_id: uuid.UUID | str) -> str:
    return f"user:{user_id}"


class _Message(BaseModel):
    # Read strictly: a flag is a JSON true or false, a number a JSON integer. What Redis holds
    # is not trusted to be well formed ("active": "yes" must not read as active).
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


class VerifyUser(_Message):
    """Published on ``verify_user`` by the order service: is this user allowed to order?"""

    request_id: str = Field(min_length=1, max_length=64)
    user_id: uuid.UUID
    # The asking request's id, for the answering side's log lines.
    trace_id: str | None = Field(default=None, max_length=128)
    # W3C trace context of the asking span, when tracing is on: the answer is its child.
    # Left out of the message when absent: the wire format without tracing is unchanged.
    traceparent: str | None = Field(
        default=None, max_length=128, exclude_if=lambda value: value is None
    )


class UserVerification(_Message):
    """Published on ``user_verification_response`` by the user service, one per request."""

    request_id: str = Field(min_length=1, max_length=64)
    user_id: uuid.UUID
    exists: bool
    active: bool
    # Access tokens of an earlier session epoch are refused (a password change or a
    # deactivation raises it). Absent from older senders: 0.
    session_epoch: int = Field(default=0, ge=0)


class CachedUser(_Message):
    """The value under ``user:{user_id}``; ``version`` grows with every change of the user,
    ``session_epoch`` with every change that ends the user's sessions."""

    id: uuid.UUID
    email: str
    active: bool
    version: int = 0
    session_epoch: int = Field(default=0, ge=0)
