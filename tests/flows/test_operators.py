"""Split-based-on operators: Studio's semantics, one operator at a time."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from contactcenter.flows.operators import (
    OPERATORS,
    UnknownOperator,
    check_condition_value,
    condition_matches,
    first_match,
)

BOGOTA = ZoneInfo("America/Bogota")
# 02:30 UTC on March 1st is 21:30 on February 28th in Bogotá (UTC-5).
NOW = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)


def matches(operator: str, value: str, argument: str, *, tz=BOGOTA, now=NOW) -> bool:
    return condition_matches(operator, value, argument, tz=tz, now=now)


def test_there_are_seventeen_operators():
    assert len(OPERATORS) == 17
    assert "regex" in OPERATORS
    assert "is_after_date" in OPERATORS


def test_unknown_operator_raises():
    with pytest.raises(UnknownOperator):
        matches("similar_to", "a", "a")
    assert issubclass(UnknownOperator, ValueError)


@pytest.mark.parametrize(
    ("value", "argument", "expected"),
    [
        ("yes", "yes", True),
        ("  YES ", "yes", True),
        ("yes", " Yes ", True),
        ("Straße", "STRASSE", True),  # casefold, not lower
        ("yes", "no", False),
        ("yes please", "yes", False),
        ("", "", True),
    ],
)
def test_equal_to(value, argument, expected):
    assert matches("equal_to", value, argument) is expected
    assert matches("not_equal_to", value, argument) is not expected


@pytest.mark.parametrize(
    ("value", "argument", "expected"),
    [
        ("si", "si, sí,yes , y", True),
        (" YES ", "si, sí,yes , y", True),
        ("Y", "si,sí,yes,y", True),
        ("s", "si, sí, yes", False),  # equality with an item, not containment
        ("yes y", "yes, y", False),
        ("", "a,,b, ,", False),  # empty items are ignored
        ("no", "", False),
    ],
)
def test_matches_any_of(value, argument, expected):
    assert matches("matches_any_of", value, argument) is expected
    assert matches("does_not_match_any_of", value, argument) is not expected


@pytest.mark.parametrize(("value", "blank"), [("", True), ("   \n\t", True), (" x ", False)])
def test_is_blank_ignores_the_value(value, blank):
    assert matches("is_blank", value, "anything") is blank
    assert matches("is_not_blank", value, "anything") is not blank


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        ("12345678", r"\d{6,10}", True),
        ("  12345678  ", r"\d{6,10}", True),  # the input is trimmed
        ("ABC", "[a-c]+", True),  # case-insensitive
        ("abc", "[A-C]+", True),
        ("doc 12345678", r"\d{6,10}", False),  # a partial match is not a match
        ("12345678x", r"\d+", False),
        ("hello", "hel", False),
        ("anything", "([a-z", False),  # an invalid pattern never raises
    ],
)
def test_regex_matches_the_whole_trimmed_input(value, pattern, expected):
    assert matches("regex", value, pattern) is expected


def test_regex_class_escapes_are_not_casefolded():
    # \D must stay "not a digit" even though the comparison is case-insensitive.
    assert matches("regex", "abc", r"\D+") is True
    assert matches("regex", "123", r"\D+") is False


@pytest.mark.parametrize(
    ("value", "argument", "expected"),
    [
        ("Quiero CANCELAR mi cita", "cancelar", True),
        ("quiero cancelar", " CANCELAR ", True),
        ("agendar", "cancelar", False),
    ],
)
def test_contains(value, argument, expected):
    assert matches("contains", value, argument) is expected
    assert matches("does_not_contain", value, argument) is not expected


@pytest.mark.parametrize(
    ("value", "argument", "expected"),
    [
        ("  Hola, buenos días", "hola", True),
        ("HOLA", "ho", True),
        ("ahola", "hola", False),
    ],
)
def test_starts_with(value, argument, expected):
    assert matches("starts_with", value, argument) is expected
    assert matches("does_not_start_with", value, argument) is not expected


@pytest.mark.parametrize(
    ("value", "argument", "less", "greater"),
    [
        ("5", "10", True, False),  # numbers, not text ("5" > "10" as text)
        (" 10 ", "10", False, False),
        ("10.5", "10", False, True),
        ("-3", "2", True, False),
        ("1e3", "999", False, True),
        ("0.1", ".2", True, False),
    ],
)
def test_less_and_greater_than_compare_numbers(value, argument, less, greater):
    assert matches("less_than", value, argument) is less
    assert matches("greater_than", value, argument) is greater


@pytest.mark.parametrize(
    ("value", "argument"),
    [("abc", "10"), ("5", "ten"), ("", "1"), ("NaN", "1"), ("Infinity", "1"), ("1,5", "2")],
)
def test_less_and_greater_than_are_false_when_not_numbers(value, argument):
    assert matches("less_than", value, argument) is False
    assert matches("greater_than", value, argument) is False


def test_time_uses_the_current_time_in_the_flows_time_zone():
    # Local time is 21:30 in Bogotá; in UTC it would be 02:30.
    assert matches("is_before_time", "", "22:00") is True
    assert matches("is_after_time", "", "22:00") is False
    assert matches("is_after_time", "", "21:00") is True
    assert matches("is_before_time", "", "03:00") is False  # would be True in UTC
    assert matches("is_before_time", "", "03:00", tz=ZoneInfo("UTC")) is True


def test_time_ignores_the_input_and_is_strict_at_the_minute():
    assert matches("is_before_time", "23:59", "21:30") is False
    assert matches("is_after_time", "00:00", "21:30") is False
    late = datetime(2026, 3, 1, 2, 30, 45, tzinfo=UTC)  # 21:30:45 local
    assert matches("is_after_time", "", "21:30", now=late) is False
    assert matches("is_after_time", "", "21:29", now=late) is True


@pytest.mark.parametrize("argument", ["25:00", "12:60", "noon", "", "12:3", "12.30"])
def test_invalid_times_never_match(argument):
    assert matches("is_before_time", "", argument) is False
    assert matches("is_after_time", "", argument) is False


def test_date_uses_the_current_date_in_the_flows_time_zone():
    # Local date is 2026-02-28 in Bogotá; the UTC date is already 2026-03-01.
    assert matches("is_before_date", "", "2026-03-01") is True
    assert matches("is_after_date", "", "2026-02-27") is True
    assert matches("is_after_date", "", "2026-02-28") is False  # strictly after
    assert matches("is_before_date", "", "2026-02-28") is False  # strictly before
    assert matches("is_before_date", "", "2026-03-01", tz=ZoneInfo("UTC")) is False


@pytest.mark.parametrize("argument", ["2026-02-30", "2026-13-01", "28/02/2026", "", "tomorrow"])
def test_invalid_dates_never_match(argument):
    assert matches("is_before_date", "", argument) is False
    assert matches("is_after_date", "", argument) is False


def test_now_defaults_to_the_current_time():
    assert condition_matches("is_after_date", "", "2000-01-01", tz=BOGOTA) is True
    assert condition_matches("is_before_date", "", "2000-01-01", tz=BOGOTA) is False


def _condition(operator: str, value: str) -> dict:
    return {
        "friendly_name": f"If value {operator} {value}",
        "arguments": ["{{widgets.ask.inbound.Body}}"],
        "type": operator,
        "value": value,
    }


def test_first_match_returns_the_first_matching_index():
    conditions = [
        _condition("equal_to", "1"),
        _condition("matches_any_of", "2, dos"),
        _condition("regex", r"\d+"),
        _condition("is_not_blank", ""),
    ]
    assert first_match(conditions, " 1 ", tz=BOGOTA, now=NOW) == 0  # regex also matches
    assert first_match(conditions, "DOS", tz=BOGOTA, now=NOW) == 1
    assert first_match(conditions, "42", tz=BOGOTA, now=NOW) == 2
    assert first_match(conditions, "hola", tz=BOGOTA, now=NOW) == 3
    assert first_match(conditions, "  ", tz=BOGOTA, now=NOW) is None
    assert first_match([], "x", tz=BOGOTA, now=NOW) is None


def test_first_match_renders_template_values():
    conditions = [_condition("equal_to", "{{flow.variables.code}}")]
    rendered = []

    def render(value: str) -> str:
        rendered.append(value)
        return "1234" if value == "{{flow.variables.code}}" else value

    assert first_match(conditions, "1234", tz=BOGOTA, now=NOW, render=render) == 0
    assert rendered == ["{{flow.variables.code}}"]
    # Without a renderer the template text itself is the value.
    assert first_match(conditions, "1234", tz=BOGOTA, now=NOW) is None


def test_first_match_with_an_unknown_operator_raises():
    with pytest.raises(UnknownOperator):
        first_match([_condition("sounds_like", "x")], "x", tz=BOGOTA, now=NOW)


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("regex", r"^\d{6,10}$"),
        ("regex", ""),
        ("is_before_time", "00:00"),
        ("is_after_time", "23:59"),
        ("is_before_date", "2028-02-29"),
        ("less_than", "-1.5"),
        ("greater_than", "10"),
        ("equal_to", ""),
        ("equal_to", None),
        ("contains", "x"),
        ("is_blank", None),
        ("matches_any_of", "a, b"),
        ("less_than", "{{flow.variables.limit}}"),  # templates are only known at run time
        ("is_before_time", "{{flow.variables.closing}}"),
    ],
)
def test_check_condition_value_accepts_usable_values(operator, value):
    assert check_condition_value(operator, value) is None


@pytest.mark.parametrize(
    ("operator", "value", "message"),
    [
        ("regex", "([a-z", "The regular expression '([a-z' does not compile: "),
        ("is_before_time", "24:00", "The time '24:00' is not a time of day as HH:MM"),
        ("is_after_time", "9 pm", "The time '9 pm' is not a time of day as HH:MM"),
        ("is_after_time", None, "The time '' is not a time of day as HH:MM"),
        ("is_before_date", "2026-02-30", "The date '2026-02-30' is not a real date"),
        ("is_after_date", "01/03/2026", "The date '01/03/2026' is not a real date"),
        ("less_than", "ten", "The value 'ten' is not a number."),
        ("greater_than", "", "The value '' is not a number."),
        ("like", "x", "Unknown split operator 'like'."),
    ],
)
def test_check_condition_value_explains_unusable_values(operator, value, message):
    problem = check_condition_value(operator, value)
    assert problem is not None
    assert problem.startswith(message)


def test_check_condition_value_includes_the_regex_modules_message():
    problem = check_condition_value("regex", "(a")
    assert problem == "The regular expression '(a' does not compile: missing ) at position 2."


def test_a_catastrophic_regex_gives_up_as_no_match_instead_of_hanging_the_worker():
    # (a+)+c against a's and a b backtracks exponentially; the regex timeout stops it.
    assert matches("regex", "a" * 40 + "b", "(a+)+c") is False
