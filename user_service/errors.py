"""Errors of the User Service; each carries its status."""

from __future__ import annotations

import uuid

from servicekit.errors import (
    Conflict,
    Forbidden,
    InvalidToken,
    OAuthError,
    TooManyRequests,
    Unauthorized,
    UnprocessableContent,
)


class EmailAlreadyRegistered(Conflict):
    code = "email_taken"
    detail = "An account with this email already exists."


class PasswordTooShort(UnprocessableContent):
    code = "password_too_short"


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    detail = "Incorrect email or password."


class AccountUnavailable(InvalidToken):
    """The token is sound but its user is gone or deactivated."""

    code = "invalid_token"


class WrongCurrentPassword(Forbidden):
    code = "wrong_current_password"
    detail = "The current password is not correct."


class ConcurrentUpdate(Conflict):
    code = "concurrent_update"
    detail = "The account was changed by another request; retry."


class TooManyLoginAttempts(TooManyRequests):
    code = "too_many_requests"
    detail = "Too many login attempts; retry later."


class InvalidServiceCredential(Unauthorized):
    code = "invalid_service_credential"
    detail = "A valid service credential is required."


class SessionEnded(InvalidToken):
    """The token is sound, but a password change or a deactivation ended its session."""

    code = "invalid_token"
    detail = "The session of this access token has ended; log in again."


class InvalidGrant(OAuthError):
    """RFC 6749 section 5.2: the refresh token is unknown, spent, revoked or expired, or its
    session has ended. One answer for all of them."""

    code = "invalid_grant"
    detail = "The refresh token is invalid, expired or revoked."

    def __init__(self, detail: str | None = None, *, user_id: uuid.UUID | None = None):
        super().__init__(detail)
        self.user_id = user_id  # whose token it was, if known: its failures count there


class InvalidTokenRequest(OAuthError):
    code = "invalid_request"
    detail = "The token request is missing a parameter."
