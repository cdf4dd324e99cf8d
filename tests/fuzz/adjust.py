"""What both schemathesis runs (in process and over HTTP) change in a generated case."""

from typing import Any


def whole_floats_as_integers(body: Any) -> None:
    """JSON Schema calls ``2.0`` an integer and schemathesis sends it so; the API takes an
    order ``quantity`` only as a JSON integer, which no JSON Schema keyword can state (the
    two spellings are one JSON Schema value). Such a quantity is sent as ``2``: a valid case
    stays valid, an invalid one invalid."""
    items = body.get("items") if isinstance(body, dict) else None
    for item in items if isinstance(items, list) else ():
        quantity = item.get("quantity") if isinstance(item, dict) else None
        if isinstance(quantity, float) and quantity.is_integer():
            item["quantity"] = int(quantity)
