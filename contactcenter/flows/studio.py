"""Import and export of Twilio Studio flow JSON.

Studio's definitions already have our shape; the differences are names (`send-to-flex` is our
`send-to-agent`), run-function's addressing (Studio points at a Twilio Function by sids and
URL, we call a registered function by name) and the voice features we do not have. Nothing
unsupported is dropped silently: it is reported, and the definition keeps it so that the
user sees it and removes it before the flow can be used.
"""

import copy
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from contactcenter.flows.definition import (
    ALIASES,
    DEFAULT_FLAGS,
    WIDGETS,
    DefinitionError,
    normalize_definition,
    validate_definition,
)

# Trigger events that only voice calls / Conversations fire; flows here never receive them.
VOICE_TRIGGER_EVENTS: dict[str, str] = {
    "incomingCall": "voice",
    "incomingConversationMessage": "conversations",
}

_EXPORT_NAMES: dict[str, str] = {ours: theirs for theirs, ours in ALIASES.items()}


@dataclass
class ImportResult:
    definition: dict[str, Any]
    unsupported: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[DefinitionError] = field(default_factory=list)


def studio_import(data: Any) -> ImportResult:
    """Our definition for a Studio flow export (its definition, or the Flow resource that
    wraps it; JSON text is accepted too)."""
    raw, problem = _unwrap(data)
    if problem is not None:
        return ImportResult(definition={}, errors=[DefinitionError("definition", problem)])
    result = ImportResult(definition=normalize_definition(raw))
    states = result.definition.get("states")
    for state in states if isinstance(states, list) else []:
        if isinstance(state, dict):
            _import_state(state, result)
    result.errors.extend(validate_definition(result.definition))
    return result


def studio_export(definition: dict[str, Any]) -> dict[str, Any]:
    """`definition` in Studio's shape, so that Studio accepts it back."""
    result = normalize_definition(definition)
    states = result.get("states")
    for state in states if isinstance(states, list) else []:
        if isinstance(state, dict) and state.get("type") in _EXPORT_NAMES:
            state["type"] = _EXPORT_NAMES[state["type"]]
    if not isinstance(result.get("flags"), dict):
        result["flags"] = dict(DEFAULT_FLAGS)
    return result


def _unwrap(data: Any) -> tuple[dict[str, Any], str | None]:
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError as error:
            return {}, f"The file is not valid JSON: {error}."
    if isinstance(data, dict) and "states" not in data and isinstance(data.get("definition"), dict):
        data = data["definition"]  # the Flow resource: {"friendly_name", "definition", ...}
    elif isinstance(data, dict) and isinstance(data.get("definition"), str):
        return _unwrap(data["definition"])  # some API clients give the definition as text
    if not isinstance(data, dict):
        return {}, "A Studio flow must be a JSON object with a list of states."
    return copy.deepcopy(data), None


def _import_state(state: dict[str, Any], result: ImportResult) -> None:
    name = state.get("name")
    type_name = state.get("type")
    if type_name == "trigger":
        _import_trigger(state, result)
    elif type_name == "send-to-agent":
        _import_agent(state, result)
    elif type_name == "run-function":
        _import_function(state, result)
    elif type_name not in WIDGETS:
        # Kept as it is: validation reports it as an error, so the flow cannot be published
        # until it is removed.
        result.unsupported.append(f"{name} ({type_name})")


def _import_trigger(state: dict[str, Any], result: ImportResult) -> None:
    transitions = state.get("transitions")
    if not isinstance(transitions, list):
        return
    kept = []
    for transition in transitions:
        event = transition.get("event") if isinstance(transition, dict) else None
        if event in VOICE_TRIGGER_EVENTS:
            if not transition.get("next"):
                continue  # Studio lists every trigger event; an unused one means nothing
            result.unsupported.append(f"Trigger event '{event}' ({VOICE_TRIGGER_EVENTS[event]})")
        kept.append(transition)
    state["transitions"] = kept


def _import_agent(state: dict[str, Any], result: ImportResult) -> None:
    properties = state.get("properties")
    if not isinstance(properties, dict):
        return
    needed = f"a routing workflow {properties.get('workflow')!r}"
    if properties.get("channel"):
        needed += f" and a task channel {properties['channel']!r}"
    result.warnings.append(
        f"State '{state.get('name')}' (Send to Flex, here send-to-agent): {needed} must exist "
        f"here with these sids or names; Twilio's sids do not carry over by themselves."
    )


def _import_function(state: dict[str, Any], result: ImportResult) -> None:
    properties = state.get("properties")
    if not isinstance(properties, dict):
        return
    if not properties.get("function"):
        name = _function_name(properties.get("url"))
        if name:
            properties["function"] = name
    function = properties.get("function")
    if function:
        result.warnings.append(
            f"State '{state.get('name')}': a function named '{function}' must be registered "
            f"here (Studio ran the Twilio Function at {properties.get('url')!r})."
        )
    else:
        result.warnings.append(
            f"State '{state.get('name')}': no function name could be taken from the Twilio "
            f"Function's URL; choose a registered function."
        )


def _function_name(url: Any) -> str:
    """The last path segment of a Twilio Function URL: ".../cancelar" → "cancelar"."""
    if not isinstance(url, str):
        return ""
    path = urlsplit(url.strip()).path
    return path.rstrip("/").rsplit("/", 1)[-1]
