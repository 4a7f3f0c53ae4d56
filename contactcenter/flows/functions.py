"""Flow functions: Python callables registered in code, run by the run-function widget.

Admins only pick a registered function and configure its environment (variables and
secrets); they never supply code. A function takes a `FunctionCall` and returns a value,
or raises `FunctionFailed` to take the widget's `fail` transition with a message:

    @flow_function("order_status", description="Looks up an order.", parameters=["order"])
    def order_status(call: FunctionCall) -> dict:
        ...
        return {"status": "shipped"}

Each run happens in a worker thread and the engine waits at most `timeout` seconds (10 s,
REFERENCE.md 8). A thread cannot be killed: a function that overruns keeps its worker busy
until it returns, so functions must put their own timeouts on any I/O they do. The result
is capped at 64 KB of JSON text, like an HTTP response.
"""

import copy
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_RESULT_BYTES = 64 * 1024
MAX_WORKERS = 8

# Small on purpose: a function that overruns holds its worker, and further runs queue
# (and time out) rather than piling up threads without bound.
_executor = futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="flow-fn")
_registry: dict[str, "RegisteredFunction"] = {}
_registry_lock = threading.Lock()


@dataclass(frozen=True)
class FunctionCall:
    context: dict  # the execution's template context (the function gets its own copy)
    parameters: dict[str, str]
    environment: dict[str, str]  # admin-configured variables and decrypted secrets


@dataclass(frozen=True)
class FunctionResult:
    ok: bool
    value: Any  # the JSON value of the result (or of FunctionFailed's value)
    body: str  # its text: Studio's `widgets.<name>.body`
    parsed: Any | None  # the JSON object or array, else None: `widgets.<name>.parsed`
    error: str
    elapsed_ms: float


@dataclass(frozen=True)
class RegisteredFunction:
    name: str
    description: str
    parameters: tuple[str, ...]
    callable: Callable[[FunctionCall], Any]


class FunctionFailed(Exception):
    """Raised by a flow function to fail with `message` (shown to the flow as the error)
    and an optional JSON-able `value` (exposed like a result)."""

    def __init__(self, message: str, value: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.value = value


@dataclass(frozen=True)
class _Outcome:
    """What a run produced, computed in the worker so that no exception crosses threads."""

    ok: bool
    value: Any = None
    body: str = ""
    parsed: Any | None = None
    error: str = ""


class _UnusableResult(Exception):
    """The value cannot be a result: not JSON, or too large."""


# ---------------------------------------------------------------- the registry


def flow_function(
    name: str, *, description: str = "", parameters: Sequence[str] = ()
) -> Callable[[Callable[[FunctionCall], Any]], Callable[[FunctionCall], Any]]:
    """Register the decorated callable under `name`; the callable itself is unchanged."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"Invalid flow function name {name!r}: lowercase letters, digits and _, "
            "starting with a letter, at most 64 characters."
        )

    def register(function: Callable[[FunctionCall], Any]) -> Callable[[FunctionCall], Any]:
        entry = RegisteredFunction(name, description, tuple(parameters), function)
        with _registry_lock:
            existing = _registry.get(name)
            if existing is not None and _origin(existing.callable) != _origin(function):
                raise ValueError(
                    f"The flow function name {name!r} is already registered by "
                    f"{_origin(existing.callable)}."
                )
            _registry[name] = entry
        return function

    return register


def _origin(function: Callable) -> str:
    # Compared by where it is defined, not identity: a reloaded module makes a new object
    # for the same function, and that must replace the old one, not clash with it.
    module = getattr(function, "__module__", "?")
    return f"{module}.{getattr(function, '__qualname__', repr(function))}"


def registered_functions() -> dict[str, RegisteredFunction]:
    """A snapshot of the registry, by name."""
    with _registry_lock:
        return dict(_registry)


def _unregister(name: str) -> None:
    """For tests: forget a registration (no error when absent)."""
    with _registry_lock:
        _registry.pop(name, None)


# ---------------------------------------------------------------- running


def function_run(name: str, call: FunctionCall, *, timeout: float = 10.0) -> FunctionResult:
    """Run the function registered as `name`; never raises for what the function does."""
    started = time.perf_counter()
    entry = registered_functions().get(name)
    if entry is None:
        known = ", ".join(sorted(registered_functions())) or "none"
        error = f"No flow function named {name!r} is registered (known: {known})."
        return _result(_Outcome(ok=False, error=error), started)
    # Copied here, before the thread starts, so the function can never change the engine's
    # context, not even while the engine has moved on after a timeout.
    private = FunctionCall(
        context=copy.deepcopy(call.context),
        parameters=dict(call.parameters),
        environment=dict(call.environment),
    )
    future = _executor.submit(_run_in_worker, entry, private)
    try:
        outcome = future.result(timeout=timeout)
    except futures.TimeoutError:
        future.cancel()  # only helps when it is still queued behind busy workers
        error = f"The function {name} did not finish within {timeout:g} s."
        outcome = _Outcome(ok=False, error=error)
    return _result(outcome, started)


def _run_in_worker(entry: RegisteredFunction, call: FunctionCall) -> _Outcome:
    try:
        return _outcome(entry, call)
    finally:
        # The function may have used the ORM in this thread; its connection must not be
        # left open (or broken) for the next run in the same worker.
        try:
            close_old_connections()
        except Exception:
            logger.warning(
                "Closing database connections after %s failed", entry.name, exc_info=True
            )


def _outcome(entry: RegisteredFunction, call: FunctionCall) -> _Outcome:
    try:
        value = entry.callable(call)
    except FunctionFailed as failed:
        try:
            return _Outcome(ok=False, error=failed.message, **_rendered(entry.name, failed.value))
        except _UnusableResult:  # the message matters more than a value we cannot keep
            return _Outcome(ok=False, error=failed.message)
    except BaseException as error:  # even SystemExit: nothing a function does escapes the run
        logger.warning("The flow function %s raised", entry.name, exc_info=True)
        name, text = type(error).__name__, str(error)
        return _Outcome(ok=False, error=f"{name}: {text}" if text else name)
    try:
        return _Outcome(ok=True, **_rendered(entry.name, value))
    except _UnusableResult as unusable:
        return _Outcome(ok=False, error=str(unusable))


def _rendered(name: str, value: Any) -> dict[str, Any]:
    """The value, body and parsed fields for what a function returned."""
    if value is None:
        return {"value": None, "body": "", "parsed": None}
    if isinstance(value, str):
        body, normalised = value, value
        parsed = _object_or_array(value)
    else:
        try:
            body = json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as error:  # cycles, too deep
            raise _UnusableResult(
                f"The function {name} returned a value that is not JSON-serialisable: {error}."
            ) from error
        # Through JSON and back: the engine gets plain data that shares nothing with the
        # function (tuples become lists, keys become strings).
        normalised = json.loads(body)
        parsed = normalised if isinstance(normalised, dict | list) else None
    if len(body.encode("utf-8")) > MAX_RESULT_BYTES:
        raise _UnusableResult("The function's result is larger than 64 KB.")
    return {"value": normalised, "body": body, "parsed": parsed}


def _object_or_array(text: str) -> Any | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


def _result(outcome: _Outcome, started: float) -> FunctionResult:
    return FunctionResult(
        ok=outcome.ok,
        value=outcome.value,
        body=outcome.body,
        parsed=outcome.parsed,
        error=outcome.error,
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )
