"""Split-based-on operators, with Twilio Studio's semantics (REFERENCE.md 8).

Pure functions: no database, no Django. The input (the split's rendered `input`) and the
condition's value are compared after `strip()` and `casefold()`. Time and date operators
ignore the input and test the current moment in the flow's time zone, as Studio does.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import regex

# A pattern written in the flow editor runs against customer text: bound its run time so a
# catastrophic backtracking pattern cannot stall a worker.
REGEX_TIMEOUT_SECONDS = 0.25

_NUMBER = regex.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_TIME = regex.compile(r"(\d{1,2}):(\d{2})")
_DATE = regex.compile(r"(\d{4})-(\d{2})-(\d{2})")


class UnknownOperator(ValueError):
    """A condition type that is not one of OPERATORS."""


def condition_matches(
    operator: str,
    test_value: str,
    argument: str,
    *,
    tz: ZoneInfo,
    now: datetime | None = None,
) -> bool:
    """Whether `test_value` (the split's input) satisfies `operator` with `argument` (the
    condition's value)."""
    try:
        check = _CHECKS[operator]
    except (KeyError, TypeError):
        raise UnknownOperator(f"Unknown split operator {operator!r}.") from None
    moment = now if now is not None else datetime.now(UTC)
    return check(_text(test_value), _text(argument), tz, moment)


def first_match(
    conditions: list[dict[str, Any]],
    test_value: str,
    *,
    tz: ZoneInfo,
    now: datetime | None = None,
    render: Callable[[str], str] | None = None,
) -> int | None:
    """Index of the first condition that matches `test_value` (first match wins), or None."""
    # One instant for every condition, so two time conditions cannot both miss a boundary.
    moment = now if now is not None else datetime.now(UTC)
    for index, condition in enumerate(conditions):
        value = _text(condition.get("value"))
        if render is not None:
            value = render(value)
        if condition_matches(condition.get("type", ""), test_value, value, tz=tz, now=moment):
            return index
    return None


def check_condition_value(operator: str, value: Any) -> str | None:
    """A human message when a literal `value` cannot work with `operator`, else None.

    Template values (containing `{{` or `{%`) are only known when the flow runs: None."""
    if operator not in OPERATORS:
        return f"Unknown split operator {operator!r}."
    text = _text(value)
    if "{{" in text or "{%" in text:
        return None
    if operator == "regex":
        try:
            regex.compile(text.strip(), regex.IGNORECASE)
        except regex.error as error:
            return f"The regular expression {text!r} does not compile: {error}."
        return None
    if operator in ("is_before_time", "is_after_time") and _parse_time(text) is None:
        return f"The time {text!r} is not a time of day as HH:MM (24-hour, 00:00 to 23:59)."
    if operator in ("is_before_date", "is_after_date") and _parse_date(text) is None:
        return f"The date {text!r} is not a real date as YYYY-MM-DD."
    if operator in ("less_than", "greater_than") and _parse_number(text) is None:
        return f"The value {text!r} is not a number."
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _norm(value: str) -> str:
    return value.strip().casefold()


def _items(value: str) -> set[str]:
    return {item for item in (_norm(part) for part in value.split(",")) if item}


def _parse_number(text: str) -> Decimal | None:
    # A strict pattern: Decimal alone would also accept "NaN", "Infinity" and "1_000".
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _parse_time(text: str) -> time | None:
    found = _TIME.fullmatch(text.strip())
    if not found:
        return None
    hour, minute = int(found[1]), int(found[2])
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _parse_date(text: str) -> date | None:
    found = _DATE.fullmatch(text.strip())
    if not found:
        return None
    try:
        return date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:  # 2026-02-30
        return None


def _regex(value: str, pattern: str) -> bool:
    try:
        return (
            regex.fullmatch(
                pattern.strip(), value.strip(), regex.IGNORECASE, timeout=REGEX_TIMEOUT_SECONDS
            )
            is not None
        )
    except (regex.error, TimeoutError):
        return False


def _compare(value: str, argument: str, *, less: bool) -> bool:
    left, right = _parse_number(value), _parse_number(argument)
    if left is None or right is None:
        return False
    return left < right if less else left > right


def _local_minute(now: datetime, tz: ZoneInfo) -> time:
    local = now.astimezone(tz)
    return time(local.hour, local.minute)


def _time_check(argument: str, now: datetime, tz: ZoneInfo, *, before: bool) -> bool:
    # Minute resolution: at 21:30:40 the time is neither before nor after "21:30".
    limit = _parse_time(argument)
    if limit is None:
        return False
    current = _local_minute(now, tz)
    return current < limit if before else current > limit


def _date_check(argument: str, now: datetime, tz: ZoneInfo, *, before: bool) -> bool:
    limit = _parse_date(argument)
    if limit is None:
        return False
    today = now.astimezone(tz).date()
    return today < limit if before else today > limit


_Check = Callable[[str, str, ZoneInfo, datetime], bool]

_CHECKS: dict[str, _Check] = {
    "equal_to": lambda v, a, tz, now: _norm(v) == _norm(a),
    "not_equal_to": lambda v, a, tz, now: _norm(v) != _norm(a),
    "matches_any_of": lambda v, a, tz, now: _norm(v) in _items(a),
    "does_not_match_any_of": lambda v, a, tz, now: _norm(v) not in _items(a),
    "is_blank": lambda v, a, tz, now: not v.strip(),
    "is_not_blank": lambda v, a, tz, now: bool(v.strip()),
    "regex": lambda v, a, tz, now: _regex(v, a),
    "contains": lambda v, a, tz, now: _norm(a) in _norm(v),
    "does_not_contain": lambda v, a, tz, now: _norm(a) not in _norm(v),
    "starts_with": lambda v, a, tz, now: _norm(v).startswith(_norm(a)),
    "does_not_start_with": lambda v, a, tz, now: not _norm(v).startswith(_norm(a)),
    "less_than": lambda v, a, tz, now: _compare(v, a, less=True),
    "greater_than": lambda v, a, tz, now: _compare(v, a, less=False),
    "is_before_time": lambda v, a, tz, now: _time_check(a, now, tz, before=True),
    "is_after_time": lambda v, a, tz, now: _time_check(a, now, tz, before=False),
    "is_before_date": lambda v, a, tz, now: _date_check(a, now, tz, before=True),
    "is_after_date": lambda v, a, tz, now: _date_check(a, now, tz, before=False),
}

# The 17 condition types Studio offers.
OPERATORS: frozenset[str] = frozenset(_CHECKS)
