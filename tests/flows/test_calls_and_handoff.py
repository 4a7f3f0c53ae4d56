"""Widgets that reach beyond the flow: subflows, registered functions, HTTP requests, and
the hand-off to the agents."""

import json
import time

import pytest

from contactcenter.core.demo import DEMO_WORKFLOW, demo_routing_seed
from contactcenter.desk.models import Handoff
from contactcenter.flows.functions import FunctionFailed, _unregister, flow_function
from contactcenter.flows.models import (
    Execution,
    ExecutionStatus,
    FlowFunctionConfig,
    HttpAllowedHost,
    Waiting,
)
from contactcenter.flows.services import flow_publish
from messaging import crypto
from routing.models import Task
from tests.flows.conftest import CUSTOMER, go, last_execution, state
from tests.support.http import FakeApi, json_answer


def send(name, body, on_sent=""):
    return state(name, "send-message", [go("sent", on_sent), go("failed")], body=body)


# ---------------------------------------------------------------- run-subflow


def _subflow(flows, *states, name="child"):
    return flows.flow(*states, name=name, attach=False)


def test_a_subflow_gets_parameters_and_returns_its_variables(flows):
    child = _subflow(
        flows,
        state(
            "compute",
            "set-variables",
            [go("next")],
            variables=[{"key": "greeting", "value": "Hi {{trigger.parent.parameters.who}}"}],
        ),
    )
    parent = flows.flow(
        state(
            "call",
            "run-subflow",
            [go("completed", "say"), go("failed")],
            flow_sid=child.sid,
            parameters=[{"key": "who", "value": "{{trigger.message.Body}}"}],
        ),
        send("say", "{{widgets.call.greeting}} / {{widgets.call.status}}"),
    )
    flows.say("Ana")
    assert flows.replies() == ["Hi Ana / completed"]
    child_run = child.executions.get()
    assert child_run.parent == last_execution(parent)
    assert child_run.status == ExecutionStatus.ENDED
    assert last_execution(parent).status == ExecutionStatus.ENDED


def test_a_subflow_that_waits_for_a_reply_gets_it_then_the_parent_resumes(flows):
    child = _subflow(
        flows,
        state(
            "ask",
            "send-and-wait-for-reply",
            [go("incomingMessage", "keep"), go("timeout"), go("deliveryFailure")],
            body="Your city?",
        ),
        state(
            "keep",
            "set-variables",
            [go("next")],
            variables=[{"key": "city", "value": "{{widgets.ask.inbound.Body}}"}],
        ),
    )
    parent = flows.flow(
        state("call", "run-subflow", [go("completed", "say"), go("failed")], flow_sid=child.sid),
        send("say", "So, {{widgets.call.variables.city}}"),
    )
    flows.say("hola")
    parent_run = last_execution(parent)
    assert parent_run.waiting == Waiting.SUBFLOW
    assert flows.say("Bogotá").startswith("delivered to " + child.executions.get().sid)
    assert flows.replies() == ["Your city?", "So, Bogotá"]
    parent_run.refresh_from_db()
    assert parent_run.status == ExecutionStatus.ENDED


def test_a_failing_subflow_takes_failed(flows):
    child = _subflow(flows, send("oops", "{{ 'x' | no_such_filter }}"))
    flows.flow(
        state("call", "run-subflow", [go("completed"), go("failed", "sorry")], flow_sid=child.sid),
        send("sorry", "sorry: {{widgets.call.status}}"),
    )
    flows.say("hola")
    assert flows.replies() == ["sorry: failed"]


def test_only_one_level_of_subflows(flows):
    grandchild = _subflow(flows, send("deep", "too deep"), name="grandchild")
    child = _subflow(
        flows,
        state(
            "again", "run-subflow", [go("completed"), go("failed", "note")], flow_sid=grandchild.sid
        ),
        state(
            "note",
            "set-variables",
            [go("next")],
            variables=[{"key": "nested", "value": "{{widgets.again.error}}"}],
        ),
    )
    flows.flow(
        state("call", "run-subflow", [go("completed", "say"), go("failed")], flow_sid=child.sid),
        send("say", "{{widgets.call.nested}}"),
    )
    flows.say("hola")
    assert flows.replies() == ["A subflow cannot run another subflow (one level of nesting)."]
    assert grandchild.executions.count() == 0


def test_an_unknown_or_unpublished_subflow_fails(flows):
    draft_only = flows.flow(send("x", "x"), name="draft only", attach=False, publish=False)
    flows.flow(
        state(
            "call", "run-subflow", [go("completed"), go("failed", "say")], flow_sid=draft_only.sid
        ),
        send("say", "{{widgets.call.error}}"),
    )
    flows.say("hola")
    assert flows.replies() == [f"The flow {draft_only.sid} has no such published revision."]


# ---------------------------------------------------------------- run-function


@pytest.fixture
def lookup_function():
    calls = []

    @flow_function("test_lookup", description="test", parameters=("order",))
    def lookup(call):
        calls.append(call)
        if call.parameters["order"] == "missing":
            raise FunctionFailed("No such order.")
        if call.parameters["order"] == "slow":
            time.sleep(0.5)
        return {
            "order": call.parameters["order"],
            "state": "shipped",
            "key": call.environment["API_KEY"],
        }

    yield calls
    _unregister("test_lookup")


def _function_flow(flows):
    return flows.flow(
        state(
            "lookup",
            "run-function",
            [go("success", "ok"), go("fail", "ko")],
            function="test_lookup",
            parameters=[{"key": "order", "value": "{{trigger.message.Body}}"}],
        ),
        send(
            "ok",
            "{{widgets.lookup.parsed.order}} is {{widgets.lookup.parsed.state}} "
            "({{widgets.lookup.status_code}})",
        ),
        send("ko", "failed {{widgets.lookup.status_code}}: {{widgets.lookup.error}}"),
    )


def _enable(environment=None, secrets=None):
    FlowFunctionConfig.objects.create(
        name="test_lookup",
        environment=environment or {},
        secrets_encrypted=crypto.encrypt(json.dumps(secrets or {})),
    )


def test_run_function_success_gets_parameters_environment_and_secrets(flows, lookup_function):
    _enable({"REGION": "co"}, {"API_KEY": "s3cret"})
    _function_flow(flows)
    flows.say("A-7")
    assert flows.replies() == ["A-7 is shipped (200)"]
    call = lookup_function[0]
    assert call.environment == {"REGION": "co", "API_KEY": "s3cret"}
    assert call.context["trigger"]["message"]["Body"] == "A-7"


def test_run_function_fail(flows, lookup_function):
    _enable(secrets={"API_KEY": "k"})
    _function_flow(flows)
    flows.say("missing")
    assert flows.replies() == ["failed 500: No such order."]


def test_a_function_no_admin_enabled_does_not_run(flows, lookup_function):
    _function_flow(flows)
    flows.say("A-7")
    assert lookup_function == []
    assert flows.replies() == [
        "failed 500: The function 'test_lookup' is not enabled in the admin (Flow functions)."
    ]


def test_a_function_past_its_timeout_fails(flows, lookup_function, monkeypatch):
    from contactcenter.flows import widgets

    monkeypatch.setattr(widgets, "IO_TIMEOUT_SECONDS", 0.1)
    _enable(secrets={"API_KEY": "k"})
    _function_flow(flows)
    flows.say("slow")
    assert flows.replies() == ["failed 500: The function test_lookup did not finish within 0.1 s."]


def test_a_call_whose_worker_died_is_failed_by_the_tick(flows, lookup_function):
    from datetime import timedelta

    from django.utils import timezone

    from contactcenter.flows.services import flows_tick

    _enable(secrets={"API_KEY": "k"})
    flow = _function_flow(flows)
    flows.say("A-7")
    execution = last_execution(flow)
    # As if the worker had been killed in the call: still waiting, its deadline long past.
    Execution.objects.filter(pk=execution.pk).update(
        status=ExecutionStatus.ACTIVE,
        waiting=Waiting.IO,
        current_state="lookup",
        wait_until=timezone.now() - timedelta(seconds=1),
    )
    assert flows_tick()["timeouts"] == 1
    assert flows.replies()[-1].startswith("failed 500: The call was interrupted")


# ---------------------------------------------------------------- make-http-request


@pytest.fixture
def api():
    server = FakeApi()
    yield server
    server.close()


def _http_flow(flows, url, **props):
    return flows.flow(
        state(
            "fetch",
            "make-http-request",
            [go("success", "ok"), go("failed", "ko")],
            method=props.pop("method", "GET"),
            url=url,
            **props,
        ),
        send("ok", "{{widgets.fetch.status_code}} {{widgets.fetch.parsed.name}}"),
        send("ko", "ko {{widgets.fetch.status_code}} {{widgets.fetch.error}}"),
    )


def test_http_request_to_an_allowed_host_parses_json(flows, api):
    api.route("GET", r"/customers", json_answer({"name": "Ana"}))
    HttpAllowedHost.objects.create(host=api.url.removeprefix("http://"))
    _http_flow(
        flows,
        api.url + "/customers",
        parameters=[{"key": "phone", "value": "{{contact.channel.address}}"}],
    )
    flows.say("hola")
    assert flows.replies() == ["200 Ana"]
    assert api.received[0].path == "/customers?phone=%2B14155550123"


def test_http_request_posts_json(flows, api):
    api.route("POST", r"/tickets", json_answer({"name": "T-1"}, status=201))
    HttpAllowedHost.objects.create(host=api.url.removeprefix("http://"))
    _http_flow(
        flows,
        api.url + "/tickets",
        method="POST",
        content_type="application/json;charset=utf-8",
        body='{"from": "{{trigger.message.From}}", "text": "{{trigger.message.Body}}"}',
    )
    flows.say("help me")
    assert flows.replies() == ["201 T-1"]
    assert json.loads(api.received[0].body) == {"from": CUSTOMER, "text": "help me"}


def test_http_request_to_a_host_off_the_allow_list_is_never_made(flows, api):
    api.route("GET", r".*", json_answer({"name": "x"}))
    _http_flow(flows, api.url + "/customers")
    flows.say("hola")
    assert api.received == []
    assert "allow-list" in flows.replies()[0]


def test_http_request_error_status_takes_failed(flows, api):
    api.route("GET", r".*", json_answer({"error": "boom"}, status=500))
    HttpAllowedHost.objects.create(host=api.url.removeprefix("http://"))
    _http_flow(flows, api.url + "/x")
    flows.say("hola")
    assert flows.replies()[0].startswith("ko 500 ")


# ---------------------------------------------------------------- send-to-agent


def _agent_flow(flows, workflow=DEMO_WORKFLOW, **props):
    return flows.flow(
        state(
            "remember",
            "set-variables",
            [go("next", "handoff")],
            variables=[{"key": "language", "value": "es"}, {"key": "documento", "value": "1002"}],
        ),
        state(
            "handoff",
            "send-to-agent",
            [go("callComplete"), go("failedToEnqueue", "sorry")],
            workflow=workflow,
            **props,
        ),
        send("sorry", "sorry: {{widgets.handoff.error}}"),
    )


def test_send_to_agent_creates_the_routing_task_and_the_flow_leaves(flows):
    demo_routing_seed()
    flow = _agent_flow(
        flows,
        attributes='{"topic": "{{trigger.message.Body}}", "vip": false}',
        priority="7",
        timeout="900",
    )
    flows.say("appointments")
    execution = last_execution(flow)
    handoff = Handoff.objects.get()
    task = handoff.task
    conversation = handoff.conversation
    assert task.attributes == {
        "channelType": "sms",
        "customerAddress": CUSTOMER,
        "name": "Ana Test",
        "conversationSid": conversation.sid,
        "businessAddress": flows.sender.address,
        "language": "es",
        "documento": "1002",
        "topic": "appointments",
        "vip": False,
    }
    assert (task.priority, task.timeout, task.task_channel.unique_name) == (7, 900, "sms")
    assert task.workflow.friendly_name == DEMO_WORKFLOW
    assert task.queue.friendly_name == "Spanish support"
    assert execution.status == ExecutionStatus.ENDED
    assert task.sid in execution.ended_reason
    assert handoff.execution_sid == execution.sid
    # While the task is live, the customer's messages are the agents', not the bot's.
    assert flows.say("hello?") == "the conversation is with the agents"
    assert flow.executions.count() == 1
    # Nor does the tick's sweep of lost messages hand it to the bot later.
    from datetime import timedelta

    from django.utils import timezone

    from contactcenter.flows.services import flows_tick
    from messaging.models import Message

    Message.objects.filter(direction="inbound").update(
        date_created=timezone.now() - timedelta(seconds=60)
    )
    assert flows_tick()["swept"] == 0


def test_after_the_task_is_done_the_flow_answers_again(flows):
    from routing.services.tasks import task_cancel

    demo_routing_seed()
    flow = _agent_flow(flows)
    flows.say("hola")
    task_cancel(Task.objects.get(), reason="test")
    flows.say("hola again")
    assert flow.executions.count() == 2


def test_failed_to_enqueue_when_routing_refuses(flows):
    demo_routing_seed()
    _agent_flow(flows, workflow="No such workflow")
    flows.say("hola")
    assert flows.replies() == ["sorry: Routing refused the task: No workflow 'No such workflow'."]
    assert Task.objects.count() == 0
    assert Handoff.objects.count() == 0


def test_failed_to_enqueue_when_the_attributes_are_not_a_json_object(flows):
    demo_routing_seed()
    _agent_flow(flows, attributes='{% if true %}["not", "an object"]{% endif %}')
    flows.say("hola")
    assert flows.replies() == ["sorry: Widget handoff: the attributes must be a JSON object."]
    assert Task.objects.count() == 0


def test_send_to_flex_is_accepted_as_send_to_agent(flows):
    demo_routing_seed()
    flow = _agent_flow(flows)
    flow.definition["states"][2]["type"] = "send-to-flex"
    flow.save()
    flow_publish(flow)
    flows.say("hola")
    assert Task.objects.count() == 1
