"""Registered flow functions and how the run-function widget runs them (no database)."""

import importlib
import sys
import threading
import time

import pytest

from contactcenter.flows import functions
from contactcenter.flows.functions import (
    FunctionCall,
    FunctionFailed,
    flow_function,
    function_run,
    registered_functions,
)


@pytest.fixture
def register():
    """`register(name, fn, **options)`; every name is unregistered after the test."""
    names = []

    def add(name, function, **options):
        names.append(name)
        return flow_function(name, **options)(function)

    yield add
    for name in names:
        functions._unregister(name)


def call(context=None, parameters=None, environment=None) -> FunctionCall:
    return FunctionCall(
        context=context if context is not None else {},
        parameters=parameters or {},
        environment=environment or {},
    )


# ---------------------------------------------------------------- registration


@pytest.mark.parametrize("name", ["", "Lookup", "1lookup", "_lookup", "look-up", "a" * 65])
def test_invalid_names_are_refused(name):
    with pytest.raises(ValueError, match="Invalid flow function name"):
        flow_function(name)


def test_a_function_is_registered_with_its_description_and_parameters(register):
    def lookup(call):
        return None

    returned = register("t_lookup" + "x" * 55, lookup, description="Finds it.", parameters=["a"])

    assert returned is lookup  # the decorator leaves the function as it is
    entry = registered_functions()["t_lookup" + "x" * 55]
    assert (entry.description, entry.parameters, entry.callable) == ("Finds it.", ("a",), lookup)


def test_two_callables_cannot_share_a_name(register):
    def first(call):
        return 1

    def second(call):
        return 2

    register("t_shared", first)
    with pytest.raises(ValueError, match="already registered"):
        register("t_shared", second)
    assert registered_functions()["t_shared"].callable is first


def test_registering_the_same_callable_again_is_a_no_op(register):
    def again(call):
        return 1

    register("t_again", again)
    register("t_again", again)

    assert registered_functions()["t_again"].callable is again


def test_a_reloaded_module_replaces_its_functions(tmp_path, monkeypatch):
    source = (
        "from contactcenter.flows.functions import flow_function\n"
        "@flow_function('t_reloaded')\n"
        "def reloaded(call):\n"
        "    return {'version': VERSION}\n"
    )
    (tmp_path / "t_flow_module.py").write_text("VERSION = 1\n" + source)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        module = importlib.import_module("t_flow_module")
        assert function_run("t_reloaded", call()).value == {"version": 1}
        (tmp_path / "t_flow_module.py").write_text("VERSION = 2\n" + source)
        importlib.invalidate_caches()
        importlib.reload(module)
        assert function_run("t_reloaded", call()).value == {"version": 2}
    finally:
        functions._unregister("t_reloaded")
        sys.modules.pop("t_flow_module", None)


# ---------------------------------------------------------------- results


def test_a_dict_result_is_json_text_and_parsed(register):
    def order(call):
        return {"status": "shipped", "order": call.parameters["order"], "key": call.environment}

    register("t_order", order)

    result = function_run(
        "t_order", call(parameters={"order": "A-1"}, environment={"API_KEY": "s3cret"})
    )

    expected = {"status": "shipped", "order": "A-1", "key": {"API_KEY": "s3cret"}}
    assert result.ok
    assert result.error == ""
    assert result.value == expected
    assert result.parsed == expected
    assert result.body == '{"status": "shipped", "order": "A-1", "key": {"API_KEY": "s3cret"}}'
    assert result.elapsed_ms >= 0


def test_a_result_is_plain_json_data_not_the_functions_objects(register):
    shared = {"items": (1, 2), 3: "three"}
    register("t_tuple", lambda call: shared)

    result = function_run("t_tuple", call())

    assert result.value == {"items": [1, 2], "3": "three"}
    assert result.parsed is not shared


@pytest.mark.parametrize(
    ("returned", "body", "parsed"),
    [
        ("hello", "hello", None),
        ('{"a": 1}', '{"a": 1}', {"a": 1}),
        ("[1, 2]", "[1, 2]", [1, 2]),
        ("42", "42", None),  # JSON, but not an object or array
        (None, "", None),
        (42, "42", None),
        (True, "true", None),
        (1.5, "1.5", None),
        ([1, "é"], '[1, "é"]', [1, "é"]),
    ],
)
def test_result_bodies(register, returned, body, parsed):
    register("t_value", lambda call: returned)

    result = function_run("t_value", call())

    assert result.ok
    assert (result.body, result.parsed) == (body, parsed)
    assert result.value == returned


def test_function_failed_gives_its_message_and_value(register):
    def refuse(call):
        raise FunctionFailed("The order is unknown.", value={"code": 404})

    register("t_refuse", refuse)

    result = function_run("t_refuse", call())

    assert not result.ok
    assert result.error == "The order is unknown."
    assert result.value == {"code": 404}
    assert result.parsed == {"code": 404}


def test_an_exception_is_reported_not_raised(register):
    def broken(call):
        raise ValueError("bad input")

    register("t_broken", broken)

    result = function_run("t_broken", call())

    assert not result.ok
    assert result.error == "ValueError: bad input"
    assert result.value is None


def test_an_exception_without_a_message_is_named(register):
    def broken(call):
        raise KeyError

    register("t_bare", broken)

    assert function_run("t_bare", call()).error == "KeyError"


def test_a_function_raising_timeout_error_is_not_mistaken_for_a_timeout(register):
    def upstream(call):
        raise TimeoutError("the CRM did not answer")

    register("t_upstream", upstream)

    assert function_run("t_upstream", call()).error == "TimeoutError: the CRM did not answer"


def test_a_slow_function_times_out(register):
    finished = threading.Event()

    def slow(call):
        time.sleep(1)
        finished.set()
        return "late"

    register("t_slow", slow)
    started = time.monotonic()

    result = function_run("t_slow", call(), timeout=0.2)

    assert not result.ok
    assert result.error == "The function t_slow did not finish within 0.2 s."
    assert time.monotonic() - started < 0.8
    assert not finished.is_set()  # the engine moved on; the thread is still running
    assert finished.wait(2)


def test_a_result_over_64_kb_is_refused(register):
    register("t_big_text", lambda call: "x" * (64 * 1024 + 1))
    register("t_big_dict", lambda call: {"data": "x" * (64 * 1024)})
    register("t_exact", lambda call: "x" * (64 * 1024))

    for name in ("t_big_text", "t_big_dict"):
        result = function_run(name, call())
        assert not result.ok
        assert result.error == "The function's result is larger than 64 KB."
        assert result.body == ""
    assert function_run("t_exact", call()).ok


@pytest.mark.parametrize("returned", [{1, 2}, {"when": object()}, float("nan")])
def test_a_result_that_is_not_json_is_refused(register, returned):
    register("t_not_json", lambda call: returned)

    result = function_run("t_not_json", call())

    assert not result.ok
    assert result.error.startswith(
        "The function t_not_json returned a value that is not JSON-serialisable: "
    )


def test_the_function_cannot_change_the_engines_context(register):
    def meddle(call):
        call.context["flow"]["variables"]["step"] = "changed"
        call.context["new"] = True
        call.parameters["p"] = "changed"
        return None

    register("t_meddle", meddle)
    context = {"flow": {"variables": {"step": "original"}}}
    parameters = {"p": "original"}

    assert function_run("t_meddle", call(context=context, parameters=parameters)).ok

    assert context == {"flow": {"variables": {"step": "original"}}}
    assert parameters == {"p": "original"}


def test_an_unknown_name_lists_the_known_ones(register):
    register("t_known_a", lambda call: None)
    register("t_known_b", lambda call: None)

    result = function_run("t_nope", call())

    assert not result.ok
    assert result.error.startswith("No flow function named 't_nope' is registered (known: ")
    assert "t_known_a, t_known_b" in result.error


def test_database_connections_are_closed_in_the_worker_thread(register, monkeypatch):
    closed_in = []
    monkeypatch.setattr(
        functions, "close_old_connections", lambda: closed_in.append(threading.current_thread())
    )
    ran_in = []
    register("t_orm", lambda call: ran_in.append(threading.current_thread()))

    function_run("t_orm", call())

    assert closed_in == ran_in
    assert ran_in[0] is not threading.current_thread()
