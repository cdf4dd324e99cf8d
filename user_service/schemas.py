"""Request and response bodies of the User Service."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from servicekit.text import PlainText
from user_service.core.config import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from user_service.core.emails import EMAIL_MAX_LENGTH, EMAIL_PATTERN, normalize_email

# The policy's minimum is a setting, checked by the service (a 422 password_too_short that
# names it); the document advertises the default, so that clients and fuzzers aim right.
Password = Annotated[
    str,
    Field(
        min_length=1,
        max_length=PASSWORD_MAX_LENGTH,
        json_schema_extra={"minLength": PASSWORD_MIN_LENGTH},
    ),
]
# No control or invisible layout character; surrounding spaces are dropped and at least one
# other character must remain (servicekit.text).
FullName = Annotated[str, Field(min_length=1, max_length=200), PlainText()]
# Stored and compared in its canonical form (user_service.core.emails); the document states
# the syntax, the RFC 5321 lengths and the refused reserved domains.
Email = Annotated[
    str,
    Field(
        max_length=EMAIL_MAX_LENGTH,
        json_schema_extra={
            "format": "email",
            "pattern": EMAIL_PATTERN,
            "description": "At most 64 characters before the @; no reserved domain "
            "(.test, .example, .invalid, .localhost, .local, .onion, .arpa). Compared "
            "without regard to case, compatibility forms (NFKC) or IDNA spelling.",
        },
    ),
    AfterValidator(normalize_email),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(_Body):
    email: Email
    password: Password
    full_name: FullName


class UserUpdate(_Body):
    # The rules of ``_check``, stated in the OpenAPI document too.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["full_name"], "properties": {"full_name": {"type": "string"}}},
                {"required": ["password"], "properties": {"password": {"type": "string"}}},
            ],
            "if": {"required": ["password"], "properties": {"password": {"type": "string"}}},
            "then": {
                "required": ["current_password"],
                "properties": {"current_password": {"type": "string"}},
            },
        }
    )

    full_name: FullName | None = None
    password: Password | None = None
    current_password: Annotated[str, Field(max_length=PASSWORD_MAX_LENGTH)] | None = None

    @model_validator(mode="after")
    def _check(self) -> UserUpdate:
        if self.full_name is None and self.password is None:
            raise ValueError("give full_name, password, or both")
        if self.password is not None and self.current_password is None:
            raise ValueError("current_password is required to change the password")
        return self


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    is_active: bool
    created_at: dt.datetime


class AccessToken(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str


class UserVerificationRead(BaseModel):
    user_id: uuid.UUID
    exists: bool
    active: bool
    session_epoch: int


class JsonWebKeySet(BaseModel):
    keys: list[dict[str, Any]]
