"""JSON request bodies read exactly: a number keeps the digits it was sent with.

The standard reader turns every JSON number with a fraction or an exponent into a float:
``1e-400`` becomes ``0.0``, ``-0.0`` keeps a sign that a price must not have, ``2.0`` and
``1e2`` become numbers that lax validation turns into integers, and ``NaN`` or ``Infinity``,
which are not JSON, are let in. Routes of an ``APIRouter(route_class=ExactJsonRoute)`` read
their body with ``read_exact_json`` instead:

- a number with a fraction or an exponent is a ``Decimal`` of exactly its digits, and so is
  ``-0`` (an ``int`` has no negative zero); any other integer is an ``int`` of at most
  ``MAX_INTEGER_DIGITS`` digits;
- ``NaN``, ``Infinity`` and ``-Infinity`` are refused as invalid JSON (422 ``json_invalid``).

A schema then says which kinds it takes: a ``StrictInt`` refuses the Decimal ``2.0``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

# Far more than any field takes, far less than the interpreter's own limit on int().
MAX_INTEGER_DIGITS = 100


def _integer(text: str) -> int | Decimal:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise json.JSONDecodeError(f"integer of more than {MAX_INTEGER_DIGITS} digits", text, 0)
    if text == "-0":
        return Decimal(text)
    return int(text)


def _constant(text: str) -> Any:
    raise json.JSONDecodeError(f"{text} is not JSON", text, 0)


# One decoder for every body: json.loads with options builds a new one per call.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=_integer, parse_constant=_constant)


def read_exact_json(body: bytes) -> Any:
    # As json.loads reads bytes: UTF-8, -16 or -32 told by the first bytes.
    return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))


class ExactJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = read_exact_json(await self.body())
        return self._json


class ExactJsonRoute(APIRoute):
    """A route whose JSON body is read by ``read_exact_json``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def exact(request: Request) -> Response:
            return await handle(ExactJsonRequest(request.scope, request.receive))

        return exact
