"""Errors of the Order Service; each carries its status."""

from __future__ import annotations

from servicekit.errors import (
    Conflict,
    Forbidden,
    InvalidToken,
    NotFound,
    ServiceUnavailable,
    UnprocessableContent,
)


class OrderNotFound(NotFound):
    code = "order_not_found"
    detail = "No such order."


class OrderNotCancellable(Conflict):
    code = "order_not_cancellable"
    detail = "Only a pending order can be cancelled."


class UserNotAllowed(Forbidden):
    code = "user_not_allowed"
    detail = "This account does not exist or is deactivated."


class UserVerificationUnavailable(ServiceUnavailable):
    code = "user_verification_unavailable"
    detail = "The account could not be verified right now; retry."


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"
    detail = "A request with this Idempotency-Key is still being processed."


class IdempotencyKeyReused(UnprocessableContent):
    code = "idempotency_key_reused"
    detail = "This Idempotency-Key was used with a different request body."


class InvalidCursor(UnprocessableContent):
    code = "invalid_cursor"
    detail = "The cursor is not valid."


class SessionEnded(InvalidToken):
    """The token is sound, but a password change or a deactivation ended its session."""

    code = "invalid_token"
    detail = "The session of this access token has ended; log in again."
