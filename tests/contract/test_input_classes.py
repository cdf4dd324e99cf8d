"""Each class of hostile input, over HTTP, against every deployment (SQLite in process,
Postgres behind real processes): one answer per class, never a 500, nothing stored."""

import json
import uuid
from typing import Any

import pytest

from tests.support.api import PASSWORD, Account, Api, assert_problem, order_body, unique_email

# --- text fields: control and invisible layout characters --------------------------------

CONTROL = {
    "NUL": "\x00",
    "C0 escape": "\x1b",
    "DEL": "\x7f",
    "C1 next line": "\x85",
    "line separator": "\u2028",
    "right-to-left override": "\u202e",
    "left-to-right isolate": "\u2066",
    "byte-order mark": "\ufeff",
}


def _message(body: dict[str, Any]) -> str:
    return " ".join(str(error["msg"]) for error in body["errors"])


@pytest.mark.parametrize("name", sorted(CONTROL))
async def test_a_control_character_in_a_full_name_is_422(
    api: Api, shared_account: Account, name: str
) -> None:
    char = CONTROL[name]
    email = unique_email()
    body = assert_problem(
        await api.register(email, full_name=f"Ada{char}Lovelace"), 422, "validation_error"
    )
    assert body["errors"][0]["loc"] == ["body", "full_name"]
    assert f"U+{ord(char):04X}" in _message(body)
    assert (await api.login(email)).status_code == 401  # nothing was stored

    patch = await api.users.patch(
        "/users/me", json={"full_name": f"{char}Ada"}, headers=shared_account.auth
    )
    assert_problem(patch, 422, "validation_error")
    assert (await api.me(shared_account.token)).json()["full_name"] == "Ada Lovelace"


async def test_names_keep_joiners_and_lose_surrounding_spaces(api: Api) -> None:
    # U+200D joins emoji and some scripts' letters: it is text, not a control.
    name = "  Zoë \u200d\U0001f469\u200d\U0001f52c  "
    response = await api.register(full_name=name)
    assert response.status_code == 201, response.text
    assert response.json()["full_name"] == name.strip()


@pytest.mark.parametrize("name", sorted(CONTROL))
async def test_a_control_character_in_the_login_username_is_422_not_500(
    api: Api, name: str
) -> None:
    response = await api.login(unique_email() + CONTROL[name])
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "username"]


async def test_a_username_that_is_no_address_is_401(api: Api) -> None:
    for typed in ("not an address", "a@b", "x" * 65 + "@example.com", "a@example.test"):
        assert_problem(await api.login(typed), 401, "invalid_credentials")


# --- one email normalisation ------------------------------------------------------------


def _lookalikes(local: str) -> list[str]:
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in local)
    return [
        f"{local.upper()}@EXAMPLE.COM",
        f"  {local}@example.com  ",
        f"{fullwidth}@example.com",  # NFKC folds fullwidth letters and digits
        f"{local}@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",  # fullwidth "example"
    ]


async def test_lookalikes_of_an_existing_address_are_409_and_log_in(api: Api) -> None:
    local = f"ada{uuid.uuid4().hex[:8]}"
    registered = await api.register(f"{local}@example.com")
    assert registered.status_code == 201, registered.text
    for variant in _lookalikes(local):
        body = assert_problem(await api.register(variant), 409, "email_taken")
        assert body["detail"] == "An account with this email already exists."
        assert (await api.login(variant)).status_code == 200, variant


async def test_an_idna_domain_is_one_address_in_both_spellings(api: Api) -> None:
    local = f"jörg{uuid.uuid4().hex[:8]}"
    registered = await api.register(f"{local}@xn--mnchen-3ya.de")
    assert registered.status_code == 201, registered.text
    assert registered.json()["email"] == f"{local}@münchen.de"  # the canonical form
    assert_problem(await api.register(f"{local}@MÜNCHEN.de"), 409, "email_taken")
    decomposed = f"{local}@mu\u0308nchen.de"  # NFD
    assert_problem(await api.register(decomposed), 409, "email_taken")
    for spelled in (f"{local}@münchen.de", f"{local}@xn--mnchen-3ya.de", decomposed):
        assert (await api.login(spelled)).status_code == 200, spelled


@pytest.mark.parametrize(
    ("email", "why"),
    [
        ("a" * 65 + "@example.com", "before the @-sign"),
        ("a@" + "b" * 64 + ".com", "periods cannot be separated"),
        ("a@" + ".".join(["b" * 60] * 5) + ".com", "at most 254"),
        ("a" * 64 + "@" + ".".join(["b" * 62] * 3) + ".com", "at most 254"),
        ("ada@example.test", "special-use or reserved"),
        ("ada@mail.example", "special-use or reserved"),
        ("ada@EXAMPLE.INVALID", "special-use or reserved"),
        ("ada@localhost", "period"),
        ("ada@host.localhost", "special-use or reserved"),
        ('"ada lovelace"@example.com', "Quoting"),
        ("ada@[127.0.0.1]", "bracketed"),
    ],
)
async def test_emails_outside_the_rules_are_422(api: Api, email: str, why: str) -> None:
    body = assert_problem(await api.register(email), 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "email"]
    assert why in _message(body), _message(body)


async def test_the_document_states_the_email_rules(api: Api) -> None:
    document = (await api.users.get("/openapi.json")).json()
    email = document["components"]["schemas"]["UserCreate"]["properties"]["email"]
    assert email["format"] == "email"
    assert email["maxLength"] == 254
    assert "[Tt][Ee][Ss][Tt]" in email["pattern"]
    assert "{1,64}@" in email["pattern"]


async def test_the_longest_valid_address_is_accepted(api: Api) -> None:
    local = uuid.uuid4().hex + "a" * 32  # 64 characters
    email = f"{local}@" + ".".join(["b" * 61] * 3) + ".com"
    assert len(email) == 254
    response = await api.register(email)
    assert response.status_code == 201, response.text


# --- strict order input -------------------------------------------------------------------


async def _order_count(api: Api, account: Account) -> int:
    return len((await api.list_orders(account.token, limit=100)).json()["items"])


def _raw_order(item: str, currency: str = "EUR") -> str:
    return f'{{"currency": "{currency}", "items": [{item}]}}'


async def _post_raw(api: Api, token: str, raw: str) -> Any:
    return await api.orders.post(
        "/orders",
        content=raw.encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


@pytest.mark.parametrize("quantity", ["true", '"3"', "2.0", "1e2", "3.5", "null", "[1]"])
async def test_quantity_is_a_json_integer_only(
    api: Api, shared_account: Account, quantity: str
) -> None:
    before = await _order_count(api, shared_account)
    raw = _raw_order(f'{{"sku": "A", "quantity": {quantity}, "unit_price": "1.00"}}')
    body = assert_problem(await _post_raw(api, shared_account.token, raw), 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "items", 0, "quantity"]
    assert await _order_count(api, shared_account) == before


@pytest.mark.parametrize(
    ("price", "why"),
    [
        ("-0.0", "negative zero"),
        ("-0", "negative zero"),
        ('"-0.00"', "decimal string"),
        ("1e-400", "decimals"),
        ("1e-5", "decimals"),
        ("1e400", "at most"),
        ("NaN", "JSON decode"),
        ("Infinity", "JSON decode"),
        ("-Infinity", "JSON decode"),
        ("1" * 101, "JSON decode"),
        ("true", "decimal string"),
    ],
)
async def test_prices_are_exact_non_negative_numbers(
    api: Api, shared_account: Account, price: str, why: str
) -> None:
    before = await _order_count(api, shared_account)
    raw = _raw_order(f'{{"sku": "A", "quantity": 1, "unit_price": {price}}}')
    body = assert_problem(await _post_raw(api, shared_account.token, raw), 422, "validation_error")
    assert why in _message(body), _message(body)
    assert await _order_count(api, shared_account) == before


@pytest.mark.parametrize(
    ("currency", "price", "ok"),
    [
        ("JPY", '"1500"', True),
        ("JPY", "1500", True),
        ("JPY", "1500.0", True),  # the number 1500, as JSON Schema's multipleOf counts it
        ("JPY", '"1.5"', False),
        ("JPY", '"1500.0"', False),  # written with a decimal JPY does not have
        ("JPY", "1.5", False),
        ("EUR", '"12.50"', True),
        ("EUR", "12.5", True),
        ("EUR", '"12.505"', False),
        ("EUR", "12.505", False),
        ("KWD", '"1.125"', True),
        ("KWD", '"1.1255"', False),
        ("CLF", '"1.1255"', True),  # four minor units
    ],
)
async def test_prices_have_at_most_the_currencys_minor_units(
    api: Api, shared_account: Account, currency: str, price: str, ok: bool
) -> None:
    raw = _raw_order(f'{{"sku": "A", "quantity": 2, "unit_price": {price}}}', currency)
    response = await _post_raw(api, shared_account.token, raw)
    if ok:
        assert response.status_code == 201, response.text
        assert response.json()["currency"] == currency
        expected = json.loads(price.strip('"')) if price.startswith('"') else json.loads(price)
        assert float(response.json()["items"][0]["unit_price"]) == float(expected)
    else:
        body = assert_problem(response, 422, "validation_error")
        assert f"{currency} prices have at most" in _message(body), _message(body)


@pytest.mark.parametrize("currency", ["XYZ", "XAU", "XXX", "XTS", "EURO", "eur", ""])
async def test_a_currency_is_an_iso_4217_code_with_minor_units(
    api: Api, shared_account: Account, currency: str
) -> None:
    response = await api.create_order(shared_account.token, order_body(currency=currency))
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "currency"]


async def test_every_listed_currency_is_in_the_document(api: Api) -> None:
    document = (await api.orders.get("/openapi.json")).json()
    currency = document["components"]["schemas"]["OrderCreate"]["properties"]["currency"]
    assert {"EUR", "JPY", "KWD", "USD", "CHF"} <= set(currency["enum"])
    assert not {"XAU", "XXX", "XTS"} & set(currency["enum"])


@pytest.mark.parametrize(
    "sku",
    [" ", "   ", " A", "A ", "A\u0085B", "A\u202eB", "\u200bA", "A\u00a0B", "A\x00", "\ufeffA"],
)
async def test_a_sku_is_printable_and_not_blank(
    api: Api, shared_account: Account, sku: str
) -> None:
    before = await _order_count(api, shared_account)
    items = [{"sku": sku, "quantity": 1, "unit_price": "1.00"}]
    response = await api.create_order(shared_account.token, order_body(items=items))
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "items", 0, "sku"]
    assert await _order_count(api, shared_account) == before


async def test_a_sku_may_hold_inner_spaces_and_any_script(
    api: Api, shared_account: Account
) -> None:
    items = [{"sku": "BOOK 1 \u2013 \u65e5\u672c ø", "quantity": 1, "unit_price": "1.00"}]
    response = await api.create_order(shared_account.token, order_body(items=items))
    assert response.status_code == 201, response.text
    assert response.json()["items"][0]["sku"] == "BOOK 1 \u2013 \u65e5\u672c ø"


async def test_no_login_is_needed_to_get_a_422_instead_of_a_500(api: Api) -> None:
    """The case that used to be a 500 on Postgres, without an account."""
    response = await api.users.post(
        "/auth/token", data={"username": "a\x00@example.com", "password": PASSWORD}
    )
    assert_problem(response, 422, "validation_error")
