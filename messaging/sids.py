"""Twilio-shaped identifiers: a two-letter prefix and 32 lowercase hex digits (REFERENCE.md 1)."""

import re
import uuid

SID_PATTERN = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")


def new_sid(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def is_sid(value: str, prefix: str | None = None) -> bool:
    if not SID_PATTERN.match(value or ""):
        return False
    return prefix is None or value.startswith(prefix)


def sid_default(prefix: str):
    """A callable for a model field default; a named function so migrations can serialise it."""
    return {
        "AC": _ac,
        "SK": _sk,
        "MG": _mg,
        "PN": _pn,
        "CH": _ch,
        "ME": _me,
        "CO": _co,
        "PA": _pa,
    }[prefix]


def _ac() -> str:
    return new_sid("AC")


def _sk() -> str:
    return new_sid("SK")


def _mg() -> str:
    return new_sid("MG")


def _pn() -> str:
    return new_sid("PN")


def _ch() -> str:
    return new_sid("CH")


def _me() -> str:
    return new_sid("ME")


def _co() -> str:
    return new_sid("CO")


def _pa() -> str:
    return new_sid("PA")
