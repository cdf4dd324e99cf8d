"""The one spelling of an email address: what registration stores, login looks up and the
login brake counts, so that an address typed the same way always means the same account and
a lookalike of an existing one is that account (409 on registration).

``normalize_email`` takes what a person typed and returns the canonical form:

1. NFKC: compatibility characters are folded to their plain form (fullwidth U+FF41 is
   ``a``, a ligature ``ﬁ`` is ``fi``), and composed and decomposed accents are one;
2. syntax and length checked by email-validator (RFC 5321 and 5322, without quoted local
   parts or IP-address domains): at most 64 characters before the ``@``, a domain of at most
   253 octets once IDNA-encoded, at most 254 octets in all;
3. the domain in its Unicode form: ``xn--`` labels are decoded (``xn--mnchen-3ya.de`` is
   ``münchen.de``), each label mapped by IDNA's UTS 46 rules;
4. the whole address lower-cased and without surrounding spaces.

Special-use and reserved domains (``.test``, ``.invalid``, ``.localhost``, ``.local``,
``.onion``, ``.arpa``, and the ``example`` top-level domain) are refused: no mail can reach
them. ``example.com``, ``example.net`` and ``example.org`` are ordinary domains. The OpenAPI
document states the same rule (``EMAIL_PATTERN``).
"""

from __future__ import annotations

import hashlib
import unicodedata

from email_validator import EmailNotValidError, validate_email

# The lengths of RFC 5321 (4.5.3.1): the local part in characters as email-validator counts
# them, the whole address in UTF-8 octets.
LOCAL_PART_MAX_LENGTH = 64
EMAIL_MAX_LENGTH = 254
# Top-level domains no mail is delivered to (RFC 2606, 6761, 6762, 7686, and 3172 for arpa).
RESERVED_TOP_LEVEL_DOMAINS = ("arpa", "example", "invalid", "local", "localhost", "onion", "test")


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c}]" for c in word)


# Refused in the document too: a reserved top-level domain, whatever its case, with or
# without a final dot. JSON Schema patterns are not anchored: this one searches from the start.
EMAIL_PATTERN = (
    r"^(?![^@]*@(?:[^@]*\.)?(?:"
    + "|".join(_any_case(tld) for tld in RESERVED_TOP_LEVEL_DOMAINS)
    + r")\.?$)[^@]{1,64}@[^@]+$"
)


class InvalidEmail(ValueError):
    """Not an address this service accepts; the message says why."""


def normalize_email(typed: str) -> str:
    """The canonical form of ``typed``, or InvalidEmail."""
    folded = unicodedata.normalize("NFKC", typed.strip())
    try:
        checked = validate_email(
            folded,
            check_deliverability=False,
            allow_smtputf8=True,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            strict=True,
        )
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None
    domain = checked.domain.lower()
    if domain.rstrip(".").rpartition(".")[2] in RESERVED_TOP_LEVEL_DOMAINS:
        raise InvalidEmail(
            "The part after the @-sign is a special-use or reserved name that cannot be used "
            "with email."
        )
    canonical = unicodedata.normalize("NFC", f"{checked.local_part}@{domain}".lower())
    if len(canonical.encode()) > EMAIL_MAX_LENGTH:
        raise InvalidEmail(f"The email address is too long (at most {EMAIL_MAX_LENGTH} octets).")
    return canonical


def email_key(typed: str) -> str:
    """A stable key for what was typed as an email, valid or not (the login brake counts
    failures per key): the digest of the canonical form, or of the folded text when it is not
    an address; a digest, so that no address is written to the rate limiter."""
    try:
        spelled = normalize_email(typed)
    except InvalidEmail:
        spelled = "invalid:" + unicodedata.normalize("NFKC", typed.strip()).casefold()
    return hashlib.sha256(spelled.encode()).hexdigest()
