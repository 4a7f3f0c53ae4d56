"""TaskRouter-shaped identifiers: a two-letter prefix and 32 lowercase hex digits.

The engine keeps its own copy (a few lines) so that it never imports the messaging engine.
"""

import re
import uuid
from functools import partial

SID_PATTERN = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")


def new_sid(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def is_sid(value: str, prefix: str | None = None) -> bool:
    if not SID_PATTERN.match(value or ""):
        return False
    return prefix is None or value.startswith(prefix)


def sid_default(prefix: str) -> partial:
    """A model field default that migrations can serialise (a partial of a module function)."""
    return partial(new_sid, prefix)
