"""schemathesis, with all its checks, against each OpenAPI document: the single-process app
and each service's own app. Positive and negative examples, a valid bearer token supplied.

Bounded for `make test` (FUZZ_EXAMPLES examples per operation and mode, default 8); run longer
with e.g. `FUZZ_EXAMPLES=200 .venv/bin/pytest tests/fuzz`.
"""

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.main import create_app
from tests.fuzz.adjust import whole_floats_as_integers
from tests.support.api import PASSWORD
from tests.support.deployments import INTERNAL_TOKEN, single_process_settings
from tests.support.service_apps import order_service_app, user_service_app

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))

# `format: email` is RFC 5322; the service also refuses special-use domains (.test,
# .invalid, ...), as email-validator does by default. Aim valid emails at a real domain.
schemathesis.openapi.format("email", st.emails(domains=st.sampled_from(["example.com"])))


def excluded_checks(case: schemathesis.Case[Any]) -> list[Any]:
    """A random string is schema-valid for the opaque `cursor` but is not a cursor the
    service made: its 422 invalid_cursor is right, not a rejected valid request. Likewise
    for the token endpoint: a random `refresh_token` is not one the service issued (400
    invalid_grant), and which fields a grant needs depends on `grant_type`, which a form's
    schema cannot say (400 invalid_request)."""
    if case.method.upper() == "GET" and case.path == "/orders" and "cursor" in (case.query or {}):
        return [positive_data_acceptance]
    if case.method.upper() == "POST" and case.path == "/auth/token":
        return [positive_data_acceptance]
    return []


Target = tuple[FastAPI, FastAPI]  # (the app under test, an app that can register and log in)
TARGETS: dict[str, Callable[[Path], Target]] = {
    "single": lambda tmp: (lambda app: (app, app))(create_app(*single_process_settings(tmp))),
    "user_service": lambda tmp: (lambda app: (app, app))(user_service_app(tmp)),
    "order_service": lambda tmp: (order_service_app(tmp), user_service_app(tmp)),
}


def fresh_token(login_app: FastAPI) -> str:
    email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
    with asgi.get_client(login_app) as client:  # type: ignore[arg-type]
        registered = client.post(
            "/users", json={"email": email, "password": PASSWORD, "full_name": "Fuzz"}
        )
        assert registered.status_code == 201, registered.text
        logged_in = client.post("/auth/token", data={"username": email, "password": PASSWORD})
        assert logged_in.status_code == 200, logged_in.text
        token: str = logged_in.json()["access_token"]
        return token


@pytest.fixture(scope="module", params=sorted(TARGETS))
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, FastAPI, FastAPI]]:
    app, login_app = TARGETS[request.param](tmp_path_factory.mktemp(f"fuzz-{request.param}"))
    yield request.param, app, login_app
    asgi.shutdown_lifespans()


def fuzz_operation(
    operation: schemathesis.APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    headers: Callable[[], dict[str, str]],
) -> None:
    """Hypothesis drives schemathesis's cases; every check runs on every response."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case[Any]) -> None:
        key = case.headers.get("Idempotency-Key") if case.headers else None
        if mode is GenerationMode.POSITIVE and isinstance(key, str):
            # A key is for one request body; the fuzzer would reuse short keys with other
            # bodies, which is rightly a 422. Keep its characters, make it unique.
            case.headers["Idempotency-Key"] = (uuid.uuid4().hex + key)[:255]
        whole_floats_as_integers(case.body)
        case.call_and_validate(headers=headers(), excluded_checks=excluded_checks(case))

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzz_openapi(target: tuple[str, FastAPI, FastAPI], mode: GenerationMode) -> None:
    name, app, login_app = target
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    token = fresh_token(login_app)
    failures: list[str] = []
    labels = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema fails here
        label = f"{operation.method.upper()} {operation.path}"
        labels.append(label)

        def headers(label: str = label) -> dict[str, str]:
            if label.startswith("GET /internal/"):
                return {"Authorization": f"Bearer {INTERNAL_TOKEN}"}
            if label == "DELETE /users/me":
                # Deactivating is the point of this call: never with the shared account.
                return {"Authorization": f"Bearer {fresh_token(login_app)}"}
            return {"Authorization": f"Bearer {token}"}

        try:
            fuzz_operation(operation, mode, headers)
        except Unsatisfiable:
            continue  # nothing to make invalid: no parameters and no body
        except Exception as exc:  # every operation's failure, then one report
            failures.append(f"--- {name} {mode.value} {label}\n{exc}")
    assert len(labels) >= 4, labels
    assert not failures, "\n".join(failures)
