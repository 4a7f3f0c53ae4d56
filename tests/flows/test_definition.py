"""Flow definition validation: a valid flow passes, and every problem is named precisely."""

import copy

import pytest

from contactcenter.flows.definition import (
    ALIASES,
    WIDGETS,
    DefinitionError,
    normalize_definition,
    state_index,
    validate_definition,
)
from contactcenter.flows.operators import OPERATORS


def _state(name: str, type_: str, properties: dict, transitions: list) -> dict:
    return {
        "name": name,
        "type": type_,
        "properties": {"offset": {"x": 0, "y": 0}, **properties},
        "transitions": transitions,
    }


def valid_definition() -> dict:
    """Every widget type once, wired together."""
    return {
        "description": "Every widget",
        "initial_state": "Trigger",
        "flags": {"allow_concurrent_calls": True},
        "states": [
            _state(
                "Trigger",
                "trigger",
                {},
                [
                    {"event": "incomingMessage", "next": "ask"},
                    {"event": "incomingRequest", "next": "greet"},
                    {"event": "incomingParent"},
                ],
            ),
            _state(
                "ask",
                "send-and-wait-for-reply",
                {
                    "body": "Hola {{contact.channel.address}}. 1 o 2?",
                    "from": "{{flow.channel.address}}",
                    "service": "{{trigger.message.InstanceSid}}",
                    "timeout": "3600",
                },
                [
                    {"event": "incomingMessage", "next": "split_1"},
                    {"event": "timeout", "next": ""},
                    {"event": "deliveryFailure", "next": None},
                ],
            ),
            _state(
                "split_1",
                "split-based-on",
                {"input": "{{widgets.ask.inbound.Body}}"},
                [
                    {"event": "noMatch", "next": "ask"},
                    {
                        "event": "match",
                        "next": "remember",
                        "conditions": [
                            {
                                "friendly_name": "If value equal_to 1",
                                "arguments": ["{{widgets.ask.inbound.Body}}"],
                                "type": "equal_to",
                                "value": "1",
                            }
                        ],
                    },
                    {
                        "event": "match",
                        "next": "agent",
                        "conditions": [
                            {
                                "friendly_name": "Document",
                                "arguments": ["{{widgets.ask.inbound.Body}}"],
                                "type": "regex",
                                "value": r"\d{6,10}",
                            },
                            {
                                "friendly_name": "Office hours",
                                "arguments": ["{{widgets.ask.inbound.Body}}"],
                                "type": "is_before_time",
                                "value": "18:00",
                            },
                        ],
                    },
                ],
            ),
            _state(
                "remember",
                "set-variables",
                {
                    "variables": [
                        {"key": "documento", "value": "{{widgets.ask.inbound.Body | strip}}"},
                        {"key": "_extra", "value": '{"a": 1}', "type": "json"},
                    ]
                },
                [{"event": "next", "next": "cancel"}],
            ),
            _state(
                "cancel",
                "run-function",
                {
                    "function": "cancelar",
                    "parameters": [{"key": "documento", "value": "{{flow.variables.documento}}"}],
                },
                [{"event": "success", "next": "lookup"}, {"event": "fail", "next": "agent"}],
            ),
            _state(
                "lookup",
                "make-http-request",
                {
                    "method": "POST",
                    "url": "https://example.com/citas/{{flow.variables.documento}}",
                    "content_type": "application/json;charset=utf-8",
                    "body": '{"documento": "{{flow.variables.documento}}"}',
                },
                [{"event": "success", "next": "survey"}, {"event": "failed"}],
            ),
            _state(
                "survey",
                "run-subflow",
                {
                    "flow_sid": "FW0123456789abcdef0123456789abcdef",
                    "flow_revision": "LatestPublished",
                    "parameters": [{"key": "origen", "value": "{{flow.sid}}"}],
                },
                [{"event": "completed", "next": "greet"}, {"event": "failed"}],
            ),
            _state(
                "greet",
                "send-message",
                {"body": "Gracias", "to": "{{contact.channel.address}}", "channel": "whatsapp"},
                [{"event": "sent"}, {"event": "failed"}],
            ),
            _state(
                "agent",
                "send-to-agent",
                {
                    "workflow": "WW0123456789abcdef0123456789abcdef",
                    "channel": "sms",
                    "attributes": '{"name": "{{contact.channel.address}}"}',
                    "priority": 5,
                    "timeout": "{{flow.variables.wait}}",
                },
                [
                    {"event": "callComplete"},
                    {"event": "failedToEnqueue", "next": "greet"},
                    {"event": "callFailure"},
                ],
            ),
            # Unreachable states are allowed, as in Studio.
            _state("orphan", "send-message", {"body": "never sent"}, []),
        ],
    }


def errors_of(definition, **kwargs) -> list[tuple[str, str]]:
    return [(error.path, error.message) for error in validate_definition(definition, **kwargs)]


def state_of(definition: dict, name: str) -> dict:
    return state_index(definition)[name]


def test_a_valid_definition_has_no_errors():
    assert validate_definition(valid_definition()) == []
    known = {"cancelar", "other"}
    flows = {"FW0123456789abcdef0123456789abcdef"}
    assert validate_definition(valid_definition(), known_functions=known, known_flows=flows) == []


def test_the_catalogue():
    assert set(WIDGETS) == {
        "trigger",
        "send-message",
        "send-and-wait-for-reply",
        "split-based-on",
        "set-variables",
        "run-subflow",
        "run-function",
        "make-http-request",
        "send-to-agent",
    }
    assert WIDGETS["trigger"].events == ("incomingMessage", "incomingRequest", "incomingParent")
    assert WIDGETS["send-to-agent"].events == ("callComplete", "failedToEnqueue", "callFailure")
    assert WIDGETS["split-based-on"].templates == ("input",)
    assert "body" in WIDGETS["send-message"].required
    assert ALIASES == {"send-to-flex": "send-to-agent"}


def test_send_to_flex_is_accepted_as_an_alias():
    definition = valid_definition()
    state_of(definition, "agent")["type"] = "send-to-flex"
    assert validate_definition(definition) == []


def test_definition_error_text():
    error = DefinitionError("states[1].name", "State 1 has no name.")
    assert str(error) == "states[1].name: State 1 has no name."


@pytest.mark.parametrize("definition", [None, [], "flow", 3])
def test_the_definition_must_be_an_object(definition):
    assert errors_of(definition) == [("definition", "The flow definition must be a JSON object.")]


@pytest.mark.parametrize("states", [None, [], {}, "Trigger"])
def test_states_must_be_a_non_empty_list(states):
    assert errors_of({"states": states}) == [
        ("states", "The flow must have a non-empty list of states.")
    ]


def test_states_must_be_objects():
    definition = valid_definition()
    definition["states"].append("ask")
    assert errors_of(definition) == [("states[10]", "State 10 must be a JSON object.")]


def test_state_names_must_be_present_valid_and_unique():
    definition = valid_definition()
    definition["states"][7]["name"] = "ask"
    definition["states"][8]["name"] = "send to agent"
    definition["states"][9]["name"] = ""
    assert errors_of(definition) == [
        ("states[7].name", "State name 'ask' at states[7] repeats states[1]."),
        (
            "states[8].name",
            "State name 'send to agent' may only contain letters, digits and underscores.",
        ),
        ("states[9].name", "State 9 has no name."),
        # The transitions that went to the renamed states now go nowhere.
        (
            "states[0].transitions[1].next",
            "State 'Trigger': transition 'incomingRequest' goes to 'greet', which is not a "
            "state in this flow.",
        ),
        (
            "states[2].transitions[2].next",
            "State 'split_1': transition 'match' goes to 'agent', which is not a state in this "
            "flow.",
        ),
        (
            "states[4].transitions[1].next",
            "State 'cancel': transition 'fail' goes to 'agent', which is not a state in this flow.",
        ),
        (
            "states[6].transitions[0].next",
            "State 'survey': transition 'completed' goes to 'greet', which is not a state in "
            "this flow.",
        ),
        (
            "states[8].transitions[1].next",
            "State 'send to agent': transition 'failedToEnqueue' goes to 'greet', which is not "
            "a state in this flow.",
        ),
    ]


def test_unknown_and_missing_types():
    definition = valid_definition()
    definition["states"][9]["type"] = "say-play"
    definition["states"][7]["type"] = None
    assert errors_of(definition) == [
        ("states[7].type", "State 'greet' has no type."),
        ("states[9].type", "State 'orphan' has type 'say-play', which flows do not support."),
    ]


def test_exactly_one_trigger():
    definition = valid_definition()
    definition["states"][9] = _state("Trigger2", "trigger", {}, [])
    assert errors_of(definition) == [
        (
            "states[9].type",
            "State 'Trigger2' is a second trigger; a flow has exactly one (states[0]).",
        )
    ]
    definition = valid_definition()
    definition["states"][0]["type"] = "send-message"
    definition["states"][0]["properties"]["body"] = "hi"
    definition["states"][0]["transitions"] = []
    assert errors_of(definition) == [
        ("states", "The flow has no trigger state (a state of type 'trigger').")
    ]


def test_initial_state_must_name_the_trigger():
    definition = valid_definition()
    definition["initial_state"] = "ask"
    assert errors_of(definition) == [
        (
            "initial_state",
            "The initial state is 'ask', but the trigger state is 'Trigger'; they must be the "
            "same.",
        )
    ]
    # Missing, it defaults to "Trigger".
    del definition["initial_state"]
    assert errors_of(definition) == []
    definition["states"][0]["name"] = "Start"
    definition["states"][0]["transitions"] = []
    assert errors_of(definition) == [
        (
            "initial_state",
            "The initial state is 'Trigger', but the trigger state is 'Start'; they must be the "
            "same.",
        )
    ]


def test_properties_must_be_an_object_and_transitions_a_list():
    definition = valid_definition()
    definition["states"][9]["properties"] = ["body"]
    definition["states"][7]["transitions"] = {"sent": None}
    assert errors_of(definition) == [
        ("states[7].transitions", "State 'greet': transitions must be a list."),
        ("states[9].properties", "State 'orphan': properties must be a JSON object."),
        (
            "states[9].properties.body",
            "State 'orphan' (send-message) is missing the required property 'body'.",
        ),
    ]


def test_missing_properties_and_transitions_are_empty():
    definition = valid_definition()
    del definition["states"][9]["properties"]
    del definition["states"][9]["transitions"]
    assert errors_of(definition) == [
        (
            "states[9].properties.body",
            "State 'orphan' (send-message) is missing the required property 'body'.",
        )
    ]


@pytest.mark.parametrize(
    ("index", "name"),
    [
        (1, "body"),
        (2, "input"),
        (3, "variables"),
        (4, "function"),
        (5, "method"),
        (5, "url"),
        (6, "flow_sid"),
        (8, "workflow"),
    ],
)
@pytest.mark.parametrize("empty", [None, "", "   ", []])
def test_required_properties_must_be_present_and_non_empty(index, name, empty):
    definition = valid_definition()
    state = definition["states"][index]
    state["properties"][name] = empty
    assert errors_of(definition) == [
        (
            f"states[{index}].properties.{name}",
            f"State '{state['name']}' ({state['type']}) is missing the required property '{name}'.",
        )
    ]


def test_template_properties_must_parse_as_liquid():
    definition = valid_definition()
    state_of(definition, "ask")["properties"]["body"] = "Hola {{ contact.name "
    state_of(definition, "greet")["properties"]["to"] = "{% if x %}"
    state_of(definition, "lookup")["properties"]["url"] = "https://x/{{ a | }}"
    errors = errors_of(definition)
    assert [path for path, _ in errors] == [
        "states[1].properties.body",
        "states[5].properties.url",
        "states[7].properties.to",
    ]
    for (_, message), name, state in zip(
        errors, ["body", "url", "to"], ["ask", "lookup", "greet"], strict=True
    ):
        assert message.startswith(f"State '{state}': property '{name}' is not a valid template: ")
        assert len(message) > len(f"State '{state}': property '{name}' is not a valid template: ")


def test_template_properties_must_be_text():
    definition = valid_definition()
    state_of(definition, "greet")["properties"]["body"] = {"text": "hi"}
    assert errors_of(definition) == [
        ("states[7].properties.body", "State 'greet': property 'body' must be text.")
    ]


def test_events_must_belong_to_the_widget():
    definition = valid_definition()
    state_of(definition, "greet")["transitions"].append({"event": "delivered"})
    state_of(definition, "Trigger")["transitions"].append({"event": "incomingCall"})
    assert errors_of(definition) == [
        (
            "states[0].transitions[3].event",
            "State 'Trigger': 'incomingCall' is not an event of trigger (its events: "
            "incomingMessage, incomingRequest, incomingParent).",
        ),
        (
            "states[7].transitions[2].event",
            "State 'greet': 'delivered' is not an event of send-message (its events: sent, "
            "failed).",
        ),
    ]


def test_events_may_not_repeat_except_match():
    definition = valid_definition()
    state_of(definition, "ask")["transitions"].append({"event": "timeout", "next": "greet"})
    assert errors_of(definition) == [
        (
            "states[1].transitions[3].event",
            "State 'ask': event 'timeout' at transitions[3] repeats transitions[1].",
        )
    ]


def test_transitions_need_an_event_and_must_be_objects():
    definition = valid_definition()
    state_of(definition, "greet")["transitions"] = [{"next": "ask"}, "sent"]
    assert errors_of(definition) == [
        ("states[7].transitions[0].event", "State 'greet': transition 0 has no event."),
        ("states[7].transitions[1]", "State 'greet': transition 1 must be a JSON object."),
    ]


def test_next_must_name_a_state_other_than_the_trigger():
    definition = valid_definition()
    split = state_of(definition, "split_1")
    split["transitions"][1]["next"] = "nowhere"
    split["transitions"][0]["next"] = "Trigger"
    state_of(definition, "greet")["transitions"][0]["next"] = 3
    assert errors_of(definition) == [
        (
            "states[2].transitions[0].next",
            "State 'split_1': transition 'noMatch' goes to the trigger 'Trigger'; a flow "
            "cannot return to its trigger.",
        ),
        (
            "states[2].transitions[1].next",
            "State 'split_1': transition 'match' goes to 'nowhere', which is not a state in "
            "this flow.",
        ),
        ("states[7].transitions[0].next", "State 'greet': transition 'sent' must name a state."),
    ]


@pytest.mark.parametrize("conditions", [None, [], "equal_to 1"])
def test_match_transitions_need_conditions(conditions):
    definition = valid_definition()
    state_of(definition, "split_1")["transitions"][1]["conditions"] = conditions
    assert errors_of(definition) == [
        (
            "states[2].transitions[1].conditions",
            "State 'split_1': a 'match' transition needs a non-empty list of conditions.",
        )
    ]


def test_conditions_must_be_complete():
    definition = valid_definition()
    state_of(definition, "split_1")["transitions"][1]["conditions"] = [
        {"type": "equal_to", "value": "1"},
        "equal_to",
    ]
    base = "states[2].transitions[1].conditions"
    assert errors_of(definition) == [
        (f"{base}[0].friendly_name", "State 'split_1': the condition has no friendly_name."),
        (
            f"{base}[0].arguments",
            "State 'split_1': the condition needs a non-empty list of arguments (templates).",
        ),
        (f"{base}[1]", "State 'split_1': each condition must be a JSON object."),
    ]


def test_condition_types_must_be_operators():
    definition = valid_definition()
    state_of(definition, "split_1")["transitions"][1]["conditions"][0]["type"] = "like"
    known = ", ".join(sorted(OPERATORS))
    assert errors_of(definition) == [
        (
            "states[2].transitions[1].conditions[0].type",
            f"State 'split_1': condition type 'like' is not an operator (operators: {known}).",
        )
    ]


@pytest.mark.parametrize(
    ("operator", "value", "message"),
    [
        (
            "regex",
            "(a",
            "State 'split_1': The regular expression '(a' does not compile: missing ) at "
            "position 2.",
        ),
        (
            "is_after_time",
            "25:00",
            "State 'split_1': The time '25:00' is not a time of day as HH:MM (24-hour, 00:00 "
            "to 23:59).",
        ),
        (
            "is_before_date",
            "2026-02-30",
            "State 'split_1': The date '2026-02-30' is not a real date as YYYY-MM-DD.",
        ),
        ("less_than", "diez", "State 'split_1': The value 'diez' is not a number."),
    ],
)
def test_condition_values_are_checked(operator, value, message):
    definition = valid_definition()
    condition = state_of(definition, "split_1")["transitions"][2]["conditions"][1]
    condition["type"] = operator
    condition["value"] = value
    assert errors_of(definition) == [("states[2].transitions[2].conditions[1].value", message)]


def test_condition_values_may_be_empty_or_templates():
    definition = valid_definition()
    conditions = state_of(definition, "split_1")["transitions"][1]["conditions"]
    conditions[0]["value"] = ""
    conditions.append({**conditions[0], "type": "greater_than", "value": "{{flow.variables.n}}"})
    conditions.append({**conditions[0], "type": "is_blank"})
    del conditions[-1]["value"]
    assert errors_of(definition) == []


def test_condition_arguments_and_template_values_must_parse():
    definition = valid_definition()
    condition = state_of(definition, "split_1")["transitions"][1]["conditions"][0]
    condition["arguments"] = ["{{ widgets.ask.inbound.Body"]
    condition["value"] = "{% if %}"
    errors = errors_of(definition)
    base = "states[2].transitions[1].conditions[0]"
    assert [path for path, _ in errors] == [f"{base}.arguments[0]", f"{base}.value"]
    assert errors[0][1].startswith("State 'split_1': condition argument is not a valid template: ")
    assert errors[1][1].startswith("State 'split_1': condition value is not a valid template: ")


@pytest.mark.parametrize(
    ("timeout", "message"),
    [
        ("0", "State 'ask': timeout must be from 1 to 2,592,000; got 0."),
        (2592001, "State 'ask': timeout must be from 1 to 2,592,000; got 2592001."),
        (
            "una hora",
            "State 'ask': timeout must be a whole number from 1 to 2,592,000; got 'una hora'.",
        ),
        (True, "State 'ask': timeout must be a whole number from 1 to 2,592,000; got True."),
    ],
)
def test_wait_timeout_in_range(timeout, message):
    definition = valid_definition()
    state_of(definition, "ask")["properties"]["timeout"] = timeout
    assert errors_of(definition) == [("states[1].properties.timeout", message)]


@pytest.mark.parametrize("timeout", [1, "2592000", " 60 ", None])
def test_wait_timeout_accepted(timeout):
    definition = valid_definition()
    state_of(definition, "ask")["properties"]["timeout"] = timeout
    assert errors_of(definition) == []


def test_set_variables_keys_and_types():
    definition = valid_definition()
    state_of(definition, "remember")["properties"]["variables"] = [
        {"key": "documento", "value": "a"},
        {"key": "documento", "value": "b"},
        {"key": "1st", "value": "c"},
        {"key": "", "value": "d"},
        {"key": "ok", "value": "{{ nope", "type": "string"},
        {"key": "data", "value": "{}", "type": "xml"},
        "x",
    ]
    errors = errors_of(definition)
    base = "states[3].properties.variables"
    assert errors[:4] == [
        (
            f"{base}[1].key",
            "State 'remember': variable 'documento' at variables[1] repeats variables[0].",
        ),
        (
            f"{base}[2].key",
            "State 'remember': variable key '1st' must start with a letter or underscore and "
            "contain only letters, digits and underscores.",
        ),
        (f"{base}[3].key", "State 'remember': variable 3 has no key."),
        (f"{base}[4].value", errors[3][1]),
    ]
    assert errors[3][1].startswith("State 'remember': variable 'ok' is not a valid template: ")
    assert errors[4:] == [
        (f"{base}[5].type", "State 'remember': variable type 'xml' must be 'string' or 'json'."),
        (f"{base}[6]", "State 'remember': variable 6 must be a JSON object."),
    ]


def test_set_variables_must_be_a_list():
    definition = valid_definition()
    state_of(definition, "remember")["properties"]["variables"] = {"documento": "1"}
    assert errors_of(definition) == [
        (
            "states[3].properties.variables",
            "State 'remember': variables must be a list of {key, value}.",
        )
    ]


def test_run_function_must_be_registered_when_known():
    definition = valid_definition()
    assert errors_of(definition, known_functions=["agendar", "buscar"]) == [
        (
            "states[4].properties.function",
            "State 'cancel': function 'cancelar' is not registered (registered functions: "
            "agendar, buscar).",
        )
    ]
    assert errors_of(definition, known_functions=[]) == [
        (
            "states[4].properties.function",
            "State 'cancel': function 'cancelar' is not registered (registered functions: none).",
        )
    ]


def test_parameters_need_keys_and_template_values():
    definition = valid_definition()
    state_of(definition, "cancel")["properties"]["parameters"] = [
        {"key": "", "value": "x"},
        {"key": "doc", "value": "{{ flow.variables.documento"},
        "doc",
    ]
    state_of(definition, "lookup")["properties"]["parameters"] = {"a": "b"}
    errors = errors_of(definition)
    assert errors[0] == (
        "states[4].properties.parameters[0].key",
        "State 'cancel': parameter 0 has no key.",
    )
    assert errors[1][0] == "states[4].properties.parameters[1].value"
    assert errors[1][1].startswith("State 'cancel': parameter 'doc' is not a valid template: ")
    assert errors[2:] == [
        (
            "states[4].properties.parameters[2]",
            "State 'cancel': parameter 2 must be a JSON object.",
        ),
        (
            "states[5].properties.parameters",
            "State 'lookup': parameters must be a list of {key, value}.",
        ),
    ]


def test_run_subflow_flow_and_revision():
    definition = valid_definition()
    state_of(definition, "survey")["properties"]["flow_revision"] = "0"
    assert errors_of(definition, known_flows={"FWother"}) == [
        (
            "states[6].properties.flow_sid",
            "State 'survey': flow 'FW0123456789abcdef0123456789abcdef' is not a flow here.",
        ),
        (
            "states[6].properties.flow_revision",
            "State 'survey': flow_revision must be 'LatestPublished' or a revision number (1 or "
            "more); got '0'.",
        ),
    ]
    state_of(definition, "survey")["properties"]["flow_revision"] = 3
    assert errors_of(definition) == []


def test_make_http_request_method_and_content_type():
    definition = valid_definition()
    properties = state_of(definition, "lookup")["properties"]
    properties["method"] = "PUT"
    properties["content_type"] = "text/plain"
    assert errors_of(definition) == [
        ("states[5].properties.method", "State 'lookup': method must be GET or POST; got 'PUT'."),
        (
            "states[5].properties.content_type",
            "State 'lookup': content_type must be "
            "'application/x-www-form-urlencoded;charset=utf-8' or "
            "'application/json;charset=utf-8'; got 'text/plain'.",
        ),
    ]
    # content_type defaults to the form encoding.
    del properties["content_type"]
    properties["method"] = "GET"
    assert errors_of(definition) == []


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ("[1, 2]", "State 'agent': attributes must be a JSON object."),
        (
            '{"name": ',
            "State 'agent': attributes are not valid JSON: Expecting value: line 1 column 10 "
            "(char 9).",
        ),
    ],
)
def test_send_to_agent_literal_attributes_must_be_a_json_object(attributes, message):
    definition = valid_definition()
    state_of(definition, "agent")["properties"]["attributes"] = attributes
    assert errors_of(definition) == [("states[8].properties.attributes", message)]


def test_send_to_agent_template_attributes_must_parse_as_liquid():
    definition = valid_definition()
    state_of(definition, "agent")["properties"]["attributes"] = '{"name": "{{ contact"}'
    errors = errors_of(definition)
    assert [path for path, _ in errors] == ["states[8].properties.attributes"]
    assert errors[0][1].startswith("State 'agent': property 'attributes' is not a valid template: ")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("priority", -1, "State 'agent': priority must be 0 or more; got -1."),
        (
            "priority",
            "alta",
            "State 'agent': priority must be a whole number 0 or more; got 'alta'.",
        ),
        ("timeout", 0, "State 'agent': timeout must be from 1 to 1,209,600; got 0."),
        ("timeout", "1209601", "State 'agent': timeout must be from 1 to 1,209,600; got 1209601."),
        (
            "channel",
            "sms whatsapp",
            "State 'agent': channel 'sms whatsapp' must be a task channel's unique name (such "
            "as sms or whatsapp) or sid (TC…).",
        ),
    ],
)
def test_send_to_agent_literal_numbers_in_range(name, value, message):
    definition = valid_definition()
    state_of(definition, "agent")["properties"][name] = value
    assert errors_of(definition) == [(f"states[8].properties.{name}", message)]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("priority", "0"),
        ("priority", "{{flow.variables.priority}}"),
        ("timeout", 1209600),
        ("channel", "TC0123456789abcdef0123456789abcdef"),
        ("channel", "{{flow.variables.channel}}"),
        ("workflow", "Soporte"),
    ],
)
def test_send_to_agent_accepted_values(name, value):
    definition = valid_definition()
    state_of(definition, "agent")["properties"][name] = value
    assert errors_of(definition) == []


def test_all_problems_are_reported_at_once():
    definition = valid_definition()
    state_of(definition, "greet")["properties"]["body"] = ""
    state_of(definition, "split_1")["transitions"][1]["next"] = "nowhere"
    state_of(definition, "agent")["properties"]["priority"] = -2
    assert [path for path, _ in errors_of(definition)] == [
        "states[2].transitions[1].next",
        "states[7].properties.body",
        "states[8].properties.priority",
    ]


def test_normalize_definition():
    definition = {
        "states": [
            {"name": "Trigger", "type": "trigger"},
            {
                "name": "agent",
                "type": "send-to-flex",
                "properties": {"workflow": "WW1"},
                "transitions": None,
            },
        ]
    }
    original = copy.deepcopy(definition)
    normalized = normalize_definition(definition)
    assert definition == original  # a copy
    assert normalized == {
        "description": "",
        "initial_state": "Trigger",
        "flags": {"allow_concurrent_calls": True},
        "states": [
            {"name": "Trigger", "type": "trigger", "properties": {}, "transitions": []},
            {
                "name": "agent",
                "type": "send-to-agent",
                "properties": {"workflow": "WW1"},
                "transitions": [],
            },
        ],
    }
    assert normalize_definition(normalized) == normalized
    normalized["states"][1]["properties"]["workflow"] = "changed"
    assert definition["states"][1]["properties"]["workflow"] == "WW1"


def test_state_index():
    definition = valid_definition()
    index = state_index(definition)
    assert list(index) == [state["name"] for state in definition["states"]]
    assert index["split_1"] is definition["states"][2]
    assert state_index({"states": None}) == {}
