"""Customer and sender addresses: parse, validate and normalise (pure; no Django, no DB).

An address names both a channel and an identity on it:

- ``+14155550100`` — SMS/MMS, a phone number in E.164 format;
- ``whatsapp:+14155550100`` — WhatsApp, the same phone number behind a prefix;
- ``messenger:1234567890`` — Facebook Messenger, a page-scoped id (PSID), digits only.

Phone numbers are checked with ``phonenumbers`` (Google's libphonenumber metadata) so that a
typo is refused at the edge with a readable message instead of failing later at a provider.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import phonenumbers

__all__ = [
    "Address",
    "AddressError",
    "Channel",
    "area_code_of",
    "canonical_address",
    "country_of",
    "parse_address",
    "parse_phone_number",
]

WHATSAPP_PREFIX = "whatsapp:"
MESSENGER_PREFIX = "messenger:"

# A "+" then digits, allowing the separators people type. Letters are refused on purpose:
# phonenumbers would otherwise turn vanity numbers ("+1-800-FLOWERS") and "ext. 5" into
# something, and a customer address must be exactly what the customer gave us.
_PHONE_CHARS = re.compile(r"\+[0-9 ().\-]+")
_PSID = re.compile(r"[0-9]{1,32}")
_NANP_COUNTRY_CODE = 1
# phonenumbers reports "001" for non-geographic numbers (+800, +882, ...): not an ISO country.
_NON_GEOGRAPHIC = {"001", "ZZ"}


class Channel(StrEnum):
    SMS = "sms"
    WHATSAPP = "whatsapp"
    MESSENGER = "messenger"


class AddressError(ValueError):
    """The input is not a usable address; the message names the input and says why."""


@dataclass(frozen=True)
class Address:
    channel: Channel
    # The canonical string, the one we store and compare: "+14155550100",
    # "whatsapp:+14155550100", "messenger:1234567890".
    value: str
    e164: str | None  # the phone number for sms/whatsapp, None for messenger
    country: str | None  # ISO 3166 alpha-2, None for messenger or a non-geographic number
    area_code: str | None  # NANP (country code 1) three-digit area code, else None


def canonical_address(raw: str) -> str:
    """The stored form of an address as typed: canonical when it parses as one, else stripped.

    Short codes and alphanumeric sender ids are not addresses `parse_address` accepts; they
    are stored as typed, so lookups by From/To use this instead of parsing themselves.
    """
    text = (raw or "").strip()
    try:
        return parse_address(text).value
    except AddressError:
        return text


def parse_address(raw: str) -> Address:
    """Parse a customer or sender address into its canonical form, or raise AddressError."""
    if not isinstance(raw, str):
        raise AddressError(f"{raw!r} is not a valid address (expected a string)")
    text = raw.strip()
    lowered = text.lower()
    if lowered.startswith(WHATSAPP_PREFIX):
        number = _parse_phone(text[len(WHATSAPP_PREFIX) :].strip(), original=raw)
        return _phone_address(Channel.WHATSAPP, number, value=WHATSAPP_PREFIX + _e164(number))
    if lowered.startswith(MESSENGER_PREFIX):
        psid = text[len(MESSENGER_PREFIX) :].strip()
        if not _PSID.fullmatch(psid):
            raise AddressError(
                f"{raw!r} is not a valid Messenger address "
                "(expected 'messenger:' followed by 1 to 32 digits)"
            )
        return Address(Channel.MESSENGER, MESSENGER_PREFIX + psid, None, None, None)
    number = _parse_phone(text, original=raw)
    return _phone_address(Channel.SMS, number, value=_e164(number))


def parse_phone_number(raw: str) -> str:
    """Return ``raw`` as an E.164 string ("+14155550100"), or raise AddressError.

    Used for customer numbers and for the phone numbers of our own senders alike.
    """
    if not isinstance(raw, str):
        raise AddressError(f"{raw!r} is not a valid phone number (expected a string)")
    return _e164(_parse_phone(raw.strip(), original=raw))


def country_of(e164: str) -> str | None:
    """ISO 3166 alpha-2 country of a phone number, or None when it is not one we accept.

    Lenient on purpose (never raises): callers use it on whatever a sender row holds,
    which may be an alphanumeric sender id.
    """
    number = _try_parse(e164)
    return None if number is None else _country(number)


def area_code_of(e164: str) -> str | None:
    """NANP three-digit area code of a +1 number ("+14155550100" → "415"), else None."""
    number = _try_parse(e164)
    return None if number is None else _area_code(number)


# -- internals ----------------------------------------------------------------------------


def _phone_address(channel: Channel, number: phonenumbers.PhoneNumber, *, value: str) -> Address:
    return Address(channel, value, _e164(number), _country(number), _area_code(number))


def _parse_phone(text: str, *, original: str) -> phonenumbers.PhoneNumber:
    if not text.startswith("+"):
        raise AddressError(
            f"{original!r} is not a valid phone number in E.164 format "
            "(it must start with '+' and the country code)"
        )
    invalid = AddressError(f"{original!r} is not a valid phone number in E.164 format")
    if not _PHONE_CHARS.fullmatch(text):
        raise invalid
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise invalid from None
    if not (phonenumbers.is_valid_number(number) or _is_fictional_nanp(number)):
        raise invalid
    return number


@lru_cache(maxsize=4096)
def _try_parse(text: str) -> phonenumbers.PhoneNumber | None:
    # Cached: sender choice asks for the area code of every pool member on every send.
    try:
        return _parse_phone(text.strip(), original=text)
    except AddressError:
        return None


def _is_fictional_nanp(number: phonenumbers.PhoneNumber) -> bool:
    """NXX-555-0100..0199: the NANP range reserved for fiction, used by demo data and tests.

    Accepted even where the metadata calls the number invalid (e.g. an unassigned area
    code), as long as it has a plausible shape, so fixtures never depend on the
    phonenumbers release installed. Real traffic to these numbers goes nowhere.
    """
    if number.country_code != _NANP_COUNTRY_CODE or not phonenumbers.is_possible_number(number):
        return False
    national = phonenumbers.national_significant_number(number)
    return len(national) == 10 and national[3:6] == "555" and national[6:8] == "01"


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _country(number: phonenumbers.PhoneNumber) -> str | None:
    region = phonenumbers.region_code_for_number(number)
    if region is None and _is_fictional_nanp(number):
        # Invalid per metadata, so no region: fall back to the country code's main region.
        region = phonenumbers.region_code_for_country_code(number.country_code)
    return None if region is None or region in _NON_GEOGRAPHIC else region


def _area_code(number: phonenumbers.PhoneNumber) -> str | None:
    if number.country_code != _NANP_COUNTRY_CODE:
        return None
    return phonenumbers.national_significant_number(number)[:3]
