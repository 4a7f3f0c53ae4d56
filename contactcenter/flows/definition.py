"""Flow definitions: the widget catalogue and validation (REFERENCE.md 8).

Definitions have Twilio Studio's shape: `{"description", "initial_state", "flags", "states":
[{"name", "type", "properties", "transitions": [{"event", "next"?, "conditions"?}]}]}`. A
transition without `next` (or with an empty one) ends that branch; `properties.offset` is the
canvas position and is kept on every widget. Validation is pure and returns every problem it
finds, each naming the state, so the admin can show them all at once.
"""

import copy
import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from contactcenter.flows.liquid import TemplateError, is_template, template_check
from contactcenter.flows.operators import OPERATORS, check_condition_value


@dataclass(frozen=True)
class WidgetSpec:
    type: str
    events: tuple[str, ...]
    required: tuple[str, ...] = ()
    templates: tuple[str, ...] = ()


WIDGETS: dict[str, WidgetSpec] = {
    spec.type: spec
    for spec in (
        WidgetSpec("trigger", ("incomingMessage", "incomingRequest", "incomingParent")),
        WidgetSpec(
            "send-message",
            ("sent", "failed"),
            required=("body",),
            templates=("body", "from", "to", "media_url", "service"),
        ),
        WidgetSpec(
            "send-and-wait-for-reply",
            ("incomingMessage", "timeout", "deliveryFailure"),
            required=("body",),
            templates=("body", "from", "media_url", "service"),
        ),
        WidgetSpec(
            "split-based-on", ("noMatch", "match"), required=("input",), templates=("input",)
        ),
        WidgetSpec("set-variables", ("next",), required=("variables",)),
        WidgetSpec("run-subflow", ("completed", "failed"), required=("flow_sid",)),
        WidgetSpec("run-function", ("success", "fail"), required=("function",)),
        WidgetSpec(
            "make-http-request",
            ("success", "failed"),
            required=("method", "url"),
            templates=("url", "body"),
        ),
        WidgetSpec(
            "send-to-agent",
            ("callComplete", "failedToEnqueue", "callFailure"),
            required=("workflow",),
            templates=("channel", "attributes", "priority", "timeout"),
        ),
    )
}

# Studio's names for our widgets.
ALIASES: dict[str, str] = {"send-to-flex": "send-to-agent"}

DEFAULT_INITIAL_STATE = "Trigger"
DEFAULT_FLAGS: dict[str, Any] = {"allow_concurrent_calls": True}
WAIT_TIMEOUT_DEFAULT = 3600
WAIT_TIMEOUT_MAX = 30 * 24 * 3600  # 2,592,000 s: executions end after 30 days anyway
AGENT_TIMEOUT_MAX = 1_209_600  # TaskRouter's longest task timeout (14 days)
HTTP_METHODS = ("GET", "POST")
CONTENT_TYPE_FORM = "application/x-www-form-urlencoded;charset=utf-8"
CONTENT_TYPE_JSON = "application/json;charset=utf-8"
CONTENT_TYPES = (CONTENT_TYPE_FORM, CONTENT_TYPE_JSON)
LATEST_PUBLISHED = "LatestPublished"
VARIABLE_TYPES = ("string", "json")

_STATE_NAME = re.compile(r"[A-Za-z0-9_]+")
_VARIABLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class DefinitionError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def widget_type(type_name: Any) -> Any:
    """Our name for a widget type (Studio's aliases resolved)."""
    return ALIASES.get(type_name, type_name) if isinstance(type_name, str) else type_name


def normalize_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """A deep copy with aliases replaced and the optional parts filled in.

    `description` and `flags` get Studio's defaults too, so that a definition survives an
    export to Studio and back unchanged."""
    result = copy.deepcopy(definition)
    result.setdefault("description", "")
    if not result.get("initial_state"):
        result["initial_state"] = DEFAULT_INITIAL_STATE
    result.setdefault("flags", dict(DEFAULT_FLAGS))
    states = result.get("states")
    for state in states if isinstance(states, list) else []:
        if not isinstance(state, dict):
            continue
        if "type" in state:
            state["type"] = widget_type(state["type"])
        if state.get("properties") is None:
            state["properties"] = {}
        if state.get("transitions") is None:
            state["transitions"] = []
    return result


def state_index(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """State name → state (the first one when a name repeats)."""
    index: dict[str, dict[str, Any]] = {}
    states = definition.get("states")
    for state in states if isinstance(states, list) else []:
        if isinstance(state, dict) and isinstance(state.get("name"), str):
            index.setdefault(state["name"], state)
    return index


def validate_definition(
    definition: Any,
    *,
    known_functions: Collection[str] | None = None,
    known_flows: Collection[str] | None = None,
) -> list[DefinitionError]:
    """Every problem that keeps `definition` from running; [] when it is valid.

    `known_functions` / `known_flows`, when given, are the names a run-function's `function`
    and a run-subflow's `flow_sid` must be among. Unreachable states are allowed (as in
    Studio)."""
    checker = _Checker(known_functions=known_functions, known_flows=known_flows)
    checker.definition(definition)
    return checker.errors


class _Checker:
    """Collects errors while walking one definition."""

    def __init__(
        self, *, known_functions: Collection[str] | None, known_flows: Collection[str] | None
    ) -> None:
        self.errors: list[DefinitionError] = []
        self.known_functions = known_functions
        self.known_flows = known_flows
        self.names: dict[str, int] = {}
        self.trigger_name: str | None = None

    def add(self, path: str, message: str) -> None:
        self.errors.append(DefinitionError(path, message))

    # -- the definition as a whole ------------------------------------------------------

    def definition(self, definition: Any) -> None:
        if not isinstance(definition, dict):
            self.add("definition", "The flow definition must be a JSON object.")
            return
        if not isinstance(definition.get("description", ""), str):
            self.add("description", "The description must be text.")
        if not isinstance(definition.get("flags", {}), dict):
            self.add("flags", "The flags must be a JSON object.")
        states = definition.get("states")
        if not isinstance(states, list) or not states:
            self.add("states", "The flow must have a non-empty list of states.")
            return
        self.state_names(states)
        self.trigger(states, definition.get("initial_state") or DEFAULT_INITIAL_STATE)
        for index, state in enumerate(states):
            if isinstance(state, dict):
                self.state(index, state)

    def state_names(self, states: list[Any]) -> None:
        for index, state in enumerate(states):
            path = f"states[{index}]"
            if not isinstance(state, dict):
                self.add(path, f"State {index} must be a JSON object.")
                continue
            name = state.get("name")
            if not isinstance(name, str) or not name:
                self.add(f"{path}.name", f"State {index} has no name.")
            elif name in self.names:
                first = self.names[name]
                self.add(
                    f"{path}.name",
                    f"State name '{name}' at states[{index}] repeats states[{first}].",
                )
            else:
                self.names[name] = index
                if not _STATE_NAME.fullmatch(name):
                    self.add(
                        f"{path}.name",
                        f"State name '{name}' may only contain letters, digits and underscores.",
                    )

    def trigger(self, states: list[Any], initial_state: Any) -> None:
        triggers = [
            (index, state)
            for index, state in enumerate(states)
            if isinstance(state, dict) and widget_type(state.get("type")) == "trigger"
        ]
        if not triggers:
            self.add("states", "The flow has no trigger state (a state of type 'trigger').")
            return
        for index, state in triggers[1:]:
            self.add(
                f"states[{index}].type",
                f"{_label(index, state)} is a second trigger; a flow has exactly one "
                f"(states[{triggers[0][0]}]).",
            )
        name = triggers[0][1].get("name")
        self.trigger_name = name if isinstance(name, str) else None
        if initial_state != self.trigger_name:
            self.add(
                "initial_state",
                f"The initial state is {initial_state!r}, but the trigger state is "
                f"{self.trigger_name!r}; they must be the same.",
            )

    # -- one state ----------------------------------------------------------------------

    def state(self, index: int, state: dict[str, Any]) -> None:
        path = f"states[{index}]"
        label = _label(index, state)
        properties = state.get("properties", {})
        if properties is None:
            properties = {}
        if not isinstance(properties, dict):
            self.add(f"{path}.properties", f"{label}: properties must be a JSON object.")
            properties = {}
        transitions = state.get("transitions", [])
        if transitions is None:
            transitions = []
        if not isinstance(transitions, list):
            self.add(f"{path}.transitions", f"{label}: transitions must be a list.")
            transitions = []
        type_name = state.get("type")
        spec = WIDGETS.get(widget_type(type_name)) if isinstance(type_name, str) else None
        if not isinstance(type_name, str) or not type_name:
            self.add(f"{path}.type", f"{label} has no type.")
        elif spec is None:
            self.add(f"{path}.type", f"{label} has type '{type_name}', which flows do not support.")
        if spec is not None:
            self.properties(path, label, spec, properties)
        self.transitions(path, label, spec, transitions)

    def properties(
        self, path: str, label: str, spec: WidgetSpec, properties: dict[str, Any]
    ) -> None:
        for name in spec.required:
            if _is_empty(properties.get(name)):
                self.add(
                    f"{path}.properties.{name}",
                    f"{label} ({spec.type}) is missing the required property '{name}'.",
                )
        for name in spec.templates:
            if name in properties:
                self.template(
                    f"{path}.properties.{name}", label, f"property '{name}'", properties[name]
                )
        extra = _PROPERTY_CHECKS.get(spec.type)
        if extra is not None:
            extra(self, f"{path}.properties", label, properties)

    def template(self, path: str, label: str, what: str, value: Any) -> None:
        """`value` must be a Liquid template (numbers are accepted as their text)."""
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
            return
        values = value if isinstance(value, list) else [value]
        for item in values:
            if not isinstance(item, str):
                self.add(path, f"{label}: {what} must be text.")
                return
            try:
                template_check(item)
            except TemplateError as error:
                self.add(path, f"{label}: {what} is not a valid template: {error}")
                return

    def transitions(
        self, path: str, label: str, spec: WidgetSpec | None, transitions: list[Any]
    ) -> None:
        seen: dict[str, int] = {}
        for index, transition in enumerate(transitions):
            here = f"{path}.transitions[{index}]"
            if not isinstance(transition, dict):
                self.add(here, f"{label}: transition {index} must be a JSON object.")
                continue
            event = transition.get("event")
            if not isinstance(event, str) or not event:
                self.add(f"{here}.event", f"{label}: transition {index} has no event.")
                continue
            if spec is not None:
                self.event(here, label, spec, event, seen, index)
                if spec.type == "split-based-on" and event == "match":
                    self.conditions(here, label, transition.get("conditions"))
            self.next(here, label, event, transition.get("next"))

    def event(
        self, path: str, label: str, spec: WidgetSpec, event: str, seen: dict[str, int], index: int
    ) -> None:
        if event not in spec.events:
            allowed = ", ".join(spec.events)
            self.add(
                f"{path}.event",
                f"{label}: '{event}' is not an event of {spec.type} (its events: {allowed}).",
            )
        elif event in seen and not (spec.type == "split-based-on" and event == "match"):
            self.add(
                f"{path}.event",
                f"{label}: event '{event}' at transitions[{index}] repeats "
                f"transitions[{seen[event]}].",
            )
        else:
            seen.setdefault(event, index)

    def next(self, path: str, label: str, event: str, target: Any) -> None:
        if target is None or target == "":
            return  # the branch ends here
        if not isinstance(target, str):
            self.add(f"{path}.next", f"{label}: transition '{event}' must name a state.")
        elif target not in self.names:
            self.add(
                f"{path}.next",
                f"{label}: transition '{event}' goes to '{target}', which is not a state in "
                f"this flow.",
            )
        elif target == self.trigger_name:
            self.add(
                f"{path}.next",
                f"{label}: transition '{event}' goes to the trigger '{target}'; a flow "
                f"cannot return to its trigger.",
            )

    def conditions(self, path: str, label: str, conditions: Any) -> None:
        if not isinstance(conditions, list) or not conditions:
            self.add(
                f"{path}.conditions",
                f"{label}: a 'match' transition needs a non-empty list of conditions.",
            )
            return
        for index, condition in enumerate(conditions):
            self.condition(f"{path}.conditions[{index}]", label, condition)

    def condition(self, path: str, label: str, condition: Any) -> None:
        if not isinstance(condition, dict):
            self.add(path, f"{label}: each condition must be a JSON object.")
            return
        if not isinstance(condition.get("friendly_name"), str):
            self.add(f"{path}.friendly_name", f"{label}: the condition has no friendly_name.")
        arguments = condition.get("arguments")
        if not isinstance(arguments, list) or not arguments:
            self.add(
                f"{path}.arguments",
                f"{label}: the condition needs a non-empty list of arguments (templates).",
            )
        else:
            for index, argument in enumerate(arguments):
                self.template(f"{path}.arguments[{index}]", label, "condition argument", argument)
        operator = condition.get("type")
        if operator not in OPERATORS:
            known = ", ".join(sorted(OPERATORS))
            self.add(
                f"{path}.type",
                f"{label}: condition type {operator!r} is not an operator (operators: {known}).",
            )
            return
        value = condition.get("value", "")
        if is_template(value):
            self.template(f"{path}.value", label, "condition value", value)
            return
        problem = check_condition_value(operator, value)
        if problem is not None:
            self.add(f"{path}.value", f"{label}: {problem}")

    # -- helpers for the per-type checks ------------------------------------------------

    def parameters(self, path: str, label: str, parameters: Any) -> None:
        """A list of {key, value-template}."""
        if parameters is None:
            return
        if not isinstance(parameters, list):
            self.add(path, f"{label}: parameters must be a list of {{key, value}}.")
            return
        for index, parameter in enumerate(parameters):
            here = f"{path}[{index}]"
            if not isinstance(parameter, dict):
                self.add(here, f"{label}: parameter {index} must be a JSON object.")
                continue
            key = parameter.get("key")
            if not isinstance(key, str) or not key.strip():
                self.add(f"{here}.key", f"{label}: parameter {index} has no key.")
            self.template(f"{here}.value", label, f"parameter '{key}'", parameter.get("value"))

    def integer(
        self,
        path: str,
        label: str,
        name: str,
        value: Any,
        *,
        low: int,
        high: int | None = None,
        template_ok: bool = False,
    ) -> None:
        """`value` must be an integer in [low, high] (or a template when allowed)."""
        if template_ok and is_template(value):
            return  # checked as a template; its number is only known when the flow runs
        number = _as_int(value)
        span = f"from {low} to {high:,}" if high is not None else f"{low} or more"
        if number is None:
            self.add(path, f"{label}: {name} must be a whole number {span}; got {value!r}.")
        elif number < low or (high is not None and number > high):
            self.add(path, f"{label}: {name} must be {span}; got {number}.")


def _check_wait(checker: _Checker, path: str, label: str, properties: dict[str, Any]) -> None:
    if properties.get("timeout") not in (None, ""):
        checker.integer(
            f"{path}.timeout",
            label,
            "timeout",
            properties["timeout"],
            low=1,
            high=WAIT_TIMEOUT_MAX,
        )


def _check_variables(checker: _Checker, path: str, label: str, properties: dict[str, Any]) -> None:
    variables = properties.get("variables")
    if _is_empty(variables):
        return  # reported as a missing required property
    if not isinstance(variables, list):
        checker.add(f"{path}.variables", f"{label}: variables must be a list of {{key, value}}.")
        return
    seen: dict[str, int] = {}
    for index, variable in enumerate(variables):
        here = f"{path}.variables[{index}]"
        if not isinstance(variable, dict):
            checker.add(here, f"{label}: variable {index} must be a JSON object.")
            continue
        key = variable.get("key")
        if not isinstance(key, str) or not key:
            checker.add(f"{here}.key", f"{label}: variable {index} has no key.")
        elif not _VARIABLE_KEY.fullmatch(key):
            checker.add(
                f"{here}.key",
                f"{label}: variable key '{key}' must start with a letter or underscore and "
                f"contain only letters, digits and underscores.",
            )
        elif key in seen:
            checker.add(
                f"{here}.key",
                f"{label}: variable '{key}' at variables[{index}] repeats variables[{seen[key]}].",
            )
        else:
            seen[key] = index
        checker.template(f"{here}.value", label, f"variable '{key}'", variable.get("value"))
        kind = variable.get("type", "string")
        if kind not in VARIABLE_TYPES:
            checker.add(
                f"{here}.type",
                f"{label}: variable type {kind!r} must be 'string' or 'json'.",
            )


def _check_subflow(checker: _Checker, path: str, label: str, properties: dict[str, Any]) -> None:
    flow = properties.get("flow_sid")
    if checker.known_flows is not None and not _is_empty(flow) and flow not in checker.known_flows:
        checker.add(f"{path}.flow_sid", f"{label}: flow {flow!r} is not a flow here.")
    revision = properties.get("flow_revision")
    if revision not in (None, "", LATEST_PUBLISHED):
        number = _as_int(revision)
        if number is None or number < 1:
            checker.add(
                f"{path}.flow_revision",
                f"{label}: flow_revision must be '{LATEST_PUBLISHED}' or a revision number "
                f"(1 or more); got {revision!r}.",
            )
    checker.parameters(f"{path}.parameters", label, properties.get("parameters"))


def _check_function(checker: _Checker, path: str, label: str, properties: dict[str, Any]) -> None:
    function = properties.get("function")
    known = checker.known_functions
    if not _is_empty(function) and not isinstance(function, str):
        checker.add(f"{path}.function", f"{label}: function must be a function's name.")
    elif known is not None and not _is_empty(function) and function not in known:
        names = ", ".join(sorted(known)) if known else "none"
        checker.add(
            f"{path}.function",
            f"{label}: function '{function}' is not registered (registered functions: {names}).",
        )
    checker.parameters(f"{path}.parameters", label, properties.get("parameters"))


def _check_http(checker: _Checker, path: str, label: str, properties: dict[str, Any]) -> None:
    method = properties.get("method")
    if not _is_empty(method) and method not in HTTP_METHODS:
        checker.add(f"{path}.method", f"{label}: method must be GET or POST; got {method!r}.")
    content_type = properties.get("content_type")
    if content_type not in (None, "") and content_type not in CONTENT_TYPES:
        checker.add(
            f"{path}.content_type",
            f"{label}: content_type must be '{CONTENT_TYPE_FORM}' or '{CONTENT_TYPE_JSON}'; "
            f"got {content_type!r}.",
        )
    checker.parameters(f"{path}.parameters", label, properties.get("parameters"))


def _check_agent(checker: _Checker, path: str, label: str, properties: dict[str, Any]) -> None:
    workflow = properties.get("workflow")
    if not _is_empty(workflow) and not isinstance(workflow, str):
        checker.add(
            f"{path}.workflow", f"{label}: workflow must be a workflow sid (WW…) or its name."
        )
    channel = properties.get("channel")
    # A literal channel is a task channel's unique name or sid; templates are checked above.
    literal = isinstance(channel, str) and bool(channel) and not is_template(channel)
    if literal and not _CHANNEL_NAME.fullmatch(channel):
        checker.add(
            f"{path}.channel",
            f"{label}: channel {channel!r} must be a task channel's unique name (such as "
            f"sms or whatsapp) or sid (TC…).",
        )
    _check_attributes(checker, f"{path}.attributes", label, properties.get("attributes"))
    for name, high in (("priority", None), ("timeout", AGENT_TIMEOUT_MAX)):
        value = properties.get(name)
        if value not in (None, ""):
            low = 0 if name == "priority" else 1
            checker.integer(
                f"{path}.{name}", label, name, value, low=low, high=high, template_ok=True
            )


def _check_attributes(checker: _Checker, path: str, label: str, attributes: Any) -> None:
    # Liquid problems are already reported by the template check of 'attributes'.
    if not isinstance(attributes, str) or not attributes.strip() or is_template(attributes):
        return
    try:
        parsed = json.loads(attributes)
    except ValueError as error:
        checker.add(path, f"{label}: attributes are not valid JSON: {error}.")
        return
    if not isinstance(parsed, dict):
        checker.add(path, f"{label}: attributes must be a JSON object.")


_PropertyCheck = Callable[[_Checker, str, str, dict[str, Any]], None]

_PROPERTY_CHECKS: dict[str, _PropertyCheck] = {
    "send-and-wait-for-reply": _check_wait,
    "set-variables": _check_variables,
    "run-subflow": _check_subflow,
    "run-function": _check_function,
    "make-http-request": _check_http,
    "send-to-agent": _check_agent,
}


def _label(index: int, state: dict[str, Any]) -> str:
    name = state.get("name")
    return f"State '{name}'" if isinstance(name, str) and name else f"State {index}"


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | dict):
        return not value
    return False


def _as_int(value: Any) -> int | None:
    """An int, or a string holding one; anything else (bools, floats, text) is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    return None
