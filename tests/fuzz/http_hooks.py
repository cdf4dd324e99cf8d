"""schemathesis hooks for the runs over HTTP (``test_openapi_http.py`` passes this module as
``SCHEMATHESIS_HOOKS``). The environment says where to log in:

- ``FUZZ_USERS_URL``: the user API (register and log in there);
- ``FUZZ_TOKEN``: a valid access token of an account that stays active for the whole run;
- ``FUZZ_INTERNAL_TOKEN``: the credential of the internal verification endpoint.

What the hooks change, and why, each stated where it is done:

- ``DELETE /users/me`` runs with a fresh account each time, so deactivating never ends the
  shared account the rest of the run uses;
- a ``cursor`` that the schema allows (any string up to 200 characters: it is opaque) is made
  a cursor of the service's own form, since a string the service never made is rightly 422;
- an order's ``Idempotency-Key``, when valid, gets a unique prefix: a key is for one body,
  and the fuzzer reuses short keys with other bodies (rightly 422);
- an order ``quantity`` that is a whole float (``2.0``) is sent as the integer: JSON Schema
  calls ``2.0`` an integer, the API takes integers only as JSON integers (README, "Abuse and
  hostile input"), and no JSON Schema keyword can tell the two spellings apart.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import uuid
from typing import Any

import httpx
import schemathesis

from tests.fuzz.adjust import whole_floats_as_integers

Case = schemathesis.Case[Any]

PASSWORD = "correct horse battery staple"
VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def _fresh_token() -> str:
    users = os.environ["FUZZ_USERS_URL"]
    email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
    with httpx.Client(base_url=users, timeout=10.0) as client:
        registered = client.post(
            "/users", json={"email": email, "password": PASSWORD, "full_name": "Fuzz"}
        )
        registered.raise_for_status()
        logged_in = client.post("/auth/token", data={"username": email, "password": PASSWORD})
        logged_in.raise_for_status()
        token: str = logged_in.json()["access_token"]
        return token


def _bearer(case: Case, token: str) -> None:
    case.headers["Authorization"] = f"Bearer {token}"


@schemathesis.auth(refresh_interval=None).apply_to(method="DELETE", path="/users/me")
class FreshAccount:
    def get(self, case: Case, context: Any) -> str:
        return _fresh_token()

    def set(self, case: Case, data: str, context: Any) -> None:
        _bearer(case, data)


@schemathesis.auth().apply_to(path_regex="^/internal/")
class InternalCredential:
    def get(self, case: Case, context: Any) -> str:
        return os.environ["FUZZ_INTERNAL_TOKEN"]

    def set(self, case: Case, data: str, context: Any) -> None:
        _bearer(case, data)


@schemathesis.auth().skip_for(method="DELETE", path="/users/me").skip_for(path_regex="^/internal/")
class SharedAccount:
    def get(self, case: Case, context: Any) -> str:
        return os.environ["FUZZ_TOKEN"]

    def set(self, case: Case, data: str, context: Any) -> None:
        _bearer(case, data)


def _service_cursor() -> str:
    raw = f"v1|{dt.datetime.now(dt.UTC).isoformat()}|{uuid.uuid4()}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@schemathesis.hook
def before_call(context: Any, case: Case, **kwargs: Any) -> None:
    """Each change keeps a valid case valid and an invalid one invalid (see the module)."""
    label = f"{case.operation.method.upper()} {case.operation.path}"
    query: Any = case.query
    if label == "GET /orders" and isinstance(query, dict):
        cursor = query.get("cursor")
        if isinstance(cursor, str) and len(cursor) <= 200:
            query["cursor"] = _service_cursor()
    if label == "POST /orders":
        headers: Any = case.headers or {}
        key = headers.get("Idempotency-Key")
        if isinstance(key, str) and VALID_KEY.fullmatch(key):
            # A key is for one body; the fuzzer reuses keys with other bodies (rightly 422).
            headers["Idempotency-Key"] = (uuid.uuid4().hex + key)[:255]
        whole_floats_as_integers(case.body)
