"""Text fields people and systems type: one rule for what a stored string may contain.

A name or a code is shown to people and written to databases, logs and other systems. Control
characters (C0, DEL, C1 such as U+0085; NUL, which Postgres cannot store in text), line and
paragraph separators, and the invisible characters that reorder or hide text around them
(bidi embeddings, overrides, isolates and marks, the byte-order mark) have no place there. So:

- ``PlainText``: free text such as a person's name; the characters above are refused, the
  joiners that some scripts and emoji need (U+200C, U+200D) are kept, surrounding spaces are
  dropped and at least one other character must remain.
- ``Code``: an identifier such as a SKU; printable characters and the space only, no
  format character at all, no surrounding space.

Each is ``Annotated`` metadata for a pydantic str whose OpenAPI document states the same rule as a
regular expression, spelled so that JSON Schema (ECMA 262) and Python read it alike: what the
document calls valid is what the validator accepts. The validators match that very expression.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

# C0 controls, DEL and the C1 controls (U+0085 among them).
CONTROLS = r"\x00-\x1f\x7f-\x9f"
# Line and paragraph separators; bidi marks, embeddings, overrides and isolates; the BOM.
INVISIBLE_LAYOUT = r"\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"
# The remaining format characters (soft hyphen, zero widths, invisible operators, ...),
# private use, non-characters, and the specials; not in a code, where nothing may hide.
OTHER_INVISIBLE = (
    r"\xad\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200d\u2060-\u2065"
    r"\u206a-\u206f\ue000-\uf8ff\ufdd0-\ufdef\ufff0-\ufffb\ufffe\uffff"
)
# What Python's str.strip() drops, apart from controls (already refused): the space, and others.
OTHER_SPACES = r"\xa0\u1680\u2000-\u200a\u202f\u205f\u3000"
SPACES = r"\x20" + OTHER_SPACES

TEXT_FORBIDDEN = CONTROLS + INVISIBLE_LAYOUT
CODE_FORBIDDEN = CONTROLS + INVISIBLE_LAYOUT + OTHER_INVISIBLE + OTHER_SPACES

# At least one character that is neither refused nor a space.
TEXT_PATTERN = f"^[^{TEXT_FORBIDDEN}]*[^{TEXT_FORBIDDEN}{SPACES}][^{TEXT_FORBIDDEN}]*$"
# No space first or last; inside, U+0020 is the only space.
CODE_PATTERN = f"^[^{CODE_FORBIDDEN} ](?:[^{CODE_FORBIDDEN}]*[^{CODE_FORBIDDEN} ])?$"

_TEXT_REFUSED = re.compile(f"[{TEXT_FORBIDDEN}]")
_CODE_REFUSED = re.compile(f"[{CODE_FORBIDDEN}]")
_TEXT = re.compile(TEXT_PATTERN)
_CODE = re.compile(CODE_PATTERN)


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def check_text(value: str) -> str:
    """``value`` if it is acceptable free text, else a ValueError naming the first refused
    character by code point (the character itself may be invisible or break a log line)."""
    refused = _TEXT_REFUSED.search(value)
    if refused is not None:
        raise ValueError(
            "must not contain control or invisible layout characters; "
            f"found {_describe(refused.group())} at position {refused.start()}"
        )
    if _TEXT.fullmatch(value) is None:
        raise ValueError("must contain at least one character other than spaces")
    return value


def check_code(value: str) -> str:
    """``value`` if it is an acceptable code: printable, no surrounding space."""
    refused = _CODE_REFUSED.search(value)
    if refused is not None:
        raise ValueError(
            "must contain printable characters only; "
            f"found {_describe(refused.group())} at position {refused.start()}"
        )
    if _CODE.fullmatch(value) is None:
        raise ValueError("must not be blank, nor start or end with a space")
    return value


@dataclass(frozen=True, slots=True)
class PlainText:
    """``Annotated[str, Field(max_length=...), PlainText()]``: free text. The length bounds
    count the text as sent; with ``strip`` it is kept without its surrounding spaces."""

    strip: bool = True

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._validate, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(schema), "pattern": TEXT_PATTERN}

    def _validate(self, value: str) -> str:
        check_text(value)
        return value.strip() if self.strip else value


@dataclass(frozen=True, slots=True)
class Code:
    """``Annotated[str, Field(max_length=...), Code()]``: an identifier such as a SKU."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(check_code, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(schema), "pattern": CODE_PATTERN}
