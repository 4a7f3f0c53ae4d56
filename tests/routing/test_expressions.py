"""The routing expression language: examples, errors, validation, order_by, and properties.

The main property generates an expression tree, renders it to text, and checks the compiled
expression against a small reference evaluator written here, independently of the module.
"""

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.expressions import (
    MAX_DEPTH,
    Expression,
    ExpressionError,
    OrderKey,
    compile_expression,
    lookup,
    parse_order_by,
    sort_key,
    validate_expression,
)

# --------------------------------------------------------------------------------------------
# Examples

CUSTOMER = "(tier == 'gold' OR vip == true) AND age_minutes > 5"
SKILLS = 'skills HAS "billing" AND languages HAS "es"'
TARGET = "task.language IN worker.languages"
COUNTER = "worker.channel.sms.assigned_tasks < 3"
PRECEDENCE = "a == 1 OR b == 1 AND c == 1"
NESTED = "((a == 1) AND ((b == 2) OR (c == 3)))"
MIXED_CASE = "skills has 'x' and LANGUAGE in ['es']"

EXAMPLES = [
    # The reference's examples
    (SKILLS, {"skills": ["billing", "sales"], "languages": ["en", "es"]}, True),
    (SKILLS, {"skills": ["billing"], "languages": ["en"]}, False),
    (SKILLS, {}, False),
    ('language IN ["en","es"]', {"language": "es"}, True),
    ('language IN ["en","es"]', {"language": "fr"}, False),
    ('language IN ["en","es"]', {}, False),
    (CUSTOMER, {"tier": "gold", "age_minutes": 6}, True),
    (CUSTOMER, {"vip": True, "age_minutes": 5.5}, True),
    (CUSTOMER, {"tier": "gold", "age_minutes": 5}, False),
    (CUSTOMER, {"vip": "true", "age_minutes": 10}, False),
    (CUSTOMER, {"tier": "silver", "vip": False, "age_minutes": 10}, False),
    ("channel == 'whatsapp' AND language == 'es'", {"channel": "whatsapp", "language": "es"}, True),
    (
        "channel == 'whatsapp' AND language == 'es'",
        {"channel": "WhatsApp", "language": "es"},
        False,
    ),
    (TARGET, {"task": {"language": "es"}, "worker": {"languages": ["en", "es"]}}, True),
    (TARGET, {"task": {"language": "fr"}, "worker": {"languages": ["en", "es"]}}, False),
    (TARGET, {"task": {"language": "es"}}, False),
    (COUNTER, {"worker": {"channel": {"sms": {"assigned_tasks": 2}}}}, True),
    (COUNTER, {"worker": {"channel": {"sms": {"assigned_tasks": 3}}}}, False),
    (COUNTER, {"worker": {"channel": {}}}, False),
    (COUNTER, {"worker": {"channel": "sms"}}, False),  # walking into a non-dict is null
    ("workers.available == 0", {"workers": {"available": 0}}, True),
    ("workers.available == 0", {"workers": {"available": 0.0}}, True),
    ("workers.available == 0", {"workers": {"available": 2}}, False),
    ("1==1", {}, True),
    (" 1 = 1 ", {"anything": [1]}, True),
    ("email CONTAINS '@example.com'", {"email": "ann@example.com"}, True),
    ("email CONTAINS '@example.com'", {"email": "ann@EXAMPLE.com"}, False),
    ("email CONTAINS '@example.com'", {"email": ["@example.com"]}, False),
    ("language NOT IN ['fr']", {"language": "es"}, True),
    ("language NOT IN ['fr']", {"language": "fr"}, False),
    ("language NOT IN ['fr']", {}, True),  # exactly `not IN`: null is not in the array
    # Keywords are case-insensitive, keys are not
    (MIXED_CASE, {"skills": ["x"], "LANGUAGE": "es"}, True),
    (MIXED_CASE, {"skills": ["x"], "language": "es"}, False),
    ("a == TRUE Or b == NULL", {"a": False}, True),
    # Missing keys are null
    ("missing == null", {}, True),
    ("missing != 'x'", {}, True),
    ("missing == 'x'", {}, False),
    ("missing < 3", {}, False),
    ("missing HAS 'x'", {}, False),
    ("a == null", {"a": None}, True),
    ("a.b.c == null", {"a": {"b": 5}}, True),
    # Scalars against arrays are false, both ways; arrays compare element-wise
    ("a == ['x']", {"a": "x"}, False),
    ("a != ['x']", {"a": "x"}, False),
    ("a != ['x']", {}, False),
    ("a == ['x', 1]", {"a": ["x", 1.0]}, True),
    ("a == ['x', 1]", {"a": ("x", 1)}, True),
    ("a == ['x', 1]", {"a": ["x", 1, 2]}, False),
    ("a != ['x', 1]", {"a": ["x", 2]}, True),
    ("a == [[1], []]", {"a": [[1], []]}, True),
    ("a < [1]", {"a": [0]}, False),
    ("[] == []", {}, True),
    # Numbers against strings
    ("a == '1'", {"a": 1}, False),
    ("a != '1'", {"a": 1}, True),
    ("a < '2'", {"a": 1}, False),
    ("a >= 1", {"a": "2"}, False),
    ("a < 'b'", {"a": "a"}, True),
    ("a >= 'B'", {"a": "a"}, True),
    ("a <= 'abc'", {"a": "abc"}, True),
    ("a == 1.0", {"a": 1}, True),
    ("a > -1.5", {"a": -1}, True),
    ("a >= 2", {"a": 2.0}, True),
    ("a > 2", {"a": 2.0}, False),
    # Booleans are not numbers
    ("a == 1", {"a": True}, False),
    ("true == 1", {}, False),
    ("a < 1", {"a": False}, False),
    ("a == false", {"a": False}, True),
    ("a == false", {"a": 0}, False),
    ("a != 0", {"a": False}, True),
    ("a HAS 1", {"a": [True]}, False),
    ("a IN [0, 1]", {"a": True}, False),
    # Parentheses and precedence (AND binds tighter than OR)
    (NESTED, {"a": 1, "c": 3}, True),
    (NESTED, {"a": 1, "b": 2}, True),
    (NESTED, {"a": 1}, False),
    (NESTED, {"b": 2, "c": 3}, False),
    (PRECEDENCE, {"a": 1}, True),
    (PRECEDENCE, {"b": 1}, False),
    (PRECEDENCE, {"b": 1, "c": 1}, True),
    ("(a == 1 OR b == 1) AND c == 1", {"a": 1}, False),
    ("a == 1 AND b == 1 OR c == 1", {"c": 1}, True),
    ("a == 1 AND (b == 1 OR c == 1)", {"c": 1}, False),
    ("a == 1 OR b == 1 OR c == 1 OR d == 1", {"d": 1}, True),
    ("a == 1 AND b == 1 AND c == 1 AND d == 1", {"a": 1, "b": 1, "c": 1, "d": 1}, True),
    ("a == 1 AND b == 1 AND c == 1 AND d == 1", {"a": 1, "b": 1, "c": 1}, False),
    # HAS, IN, CONTAINS corners
    ("a HAS 2", {"a": [1, 2.0]}, True),
    ("a HAS 'b'", {"a": "abc"}, False),
    ("a HAS ['x']", {"a": [["x"]]}, False),
    ("a HAS null", {"a": [None]}, True),
    ("a IN 'abc'", {"a": "b"}, False),
    ("a NOT IN 'abc'", {"a": "b"}, True),
    ("a IN ['x']", {"a": ["y", "x"]}, True),  # array IN array: overlap
    ("a IN ['x']", {"a": ["y", "z"]}, False),
    ("a IN ['x']", {"a": []}, False),
    ("a IN []", {"a": "x"}, False),
    ("a NOT IN []", {"a": "x"}, True),
    ("a IN [1, 'x', null]", {}, True),
    ("a IN [1, 'x']", {"a": 1.0}, True),
    ("a IN [[1], 2]", {"a": [1]}, False),  # left array: its elements are looked up
    ("a IN [[1], 2]", {"a": [[1]]}, True),
    (
        "task.languages IN worker.languages",
        {"task": {"languages": ["fr", "es"]}, "worker": {"languages": ["es"]}},
        True,
    ),
    ("a CONTAINS ''", {"a": "x"}, True),
    ("a CONTAINS 1", {"a": "1"}, False),
    # Strings, escapes, identifiers
    ("a == 'it\\'s \\\"q\\\" \\\\'", {"a": 'it\'s "q" \\'}, True),
    ('a == "say \\"hi\\""', {"a": 'say "hi"'}, True),
    ('a == "it\'s"', {"a": "it's"}, True),
    ("task.in == 1", {"task": {"in": 1}}, True),
    ("_x1.y_2 == 'v'", {"_x1": {"y_2": "v"}}, True),
    ("'es' IN worker.languages", {"worker": {"languages": ["es"]}}, True),
    ("3 > a", {"a": 2}, True),
    ("'b' <= a", {"a": "c"}, True),
    ("a < b", {"a": 1, "b": 2.5}, True),
    ("a == b", {}, True),
    ("a == b", {"a": [1, [2]], "b": [1.0, [2]]}, True),
    ("a != b", {"a": "x"}, True),
    # Values that are neither scalars nor arrays are never equal nor unequal
    ("a == null", {"a": {"b": 1}}, False),
    ("a != 1", {"a": {"b": 1}}, False),
    ("a == b", {"a": {"x": 1}, "b": {"x": 1}}, False),
    ("a HAS 1", {"a": {1}}, False),
    # Constant terms
    ("1 == 2 AND a == 1", {"a": 1}, False),
    ("1 == 2 OR a == 1", {"a": 1}, True),
    ("1 == 1 AND a == 1", {"a": 2}, False),
]


@pytest.mark.parametrize(("text", "context", "expected"), EXAMPLES)
def test_examples(text: str, context: dict, expected: bool) -> None:
    expression = compile_expression(text)
    assert expression.evaluate(context) is expected
    assert expression(context) is expected


class _ExplodingMapping(Mapping):
    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("boom")

    def __iter__(self):
        return iter(["a"])

    def __len__(self) -> int:
        return 1


def _self_referencing_list() -> list:
    loop: list = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    "context",
    [
        None,
        [],
        "a",
        42,
        _ExplodingMapping(),
        {"a": _ExplodingMapping()},
        {"a": _self_referencing_list(), "b": _self_referencing_list()},
        {"a": object(), "b": float("nan")},
        {"a": {"b": {"c": [1, {"d": 2}]}}},
    ],
)
def test_evaluate_never_raises(context: Any) -> None:
    for text in ("a == b", "a.b.c HAS 1", "a IN b", "a < 1", "a CONTAINS 'x'", "a != b"):
        assert compile_expression(text).evaluate(context) in (True, False)
    assert compile_expression("1==1").evaluate(context) is True


def test_lookup() -> None:
    context = {"worker": {"channel": {"sms": {"assigned_tasks": 2}}, "name": "ann"}}
    assert lookup(context, "worker.channel.sms.assigned_tasks") == 2
    assert lookup(context, "worker.name") == "ann"
    assert lookup(context, "worker.name.first") is None
    assert lookup(context, "worker.missing") is None
    assert lookup(context, "nothing") is None
    assert lookup({}, "a") is None
    assert lookup(_ExplodingMapping(), "a") is None
    assert lookup(None, "a") is None  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Errors

ERRORS = [
    ("skills HAS", 10, "unexpected end of expression at position 10, expected a value"),
    ("a == 'x", 5, "unterminated string starting at position 5"),
    ("a == 'x\\", 5, "unterminated string"),
    ("a == 1 AND", 10, "end of expression"),
    ("a == 1 OR", 9, "end of expression"),
    ("(a == 1", 7, "expected ')'"),
    ("a == 1)", 6, "unexpected ')' at position 6"),
    ("a", 1, "expected a comparison operator"),
    ("a b", 2, "expected a comparison operator at position 2, found 'b'"),
    ("true", 4, "expected a comparison operator"),
    ("== 1", 0, "expected a value at position 0, found '=='"),
    ("a === 1", 4, "expected a value"),
    ("a == [1, 2", 10, "expected ',' or ']'"),
    ("a == [1 2]", 8, "expected ',' or ']'"),
    ("a == [1,]", 8, "expected a literal value"),
    ("a == [b]", 6, "expected a literal value"),
    ("a-b == 1", 1, "unexpected character '-'"),
    ("", 0, "empty expression"),
    ("   \n", 0, "empty expression"),
    ("a == 1 AND AND b == 1", 11, "expected a value at position 11, found 'AND'"),
    ("a == 1 b == 2", 7, "expected 'AND' or 'OR'"),
    ("a NOT b", 6, "expected 'IN' after 'NOT'"),
    ("NOT a IN [1]", 0, "expected a value"),
    ("a == 'x\\n'", 7, "invalid escape"),
    ("1abc == 1", 0, "malformed number"),
    ("a == 1.", 5, "malformed number"),
    ("a == 1.5.2", 5, "malformed number"),
    ("a. == 1", 2, "expected a name after '.'"),
    ("a.1 == 1", 2, "expected a name after '.'"),
    (".a == 1", 0, "unexpected character '.'"),
    ("a ! 1", 2, "unexpected character '!'"),
    ("()", 1, "expected a value"),
    ("a == (1)", 5, "expected a value"),
    ("a == 'é' AND b ≠ 1", 15, "unexpected character"),
    ("true == 1 AND café == 1", 17, "unexpected character"),
    ("a == 1 ANDb == 1", 7, "expected 'AND' or 'OR'"),
    ("a == 'x' == 'y'", 9, "expected 'AND' or 'OR'"),
    ("(" * (MAX_DEPTH + 1) + "a == 1" + ")" * (MAX_DEPTH + 1), MAX_DEPTH, "nesting deeper"),
    ("a == " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), 5 + MAX_DEPTH, "nesting deeper"),
    ("(" * 4000, MAX_DEPTH, "nesting deeper"),
    ("a == '" + "x" * 5000 + "'", 0, "longer than 4096"),
]


@pytest.mark.parametrize(("text", "position", "fragment"), ERRORS)
def test_errors(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.position == position
    assert fragment in error.message
    assert str(error) == error.message
    assert f"position {position}" in error.message


def test_maximum_nesting_is_accepted() -> None:
    deep = "(" * MAX_DEPTH + "a == 1" + ")" * MAX_DEPTH
    assert compile_expression(deep).evaluate({"a": 1}) is True
    arrays = "a == " + "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert compile_expression(arrays).evaluate({}) is False


def test_long_flat_expressions_evaluate_without_recursion() -> None:
    many_and = " AND ".join(f"k{i}={i}" for i in range(300))
    context = {f"k{i}": i for i in range(300)}
    assert len(many_and) <= 4096
    assert compile_expression(many_and).evaluate(context) is True
    many_or = " OR ".join(f"k{i}=-1" for i in range(300)) + " OR k299=299"
    assert len(many_or) <= 4096
    assert compile_expression(many_or).evaluate(context) is True


# --------------------------------------------------------------------------------------------
# validate_expression, caching, keys

TARGET_ROOTS = frozenset({"task", "worker"})


def test_validate_accepts_prefixed_keys() -> None:
    expression = validate_expression(TARGET, allowed_roots=TARGET_ROOTS)
    assert expression is compile_expression(TARGET)
    assert validate_expression("1==1", allowed_roots=TARGET_ROOTS).keys == frozenset()


@pytest.mark.parametrize(
    ("text", "position", "key"),
    [
        ("language == 'es'", 0, "language"),
        ("task.x == 1 AND langs HAS 'x'", 16, "langs"),
        ("task.x == 1 AND workers.available == 0", 16, "workers.available"),
        ("'es' IN languages", 8, "languages"),
    ],
)
def test_validate_refuses_other_roots(text: str, position: int, key: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        validate_expression(text, allowed_roots=TARGET_ROOTS)
    assert caught.value.position == position
    assert f"key '{key}'" in caught.value.message
    assert "must start with one of: task., worker." in caught.value.message


def test_validate_without_roots_and_syntax_errors() -> None:
    assert validate_expression("language == 'es'").keys == frozenset({"language"})
    with pytest.raises(ExpressionError):
        validate_expression("task.x ==", allowed_roots=TARGET_ROOTS)


def test_compile_is_cached() -> None:
    text = "cached_key == 'cache me'"
    first = compile_expression(text)
    hits = compile_expression.cache_info().hits
    assert compile_expression(text) is first
    assert compile_expression.cache_info().hits == hits + 1
    assert compile_expression.cache_info().maxsize == 4096


def test_keys_and_dataclass() -> None:
    expression = compile_expression(
        "task.language IN worker.languages AND (worker.level > 2 OR task.language == 'es')"
    )
    assert isinstance(expression, Expression)
    assert expression.keys == frozenset({"task.language", "worker.languages", "worker.level"})
    assert expression.text.startswith("task.language")
    assert compile_expression("1==1").keys == frozenset()
    assert compile_expression("true.x == null").keys == frozenset({"true.x"})
    assert hash(expression) == hash(compile_expression(expression.text))
    with pytest.raises(AttributeError):
        expression.text = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# order_by


def test_parse_order_by() -> None:
    assert parse_order_by("worker.level DESC, worker.x ASC, worker.y") == (
        OrderKey("worker.level", True),
        OrderKey("worker.x", False),
        OrderKey("worker.y", False),
    )
    assert parse_order_by("  worker.level desc  ") == (OrderKey("worker.level", True),)
    assert parse_order_by("a,b Desc,c aSc") == (
        OrderKey("a", False),
        OrderKey("b", True),
        OrderKey("c", False),
    )


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("", 0, "empty"),
        ("   ", 0, "empty"),
        ("worker.level DESC DESC", 18, "expected ',' or the end"),
        ("worker.level,", 13, "end of expression"),
        (", a", 0, "expected a key"),
        ("a DESC b", 7, "expected ',' or the end"),
        ("'a'", 0, "expected a key"),
        ("null DESC", 0, "expected a key"),
        ("a-b", 1, "unexpected character '-'"),
        ("a,,b", 2, "expected a key"),
    ],
)
def test_parse_order_by_errors(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_order_by(text)
    assert caught.value.position == position
    assert fragment in caught.value.message


def _names(contexts: list[dict]) -> list[str]:
    return [context["name"] for context in contexts]


WORKERS = [
    {"name": "n3", "worker": {"level": 3}},
    {"name": "missing", "worker": {}},
    {"name": "n1", "worker": {"level": 1}},
    {"name": "sb", "worker": {"level": "b"}},
    {"name": "n10", "worker": {"level": 10.5}},
    {"name": "null", "worker": {"level": None}},
    {"name": "sab", "worker": {"level": "ab"}},
    {"name": "sabc", "worker": {"level": "abc"}},
    {"name": "n-2", "worker": {"level": -2}},
]


def test_sort_key_ascending_and_descending() -> None:
    ascending = sorted(WORKERS, key=sort_key(parse_order_by("worker.level")))
    assert _names(ascending) == ["n-2", "n1", "n3", "n10", "sab", "sabc", "sb", "missing", "null"]
    descending = sorted(WORKERS, key=sort_key(parse_order_by("worker.level DESC")))
    assert _names(descending) == [
        "n10",
        "n3",
        "n1",
        "n-2",
        "sb",
        "sabc",
        "sab",
        "missing",
        "null",
    ]


def test_sort_key_several_keys_and_odd_values() -> None:
    workers = [
        {"name": "a", "worker": {"level": 2, "idle": 5}},
        {"name": "b", "worker": {"level": 2, "idle": 9}},
        {"name": "c", "worker": {"level": 3}},
        {"name": "d", "worker": {"level": 2, "idle": None}},
        {"name": "e", "worker": {"level": True}},
        {"name": "f", "worker": {"level": [1]}},
        {"name": "g", "worker": {"level": float("nan")}},
        {"name": "h", "worker": "not a mapping"},
        {"name": "i", "worker": {"level": False}},
    ]
    order = parse_order_by("worker.level DESC, worker.idle DESC")
    assert _names(sorted(workers, key=sort_key(order))) == [
        "c",
        "b",
        "a",
        "d",
        "e",
        "i",
        "f",
        "g",
        "h",
    ]
    order = (OrderKey("worker.level", False), OrderKey("worker.idle", False))
    assert _names(sorted(workers, key=sort_key(order)))[:5] == ["a", "b", "d", "c", "i"]


@given(st.lists(st.one_of(st.none(), st.integers(-50, 50), st.floats(-1e6, 1e6)), max_size=20))
def test_sort_key_matches_plain_sort_for_numbers(levels: list) -> None:
    contexts = [{"level": level} for level in levels]
    present = [level for level in levels if level is not None]
    nones = [None] * (len(levels) - len(present))
    asc = [c["level"] for c in sorted(contexts, key=sort_key(parse_order_by("level")))]
    desc = [c["level"] for c in sorted(contexts, key=sort_key(parse_order_by("level desc")))]
    assert asc == sorted(present) + nones
    assert desc == sorted(present, reverse=True) + nones


@given(st.text(max_size=40))
def test_parse_order_by_random_text(text: str) -> None:
    try:
        order = parse_order_by(text)
    except ExpressionError as error:
        assert 0 <= error.position <= len(text)
    else:
        assert order and all(isinstance(item, OrderKey) for item in order)


# --------------------------------------------------------------------------------------------
# Properties: a generated tree, rendered to text, against a reference evaluator

KEYS = ["a", "b", "c", "task.x", "task.y", "worker.list", "a.b.c"]
OPERATORS = ["==", "=", "!=", "<", "<=", ">", ">=", "CONTAINS", "HAS", "IN", "NOT IN"]
WORDS = {"AND", "OR", "CONTAINS", "HAS", "IN", "NOT", "TRUE", "FALSE", "NULL"}

# Small pools, so that generated literals and context values often meet.
_strings = st.one_of(
    st.sampled_from(["", "a", "b", "ab", "it's", 'q"', "\\", "A"]),
    st.text(alphabet="ab '\"\\", max_size=4),
)
_numbers = st.one_of(st.integers(-2, 2), st.integers(-4, 4).map(lambda i: i / 2))
scalars = st.one_of(st.none(), st.booleans(), _numbers, _strings)
arrays = st.one_of(
    st.lists(scalars, max_size=3),
    st.lists(_strings, min_size=1, max_size=3),
    st.lists(_numbers, min_size=1, max_size=3),
)
literals = st.one_of(
    scalars,
    arrays,
    st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6),
)


class _Odd:
    """A value that is neither a scalar nor an array."""


def _weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """Like one_of, with weights (one_of flattens nested one_ofs and picks branches evenly)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda index: table[index])


values = _weighted(
    (5, st.one_of(st.booleans(), _numbers, _strings)),
    (1, st.none()),
    (3, arrays),
    (1, literals),
    (1, arrays.map(tuple)),
    (1, st.sampled_from([{"k": 1}, frozenset({1}), _Odd(), float("nan"), float("inf")])),
)
_MISSING = object()


def _record(**fields: st.SearchStrategy) -> st.SearchStrategy:
    """Dicts whose fields are each present three times in four."""
    maybe = {
        name: st.one_of(field, field, field, st.just(_MISSING)) for name, field in fields.items()
    }
    return st.fixed_dictionaries(maybe).map(
        lambda record: {name: value for name, value in record.items() if value is not _MISSING}
    )


contexts = _record(
    a=st.one_of(values, _record(b=st.one_of(values, _record(c=values)))),
    b=values,
    c=values,
    task=st.one_of(_record(x=values, y=values), values),
    worker=st.one_of(_record(list=st.lists(scalars, max_size=4)), values),
)

operands = _weighted(
    (2, st.sampled_from(KEYS).map(lambda key: ("key", key))),
    (1, literals.map(lambda value: ("lit", value))),
)
comparisons = st.builds(
    lambda op, left, right: ("cmp", op, left, right), st.sampled_from(OPERATORS), operands, operands
)


def _extend(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda items: ("and", items)),
        st.lists(inner, min_size=2, max_size=3).map(lambda items: ("or", items)),
        inner.map(lambda item: ("paren", item)),
    )


trees = st.recursive(comparisons, _extend, max_leaves=8)


def _upper(word: str) -> str:
    return word.upper()


def _render_literal(value: Any, case) -> str:
    if value is None:
        return case("null")
    if value is True:
        return case("true")
    if value is False:
        return case("false")
    if isinstance(value, str):
        quote = "'" if value.count('"') >= value.count("'") else '"'
        escaped = value.replace("\\", "\\\\").replace(quote, "\\" + quote)
        return quote + escaped + quote
    if isinstance(value, int | float):
        return repr(value)
    return "[" + ", ".join(_render_literal(item, case) for item in value) + "]"


def render(tree: tuple, case=_upper) -> str:
    """Text for ``tree``; ``case`` spells each keyword."""
    kind = tree[0]
    if kind == "key":
        return tree[1]
    if kind == "lit":
        return _render_literal(tree[1], case)
    if kind == "cmp":
        _, op, left, right = tree
        spelled = " ".join(case(word) for word in op.split()) if op[0].isalpha() else op
        return f"{render(left, case)} {spelled} {render(right, case)}"
    if kind == "paren":
        return "(" + render(tree[1], case) + ")"
    children = []
    for child in tree[1]:
        text = render(child, case)
        children.append(f"({text})" if kind == "and" and child[0] == "or" else text)
    return f" {case(kind.upper())} ".join(children)


# The reference evaluator: written from the rules, sharing no code with the module.


def _ref_lookup(context: dict, key: str) -> Any:
    value: Any = context
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _is_array(value: Any) -> bool:
    return type(value) in (list, tuple)


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _is_scalar(value: Any) -> bool:
    return value is None or type(value) in (bool, int, float, str)


def _ref_eq(a: Any, b: Any) -> bool:
    if _is_array(a) and _is_array(b):
        return len(a) == len(b) and all(_ref_eq(x, y) for x, y in zip(a, b, strict=True))
    if not (_is_scalar(a) and _is_scalar(b)):
        return False
    if a is None or b is None:
        return a is b
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is str and type(b) is str and a == b


def _ref_compare(op: str, a: Any, b: Any) -> bool:
    if op in ("==", "="):
        return _ref_eq(a, b)
    if op == "!=":
        if _is_array(a) and _is_array(b):
            return not _ref_eq(a, b)
        return _is_scalar(a) and _is_scalar(b) and not _ref_eq(a, b)
    if op in ("<", "<=", ">", ">="):
        comparable = (_is_number(a) and _is_number(b)) or (type(a) is str and type(b) is str)
        if not comparable:
            return False
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if op == "CONTAINS":
        return type(a) is str and type(b) is str and b in a
    if op == "HAS":
        return _is_array(a) and _is_scalar(b) and any(_ref_eq(item, b) for item in a)
    if op == "IN":
        if not _is_array(b):
            return False
        if _is_scalar(a):
            return any(_ref_eq(a, item) for item in b)
        if _is_array(a):
            return any(_ref_eq(x, y) for x in a for y in b)
        return False
    assert op == "NOT IN"
    return not _ref_compare("IN", a, b)


def reference(tree: tuple, context: dict) -> Any:
    kind = tree[0]
    if kind == "key":
        return _ref_lookup(context, tree[1])
    if kind == "lit":
        return tree[1]
    if kind == "cmp":
        _, op, left, right = tree
        return _ref_compare(op, reference(left, context), reference(right, context))
    if kind == "paren":
        return reference(tree[1], context)
    results = [reference(child, context) for child in tree[1]]
    return all(results) if kind == "and" else any(results)


@settings(max_examples=400, deadline=None)
@given(trees, contexts)
def test_compiled_agrees_with_reference(tree: tuple, context: dict) -> None:
    text = render(tree)
    result = compile_expression(text).evaluate(context)
    assert type(result) is bool
    assert result is reference(tree, context), text


# An exhaustive matrix over small pools: every operator, every shape, every pair.
LITERAL_POOL: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, 0.0, 0.5, -0.5, "", "a", "A", "ab", "b", "it's", 'q"', "\\",
    [], ["a"], ["a", "b"], ["b"], [1], [1.0, "a"], [True], [None], [0], [[1]], [["a"], 1],
    ["ab", 1],
]  # fmt: skip
_ABSENT = object()
VALUE_POOL: list[Any] = [
    *LITERAL_POOL,
    ("a",),
    ("x", 1),
    {"k": 1},
    frozenset({"a"}),
    _Odd(),
    float("nan"),
    float("inf"),
    _ABSENT,
]


@pytest.mark.parametrize("op", OPERATORS)
def test_operator_matrix_agrees_with_reference(op: str) -> None:
    mismatches = []

    def check(term: tuple, context: dict) -> None:
        if compile_expression(render(term)).evaluate(context) is not reference(term, context):
            mismatches.append((render(term), context))

    for value in VALUE_POOL:
        context = {} if value is _ABSENT else {"a": value}
        for literal in LITERAL_POOL:
            check(("cmp", op, ("key", "a"), ("lit", literal)), context)
            check(("cmp", op, ("lit", literal), ("key", "a")), context)
        for other in VALUE_POOL:
            both = dict(context) if other is _ABSENT else {**context, "b": other}
            check(("cmp", op, ("key", "a"), ("key", "b")), both)
    for left in LITERAL_POOL:
        for right in LITERAL_POOL:
            check(("cmp", op, ("lit", left), ("lit", right)), {})
    assert not mismatches, mismatches[:10]


_SHAPES = {
    "key OP literal": (("key", "a"), ("lit", None)),
    "literal OP key": (("lit", None), ("key", "a")),
    "key OP key": (("key", "a"), ("key", "b")),
    "literal OP literal": (("lit", None), ("lit", None)),
}


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(OPERATORS), st.sampled_from(sorted(_SHAPES)), values, values, literals)
def test_single_comparisons_agree_with_reference(
    op: str, shape: str, a: Any, b: Any, literal: Any
) -> None:
    """One term at a time, much denser than whole trees: every operator's corners get hit."""
    left, right = (
        ("lit", literal) if kind == "lit" else (kind, name) for kind, name in _SHAPES[shape]
    )
    term = ("cmp", op, left, right)
    context = {"a": a, "b": b}
    result = compile_expression(render(term)).evaluate(context)
    assert result is reference(term, context), (render(term), context)


@settings(deadline=None)
@given(trees, contexts, st.randoms(use_true_random=False))
def test_keyword_case_does_not_matter(tree: tuple, context: dict, rnd) -> None:
    def random_case(word: str) -> str:
        return "".join(rnd.choice((char.lower(), char.upper())) for char in word)

    canonical = compile_expression(render(tree)).evaluate(context)
    assert compile_expression(render(tree, random_case)).evaluate(context) is canonical
    assert compile_expression(render(tree, str.lower)).evaluate(context) is canonical


@settings(deadline=None)
@given(comparisons, trees, trees, contexts)
def test_grouping_and_boolean_laws(term: tuple, x: tuple, y: tuple, context: dict) -> None:
    assert compile_expression(f"({render(term)})").evaluate(context) is compile_expression(
        render(term)
    ).evaluate(context)
    x_result = compile_expression(render(x)).evaluate(context)
    y_result = compile_expression(render(y)).evaluate(context)
    either = compile_expression(f"({render(x)}) OR ({render(y)})").evaluate(context)
    both = compile_expression(f"({render(x)}) AND ({render(y)})").evaluate(context)
    assert either is (x_result or y_result)
    assert both is (x_result and y_result)


@settings(deadline=None)
@given(trees)
def test_keys_are_the_keys_of_the_tree(tree: tuple) -> None:
    def keys_of(node: tuple) -> set[str]:
        if node[0] == "key":
            return {node[1]}
        if node[0] == "lit":
            return set()
        if node[0] == "cmp":
            return keys_of(node[2]) | keys_of(node[3])
        if node[0] == "paren":
            return keys_of(node[1])
        return set().union(*(keys_of(child) for child in node[1]))

    assert compile_expression(render(tree)).keys == frozenset(keys_of(tree))


TOKENS = [
    "a", "b.c", "AND", "or", "NOT", "in", "HAS", "contains", "true", "null", "==", "=", "!=",
    "<", ">=", "(", ")", "[", "]", ",", "'x'", '"y', "1", "-2.5", "-", ".", "\\", "'",
]  # fmt: skip


def _check_compiles_or_fails_cleanly(text: str) -> None:
    try:
        expression = compile_expression(text)
    except ExpressionError as error:
        assert 0 <= error.position <= len(text)
        assert f"position {error.position}" in error.message
    else:
        assert expression.evaluate({"a": 1, "b": {"c": [1]}}) in (True, False)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_random_text_compiles_or_raises_expression_error(text: str) -> None:
    _check_compiles_or_fails_cleanly(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=14), st.sampled_from([" ", ""]))
def test_random_token_soup_compiles_or_raises_expression_error(tokens: list, sep: str) -> None:
    _check_compiles_or_fails_cleanly(sep.join(tokens))


def test_reference_helpers_sanity() -> None:
    def equals_one(key: str) -> tuple:
        return ("cmp", "==", ("key", key), ("lit", 1))

    tree = ("or", [equals_one("a"), ("and", [equals_one("b"), equals_one("c")])])
    assert render(tree) == PRECEDENCE
    and_of_or = ("and", [("or", [("key", "a"), ("key", "b")]), ("key", "c")])
    assert render(and_of_or) == "(a OR b) AND c"
    assert _render_literal('it\'s "x" \\', _upper) == "'it\\'s \"x\" \\\\'"
    assert compile_expression(
        render(("cmp", "==", ("key", "a"), ("lit", 'it\'s "x" \\')))
    ).evaluate({"a": 'it\'s "x" \\'})
