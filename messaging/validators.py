"""Validation shared by the admin, the APIs and the services."""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

ALPHANUMERIC_ID = re.compile(r"^[A-Za-z0-9 &+\-_.]{1,11}$")
SHORT_CODE = re.compile(r"^[0-9]{3,8}$")
PAGE_ID = re.compile(r"^[0-9]{1,32}$")
ENV_PREFIX = re.compile(r"^[A-Z][A-Z0-9_]{0,39}$")
WEBHOOK_SCHEMES = frozenset({"http", "https"})


def validate_webhook_url(value: str) -> None:
    if not value:
        return
    parts = urlsplit(value)
    if parts.scheme.lower() not in WEBHOOK_SCHEMES or not parts.netloc:
        raise ValidationError(
            _("%(url)s is not an http:// or https:// URL.") % {"url": value}, code="url_scheme"
        )


def validate_env_prefix(value: str) -> None:
    if value and not ENV_PREFIX.match(value):
        raise ValidationError(
            _("Use upper-case letters, digits and underscores, starting with a letter."),
            code="env_prefix",
        )


def validate_country(value: str) -> None:
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(
            _("%(code)s is not an ISO 3166 country code.") % {"code": value}, code="country"
        )


@dataclass(frozen=True)
class NormalizedSender:
    address: str
    country: str | None


def _phone(raw: str) -> tuple[str, str | None]:
    from messaging.addresses import AddressError, country_of, parse_phone_number

    try:
        e164 = parse_phone_number(raw)
    except AddressError as exc:
        raise ValidationError(str(exc), code="phone") from exc
    return e164, country_of(e164)


def normalize_sender_address(kind: str, raw: str) -> NormalizedSender:
    """Canonical address for a sender of `kind`, or ValidationError saying what is wrong."""
    raw = (raw or "").strip()
    if kind in ("long_code", "toll_free"):
        e164, country = _phone(raw)
        return NormalizedSender(e164, country)
    if kind == "short_code":
        if not SHORT_CODE.match(raw):
            raise ValidationError(_("A short code is 3 to 8 digits."), code="short_code")
        return NormalizedSender(raw, None)
    if kind == "alphanumeric":
        if not ALPHANUMERIC_ID.match(raw):
            raise ValidationError(
                _(
                    "An alphanumeric sender id is 1 to 11 characters: letters, digits, "
                    "spaces and + - _ & ."
                ),
                code="alphanumeric",
            )
        if not any(ch.isalpha() for ch in raw):
            raise ValidationError(
                _("An alphanumeric sender id needs at least one letter."), code="alphanumeric"
            )
        return NormalizedSender(raw, None)
    if kind == "whatsapp":
        number = raw[len("whatsapp:") :] if raw.lower().startswith("whatsapp:") else raw
        e164, country = _phone(number)
        return NormalizedSender(f"whatsapp:{e164}", country)
    if kind == "messenger_page":
        page = raw[len("messenger:") :] if raw.lower().startswith("messenger:") else raw
        if not PAGE_ID.match(page):
            raise ValidationError(_("A Messenger page id is digits only."), code="page_id")
        return NormalizedSender(f"messenger:{page}", None)
    raise ValidationError(_("Unknown sender kind %(kind)s.") % {"kind": kind}, code="kind")


def refuse_nul(**fields) -> None:
    """PostgreSQL cannot store U+0000 in text (nor compare with it): refuse it as input, naming
    the field, before any query. Values may be strings, or lists/dicts of strings."""
    from messaging.errors import MessagingError

    for name, value in fields.items():
        if isinstance(value, dict):
            texts = [*value.keys(), *value.values()]
        elif isinstance(value, list | tuple):
            texts = [
                text for item in value for text in (item if isinstance(item, tuple) else (item,))
            ]
        else:
            texts = [value]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise MessagingError(20422, f"{name} contains a NUL character.", name)
