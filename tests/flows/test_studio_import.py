"""Import of a real-shaped Twilio Studio export, and export back to Studio."""

import copy
import json
from pathlib import Path

import pytest

from contactcenter.flows.definition import (
    DefinitionError,
    normalize_definition,
    state_index,
    validate_definition,
)
from contactcenter.flows.studio import studio_export, studio_import

FIXTURE = Path(__file__).parent / "fixtures" / "studio_cancel_appointment.json"


@pytest.fixture
def studio() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def without_say_play(studio: dict) -> dict:
    studio = copy.deepcopy(studio)
    studio["states"] = [s for s in studio["states"] if s["type"] != "say-play"]
    return studio


def test_unsupported_widgets_are_reported_by_name_and_kept(studio):
    result = studio_import(studio)
    assert result.unsupported == ["say_play_1 (say-play)"]
    assert result.errors == [
        DefinitionError(
            "states[9].type", "State 'say_play_1' has type 'say-play', which flows do not support."
        )
    ]
    kept = state_index(result.definition)["say_play_1"]
    assert kept == studio["states"][9]  # as it was, so the user can see it


def test_without_the_say_play_state_the_import_has_no_errors(studio):
    result = studio_import(without_say_play(studio))
    assert result.unsupported == []
    assert result.errors == []
    assert validate_definition(result.definition) == []


def test_the_flow_resource_wrapper_and_json_text_are_accepted(studio):
    wrapped = {
        "sid": "FW9d6e4b3a2c1f0e9d8c7b6a5f4e3d2c1b",
        "account_sid": "AC0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "friendly_name": "Cancelar cita",
        "definition": without_say_play(studio),
        "status": "published",
        "revision": 7,
    }
    direct = studio_import(without_say_play(studio))
    assert studio_import(wrapped).definition == direct.definition
    assert studio_import(json.dumps(wrapped)).definition == direct.definition


def test_send_to_flex_becomes_send_to_agent(studio):
    result = studio_import(studio)
    agent = state_index(result.definition)["send_to_flex_1"]
    assert agent["type"] == "send-to-agent"
    assert agent["properties"]["workflow"] == "WW3f1c8e2a9b7d4c6e5f0a1b2c3d4e5f6a"
    assert agent["properties"]["channel"] == "TCa7b9c1d3e5f7a9b1c3d5e7f9a1b3c5d7"
    assert agent["properties"]["attributes"] == studio["states"][8]["properties"]["attributes"]
    assert agent["transitions"] == studio["states"][8]["transitions"]
    warning = next(w for w in result.warnings if "send_to_flex_1" in w)
    assert "WW3f1c8e2a9b7d4c6e5f0a1b2c3d4e5f6a" in warning
    assert "TCa7b9c1d3e5f7a9b1c3d5e7f9a1b3c5d7" in warning
    assert "must exist here" in warning


def test_run_function_takes_its_name_from_the_url(studio):
    result = studio_import(studio)
    function = state_index(result.definition)["cancel_appointment"]["properties"]
    assert function["function"] == "cancelar"
    # Studio's addressing is kept.
    assert function["url"] == "https://citas-clinica-4821.twil.io/cancelar"
    assert function["service_sid"] == "ZS5b0e9c1e5a8e4d3f0b2f6a1c7d9e4b21"
    assert function["function_sid"] == "ZH7e2b6c9a1d4f8e3b0c5a9d2e7f1b4c6a"
    assert function["parameters"] == [{"value": "{{flow.variables.documento}}", "key": "documento"}]
    assert any("'cancelar' must be registered" in w for w in result.warnings)
    # With the registry in hand, validation checks it.
    assert validate_definition(result.definition, known_functions={"cancelar"})[0].path == (
        "states[9].type"
    )
    errors = validate_definition(
        studio_import(without_say_play(studio)).definition, known_functions={"agendar"}
    )
    assert [e.path for e in errors] == ["states[5].properties.function"]


def test_the_rest_of_the_flow_is_kept_as_it_is(studio):
    result = studio_import(studio)
    states = state_index(result.definition)
    originals = {state["name"]: state for state in studio["states"]}
    for name in ("send_and_reply_1", "split_1", "ask_document", "set_document"):
        assert states[name] == originals[name]
    assert states["send_and_reply_1"]["properties"]["offset"] == {"x": 20, "y": 210}
    assert states["send_and_reply_1"]["properties"]["from"] == "{{flow.channel.address}}"
    assert result.definition["description"] == "Cancelar cita"
    assert result.definition["flags"] == {"allow_concurrent_calls": True}
    assert result.definition["initial_state"] == "Trigger"


def test_unused_voice_trigger_events_are_dropped(studio):
    result = studio_import(studio)
    events = [t["event"] for t in state_index(result.definition)["Trigger"]["transitions"]]
    assert events == ["incomingMessage", "incomingRequest", "incomingParent"]
    assert not any("Trigger event" in item for item in result.unsupported)


def test_used_voice_trigger_events_are_reported(studio):
    studio["states"][0]["transitions"][1]["next"] = "say_play_1"
    result = studio_import(studio)
    assert result.unsupported == ["Trigger event 'incomingCall' (voice)", "say_play_1 (say-play)"]
    assert [e.path for e in result.errors] == ["states[0].transitions[1].event", "states[9].type"]


@pytest.mark.parametrize("data", [None, [], "not json", {"friendly_name": "x"}])
def test_garbage_is_an_error_not_an_exception(data):
    result = studio_import(data)
    assert result.errors
    assert result.errors[0].path in {"definition", "states"}


def test_export_writes_send_to_flex_and_studio_defaults(studio):
    imported = studio_import(without_say_play(studio)).definition
    exported = studio_export(imported)
    assert exported["description"] == "Cancelar cita"
    assert exported["flags"] == {"allow_concurrent_calls": True}
    assert exported["initial_state"] == "Trigger"
    types = {state["name"]: state["type"] for state in exported["states"]}
    assert types["send_to_flex_1"] == "send-to-flex"
    # The definition passed in is not changed.
    assert state_index(imported)["send_to_flex_1"]["type"] == "send-to-agent"
    assert studio_export({"states": []})["flags"] == {"allow_concurrent_calls": True}


def test_round_trip(studio):
    ours = studio_import(without_say_play(studio)).definition
    assert studio_import(studio_export(ours)).definition == normalize_definition(ours)
    # A minimal definition of ours, without Studio's optional parts.
    minimal = {
        "states": [
            {
                "name": "Trigger",
                "type": "trigger",
                "transitions": [{"event": "incomingMessage", "next": "agent"}],
            },
            {"name": "agent", "type": "send-to-agent", "properties": {"workflow": "Soporte"}},
            {"name": "fn", "type": "run-function", "properties": {"function": "buscar"}},
        ]
    }
    again = studio_import(studio_export(minimal))
    assert again.definition == normalize_definition(minimal)
    assert again.errors == []
