"""Path, query and header parameters a route reads itself, as FastAPI would read them.

FastAPI solves each declared parameter on every request along a path made for every kind of
parameter; on the busiest routes that costs more than the parameter is worth
(docs/benchmarks.md, "Parameters read by hand"). A ``RequestParam`` is declared as it would
be in a route's signature, and then:

- its OpenAPI parameter is rendered by FastAPI itself, once, from a route of its own that is
  never served; the route that reads it documents it with ``openapi_extra``;
- on a request it reads the one value (the last of a repeated query parameter, the first of
  a header, as FastAPI does), returns the default when there is none (FastAPI's ``missing``
  error when there is no default), and otherwise validates it with a pydantic
  ``TypeAdapter`` of the same declaration, raising the ``RequestValidationError`` FastAPI
  would, located at ``(in, name)``.
"""

from __future__ import annotations

import inspect
import json
from typing import Any, Generic, TypeVar, cast, get_args

from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

T = TypeVar("T")
REQUIRED: Any = inspect.Parameter.empty


class RequestParam(Generic[T]):
    def __init__(self, name: str, declared: Any, default: Any = REQUIRED) -> None:
        """``declared``: ``Annotated[type, Path()]``, ``Annotated[type, Query(...)]`` or
        ``Annotated[type, Header(...)]``; ``name`` and ``default`` as in a signature."""
        info = next((arg for arg in get_args(declared)[1:] if isinstance(arg, params.Param)), None)
        if not isinstance(info, (params.Path, params.Query, params.Header)):
            raise TypeError(f"{name}: only path, query and header parameters are read by hand")
        self.location = info.in_.value
        self.key = info.alias or (name.replace("_", "-") if self.location == "header" else name)
        self.declared = declared
        self.default = default
        self.openapi = _documented(name, declared, default, self.location)
        self._adapter: TypeAdapter[T] = TypeAdapter(declared)

    def read(self, request: Request) -> T:
        if self.location == "path":
            value = request.path_params.get(self.key)
        elif self.location == "query":
            value = request.query_params.get(self.key)
        else:
            value = request.headers.get(self.key)
        if value is None:
            if self.default is REQUIRED:
                missing = {"type": "missing", "loc": (self.location, self.key)}
                raise RequestValidationError([{**missing, "msg": "Field required", "input": None}])
            return cast(T, self.default)
        try:
            return self._adapter.validate_python(value)
        except ValidationError as exc:
            raise RequestValidationError(
                [
                    {**error, "loc": (self.location, self.key, *error["loc"])}
                    for error in exc.errors(include_url=False)
                ]
            ) from None


def _documented(name: str, declared: Any, default: Any, location: str) -> dict[str, Any]:
    """The OpenAPI parameter FastAPI renders for ``name: declared = default``."""

    async def probe() -> None:
        """Never served: FastAPI reads its signature."""

    parameter = inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=declared
    )
    probe.__signature__ = inspect.Signature([parameter])  # type: ignore[attr-defined]
    path = f"/probe/{{{name}}}" if location == "path" else "/probe"
    app = FastAPI()
    app.get(path)(probe)
    [documented] = app.openapi()["paths"][path]["get"]["parameters"]
    if "$ref" in json.dumps(documented):
        # Its schema would be in the probe's components, not the serving app's.
        raise TypeError(f"{name}: a parameter read by hand must not refer to a model")
    return dict(documented)
