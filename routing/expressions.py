"""The TaskRouter-style expression language of the routing engine.

A hand-written recursive-descent parser rather than a parser generator such as lark: the grammar
is tiny, a hand-written parser reports errors with exact character positions, it compiles each
expression once into nested Python closures (no tree walking at evaluation time), and it adds
no dependency.

Grammar (keywords are case-insensitive)::

    expression := or_expr EOF
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := term ("AND" term)*
    term       := "(" or_expr ")" | operand operator operand
    operator   := "==" | "=" | "!=" | "<" | "<=" | ">" | ">=" | "CONTAINS" | "HAS"
                | "IN" | "NOT" "IN"
    operand    := literal | key
    literal    := string | number | "true" | "false" | "null" | "[" [literal ("," literal)*] "]"
    key        := name ("." name)*        name := [A-Za-z_][A-Za-z0-9_]*

A key is read from the context by walking its dotted path through nested mappings; a missing
key, or a walk into something that is not a mapping, reads as null. Keywords are reserved only
as whole words: ``in`` is a keyword, ``task.in`` is a key.

Semantics (``evaluate`` never raises; anything odd is simply false):

- ``==``: two scalars of the same kind are compared (ints and floats numerically, so
  ``1 == 1.0``; booleans are not numbers, so ``true == 1`` is false; strings case-sensitively;
  ``null == null``); two arrays are equal element-wise. A scalar against an array is false.
- ``!=``: the negation of ``==`` for two scalars or two arrays; a scalar against an array (and
  anything against a value that is neither a scalar nor an array, such as a mapping) is false.
- ``< <= > >=``: two numbers numerically or two strings lexicographically; otherwise false.
- ``CONTAINS``: the left string contains the right string (case-sensitive); otherwise false.
- ``HAS``: the left array has an element ``==`` to the right scalar; otherwise false.
- ``IN``: the left scalar is ``==`` to an element of the right array; when the left operand is
  itself an array, true when the two arrays overlap (any left element is in the right array);
  otherwise false. ``NOT IN`` is exactly the negation of ``IN`` (so ``null NOT IN [...]`` is true).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Expression",
    "ExpressionError",
    "OrderKey",
    "compile_expression",
    "lookup",
    "parse_order_by",
    "sort_key",
    "validate_expression",
]

MAX_LENGTH = 4096
"""Longest expression (or order_by) text accepted, in characters."""

MAX_DEPTH = 64
"""Deepest nesting of parentheses and array brackets accepted."""

Evaluator = Callable[[Mapping[str, Any]], bool]


class ExpressionError(ValueError):
    """An expression (or order_by) text that does not parse.

    ``message`` is the whole human-readable sentence (it names the position) and ``position``
    the 0-based character offset of the problem in the text.
    """

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------------------------
# Values and operators

# Kinds of values; NULL..STR are the scalars.
_NULL, _BOOL, _NUM, _STR, _ARR, _OTHER = range(6)


def _kind(value: Any) -> int:
    if isinstance(value, str):
        return _STR
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return _BOOL
    if isinstance(value, (int, float)):
        return _NUM
    if isinstance(value, (list, tuple)):
        return _ARR
    return _OTHER


def _eq(a: Any, b: Any) -> bool:
    ka = _kind(a)
    if ka != _kind(b) or ka == _OTHER:
        return False
    if ka == _ARR:
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _ne(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka == _ARR or kb == _ARR:
        return ka == kb and not _eq(a, b)
    if ka == _OTHER or kb == _OTHER:
        return False
    return not _eq(a, b)


def _ordering(compare: Callable[[Any, Any], Any]) -> Callable[[Any, Any], bool]:
    def ordered(a: Any, b: Any) -> bool:
        ka = _kind(a)
        return ka in (_NUM, _STR) and ka == _kind(b) and bool(compare(a, b))

    return ordered


def _contains(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and b in a


def _member(value: Any, array: list | tuple) -> bool:
    """Whether the scalar ``value`` is ``==`` to an element of ``array``."""
    if isinstance(value, str):  # the common case, without the general equality
        for item in array:  # noqa: SIM110 (a plain loop is faster than any() over a generator)
            if isinstance(item, str) and item == value:
                return True
        return False
    return any(_eq(value, item) for item in array)


def _has(a: Any, b: Any) -> bool:
    return isinstance(a, (list, tuple)) and _kind(b) < _ARR and _member(b, a)


def _in(a: Any, b: Any) -> bool:
    if not isinstance(b, (list, tuple)):
        return False
    ka = _kind(a)
    if ka < _ARR:
        return _member(a, b)
    if ka == _ARR:
        return any(_eq(x, y) for x in a for y in b)
    return False


def _not_in(a: Any, b: Any) -> bool:
    return not _in(a, b)


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": _eq,
    "!=": _ne,
    "<": _ordering(operator.lt),
    "<=": _ordering(operator.le),
    ">": _ordering(operator.gt),
    ">=": _ordering(operator.ge),
    "contains": _contains,
    "has": _has,
    "in": _in,
    "not in": _not_in,
}
_MIRRORED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_PY_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


# --------------------------------------------------------------------------------------------
# Key lookup


def _walk(context: Any, parts: tuple[str, ...]) -> Any:
    current = context
    for part in parts:
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, Mapping):
            try:
                current = current.get(part)
            except Exception:
                return None
        else:
            return None
    return current


def lookup(context: Mapping[str, Any], dotted_key: str) -> Any:
    """Read ``dotted_key`` (``"worker.channel.sms.assigned_tasks"``) from nested mappings.

    A missing key, or a step into something that is not a mapping, gives ``None``; never raises.
    """
    try:
        return _walk(context, tuple(dotted_key.split(".")))
    except Exception:
        return None


def _getter(parts: tuple[str, ...]) -> Callable[[Any], Any]:
    """A closure reading the pre-split key ``parts``, with fast paths for dicts."""
    if len(parts) == 1:
        (only,) = parts

        def get_one(context: Any) -> Any:
            if isinstance(context, dict):
                return context.get(only)
            return _walk(context, parts)

        return get_one
    if len(parts) == 2:
        first, second = parts

        def get_two(context: Any) -> Any:
            if isinstance(context, dict):
                inner = context.get(first)
                if isinstance(inner, dict):
                    return inner.get(second)
            return _walk(context, parts)

        return get_two

    def get_many(context: Any) -> Any:
        return _walk(context, parts)

    return get_many


# --------------------------------------------------------------------------------------------
# Compilation of terms into closures


def _always_true(context: Any) -> bool:
    return True


def _always_false(context: Any) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class _Operand:
    constant: bool
    value: Any = None  # the literal (arrays as tuples) when constant
    get: Callable[[Any], Any] | None = None  # the key reader otherwise


def _compare_to_constant(op: str, get: Callable[[Any], Any], const: Any) -> Evaluator:
    """``key OP literal``, specialised for the common shapes."""
    kc = _kind(const)
    if op == "==" and kc < _ARR:
        if kc == _NULL:
            return lambda context: get(context) is None
        if kc == _BOOL:
            return lambda context: get(context) is const
        if kc == _STR:

            def eq_str(context: Any) -> bool:
                value = get(context)
                return isinstance(value, str) and value == const

            return eq_str

        def eq_num(context: Any) -> bool:
            value = get(context)
            return (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and bool(value == const)
            )

        return eq_num
    if op in _PY_ORDER:
        compare = _PY_ORDER[op]
        if kc == _STR:

            def order_str(context: Any) -> bool:
                value = get(context)
                return isinstance(value, str) and bool(compare(value, const))

            return order_str
        if kc == _NUM:

            def order_num(context: Any) -> bool:
                value = get(context)
                return (
                    isinstance(value, (int, float))
                    and not isinstance(value, bool)
                    and bool(compare(value, const))
                )

            return order_num
        return _always_false
    if op == "contains":
        if kc != _STR:
            return _always_false

        def contains(context: Any) -> bool:
            value = get(context)
            return isinstance(value, str) and const in value

        return contains
    if op in ("in", "not in") and kc == _ARR:
        negate = op == "not in"
        if const and all(isinstance(item, str) for item in const):
            members = frozenset(const)

            def in_strings(context: Any) -> bool:
                value = get(context)
                if isinstance(value, str):
                    found = value in members
                elif isinstance(value, (list, tuple)):
                    found = any(isinstance(item, str) and item in members for item in value)
                else:
                    found = False
                return found is not negate

            return in_strings
    if op in ("in", "not in") and kc != _ARR:
        # A right operand that is not an array: IN is always false, NOT IN always true.
        return _always_true if op == "not in" else _always_false
    function = _OPERATORS[op]
    return lambda context: function(get(context), const)


def _compile_comparison(op: str, left: _Operand, right: _Operand) -> Evaluator:
    function = _OPERATORS[op]
    if left.constant and right.constant:
        return _always_true if function(left.value, right.value) else _always_false
    if right.constant:
        assert left.get is not None
        return _compare_to_constant(op, left.get, right.value)
    assert right.get is not None
    if left.constant and op in _MIRRORED:
        return _compare_to_constant(_MIRRORED[op], right.get, left.value)
    get_right = right.get
    if left.constant:
        const = left.value
        return lambda context: function(const, get_right(context))
    get_left = left.get
    assert get_left is not None
    return lambda context: function(get_left(context), get_right(context))


def _all(terms: list[Evaluator]) -> Evaluator:
    if any(term is _always_false for term in terms):
        return _always_false
    terms = [term for term in terms if term is not _always_true]
    if not terms:
        return _always_true
    if len(terms) == 1:
        return terms[0]
    if len(terms) == 2:
        first, second = terms
        return lambda context: first(context) and second(context)
    frozen = tuple(terms)

    def all_of(context: Any) -> bool:
        for term in frozen:  # noqa: SIM110 (a plain loop is faster than all() over a generator)
            if not term(context):
                return False
        return True

    return all_of


def _any(terms: list[Evaluator]) -> Evaluator:
    if any(term is _always_true for term in terms):
        return _always_true
    terms = [term for term in terms if term is not _always_false]
    if not terms:
        return _always_false
    if len(terms) == 1:
        return terms[0]
    if len(terms) == 2:
        first, second = terms
        return lambda context: first(context) or second(context)
    frozen = tuple(terms)

    def any_of(context: Any) -> bool:
        for term in frozen:  # noqa: SIM110 (a plain loop is faster than any() over a generator)
            if term(context):
                return True
        return False

    return any_of


# --------------------------------------------------------------------------------------------
# Scanner

_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")
_DIGITS = frozenset("0123456789")
_SPACE = frozenset(" \t\r\n\f\v")
_KEYWORDS = frozenset({"and", "or", "in", "not", "has", "contains", "true", "false", "null"})
_ESCAPES = {"'": "'", '"': '"', "\\": "\\"}

# Token kinds
_EOF, _STRING, _NUMBER, _KEY, _KEYWORD, _OP, _PUNCT = range(7)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: int
    value: Any  # str/int/float; keywords lower-cased; operators and punctuation as written
    position: int
    source: str  # the text as written, for messages


def _describe(token: _Token) -> str:
    source = token.source if len(token.source) <= 30 else token.source[:27] + "..."
    return repr(source)


class _Scanner:
    """Produces tokens on demand, so that the first error in the text is the one reported."""

    def __init__(self, text: str) -> None:
        if len(text) > MAX_LENGTH:
            raise ExpressionError(
                f"expression is longer than {MAX_LENGTH} characters at position 0", 0
            )
        self.text = text
        self.index = 0
        self.token = self._scan()

    def advance(self) -> _Token:
        """Consume the current token and return it."""
        token = self.token
        self.token = self._scan()
        return token

    def fail_expected(self, what: str) -> ExpressionError:
        token = self.token
        if token.kind == _EOF:
            return ExpressionError(
                f"unexpected end of expression at position {token.position}, expected {what}",
                token.position,
            )
        return ExpressionError(
            f"expected {what} at position {token.position}, found {_describe(token)}",
            token.position,
        )

    def _scan(self) -> _Token:
        text, i, n = self.text, self.index, len(self.text)
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            self.index = n
            return _Token(_EOF, None, n, "")
        ch = text[i]
        start = i
        if ch in _NAME_START:
            return self._scan_name(start)
        if ch in _DIGITS or (ch == "-" and i + 1 < n and text[i + 1] in _DIGITS):
            return self._scan_number(start)
        if ch == "'" or ch == '"':
            return self._scan_string(start)
        two = text[i : i + 2]
        if two in ("==", "!=", "<=", ">="):
            self.index = i + 2
            return _Token(_OP, two, start, two)
        if ch in "=<>":
            self.index = i + 1
            return _Token(_OP, "==" if ch == "=" else ch, start, ch)
        if ch in "()[],":
            self.index = i + 1
            return _Token(_PUNCT, ch, start, ch)
        raise ExpressionError(f"unexpected character {ch!r} at position {start}", start)

    def _scan_name(self, start: int) -> _Token:
        text, n = self.text, len(self.text)
        i = start
        while True:
            while i < n and text[i] in _NAME_CHARS:
                i += 1
            if i < n and text[i] == ".":
                if i + 1 < n and text[i + 1] in _NAME_START:
                    i += 1
                    continue
                raise ExpressionError(f"expected a name after '.' at position {i + 1}", i + 1)
            break
        self.index = i
        name = text[start:i]
        lowered = name.lower()
        if lowered in _KEYWORDS:
            return _Token(_KEYWORD, lowered, start, name)
        return _Token(_KEY, name, start, name)

    def _scan_number(self, start: int) -> _Token:
        text, n = self.text, len(self.text)
        i = start + 1
        while i < n and text[i] in _DIGITS:
            i += 1
        is_float = False
        if i + 1 < n and text[i] == "." and text[i + 1] in _DIGITS:
            is_float = True
            i += 2
            while i < n and text[i] in _DIGITS:
                i += 1
        if i < n and (text[i] in _NAME_CHARS or text[i] == "."):
            raise ExpressionError(f"malformed number at position {start}", start)
        self.index = i
        source = text[start:i]
        value: int | float = float(source) if is_float else int(source)
        return _Token(_NUMBER, value, start, source)

    def _scan_string(self, start: int) -> _Token:
        text, n = self.text, len(self.text)
        quote = text[start]
        chunks: list[str] = []
        i = start + 1
        while i < n:
            ch = text[i]
            if ch == quote:
                self.index = i + 1
                return _Token(_STRING, "".join(chunks), start, text[start : i + 1])
            if ch == "\\":
                if i + 1 >= n:
                    break
                escaped = text[i + 1]
                if escaped not in _ESCAPES:
                    raise ExpressionError(
                        f"invalid escape '\\{escaped}' at position {i} "
                        "(only \\', \\\" and \\\\ are allowed)",
                        i,
                    )
                chunks.append(_ESCAPES[escaped])
                i += 2
                continue
            chunks.append(ch)
            i += 1
        raise ExpressionError(f"unterminated string starting at position {start}", start)


# --------------------------------------------------------------------------------------------
# Parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.scanner = _Scanner(text)
        self.depth = 0
        self.keys: list[tuple[str, int]] = []

    def parse(self) -> Evaluator:
        scanner = self.scanner
        if scanner.token.kind == _EOF:
            raise ExpressionError("empty expression at position 0", 0)
        evaluator = self._or()
        token = scanner.token
        if token.kind != _EOF:
            if token.value == ")" and token.kind == _PUNCT:
                raise ExpressionError(
                    f"unexpected ')' at position {token.position}", token.position
                )
            raise scanner.fail_expected("'AND' or 'OR'")
        return evaluator

    def _is_keyword(self, word: str) -> bool:
        token = self.scanner.token
        return token.kind == _KEYWORD and token.value == word

    def _is_punct(self, char: str) -> bool:
        token = self.scanner.token
        return token.kind == _PUNCT and token.value == char

    def _enter(self, position: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(
                f"nesting deeper than {MAX_DEPTH} levels at position {position}", position
            )

    def _or(self) -> Evaluator:
        terms = [self._and()]
        while self._is_keyword("or"):
            self.scanner.advance()
            terms.append(self._and())
        return _any(terms)

    def _and(self) -> Evaluator:
        terms = [self._term()]
        while self._is_keyword("and"):
            self.scanner.advance()
            terms.append(self._term())
        return _all(terms)

    def _term(self) -> Evaluator:
        scanner = self.scanner
        if self._is_punct("("):
            self._enter(scanner.advance().position)
            inner = self._or()
            if not self._is_punct(")"):
                raise scanner.fail_expected("')'")
            scanner.advance()
            self.depth -= 1
            return inner
        left = self._operand()
        op = self._operator()
        right = self._operand()
        return _compile_comparison(op, left, right)

    def _operator(self) -> str:
        scanner = self.scanner
        token = scanner.token
        if token.kind == _OP:
            scanner.advance()
            return token.value
        if token.kind == _KEYWORD and token.value in ("contains", "has", "in"):
            scanner.advance()
            return token.value
        if token.kind == _KEYWORD and token.value == "not":
            scanner.advance()
            if not self._is_keyword("in"):
                raise scanner.fail_expected("'IN' after 'NOT'")
            scanner.advance()
            return "not in"
        raise scanner.fail_expected("a comparison operator")

    def _operand(self) -> _Operand:
        token = self.scanner.token
        if token.kind == _KEY:
            self.scanner.advance()
            self.keys.append((token.value, token.position))
            return _Operand(False, get=_getter(tuple(token.value.split("."))))
        return _Operand(True, value=self._literal("a value"))

    def _literal(self, what: str) -> Any:
        scanner = self.scanner
        token = scanner.token
        if token.kind in (_STRING, _NUMBER):
            scanner.advance()
            return token.value
        if token.kind == _KEYWORD and token.value in ("true", "false", "null"):
            scanner.advance()
            return {"true": True, "false": False, "null": None}[token.value]
        if token.kind == _PUNCT and token.value == "[":
            return self._array()
        raise scanner.fail_expected(what)

    def _array(self) -> tuple[Any, ...]:
        scanner = self.scanner
        self._enter(scanner.advance().position)
        items: list[Any] = []
        if self._is_punct("]"):
            scanner.advance()
        else:
            while True:
                items.append(self._literal("a literal value"))
                if self._is_punct(","):
                    scanner.advance()
                    continue
                if self._is_punct("]"):
                    scanner.advance()
                    break
                raise scanner.fail_expected("',' or ']'")
        self.depth -= 1
        return tuple(items)


# --------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class Expression:
    """A compiled expression: call ``evaluate(context)`` (or the object itself) for a bool."""

    text: str
    keys: frozenset[str]
    """Every dotted key the expression reads, e.g. ``{"task.language", "worker.languages"}``."""
    _evaluator: Evaluator = field(repr=False, compare=False)
    _key_positions: tuple[tuple[str, int], ...] = field(repr=False, compare=False, default=())

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        """Whether the expression holds for ``context``; never raises (odd values are false)."""
        try:
            return bool(self._evaluator(context))
        except Exception:
            return False

    def __call__(self, context: Mapping[str, Any]) -> bool:
        """Same as :meth:`evaluate`."""
        return self.evaluate(context)


@lru_cache(maxsize=4096)
def compile_expression(text: str) -> Expression:
    """Parse and compile ``text`` once (cached); raises :class:`ExpressionError`."""
    if not isinstance(text, str):
        raise TypeError(f"expression must be a str, not {type(text).__name__}")
    parser = _Parser(text)
    evaluator = parser.parse()
    keys = tuple(parser.keys)
    return Expression(
        text=text,
        keys=frozenset(key for key, _ in keys),
        _evaluator=evaluator,
        _key_positions=keys,
    )


def validate_expression(text: str, *, allowed_roots: frozenset[str] | None = None) -> Expression:
    """Compile ``text``; with ``allowed_roots``, every key must start with one of those roots.

    Target expressions use ``allowed_roots=frozenset({"task", "worker"})``: a bare ``language``
    is then an :class:`ExpressionError` at the key's position.
    """
    expression = compile_expression(text)
    if allowed_roots is not None:
        for key, position in expression._key_positions:
            if key.split(".", 1)[0] not in allowed_roots:
                roots = ", ".join(f"{root}." for root in sorted(allowed_roots))
                raise ExpressionError(
                    f"key {key!r} at position {position} must start with one of: {roots}",
                    position,
                )
    return expression


@dataclass(frozen=True)
class OrderKey:
    """One ``order_by`` entry: a dotted key and its direction."""

    key: str
    descending: bool = False


def parse_order_by(text: str) -> tuple[OrderKey, ...]:
    """Parse ``"worker.level DESC, worker.x ASC, worker.y"`` (ASC is the default).

    Keywords are case-insensitive; raises :class:`ExpressionError` (with the position) on
    empty or malformed text.
    """
    scanner = _Scanner(text)
    if scanner.token.kind == _EOF:
        raise ExpressionError("empty order_by at position 0", 0)
    order: list[OrderKey] = []
    while True:
        token = scanner.token
        if token.kind != _KEY:
            raise scanner.fail_expected("a key")
        scanner.advance()
        descending = False
        direction = scanner.token
        if direction.kind == _KEY and direction.value.lower() in ("asc", "desc"):
            descending = direction.value.lower() == "desc"
            scanner.advance()
        order.append(OrderKey(token.value, descending))
        following = scanner.token
        if following.kind == _EOF:
            return tuple(order)
        if following.kind == _PUNCT and following.value == ",":
            scanner.advance()
            continue
        raise scanner.fail_expected("',' or the end")


class _Descending:
    """Wraps a string so that it sorts in reverse order inside a tuple."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.value == other.value

    def __lt__(self, other: _Descending) -> bool:
        return other.value < self.value


# Groups, in the same order for both directions: numbers, strings, booleans, anything else,
# then null (missing) last.
_G_NUM, _G_STR, _G_BOOL, _G_OTHER, _G_NULL = range(5)


def _sort_component(value: Any, descending: bool) -> tuple[Any, ...]:
    kind = _kind(value)
    if kind == _NUM:
        if isinstance(value, float) and math.isnan(value):
            return (_G_NULL,)
        return (_G_NUM, -value if descending else value)
    if kind == _STR:
        return (_G_STR, _Descending(value) if descending else value)
    if kind == _BOOL:
        return (_G_BOOL, (not value) if descending else value)
    if kind == _NULL:
        return (_G_NULL,)
    return (_G_OTHER,)


def sort_key(order: tuple[OrderKey, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A ``key=`` function for ``sorted()`` over contexts, following ``order``.

    Within each key: numbers first, then strings, then booleans, then other values (all equal),
    and null/missing last in both directions; DESC reverses the order inside numbers, strings
    and booleans only.
    """
    readers = tuple((_getter(tuple(item.key.split("."))), item.descending) for item in order)

    def key(context: Mapping[str, Any]) -> tuple[Any, ...]:
        components = []
        for read, descending in readers:
            try:
                value = read(context)
            except Exception:
                value = None
            components.append(_sort_component(value, descending))
        return tuple(components)

    return key
