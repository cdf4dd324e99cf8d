"""Errors of the User Service; each carries its status."""

from __future__ import annotations

from servicekit.errors import (
    Conflict,
    Forbidden,
    InvalidToken,
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
