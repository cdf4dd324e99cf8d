"""Query and header parameters a route reads itself, as FastAPI would read them.

FastAPI solves each declared parameter on every request along a path made for every kind of
parameter; on the busiest routes that costs more than the parameter is worth
(docs/benchmarks.md, "Parameters read by hand"). A ``RequestParam`` is declared as it would
be in a route's signature, and then:

- its OpenAPI parameter is rendered by FastAPI itself, once, from a route of its own that is
  never served; the route that reads it documents it with ``openapi_extra``;
- on a request it reads the one value (the last of a repeated query parameter, the first of
  a header, as FastAPI does), returns the default when there is none, and otherwise validates
  it with a pydantic ``TypeAdapter`` of the same declaration, raising the
  ``RequestValidationError`` FastAPI would, located at ``(in, name)``.
"""

from __future__ import annotations

import inspect
import json
from typing import Any, Generic, TypeVar, get_args

from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

T = TypeVar("T")


class RequestParam(Generic[T]):
    def __init__(self, name: str, declared: Any, default: T) -> None:
        """``declared``: ``Annotated[type, Query(...)]`` or ``Annotated[type, Header(...)]``,
        as in a signature; ``name``: the parameter's name there."""
        info = next(arg for arg in get_args(declared)[1:] if isinstance(arg, params.Param))
        if not isinstance(info, (params.Query, params.Header)):
            raise TypeError(f"{name}: only query and header parameters are read by hand")
        self.location = info.in_.value
        self.key = info.alias or (name.replace("_", "-") if self.location == "header" else name)
        self.declared = declared
        self.default = default
        self.openapi = _documented(name, declared, default)
        self._adapter: TypeAdapter[T] = TypeAdapter(declared)

    def read(self, request: Request) -> T:
        source = request.query_params if self.location == "query" else request.headers
        value = source.get(self.key)
        if value is None:
            return self.default
        try:
            return self._adapter.validate_python(value)
        except ValidationError as exc:
            raise RequestValidationError(
                [
                    {**error, "loc": (self.location, self.key, *error["loc"])}
                    for error in exc.errors(include_url=False)
                ]
            ) from None


def _documented(name: str, declared: Any, default: Any) -> dict[str, Any]:
    """The OpenAPI parameter FastAPI renders for ``name: declared = default``."""

    async def probe() -> None:
        """Never served: FastAPI reads its signature."""

    parameter = inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=declared
    )
    probe.__signature__ = inspect.Signature([parameter])  # type: ignore[attr-defined]
    app = FastAPI()
    app.get("/probe")(probe)
    [documented] = app.openapi()["paths"]["/probe"]["get"]["parameters"]
    if "$ref" in json.dumps(documented):
        # Its schema would be in the probe's components, not the serving app's.
        raise TypeError(f"{name}: a parameter read by hand must not refer to a model")
    return dict(documented)
