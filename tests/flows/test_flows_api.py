"""Studio's Flow resource (flows_api.py): deploy a flow's JSON, publish it, read its
revisions, validate without saving; every refusal lists the problems and writes nothing."""

import json
from pathlib import Path

import pytest

from contactcenter.flows.models import Flow, FlowRevision
from tests.flows.conftest import definition, go, state
from tests.flows.test_rest_api import basic
from tests.messaging.conftest import build_world

FIXTURE = Path(__file__).parent / "fixtures" / "studio_cancel_appointment.json"
GOOD = definition(state("hello", "send-message", [go("sent"), go("failed")], body="Hi"))


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def auth(world):
    return {"HTTP_AUTHORIZATION": basic(world.account.sid, world.token)}


def test_create_a_published_flow_then_update_and_publish_again(client, auth):
    created = client.post(
        "/v2/Flows",
        {"FriendlyName": "Hello", "Status": "published", "Definition": json.dumps(GOOD)},
        **auth,
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["status"], body["revision"], body["friendly_name"]) == ("published", 1, "Hello")
    flow = Flow.objects.get(sid=body["sid"])
    assert flow.definition["states"][1]["properties"]["body"] == "Hi"

    changed = json.loads(json.dumps(GOOD))
    changed["states"][1]["properties"]["body"] = "Hello there"
    draft = client.post(f"/v2/Flows/{flow.sid}", {"Definition": json.dumps(changed)}, **auth)
    assert (draft.json()["status"], draft.json()["revision"]) == ("draft", 1)
    published = client.post(f"/v2/Flows/{flow.sid}", {"Status": "published"}, **auth)
    assert (published.json()["status"], published.json()["revision"]) == ("published", 2)

    revisions = client.get(f"/v2/Flows/{flow.sid}/Revisions", **auth).json()["revisions"]
    assert [r["revision"] for r in revisions] == [2, 1]
    first = client.get(f"/v2/Flows/{flow.sid}/Revisions/1", **auth).json()
    assert first["definition"]["states"][1]["properties"]["body"] == "Hi"
    assert client.get(f"/v2/Flows/{flow.sid}/Revisions/9", **auth).status_code == 404
    listed = client.get("/v2/Flows", **auth).json()["flows"]
    assert [f["sid"] for f in listed] == [flow.sid]


def test_an_invalid_definition_is_refused_with_every_problem_and_nothing_saved(client, auth):
    broken = json.loads(json.dumps(GOOD))
    broken["states"][0]["transitions"][0]["next"] = "nowhere"
    broken["states"][1]["properties"]["body"] = "{{ a | }"
    response = client.post(
        "/v2/Flows", {"FriendlyName": "Broken", "Definition": json.dumps(broken)}, **auth
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 20422
    paths = [e["path"] for e in body["details"]["errors"]]
    assert "states[0].transitions[0].next" in paths
    assert any(p.startswith("states[1].properties.body") for p in paths)
    assert Flow.objects.count() == 0


def test_a_studio_export_deploys_as_it_is_and_its_unsupported_widgets_are_named(client, auth):
    export = json.loads(FIXTURE.read_text())
    refused = client.post(
        "/v2/Flows", {"FriendlyName": "Citas", "Definition": json.dumps(export)}, **auth
    )
    assert refused.status_code == 400
    assert any("say-play" in e["message"] for e in refused.json()["details"]["errors"])
    assert Flow.objects.count() == 0

    export["states"] = [s for s in export["states"] if s["type"] != "say-play"]
    for s in export["states"]:
        s["transitions"] = [t for t in s["transitions"] if t.get("next") != "say_play_1"]
        if s["type"] == "run-function":  # Studio's Function URL names ours
            s["properties"]["url"] = "https://x-1234.twil.io/cancel_appointment"
    created = client.post(
        "/v2/Flows", {"FriendlyName": "Citas", "Definition": json.dumps(export)}, **auth
    )
    assert created.status_code == 201, created.content
    types = {s["type"] for s in Flow.objects.get().definition["states"]}
    assert "send-to-agent" in types and "send-to-flex" not in types


def test_validate_saves_nothing(client, auth):
    ok = client.post(
        "/v2/Flows/Validate", {"FriendlyName": "x", "Definition": json.dumps(GOOD)}, **auth
    )
    assert ok.json() == {"valid": True}
    bad = client.post(
        "/v2/Flows/Validate", {"FriendlyName": "x", "Definition": "{not json"}, **auth
    )
    assert (bad.status_code, bad.json()["code"]) == (400, 20422)
    assert Flow.objects.count() == 0 and FlowRevision.objects.count() == 0


def test_refusals(client, auth, world):
    assert (
        client.post("/v2/Flows", {"Definition": json.dumps(GOOD)}, **auth).json()["code"] == 20422
    )
    assert client.post("/v2/Flows", {"FriendlyName": "x"}, **auth).status_code == 400
    assert (
        client.post(
            "/v2/Flows",
            {"FriendlyName": "x", "Status": "live", "Definition": json.dumps(GOOD)},
            **auth,
        ).status_code
        == 400
    )
    unauthenticated = client.post(
        "/v2/Flows", {"FriendlyName": "x", "Definition": json.dumps(GOOD)}
    )
    assert unauthenticated.status_code == 401
    assert unauthenticated["WWW-Authenticate"] == 'Basic realm="contactcenter"'

    client.post("/v2/Flows", {"FriendlyName": "x", "Definition": json.dumps(GOOD)}, **auth)
    duplicate = client.post(
        "/v2/Flows", {"FriendlyName": "x", "Definition": json.dumps(GOOD)}, **auth
    )
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, 20409)
    assert client.get("/v2/Flows/FW00000000000000000000000000000000", **auth).status_code == 404
    assert Flow.objects.count() == 1


def test_delete_refuses_while_executions_run(client, auth, world):
    from contactcenter.flows.services import execution_start_rest

    waiting = definition(
        state(
            "ask",
            "send-and-wait-for-reply",
            [go("incomingMessage"), go("timeout"), go("deliveryFailure")],
            body="?",
        )
    )
    sid = client.post(
        "/v2/Flows",
        {"FriendlyName": "w", "Status": "published", "Definition": json.dumps(waiting)},
        **auth,
    ).json()["sid"]
    flow = Flow.objects.get(sid=sid)
    execution = execution_start_rest(flow=flow, to="+14155550123", from_="+14155550100")
    refused = client.delete(f"/v2/Flows/{sid}", **auth)
    assert (refused.status_code, refused.json()["code"]) == (409, 20409)
    client.post(f"/v2/Flows/{sid}/Executions/{execution.sid}", {"Status": "ended"}, **auth)
    assert client.delete(f"/v2/Flows/{sid}", **auth).status_code == 204
    assert Flow.objects.count() == 0
