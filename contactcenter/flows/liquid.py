"""Flow templates: Studio's Liquid, through python-liquid.

Templates are parsed once per source text (an LRU cache: flows reuse the same few hundred
strings) and rendered against the execution's context. A rendered value is capped at
`MAX_RENDERED_CHARS` (REFERENCE.md 8: 16 KB) so that a runaway loop in a template cannot
grow an execution's context without bound.
"""

from functools import lru_cache
from typing import Any

from liquid import Environment
from liquid.exceptions import LiquidError

MAX_RENDERED_CHARS = 16 * 1024

_environment = Environment()


class TemplateError(ValueError):
    """A template that does not parse, fails to render or renders too large."""


@lru_cache(maxsize=2048)
def _compiled(source: str):
    return _environment.from_string(source)


def template_check(source: str) -> None:
    """Raise TemplateError with Liquid's own explanation when `source` does not parse."""
    try:
        _compiled(source)
    except LiquidError as error:
        raise TemplateError(_first_line(error)) from error


def is_template(source: Any) -> bool:
    return isinstance(source, str) and ("{{" in source or "{%" in source)


def render(source: Any, context: dict[str, Any]) -> str:
    """The text of `source` rendered against `context` (non-strings become their text)."""
    if source is None:
        return ""
    if not isinstance(source, str):
        source = str(source)
    if not is_template(source):
        text = source
    else:
        try:
            text = _compiled(source).render(**context)
        except LiquidError as error:
            raise TemplateError(_first_line(error)) from error
    if len(text.encode("utf-8")) > MAX_RENDERED_CHARS:
        raise TemplateError(
            f"The rendered value is longer than {MAX_RENDERED_CHARS // 1024} KB "
            f"(the limit for one value)."
        )
    return text


def _first_line(error: LiquidError) -> str:
    return str(error).splitlines()[0].strip() or type(error).__name__
