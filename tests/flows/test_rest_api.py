"""Studio's REST surface, `/v2/Flows/{FlowSid}/Executions` (flows/api.py): starting an
execution with To/From/Parameters (form-encoded or JSON), what its templates see, the
conflict for a pair that already has an active execution, every refusal (with its code and
nothing written), authentication, the draft for test addresses, and the read/end endpoints."""

import base64
import json

import pytest

from contactcenter.flows.models import Execution, ExecutionStatus, Flow, FlowRevision, Step
from contactcenter.flows.services import flow_publish
from messaging import crypto
from messaging.models import Account, Direction, Message
from messaging.services.accounts import api_key_create
from tests.messaging.conftest import build_world
from tests.support.http import FakeApi, json_answer

CUSTOMER = "+14155550123"
OTHER_CUSTOMER = "+14155550124"
BUSINESS = "+14155550100"  # build_world's long code


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
def world(db):
    return build_world()


def trigger(first: str) -> dict:
    return {
        "name": "Trigger",
        "type": "trigger",
        "properties": {"offset": {"x": 0, "y": 0}},
        "transitions": [
            {"event": "incomingMessage"},
            {"event": "incomingRequest", "next": first},
            {"event": "incomingParent"},
        ],
    }


def send_message(name: str, body: str) -> dict:
    return {
        "name": name,
        "type": "send-message",
        "properties": {"body": body},
        "transitions": [{"event": "sent"}, {"event": "failed"}],
    }


def send_and_wait(name: str, body: str) -> dict:
    return {
        "name": name,
        "type": "send-and-wait-for-reply",
        "properties": {"body": body, "timeout": "3600"},
        "transitions": [
            {"event": "incomingMessage"},
            {"event": "timeout"},
            {"event": "deliveryFailure"},
        ],
    }


def definition(*states: dict) -> dict:
    return {
        "description": "",
        "initial_state": "Trigger",
        "flags": {"allow_concurrent_calls": True},
        "states": [trigger(states[0]["name"]), *states],
    }


def make_flow(account, name: str, body: str, *, wait: bool = False, publish: bool = True):
    state = send_and_wait("ask", body) if wait else send_message("greet", body)
    flow = Flow.objects.create(account=account, friendly_name=name, definition=definition(state))
    if publish:
        flow_publish(flow, by="tests")
        flow.refresh_from_db()
    return flow


@pytest.fixture
def greeting(world):
    return make_flow(world.account, "Greeting", "Hi {{flow.data.name}}")


@pytest.fixture
def waiting(world):
    return make_flow(world.account, "Question", "Your name, {{flow.data.name}}?", wait=True)


def url(flow, *rest: str) -> str:
    return "/".join([f"/v2/Flows/{flow.sid}/Executions", *rest])


def post(client, world, flow, data, *, path: tuple[str, ...] = (), auth=None, **extra):
    auth = auth if auth is not None else basic(world.account.sid, world.token)
    headers = {"HTTP_AUTHORIZATION": auth} if auth else {}
    return client.post(url(flow, *path), data, **headers, **extra)


def get(client, world, flow, *path: str, auth=None, **params):
    auth = auth if auth is not None else basic(world.account.sid, world.token)
    return client.get(url(flow, *path), params, HTTP_AUTHORIZATION=auth)


def start(client, world, flow, *, to=CUSTOMER, from_=BUSINESS, parameters=None):
    data = {"To": to, "From": from_}
    if parameters is not None:
        data["Parameters"] = json.dumps(parameters)
    return post(client, world, flow, data)


def outbound_bodies(to: str = CUSTOMER) -> list[str]:
    return list(
        Message.objects.filter(direction=Direction.OUTBOUND_REPLY, to_address=to)
        .order_by("id")
        .values_list("body", flat=True)
    )


def assert_refused(response, status: int, code: int, *, mentions: str = "") -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["message"]
    assert body["more_info"].endswith(str(code))
    if mentions:
        assert mentions in body["message"], body["message"]
    return body


def assert_nothing_written() -> None:
    assert Execution.objects.count() == 0
    assert Step.objects.count() == 0
    assert Message.objects.filter(direction=Direction.OUTBOUND_REPLY).count() == 0


# ---------------------------------------------------------------- create


def test_create_form_encoded_runs_the_flow_with_the_parameters(client, world, greeting):
    response = start(client, world, greeting, parameters={"name": "Ana"})
    assert response.status_code == 201, response.content
    body = response.json()
    execution = Execution.objects.get()
    assert body["sid"] == execution.sid and body["sid"].startswith("FN")
    assert len(body["sid"]) == 34
    assert body["flow_sid"] == greeting.sid
    assert body["account_sid"] == world.account.sid
    assert body["contact_channel_address"] == CUSTOMER
    assert body["business_channel_address"] == BUSINESS
    # The flow sent its message and had nothing more to do.
    assert body["status"] == "ended"
    assert body["outcome"] == ExecutionStatus.ENDED == execution.status
    assert body["revision"] == 1 and body["draft"] is False
    assert body["url"] == f"/v2/Flows/{greeting.sid}/Executions/{execution.sid}"
    assert body["links"]["steps"] == body["url"] + "/Steps"
    assert body["links"]["execution_context"] == body["url"] + "/Context"
    assert execution.trigger == "incomingRequest"
    assert execution.revision == FlowRevision.objects.get(flow=greeting, revision=1)
    assert outbound_bodies() == ["Hi Ana"]
    message = Message.objects.get(direction=Direction.OUTBOUND_REPLY)
    assert message.from_address == BUSINESS
    assert message.tags == {"flow": greeting.sid, "execution": execution.sid}


def test_trigger_request_and_flow_data_are_visible_to_templates(client, world):
    flow = make_flow(
        world.account,
        "Echo",
        "{{trigger.request.To}}|{{trigger.request.From}}|{{trigger.request.Parameters.order}}"
        "|{{flow.data.order}}|{{flow.data.items[1]}}|{{contact.channel.address}}",
    )
    response = start(client, world, flow, parameters={"order": "A-17", "items": ["x", "y"]})
    assert response.status_code == 201, response.content
    assert outbound_bodies() == [f"{CUSTOMER}|{BUSINESS}|A-17|A-17|y|{CUSTOMER}"]
    execution = Execution.objects.get()
    assert execution.context["flow"]["data"] == {"order": "A-17", "items": ["x", "y"]}
    assert execution.context["trigger"]["request"] == {
        "To": CUSTOMER,
        "From": BUSINESS,
        "Parameters": {"order": "A-17", "items": ["x", "y"]},
    }


def test_without_parameters_flow_data_is_empty(client, world, greeting):
    response = start(client, world, greeting)
    assert response.status_code == 201, response.content
    assert outbound_bodies() == ["Hi"]  # rendered properties are stripped
    assert Execution.objects.get().context["flow"]["data"] == {}


def test_a_json_body_is_accepted_with_parameters_as_object_or_text(client, world, greeting):
    auth = basic(world.account.sid, world.token)
    response = client.post(
        url(greeting),
        json.dumps({"To": CUSTOMER, "From": BUSINESS, "Parameters": {"name": "Bo"}}),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )
    assert response.status_code == 201, response.content
    assert response.json()["contact_channel_address"] == CUSTOMER
    response = client.post(
        url(greeting),
        json.dumps({"To": OTHER_CUSTOMER, "From": BUSINESS, "Parameters": '{"name": "Cy"}'}),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )
    assert response.status_code == 201, response.content
    assert outbound_bodies(CUSTOMER) == ["Hi Bo"]
    assert outbound_bodies(OTHER_CUSTOMER) == ["Hi Cy"]
    assert Execution.objects.count() == 2


def test_an_api_key_authenticates_too(client, world, greeting):
    key = api_key_create(account=world.account, friendly_name="studio")
    response = post(
        client,
        world,
        greeting,
        {"To": CUSTOMER, "From": BUSINESS, "Parameters": '{"name": "Key"}'},
        auth=basic(key.key.sid, key.secret),
    )
    assert response.status_code == 201, response.content
    assert outbound_bodies() == ["Hi Key"]


def test_a_waiting_flow_stays_active_waiting_for_a_reply(client, world, waiting):
    response = start(client, world, waiting, parameters={"name": "Ana"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "active" and body["outcome"] == "active"
    assert body["current_widget"] == "ask"
    assert body["waiting_for"] == "reply"
    execution = Execution.objects.get(sid=body["sid"])
    assert execution.status == ExecutionStatus.ACTIVE
    assert execution.wait_message.body == "Your name, Ana?"
    assert outbound_bodies() == ["Your name, Ana?"]


# ---------------------------------------------------------------- conflict


def test_a_pair_with_an_active_execution_gets_409_naming_it(client, world, waiting):
    first = start(client, world, waiting, parameters={"name": "Ana"}).json()
    response = start(client, world, waiting, parameters={"name": "Again"})
    body = assert_refused(response, 409, 20409, mentions=first["sid"])
    assert body["details"] == {"conflicting_execution_sid": first["sid"]}
    assert waiting.sid in body["message"]
    assert list(Execution.objects.values_list("sid", flat=True)) == [first["sid"]]
    assert outbound_bodies() == ["Your name, Ana?"]  # the second one sent nothing


def test_another_pair_is_not_a_conflict(client, world, waiting):
    first = start(client, world, waiting, parameters={"name": "Ana"})
    assert first.status_code == 201, first.content
    other_contact = start(client, world, waiting, to=OTHER_CUSTOMER, parameters={"name": "Bo"})
    assert other_contact.status_code == 201, other_contact.content
    other_business = start(client, world, waiting, from_="+18885550100", parameters={"name": "C"})
    assert other_business.status_code == 201, other_business.content
    assert Execution.objects.filter(status=ExecutionStatus.ACTIVE).count() == 3
    assert outbound_bodies(CUSTOMER) == ["Your name, Ana?", "Your name, C?"]
    assert outbound_bodies(OTHER_CUSTOMER) == ["Your name, Bo?"]


def test_an_ended_execution_does_not_block_the_pair(client, world, greeting):
    assert start(client, world, greeting, parameters={"name": "One"}).status_code == 201
    assert start(client, world, greeting, parameters={"name": "Two"}).status_code == 201
    assert outbound_bodies() == ["Hi One", "Hi Two"]
    assert Execution.objects.filter(status=ExecutionStatus.ENDED).count() == 2


def test_ending_the_active_execution_frees_the_pair(client, world, waiting):
    first = start(client, world, waiting, parameters={"name": "Ana"}).json()
    ended = post(client, world, waiting, {"Status": "ended"}, path=(first["sid"],))
    assert ended.status_code == 200, ended.content
    again = start(client, world, waiting, parameters={"name": "Bo"})
    assert again.status_code == 201, again.content
    assert again.json()["sid"] != first["sid"]


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("data", "code", "mentions"),
    [
        pytest.param({"From": BUSINESS}, 21604, "To", id="missing-To"),
        pytest.param({"To": "  ", "From": BUSINESS}, 21604, "To", id="blank-To"),
        pytest.param({"To": "not a phone", "From": BUSINESS}, 21211, "not a phone", id="bad-To"),
        pytest.param({"To": CUSTOMER}, 20422, "From", id="missing-From"),
        pytest.param(
            {"To": CUSTOMER, "From": "+14155559999"}, 21606, "+14155559999", id="foreign-From"
        ),
        pytest.param(
            {"To": CUSTOMER, "From": BUSINESS, "Parameters": "{not json"},
            20422,
            "Parameters",
            id="Parameters-not-JSON",
        ),
        pytest.param(
            {"To": CUSTOMER, "From": BUSINESS, "Parameters": "[1, 2]"},
            20422,
            "Parameters",
            id="Parameters-a-list",
        ),
        pytest.param(
            {"To": CUSTOMER, "From": BUSINESS, "Parameters": '"text"'},
            20422,
            "Parameters",
            id="Parameters-a-string",
        ),
        pytest.param(
            {"To": CUSTOMER, "From": BUSINESS, "Parameters": "null"},
            20422,
            "Parameters",
            id="Parameters-null",
        ),
        pytest.param({"To": CUSTOMER + "\x00", "From": BUSINESS}, 20422, "NUL", id="NUL-in-To"),
        pytest.param({"To": CUSTOMER, "From": BUSINESS + "\x00"}, 20422, "NUL", id="NUL-in-From"),
        pytest.param(
            {"To": CUSTOMER, "From": BUSINESS, "Parameters": '{"name": "a\x00b"}'},
            20422,
            "Parameters",
            id="raw-NUL-in-Parameters",
        ),
        pytest.param(
            {"To": CUSTOMER, "From": BUSINESS, "Parameters": '{"name": "a\\u0000b"}'},
            20422,
            "NUL",
            id="escaped-NUL-in-Parameters-value",
        ),
        pytest.param(
            {"To": CUSTOMER, "From": BUSINESS, "Parameters": '{"na\\u0000me": "x"}'},
            20422,
            "NUL",
            id="escaped-NUL-in-Parameters-key",
        ),
    ],
)
def test_bad_input_is_refused_with_its_code_and_nothing_is_written(
    client, world, greeting, data, code, mentions
):
    response = post(client, world, greeting, data)
    assert_refused(response, 400, code, mentions=mentions)
    assert_nothing_written()


def test_a_json_body_that_is_not_an_object_is_refused(client, world, greeting):
    auth = basic(world.account.sid, world.token)
    for raw in ("[1]", "{broken", '"text"'):
        response = client.post(
            url(greeting), raw, content_type="application/json", HTTP_AUTHORIZATION=auth
        )
        assert_refused(response, 400, 20422)
    response = client.post(
        url(greeting),
        json.dumps({"To": 14155550123, "From": BUSINESS}),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )
    assert_refused(response, 400, 20422, mentions="text")
    assert_nothing_written()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"To": CUSTOMER + "\x00", "From": BUSINESS}, id="To"),
        pytest.param(
            {"To": CUSTOMER, "From": BUSINESS, "Parameters": {"name": "a\x00b"}},
            id="Parameters-object",
        ),
    ],
)
def test_a_json_body_with_a_nul_character_is_refused(client, world, greeting, data):
    response = client.post(
        url(greeting),
        json.dumps(data),
        content_type="application/json",
        HTTP_AUTHORIZATION=basic(world.account.sid, world.token),
    )
    assert_refused(response, 400, 20422, mentions="NUL")
    assert_nothing_written()


# ---------------------------------------------------------------- auth and scope


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param("", id="none"),
        pytest.param("Bearer abc", id="not-basic"),
        pytest.param("Basic !!!", id="not-base64"),
        pytest.param("wrong-token", id="wrong-token"),
        pytest.param("unknown-account", id="unknown-account"),
        pytest.param("revoked-key", id="revoked-key"),
    ],
)
def test_no_or_wrong_credentials_get_401_and_nothing_is_written(client, world, greeting, auth):
    if auth == "wrong-token":
        auth = basic(world.account.sid, "0" * 32)
    elif auth == "unknown-account":
        auth = basic("AC" + "0" * 32, world.token)
    elif auth == "revoked-key":
        from django.utils import timezone

        key = api_key_create(account=world.account, friendly_name="gone")
        key.key.revoked_at = timezone.now()
        key.key.save(update_fields=["revoked_at"])
        auth = basic(key.key.sid, key.secret)
    data = {"To": CUSTOMER, "From": BUSINESS, "Parameters": '{"name": "x"}'}
    headers = {"HTTP_AUTHORIZATION": auth} if auth else {}
    response = client.post(url(greeting), data, **headers)
    assert_refused(response, 401, 20003)
    assert_nothing_written()
    for path in ((), ("FN" + "0" * 32,)):
        listed = client.get(url(greeting, *path), **headers)
        assert_refused(listed, 401, 20003)


def test_another_accounts_flow_is_not_found(client, world, greeting):
    other = Account.objects.create(
        friendly_name="Other", auth_token_encrypted=crypto.encrypt(crypto.new_token())
    )
    foreign = make_flow(other, "Theirs", "Hi {{flow.data.name}}")
    response = start(client, world, foreign, parameters={"name": "x"})
    assert_refused(response, 404, 20404, mentions=foreign.sid)
    assert_nothing_written()
    # Their credentials do not reach our flow either, nor our executions.
    ours = start(client, world, greeting, parameters={"name": "Ana"}).json()
    theirs = basic(other.sid, other.auth_token)
    assert_refused(get(client, world, greeting, auth=theirs), 404, 20404)
    assert_refused(get(client, world, greeting, ours["sid"], auth=theirs), 404, 20404)
    assert_refused(get(client, world, foreign, ours["sid"], auth=theirs), 404, 20404)
    assert Execution.objects.get().status == ExecutionStatus.ENDED


def test_an_unknown_flow_is_not_found(client, world):
    response = client.post(
        "/v2/Flows/FW" + "0" * 32 + "/Executions",
        {"To": CUSTOMER, "From": BUSINESS},
        HTTP_AUTHORIZATION=basic(world.account.sid, world.token),
    )
    assert_refused(response, 404, 20404)
    assert_nothing_written()


def test_an_unpublished_flow_is_refused(client, world):
    draft = make_flow(world.account, "Draft only", "Hi", publish=False)
    response = start(client, world, draft, parameters={"name": "x"})
    assert_refused(response, 400, 20422, mentions=draft.sid)
    assert_nothing_written()


def test_other_methods_are_refused(client, world, greeting):
    auth = basic(world.account.sid, world.token)
    for method in (client.put, client.delete, client.patch):
        assert_refused(method(url(greeting), HTTP_AUTHORIZATION=auth), 405, 20004)
    assert_nothing_written()


# ---------------------------------------------------------------- draft for test addresses


def test_a_test_address_runs_the_draft_and_others_the_published_revision(client, world):
    flow = make_flow(world.account, "Two versions", "Published hello {{flow.data.name}}")
    flow.definition = definition(send_message("greet", "Draft hello {{flow.data.name}}"))
    flow.test_addresses = [CUSTOMER]
    flow.save()
    tester = start(client, world, flow, parameters={"name": "Tess"})
    assert tester.status_code == 201, tester.content
    assert tester.json()["draft"] is True and tester.json()["revision"] is None
    customer = start(client, world, flow, to=OTHER_CUSTOMER, parameters={"name": "Cus"})
    assert customer.status_code == 201, customer.content
    assert customer.json()["draft"] is False and customer.json()["revision"] == 1
    assert outbound_bodies(CUSTOMER) == ["Draft hello Tess"]
    assert outbound_bodies(OTHER_CUSTOMER) == ["Published hello Cus"]
    tested = Execution.objects.get(contact_address=CUSTOMER)
    assert tested.revision is None
    assert tested.draft_definition == flow.definition


def test_a_test_address_runs_a_never_published_draft(client, world):
    flow = make_flow(world.account, "Draft only", "Draft {{flow.data.name}}", publish=False)
    flow.test_addresses = [CUSTOMER]
    flow.save()
    assert start(client, world, flow, parameters={"name": "T"}).status_code == 201
    assert outbound_bodies() == ["Draft T"]
    refused = start(client, world, flow, to=OTHER_CUSTOMER, parameters={"name": "C"})
    assert_refused(refused, 400, 20422)
    assert outbound_bodies(OTHER_CUSTOMER) == []


# ---------------------------------------------------------------- reading and ending


def test_list_and_fetch_executions(client, world, waiting):
    first = start(client, world, waiting, parameters={"name": "A"}).json()
    second = start(client, world, waiting, to=OTHER_CUSTOMER, parameters={"name": "B"}).json()
    post(client, world, waiting, {"Status": "ended"}, path=(first["sid"],))
    response = get(client, world, waiting)
    assert response.status_code == 200
    listed = response.json()
    assert [e["sid"] for e in listed["executions"]] == [second["sid"], first["sid"]]
    assert listed["meta"]["key"] == "executions"
    assert [e["status"] for e in listed["executions"]] == ["active", "ended"]
    active = get(client, world, waiting, Status="active").json()["executions"]
    assert [e["sid"] for e in active] == [second["sid"]]
    ended = get(client, world, waiting, Status="ended").json()["executions"]
    assert [e["sid"] for e in ended] == [first["sid"]]
    one = get(client, world, waiting, second["sid"])
    assert one.status_code == 200
    assert one.json()["sid"] == second["sid"]
    assert one.json()["contact_channel_address"] == OTHER_CUSTOMER
    assert one.json()["status"] == "active"
    missing = get(client, world, waiting, "FN" + "0" * 32)
    assert_refused(missing, 404, 20404, mentions="FN" + "0" * 32)


def test_the_list_only_shows_this_flows_executions(client, world, greeting, waiting):
    mine = start(client, world, waiting, parameters={"name": "A"}).json()
    start(client, world, greeting, parameters={"name": "B"})
    listed = get(client, world, waiting).json()["executions"]
    assert [e["sid"] for e in listed] == [mine["sid"]]
    # An execution of another flow is not found under this one.
    other = Execution.objects.get(flow=greeting)
    assert_refused(get(client, world, waiting, other.sid), 404, 20404)


def test_post_status_ended_ends_the_execution(client, world, waiting):
    created = start(client, world, waiting, parameters={"name": "A"}).json()
    response = post(client, world, waiting, {"Status": "ended"}, path=(created["sid"],))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ended"
    assert response.json()["outcome"] == "ended"
    execution = Execution.objects.get(sid=created["sid"])
    assert execution.status == ExecutionStatus.ENDED
    assert execution.ended_reason == "Ended through the API."
    assert execution.date_ended is not None
    assert execution.waiting == ""
    # Ending again changes nothing.
    again = post(client, world, waiting, {"Status": "ended"}, path=(created["sid"],))
    assert again.status_code == 200 and again.json()["status"] == "ended"
    execution.refresh_from_db()
    assert execution.ended_reason == "Ended through the API."


def test_post_another_status_is_refused_and_changes_nothing(client, world, waiting):
    created = start(client, world, waiting, parameters={"name": "A"}).json()
    for data in ({"Status": "active"}, {}):
        response = post(client, world, waiting, data, path=(created["sid"],))
        assert_refused(response, 400, 20422, mentions="Status")
    assert Execution.objects.get(sid=created["sid"]).status == ExecutionStatus.ACTIVE


def test_steps_endpoint_lists_the_logged_steps(client, world, greeting):
    created = start(client, world, greeting, parameters={"name": "Ana"}).json()
    response = get(client, world, greeting, created["sid"], "Steps")
    assert response.status_code == 200
    steps = response.json()["steps"]
    stored = list(Step.objects.filter(execution__sid=created["sid"]).order_by("index", "id"))
    assert [s["sid"] for s in steps] == [s.sid for s in stored]
    assert all(s["sid"].startswith("FT") for s in steps)
    assert all(s["execution_sid"] == created["sid"] for s in steps)
    assert [(s["name"], s["widget_type"], s["event"], s["transitioned_to"]) for s in steps] == [
        ("Trigger", "trigger", "incomingRequest", "greet"),
        ("greet", "send-message", "sent", "Ended"),
    ]
    message = Message.objects.get(direction=Direction.OUTBOUND_REPLY)
    assert steps[1]["context"]["outbound"]["Sid"] == message.sid
    assert steps[1]["context"]["outbound"]["Body"] == "Hi Ana"
    assert steps[1]["error"] == ""


def test_context_endpoint_returns_the_execution_context(client, world, waiting):
    created = start(client, world, waiting, parameters={"name": "Ana"}).json()
    response = get(client, world, waiting, created["sid"], "Context")
    assert response.status_code == 200
    body = response.json()
    assert body["execution_sid"] == created["sid"]
    assert body["flow_sid"] == waiting.sid
    context = body["context"]
    assert context == Execution.objects.get(sid=created["sid"]).context
    assert context["flow"]["data"] == {"name": "Ana"}
    assert context["flow"]["sid"] == created["sid"]
    assert context["flow"]["flow_sid"] == waiting.sid
    assert context["flow"]["channel"]["address"] == BUSINESS
    assert context["contact"]["channel"]["address"] == CUSTOMER
    assert context["trigger"]["request"]["Parameters"] == {"name": "Ana"}
    assert context["widgets"]["ask"]["outbound"]["Body"] == "Your name, Ana?"


def test_steps_and_context_refuse_writes(client, world, greeting):
    created = start(client, world, greeting, parameters={"name": "Ana"}).json()
    for tail in ("Steps", "Context"):
        response = post(client, world, greeting, {"x": "y"}, path=(created["sid"], tail))
        assert_refused(response, 405, 20004)
    assert Step.objects.count() == 2


# ---------------------------------------------------------------- functions


def _function_flow(account) -> Flow:
    flow = Flow.objects.create(
        account=account,
        friendly_name="Cancel",
        definition=definition(
            {
                "name": "cancel",
                "type": "run-function",
                "properties": {
                    "function": "cancel_appointment",
                    "parameters": [{"key": "documento", "value": "{{flow.data.document}}"}],
                },
                "transitions": [
                    {"event": "success", "next": "done"},
                    {"event": "fail", "next": "sorry"},
                ],
            },
            send_message("done", "Canceled {{widgets.cancel.parsed.document}}"),
            send_message("sorry", "Sorry: {{widgets.cancel.error}}"),
        ),
    )
    flow_publish(flow)
    flow.refresh_from_db()
    return flow


def _configure(environment: dict, secrets: dict) -> None:
    from contactcenter.flows.models import FlowFunctionConfig

    FlowFunctionConfig.objects.create(
        name="cancel_appointment",
        environment=environment,
        secrets_encrypted=crypto.encrypt(json.dumps(secrets)),
    )


@pytest.fixture
def appointments_api():
    """A local server in the appointments API's place, recording what the function sends."""
    server = FakeApi()
    server.route("DELETE", r"/a/.*", json_answer({"document": "77", "state": "canceled"}))
    yield server
    server.close()


def test_a_function_runs_with_its_secret_and_its_result_is_visible(client, world, appointments_api):
    _configure(
        {"APPOINTMENTS_API_URL": f"{appointments_api.url}/a"}, {"APPOINTMENTS_API_TOKEN": "t"}
    )
    flow = _function_flow(world.account)
    response = start(client, world, flow, parameters={"document": "77"})
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "ended"
    (sent,) = appointments_api.received
    assert (sent.method, sent.path, sent.headers["Authorization"]) == (
        "DELETE",
        "/a/77/",
        "Bearer t",
    )
    assert outbound_bodies() == ["Canceled 77"]


def test_a_function_whose_secrets_cannot_be_read_fails_the_widget_not_the_request(
    client, world, settings, appointments_api
):
    """After the encryption key changed, the function's secrets are unreadable: the widget
    takes `fail` (the flow goes on), the API does not answer 500 and nothing is called."""
    current = getattr(settings, "SECRETS_ENCRYPTION_KEY", "")
    settings.SECRETS_ENCRYPTION_KEY = "a-key-this-deployment-no-longer-has"
    _configure(
        {"APPOINTMENTS_API_URL": f"{appointments_api.url}/a"}, {"APPOINTMENTS_API_TOKEN": "t"}
    )
    settings.SECRETS_ENCRYPTION_KEY = current
    flow = _function_flow(world.account)
    response = start(client, world, flow, parameters={"document": "77"})
    assert response.status_code == 201, response.content
    assert appointments_api.received == []
    steps = list(Step.objects.order_by("index").values_list("name", "event"))
    assert steps[:2] == [("Trigger", "incomingRequest"), ("cancel", "fail")]
    assert outbound_bodies()[0].startswith("Sorry: The secrets of the function")
