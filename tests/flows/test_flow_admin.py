"""The bot-flow admin (flows/admin.py): the flow page with its diagram, definitions refused
with every precise problem and not saved, "Save and publish" and the publish action, the
Studio import (unsupported widgets named, nothing created) and export, the execution page
with its path and steps, function secrets stored encrypted, and the Admin role required."""

import copy
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import regex
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from contactcenter.flows.liquid import TemplateError, template_check
from contactcenter.flows.models import (
    Execution,
    ExecutionStatus,
    Flow,
    FlowFunctionConfig,
    FlowRevision,
    Step,
    default_definition,
)
from contactcenter.flows.selectors import FunctionUnavailable, function_environment
from contactcenter.flows.services import execution_start_rest, flow_publish
from tests.messaging.conftest import build_world

FIXTURE = Path(__file__).parent / "fixtures" / "studio_cancel_appointment.json"
CUSTOMER = "+14155550123"
BUSINESS = "+14155550100"
SECRET = "s3cret-token-7f1e9a2b"


# ---------------------------------------------------------------- helpers


class _FormFields(HTMLParser):
    """The values a browser would submit for the page's main form (inputs, checked boxes,
    textareas, selected options), without the submit buttons and inline templates."""

    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.fields: dict[str, object] = {}
        self._textarea: str | None = None
        self._select: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        name = attrs.get("name")
        if tag == "input" and name and "__prefix__" not in name:
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "image", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            self.fields[name] = attrs.get("value", "on" if kind == "checkbox" else "")
        elif tag == "textarea" and name and "__prefix__" not in name:
            self._textarea, self._text = name, []
        elif tag == "select" and name and "__prefix__" not in name:
            self._select = name
            self.fields.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in attrs:
            self.fields[self._select] = attrs.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "textarea" and self._textarea:
            text = "".join(self._text)
            self.fields[self._textarea] = text[1:] if text.startswith("\n") else text
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._textarea:
            self._text.append(data)


def form_fields(response, form_id: str) -> dict:
    parser = _FormFields(form_id)
    parser.feed(response.content.decode())
    assert parser.fields, f"no form {form_id} on the page"
    return parser.fields


def page(response) -> str:
    return html.unescape(response.content.decode())


def errors_of(text: str) -> list[str]:
    return [html.unescape(e).strip() for e in re.findall(r"<li[^>]*>(.*?)</li>", text, re.S)]


def inline_cells(content: str, name: str) -> list[str]:
    """The texts of a read-only column of a tabular inline."""
    cells = re.findall(rf'<td class="field-{name}">\s*<p>(.*?)</p>', content, re.S)
    return [html.unescape(c).strip() for c in cells]


def field_errors(response, name: str) -> list[str]:
    """The messages in the error list of a field's form row."""
    content = response.content.decode()
    row = re.search(rf'<div class="form-row errors field-{name}">(.*?)</ul>', content, re.S)
    assert row, f"no errors next to {name}"
    return errors_of(row.group(1))


def messages_of(response) -> list[str]:
    content = response.content.decode()
    listed = re.search(r'<ul class="messagelist">(.*?)</ul>', content, re.S)
    return errors_of(listed.group(1)) if listed else []


def state_classes(svg_page: str) -> dict[str, set[str]]:
    """State name → the classes of its group in the diagram."""
    return {
        name: set(classes.split())
        for classes, name in re.findall(r'<g class="([^"]*)" data-state="([^"]*)"', svg_page)
        if "state" in classes.split()
    }


def trigger(first: str) -> dict:
    return {
        "name": "Trigger",
        "type": "trigger",
        "properties": {"offset": {"x": 0, "y": 0}},
        "transitions": [
            {"event": "incomingMessage", "next": first},
            {"event": "incomingRequest", "next": first},
            {"event": "incomingParent"},
        ],
    }


def send_message(name: str, body: str, next_state: str = "") -> dict:
    sent = {"event": "sent", "next": next_state} if next_state else {"event": "sent"}
    return {
        "name": name,
        "type": "send-message",
        "properties": {"body": body},
        "transitions": [sent, {"event": "failed"}],
    }


def send_and_wait(name: str, body: str) -> dict:
    return {
        "name": name,
        "type": "send-and-wait-for-reply",
        "properties": {"body": body, "timeout": "600"},
        "transitions": [
            {"event": "incomingMessage"},
            {"event": "timeout"},
            {"event": "deliveryFailure"},
        ],
    }


def split(name: str, operator: str, value: str) -> dict:
    return {
        "name": name,
        "type": "split-based-on",
        "properties": {"input": "{{trigger.message.Body}}"},
        "transitions": [
            {"event": "noMatch"},
            {
                "event": "match",
                "next": "",
                "conditions": [
                    {
                        "friendly_name": "yes",
                        "arguments": ["{{trigger.message.Body}}"],
                        "type": operator,
                        "value": value,
                    }
                ],
            },
        ],
    }


def definition(*states: dict) -> dict:
    return {
        "description": "",
        "initial_state": "Trigger",
        "flags": {"allow_concurrent_calls": True},
        "states": [trigger(states[0]["name"]), *states],
    }


GOOD = definition(
    send_message("welcome_message", "Welcome!", "question"), send_and_wait("question", "Why?")
)


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def admin(admin_user, client_for):
    return client_for(admin_user)


@pytest.fixture
def flow(world):
    return Flow.objects.create(
        account=world.account, friendly_name="Helpdesk", definition=copy.deepcopy(GOOD)
    )


def change_url(flow: Flow) -> str:
    return reverse("admin:flows_flow_change", args=[flow.pk])


def post_change(admin, flow: Flow, **overrides):
    data = form_fields(admin.get(change_url(flow)), "flow_form")
    for key, value in overrides.items():
        data[key] = json.dumps(value) if key == "definition" else value
    return admin.post(change_url(flow), data)


def studio() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def without_say_play(data: dict) -> dict:
    data = copy.deepcopy(data)
    data["states"] = [s for s in data["states"] if s["type"] != "say-play"]
    return data


def upload(data: dict, name: str = "flow.json") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, json.dumps(data).encode(), content_type="application/json")


# ---------------------------------------------------------------- the flow page


def test_the_flow_change_page_draws_the_diagram(admin, flow):
    response = admin.get(change_url(flow))
    assert response.status_code == 200
    content = response.content.decode()
    diagram = re.search(
        r'<div class="form-row field-flow_diagram">.*?(<svg .*?</svg>)', content, re.S
    )
    assert diagram, "no diagram on the page"
    svg = diagram.group(1)
    assert 'class="flow-diagram-svg"' in svg
    assert set(state_classes(svg)) == {"Trigger", "welcome_message", "question"}
    for name in ("Trigger", "welcome_message", "question"):
        assert f">{name}</text>" in svg
    assert "Send &amp; wait for reply" in svg  # the widget's label
    # No execution: nothing is muted or visited.
    assert not any({"visited", "muted"} & c for c in state_classes(svg).values())
    # The export link and the publish button are there.
    assert reverse("admin:flows_flow_export", args=[flow.pk]) in content
    assert 'name="_publish"' in content


def test_the_changelist_renders(admin, flow):
    listed = admin.get(reverse("admin:flows_flow_changelist"))
    assert listed.status_code == 200
    content = page(listed)
    assert flow.sid in content and "never published" in content
    assert reverse("admin:flows_flow_import") in content


def test_the_add_page_starts_from_the_default_definition(admin, world):
    add = reverse("admin:flows_flow_add")
    added = admin.get(add)
    assert added.status_code == 200
    data = form_fields(added, "flow_form")
    # The add form shows the model's default definition (a lone trigger), not "null".
    assert json.loads(data["definition"]) == default_definition()
    # Saved as shown, with only a name: the flow gets that definition.
    data.update(account=str(world.account.pk), friendly_name="From scratch")
    response = admin.post(add, data)
    assert response.status_code == 302, field_errors(response, "definition")
    assert Flow.objects.get().definition == default_definition()


def test_saving_a_valid_definition_keeps_it_as_the_draft(admin, flow):
    new = definition(send_message("welcome_message", "Hello again {{flow.data.name}}!"))
    response = post_change(admin, flow, definition=new, _continue="1")
    assert response.status_code == 302, page(response)
    flow.refresh_from_db()
    assert flow.definition == new
    assert flow.published_revision == 0
    assert not FlowRevision.objects.exists()


def _liquid_error(source: str) -> str:
    with pytest.raises(TemplateError) as raised:
        template_check(source)
    return str(raised.value)


def _regex_error(pattern: str) -> str:
    with pytest.raises(regex.error) as raised:
        regex.compile(pattern, regex.IGNORECASE)
    return str(raised.value)


INVALID = [
    pytest.param(
        definition(send_message("greet", "Hi"), send_message("greet", "Hello")),
        ["states[2].name: State name 'greet' at states[2] repeats states[1]."],
        id="duplicate-names",
    ),
    pytest.param(
        definition(send_message("greet", "Hi", "nowhere")),
        [
            "states[1].transitions[0].next: State 'greet': transition 'sent' goes to "
            "'nowhere', which is not a state in this flow."
        ],
        id="missing-state",
    ),
    pytest.param(
        definition(send_message("greet", "{{ a | }")),
        [
            "states[1].properties.body: State 'greet': property 'body' is not a valid "
            "template: " + "LIQUID"
        ],
        id="bad-liquid",
    ),
    pytest.param(
        definition(split("choose", "regex", "([a-z")),
        [
            "states[1].transitions[1].conditions[0].value: State 'choose': The regular "
            "expression '([a-z' does not compile: " + "REGEX" + "."
        ],
        id="bad-regex",
    ),
]


@pytest.mark.parametrize(("bad", "expected"), INVALID)
def test_an_invalid_definition_is_refused_with_its_precise_error_and_not_saved(
    admin, flow, bad, expected
):
    expected = [
        e.replace("LIQUID", _liquid_error("{{ a | }")).replace("REGEX", _regex_error("([a-z"))
        for e in expected
    ]
    response = post_change(admin, flow, definition=bad, _save="1")
    assert response.status_code == 200
    assert field_errors(response, "definition") == expected
    flow.refresh_from_db()
    assert flow.definition == GOOD
    assert flow.published_revision == 0
    assert not FlowRevision.objects.exists()


def test_an_invalid_definition_on_the_add_page_creates_no_flow(admin, world):
    add = reverse("admin:flows_flow_add")
    data = form_fields(admin.get(add), "flow_form")
    data.update(
        account=str(world.account.pk),
        friendly_name="New one",
        definition=json.dumps(definition(send_message("greet", "Hi", "nowhere"))),
    )
    response = admin.post(add, data)
    assert response.status_code == 200
    assert field_errors(response, "definition") == [
        "states[1].transitions[0].next: State 'greet': transition 'sent' goes to "
        "'nowhere', which is not a state in this flow."
    ]
    assert not Flow.objects.exists()
    data["definition"] = json.dumps(GOOD)
    response = admin.post(add, data)
    assert response.status_code == 302, page(response)
    created = Flow.objects.get()
    assert created.definition == GOOD and created.published_revision == 0


def test_every_problem_of_a_definition_is_listed_at_once(admin, flow):
    bad = definition(
        send_message("greet", "{{ a | }", "nowhere"),
        send_message("greet", "Hi"),
        split("choose", "regex", "([a-z"),
    )
    response = post_change(admin, flow, definition=bad, _publish="1")
    assert response.status_code == 200
    shown = field_errors(response, "definition")
    assert len(shown) == 4, shown
    assert any("repeats states[1]" in e for e in shown)
    assert any("'nowhere', which is not a state" in e for e in shown)
    assert any("is not a valid template" in e for e in shown)
    assert any("does not compile" in e for e in shown)
    flow.refresh_from_db()
    assert flow.definition == GOOD
    assert not FlowRevision.objects.exists()  # "Save and publish" published nothing


def test_an_unregistered_function_is_refused(admin, flow):
    bad = definition(
        {
            "name": "call",
            "type": "run-function",
            "properties": {"function": "no_such_function"},
            "transitions": [{"event": "success"}, {"event": "fail"}],
        }
    )
    response = post_change(admin, flow, definition=bad, _save="1")
    assert response.status_code == 200
    (shown,) = field_errors(response, "definition")
    assert "function 'no_such_function' is not registered" in shown
    assert "cancel_appointment" in shown  # the registered ones are named
    flow.refresh_from_db()
    assert flow.definition == GOOD


# ---------------------------------------------------------------- publishing


def test_save_and_publish_creates_revision_1(admin, admin_user, flow):
    new = definition(send_message("welcome_message", "Published text"))
    response = post_change(admin, flow, definition=new, _publish="1")
    assert response.status_code == 302, page(response)
    assert response["Location"] == change_url(flow)
    flow.refresh_from_db()
    assert flow.published_revision == 1
    revision = FlowRevision.objects.get(flow=flow)
    assert revision.revision == 1
    assert revision.definition == new == flow.definition
    assert revision.published_by == admin_user.get_username()
    shown = admin.get(change_url(flow))
    assert "Helpdesk: revision 1 is published." in messages_of(shown)
    # A second publish is revision 2; revision 1 stays as it was.
    newer = definition(send_message("welcome_message", "Second text"))
    post_change(admin, flow, definition=newer, _publish="1")
    flow.refresh_from_db()
    assert flow.published_revision == 2
    assert list(FlowRevision.objects.filter(flow=flow).values_list("revision", flat=True)) == [
        2,
        1,
    ]
    assert FlowRevision.objects.get(flow=flow, revision=1).definition == new
    assert FlowRevision.objects.get(flow=flow, revision=2).definition == newer


def test_a_plain_save_does_not_publish(admin, flow):
    flow_publish(flow)
    new = definition(send_message("welcome_message", "Draft only"))
    response = post_change(admin, flow, definition=new, _save="1")
    assert response.status_code == 302, page(response)
    flow.refresh_from_db()
    assert flow.published_revision == 1
    assert FlowRevision.objects.get(flow=flow).definition == GOOD
    listed = page(admin.get(reverse("admin:flows_flow_changelist")))
    assert "unpublished changes" in listed


def test_the_publish_action_publishes_the_selected_flows(admin, world, flow):
    second = Flow.objects.create(
        account=world.account,
        friendly_name="Sales",
        definition=definition(send_message("hello", "Hi")),
    )
    broken = Flow.objects.create(
        account=world.account,
        friendly_name="Broken",
        definition=definition(send_message("hello", "Hi", "missing_state")),
    )
    untouched = Flow.objects.create(
        account=world.account,
        friendly_name="Untouched",
        definition=definition(send_message("hello", "Hi")),
    )
    response = admin.post(
        reverse("admin:flows_flow_changelist"),
        {"action": "publish", "_selected_action": [flow.pk, second.pk, broken.pk]},
        follow=True,
    )
    assert response.status_code == 200
    shown = messages_of(response)
    assert "Helpdesk: revision 1 is published." in shown
    assert "Sales: revision 1 is published." in shown
    assert any(m.startswith("Broken: The flow has errors:") and "missing_state" in m for m in shown)
    published = dict(Flow.objects.values_list("friendly_name", "published_revision"))
    assert published == {"Helpdesk": 1, "Sales": 1, "Broken": 0, "Untouched": 0}
    assert set(FlowRevision.objects.values_list("flow__friendly_name", flat=True)) == {
        "Helpdesk",
        "Sales",
    }
    assert "same as published" in page(response)
    assert untouched.revisions.count() == 0


# ---------------------------------------------------------------- Studio import and export


def test_import_names_the_unsupported_widget_and_creates_nothing(admin, world):
    response = admin.post(
        reverse("admin:flows_flow_import"),
        {
            "account": world.account.pk,
            "friendly_name": "Cancelar cita",
            "studio_file": upload(studio(), "cancelar.json"),
        },
    )
    assert response.status_code == 200
    assert errors_of(
        re.search(r'<ul class="errorlist[^"]*">(.*?)</ul>', response.content.decode(), re.S)[1]
    ) == ["Not supported: say_play_1 (say-play)"]
    assert not Flow.objects.exists()


def test_import_names_a_voice_trigger_event_that_is_used(admin, world):
    data = without_say_play(studio())
    for transition in data["states"][0]["transitions"]:
        if transition["event"] == "incomingCall":
            transition["next"] = "send_and_reply_1"
    response = admin.post(
        reverse("admin:flows_flow_import"),
        {"account": world.account.pk, "friendly_name": "Calls", "studio_json": json.dumps(data)},
    )
    assert response.status_code == 200
    assert "Not supported: Trigger event 'incomingCall' (voice)" in page(response)
    assert not Flow.objects.exists()


def test_import_refuses_text_that_is_not_json(admin, world):
    response = admin.post(
        reverse("admin:flows_flow_import"),
        {"account": world.account.pk, "friendly_name": "X", "studio_json": "{nope"},
    )
    assert response.status_code == 200
    assert "The file is not JSON:" in page(response)
    assert not Flow.objects.exists()


def test_import_without_the_unsupported_state_creates_the_flow(admin, world):
    data = without_say_play(studio())
    response = admin.post(
        reverse("admin:flows_flow_import"),
        {
            "account": world.account.pk,
            "friendly_name": "Cancelar cita",
            "studio_file": upload(data, "cancelar.json"),
        },
    )
    assert response.status_code == 302, page(response)
    flow = Flow.objects.get()
    assert response["Location"] == change_url(flow)
    assert flow.friendly_name == "Cancelar cita"
    assert flow.account == world.account
    assert flow.description == "Cancelar cita"
    assert flow.published_revision == 0
    types = {s["name"]: s["type"] for s in flow.definition["states"]}
    assert types["send_to_flex_1"] == "send-to-agent"
    assert "send-to-flex" not in types.values()
    assert "say_play_1" not in types
    assert types["cancel_appointment"] == "run-function"
    function = next(s for s in flow.definition["states"] if s["name"] == "cancel_appointment")
    assert function["properties"]["function"] == "cancelar"
    # The voice-only trigger events that led nowhere are dropped.
    events = [t["event"] for t in flow.definition["states"][0]["transitions"]]
    assert events == ["incomingMessage", "incomingRequest", "incomingParent"]
    shown = messages_of(admin.get(response["Location"]))
    assert any("send_to_flex_1" in m and "WW3f1c8e2a9b7d4c6e5f0a1b2c3d4e5f6a" in m for m in shown)
    assert any("'cancelar' must be registered" in m for m in shown)
    assert any("Imported into the draft of Cancelar cita" in m for m in shown)


def test_importing_again_replaces_the_draft_of_the_flow_with_that_name(admin, world, flow):
    flow_publish(flow)
    data = without_say_play(studio())
    response = admin.post(
        reverse("admin:flows_flow_import"),
        {"account": world.account.pk, "friendly_name": "Helpdesk", "studio_json": json.dumps(data)},
    )
    assert response.status_code == 302, page(response)
    assert Flow.objects.count() == 1
    flow.refresh_from_db()
    assert {s["name"] for s in flow.definition["states"]} >= {"send_to_flex_1", "split_1"}
    assert flow.published_revision == 1
    assert FlowRevision.objects.get(flow=flow).definition == GOOD


def test_export_returns_studio_json_as_an_attachment(admin, world):
    flow = Flow.objects.create(
        account=world.account,
        friendly_name="Cancelar cita",
        definition=json.loads(json.dumps(without_say_play(studio()))),
    )
    flow.definition = {
        **flow.definition,
        "states": [
            {**s, "type": "send-to-agent"} if s["type"] == "send-to-flex" else s
            for s in flow.definition["states"]
        ],
    }
    flow.save()
    response = admin.get(reverse("admin:flows_flow_export", args=[flow.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == 'attachment; filename="Cancelar cita-draft.json"'
    exported = json.loads(response.content)
    types = {s["name"]: s["type"] for s in exported["states"]}
    assert types["send_to_flex_1"] == "send-to-flex"
    assert "send-to-agent" not in types.values()
    assert exported["initial_state"] == "Trigger"
    assert exported["flags"] == {"allow_concurrent_calls": True}
    # The stored draft is unchanged by the export.
    flow.refresh_from_db()
    assert any(s["type"] == "send-to-agent" for s in flow.definition["states"])


def test_export_of_a_flow_with_a_non_latin_name_is_still_an_attachment(admin, world):
    flow = Flow.objects.create(
        account=world.account, friendly_name="Запись 予約", definition=copy.deepcopy(GOOD)
    )
    response = admin.get(reverse("admin:flows_flow_export", args=[flow.pk]))
    assert response.status_code == 200
    disposition = response["Content-Disposition"]
    # A MIME encoded-word ("=?utf-8?b?...?=") is not a Content-Disposition browsers parse.
    assert disposition.startswith("attachment; filename"), disposition
    assert disposition.isascii(), disposition
    assert json.loads(response.content)["states"] == GOOD["states"]


def test_export_of_a_revision(admin, flow):
    flow_publish(flow)
    flow.definition = definition(send_message("welcome_message", "Newer draft"))
    flow.save()
    response = admin.get(reverse("admin:flows_flow_export", args=[flow.pk]), {"revision": "1"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="Helpdesk-r1.json"'
    assert json.loads(response.content)["states"] == GOOD["states"]
    draft = admin.get(reverse("admin:flows_flow_export", args=[flow.pk]))
    assert "Newer draft" in draft.content.decode()


def test_export_of_a_missing_or_malformed_revision_is_404(admin, flow):
    admin.raise_request_exception = False
    export = reverse("admin:flows_flow_export", args=[flow.pk])
    assert admin.get(export, {"revision": "9"}).status_code == 404
    assert admin.get(reverse("admin:flows_flow_export", args=[flow.pk + 100])).status_code == 404
    assert admin.get(export, {"revision": "latest"}).status_code == 404


# ---------------------------------------------------------------- executions


@pytest.fixture
def execution(world):
    flow = Flow.objects.create(
        account=world.account,
        friendly_name="Path",
        definition=definition(
            send_message("welcome_message", "Welcome {{flow.data.name}}", "question"),
            send_and_wait("question", "What do you need?"),
            send_message("never_reached", "Not sent"),
        ),
    )
    flow_publish(flow)
    flow.refresh_from_db()
    return execution_start_rest(flow=flow, to=CUSTOMER, from_=BUSINESS, parameters={"name": "Ana"})


def test_the_execution_page_shows_the_path_and_the_steps(admin, execution):
    assert execution.status == ExecutionStatus.ACTIVE
    assert execution.current_state == "question"
    response = admin.get(reverse("admin:flows_execution_change", args=[execution.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    svg = re.search(r'<div class="form-row field-path_diagram">.*?(<svg .*?</svg>)', content, re.S)
    assert svg, "no path diagram"
    classes = state_classes(svg.group(1))
    assert "visited" in classes["Trigger"]
    assert "visited" in classes["welcome_message"]
    assert {"visited", "final"} <= classes["question"]  # where it waits
    assert "muted" in classes["never_reached"] and "visited" not in classes["never_reached"]
    taken = re.findall(
        r'<g class="edge taken"[^>]*data-source="([^"]*)" data-target="([^"]*)"'
        r' data-event="([^"]*)"',
        svg.group(1),
    )
    assert sorted(taken) == [
        ("Trigger", "welcome_message", "incomingRequest"),
        ("welcome_message", "question", "sent"),
    ]
    # The steps inline: each logged step with its transition.
    steps = list(Step.objects.filter(execution=execution).order_by("index"))
    assert [(s.name, s.event, s.next_state) for s in steps] == [
        ("Trigger", "incomingRequest", "welcome_message"),
        ("welcome_message", "sent", "question"),
    ]
    assert inline_cells(content, "name") == ["Trigger", "welcome_message"]
    assert inline_cells(content, "event") == ["incomingRequest", "sent"]
    assert inline_cells(content, "next_state") == ["welcome_message", "question"]
    text = page(response)
    assert "Welcome Ana" in text  # the step's data: the message it sent
    assert execution.sid in text
    assert '"name": "Ana"' in text  # the context


def test_the_execution_page_of_an_ended_execution_marks_its_last_state(admin, world):
    flow = Flow.objects.create(
        account=world.account,
        friendly_name="Short",
        definition=definition(send_message("only", "Bye"), send_message("other", "No")),
    )
    flow_publish(flow)
    flow.refresh_from_db()
    ended = execution_start_rest(flow=flow, to=CUSTOMER, from_=BUSINESS)
    assert ended.status == ExecutionStatus.ENDED
    response = admin.get(reverse("admin:flows_execution_change", args=[ended.pk]))
    assert response.status_code == 200
    classes = state_classes(response.content.decode())
    assert {"visited", "final"} <= classes["only"]
    assert "muted" in classes["other"]


def test_executions_are_read_only_in_the_admin(admin, execution):
    url = reverse("admin:flows_execution_change", args=[execution.pk])
    response = admin.post(url, {"status": "ended", "current_state": "x"})
    assert response.status_code == 403
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.ACTIVE
    assert execution.current_state == "question"


def test_the_end_action_ends_the_selected_executions(admin, admin_user, execution):
    response = admin.post(
        reverse("admin:flows_execution_changelist"),
        {"action": "end_executions", "_selected_action": [execution.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 execution ended." in messages_of(response)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.ENDED
    assert execution.ended_reason == f"Ended by {admin_user.get_username()} in the admin."


def test_text_from_definitions_is_escaped_on_the_flow_and_execution_pages(admin, world):
    evil = '<img src=x onerror="alert(1)">'
    flow = Flow.objects.create(
        account=world.account,
        friendly_name="Evil",
        definition=definition(send_and_wait("ask", evil + " {{flow.data.name}}")),
    )
    flow_publish(flow)
    flow.refresh_from_db()
    execution = execution_start_rest(
        flow=flow, to=CUSTOMER, from_=BUSINESS, parameters={"name": "<script>x()</script>"}
    )
    for url in (
        change_url(flow),
        reverse("admin:flows_execution_change", args=[execution.pk]),
    ):
        content = admin.get(url).content.decode()
        assert "<img src=x" not in content, url
        assert "<script>x()" not in content, url
        assert "&lt;img src=x" in content, url


def test_names_in_an_imported_file_are_escaped_on_the_import_page(admin, world):
    data = studio()
    data["states"][-1]["name"] = "<b>bold</b>"
    response = admin.post(
        reverse("admin:flows_flow_import"),
        {"account": world.account.pk, "friendly_name": "X", "studio_json": json.dumps(data)},
    )
    content = response.content.decode()
    assert "<b>bold</b>" not in content
    assert "Not supported: &lt;b&gt;bold&lt;/b&gt; (say-play)" in content
    assert not Flow.objects.exists()


# ---------------------------------------------------------------- functions


def _config_row() -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {FlowFunctionConfig._meta.db_table}")
        return cursor.fetchone()


def test_function_secrets_are_stored_encrypted_and_kept_when_left_empty(admin):
    add = reverse("admin:flows_flowfunctionconfig_add")
    response = admin.post(
        add,
        {
            "name": "cancel_appointment",
            "enabled": "on",
            "environment": json.dumps({"APPOINTMENTS_API_URL": "https://api.example.com/c"}),
            "secrets": f"APPOINTMENTS_API_TOKEN={SECRET}\n\nOTHER = two words ",
        },
    )
    assert response.status_code == 302, page(response)
    config = FlowFunctionConfig.objects.get()
    assert config.secrets_encrypted
    assert SECRET not in config.secrets_encrypted
    assert not any(SECRET in str(value) for value in _config_row())
    assert function_environment("cancel_appointment") == {
        "APPOINTMENTS_API_URL": "https://api.example.com/c",
        "APPOINTMENTS_API_TOKEN": SECRET,
        "OTHER": "two words",
    }
    change = reverse("admin:flows_flowfunctionconfig_change", args=[config.pk])
    shown = admin.get(change)
    assert shown.status_code == 200
    assert SECRET not in shown.content.decode()  # never shown again
    assert "APPOINTMENTS_API_TOKEN, OTHER" in page(shown)  # only the names
    # Saved with the secrets field empty: they are kept.
    data = form_fields(shown, "flowfunctionconfig_form")
    assert data["secrets"] == ""
    data["environment"] = json.dumps({"APPOINTMENTS_API_URL": "https://api.example.com/v2"})
    response = admin.post(change, data)
    assert response.status_code == 302, page(response)
    assert function_environment("cancel_appointment") == {
        "APPOINTMENTS_API_URL": "https://api.example.com/v2",
        "APPOINTMENTS_API_TOKEN": SECRET,
        "OTHER": "two words",
    }
    # NAME= removes one; another line adds or replaces one; the rest are kept.
    data["secrets"] = "OTHER=\nNEW_ONE=fresh"
    assert admin.post(change, data).status_code == 302
    environment = function_environment("cancel_appointment")
    assert environment == {
        "APPOINTMENTS_API_URL": "https://api.example.com/v2",
        "APPOINTMENTS_API_TOKEN": SECRET,
        "NEW_ONE": "fresh",
    }
    assert not any(SECRET in str(value) or "fresh" in str(value) for value in _config_row())


def test_a_malformed_secrets_line_is_refused_and_nothing_changes(admin):
    add = reverse("admin:flows_flowfunctionconfig_add")
    response = admin.post(
        add,
        {
            "name": "cancel_appointment",
            "enabled": "on",
            "environment": "{}",
            "secrets": "A=1\nnope",
        },
    )
    assert response.status_code == 200
    assert field_errors(response, "secrets") == ["Line 2 is not NAME=value."]
    assert not FlowFunctionConfig.objects.exists()


def test_a_disabled_function_has_no_environment(admin):
    response = admin.post(
        reverse("admin:flows_flowfunctionconfig_add"),
        {"name": "cancel_appointment", "environment": "{}", "secrets": f"TOKEN={SECRET}"},
    )
    assert response.status_code == 302, page(response)
    assert FlowFunctionConfig.objects.get().enabled is False
    with pytest.raises(FunctionUnavailable, match="not enabled"):
        function_environment("cancel_appointment")


def test_function_pages_render_after_the_encryption_key_changed(admin, settings):
    settings.SECRETS_ENCRYPTION_KEY = "the-old-key"
    admin.post(
        reverse("admin:flows_flowfunctionconfig_add"),
        {"name": "cancel_appointment", "enabled": "on", "environment": "{}", "secrets": "T=1"},
    )
    config = FlowFunctionConfig.objects.get()
    settings.SECRETS_ENCRYPTION_KEY = "a-new-key"
    admin.raise_request_exception = False
    listed = admin.get(reverse("admin:flows_flowfunctionconfig_changelist"))
    assert listed.status_code == 200
    changed = admin.get(reverse("admin:flows_flowfunctionconfig_change", args=[config.pk]))
    assert changed.status_code == 200


# ---------------------------------------------------------------- access


@pytest.mark.parametrize("who", ["agent1", "supervisor", "outsider"])
def test_only_admins_reach_the_flow_admin(request, client_for, flow, execution, who):
    client = client_for(request.getfixturevalue(who))
    urls = [
        reverse("admin:flows_flow_changelist"),
        change_url(flow),
        reverse("admin:flows_flow_import"),
        reverse("admin:flows_flow_export", args=[flow.pk]),
        reverse("admin:flows_execution_change", args=[execution.pk]),
        reverse("admin:flows_flowfunctionconfig_add"),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code in (302, 403), url
        if response.status_code == 302:
            assert "/login/" in response["Location"], url
        assert b"flow-diagram-svg" not in response.content
        assert b"allow_concurrent_calls" not in response.content
    before = copy.deepcopy(flow.definition)
    response = client.post(
        change_url(flow), {"definition": json.dumps(definition(send_message("x", "y")))}
    )
    assert response.status_code in (302, 403)
    response = client.post(
        reverse("admin:flows_flow_import"),
        {"account": flow.account.pk, "friendly_name": "Sneaky", "studio_json": json.dumps(GOOD)},
    )
    assert response.status_code in (302, 403)
    response = client.post(
        reverse("admin:flows_flow_changelist"),
        {"action": "publish", "_selected_action": [flow.pk]},
    )
    assert response.status_code in (302, 403)
    flow.refresh_from_db()
    assert flow.definition == before
    assert flow.published_revision == 0
    assert list(Flow.objects.values_list("friendly_name", flat=True).order_by("id")) == [
        "Helpdesk",
        "Path",
    ]
    assert Execution.objects.get(pk=execution.pk).status == ExecutionStatus.ACTIVE
