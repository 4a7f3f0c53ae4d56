"""The engine and its widgets, through what a customer does: write, reply, wait."""

from datetime import timedelta

import pytest
from django.utils import timezone

from contactcenter.flows import engine
from contactcenter.flows.hooks import message_status_changed
from contactcenter.flows.models import Execution, ExecutionStatus, Step, Waiting
from contactcenter.flows.selectors import attachments_cache_clear
from contactcenter.flows.services import flows_tick
from contactcenter.flows.tasks import flow_message_failed
from messaging import hooks
from messaging.services.optout import optout_block
from tests.flows.conftest import CUSTOMER, go, last_execution, state

OTHER = "+14155550124"


def reply_and_wait(name: str, body: str, on_reply: str = "", on_timeout: str = "", **props):
    return state(
        name,
        "send-and-wait-for-reply",
        [go("incomingMessage", on_reply), go("timeout", on_timeout), go("deliveryFailure")],
        body=body,
        **props,
    )


def send(name: str, body: str, on_sent: str = "", on_failed: str = "", **props):
    return state(
        name, "send-message", [go("sent", on_sent), go("failed", on_failed)], body=body, **props
    )


# ---------------------------------------------------------------- context and send-message


def test_a_new_conversation_starts_the_attached_flow_and_templates_see_the_context(flows):
    flow = flows.flow(
        send(
            "hello",
            "{{trigger.message.Body}}|{{trigger.message.From}}|{{contact.channel.address}}|"
            "{{flow.channel.address}}|{{trigger.message.ProfileName}}|{{flow.flow_sid}}",
        )
    )
    outcome = flows.say("hola")

    execution = last_execution(flow)
    assert outcome == f"started {execution.sid}"
    assert flows.replies() == [
        f"hola|{CUSTOMER}|{CUSTOMER}|{flows.sender.address}|Ana Test|{flow.sid}"
    ]
    assert execution.status == ExecutionStatus.ENDED
    assert execution.context["widgets"]["hello"]["outbound"]["Body"].startswith("hola|")
    steps = list(execution.steps.values_list("name", "event", "next_state"))
    assert steps == [("Trigger", "incomingMessage", "hello"), ("hello", "sent", "")]


def test_send_message_failed_takes_the_failed_transition_with_the_error(flows):
    optout_block(address=CUSTOMER, service=flows.world.service)
    flows.flow(
        send("blocked", "Hi", on_failed="note"),
        state(
            "note",
            "set-variables",
            [go("next")],
            variables=[{"key": "why", "value": "{{widgets.blocked.error.code}}"}],
        ),
    )
    flows.say("hola")
    execution = Execution.objects.get()
    assert execution.context["flow"]["variables"]["why"] == "21610"
    assert [s.event for s in execution.steps.order_by("index")] == [
        "incomingMessage",
        "failed",
        "next",
    ]


def test_a_template_that_fails_to_render_ends_the_execution_as_failed(flows):
    flows.flow(send("hello", "{{ 'x' | no_such_filter }}"))
    flows.say("hola")
    execution = Execution.objects.get()
    assert execution.status == ExecutionStatus.FAILED
    assert "hello" in execution.ended_reason
    assert flows.replies() == []


def test_a_rendered_value_over_16_kb_fails_the_execution(flows):
    flows.flow(
        state(
            "big",
            "set-variables",
            [go("next", "say")],
            variables=[{"key": "x", "value": "{% for i in (1..3000) %}abcdef{% endfor %}"}],
        ),
        send("say", "never"),
    )
    flows.say("hola")
    execution = Execution.objects.get()
    assert execution.status == ExecutionStatus.FAILED
    assert "16 KB" in execution.ended_reason
    assert flows.replies() == []


# ---------------------------------------------------------------- send-and-wait-for-reply


def test_send_and_wait_delivers_the_reply_to_the_waiting_execution(flows):
    flow = flows.flow(
        reply_and_wait("ask", "Your name?", on_reply="thanks"),
        send("thanks", "Thanks {{widgets.ask.inbound.Body}} ({{widgets.ask.outbound.Body}})"),
    )
    flows.say("hola")
    execution = last_execution(flow)
    assert (execution.waiting, execution.current_state) == (Waiting.REPLY, "ask")
    assert execution.wait_until > timezone.now() + timedelta(seconds=3500)

    assert flows.say("Ana") == f"delivered to {execution.sid}"
    execution.refresh_from_db()
    assert flows.replies() == ["Your name?", "Thanks Ana (Your name?)"]
    assert execution.status == ExecutionStatus.ENDED
    assert flow.executions.count() == 1


def test_the_reply_timeout_is_stored_and_fired_by_the_tick(flows):
    flow = flows.flow(
        reply_and_wait("ask", "Still there?", on_timeout="bye", timeout="60"),
        send("bye", "Bye"),
    )
    flows.say("hola")
    execution = last_execution(flow)
    assert flows_tick() == {"timeouts": 0, "expired": 0, "swept": 0}  # not due yet

    Execution.objects.filter(pk=execution.pk).update(
        wait_until=timezone.now() - timedelta(seconds=1)
    )
    assert flows_tick()["timeouts"] == 1
    execution.refresh_from_db()
    assert flows.replies() == ["Still there?", "Bye"]
    assert execution.status == ExecutionStatus.ENDED
    assert execution.steps.filter(name="ask", event="timeout").exists()


def test_delivery_failure_when_the_message_cannot_be_created(flows):
    optout_block(address=CUSTOMER, service=flows.world.service)
    flows.flow(
        state(
            "ask",
            "send-and-wait-for-reply",
            [go("incomingMessage"), go("timeout"), go("deliveryFailure", "log")],
            body="?",
        ),
        state("log", "set-variables", [go("next")], variables=[{"key": "failed", "value": "yes"}]),
    )
    flows.say("hola")
    execution = Execution.objects.get()
    assert execution.context["flow"]["variables"] == {"failed": "yes"}
    assert execution.status == ExecutionStatus.ENDED


def test_delivery_failure_when_the_waited_message_fails_later(
    flows, django_capture_on_commit_callbacks
):
    from messaging.services.messages import message_status_apply

    flows.flow(
        state(
            "ask",
            "send-and-wait-for-reply",
            [go("incomingMessage"), go("timeout"), go("deliveryFailure", "log")],
            body="?",
        ),
        state(
            "log",
            "set-variables",
            [go("next")],
            variables=[{"key": "code", "value": "{{widgets.ask.error.code}}"}],
        ),
    )
    flows.say("hola")
    execution = Execution.objects.get()
    waited = execution.wait_message
    with django_capture_on_commit_callbacks(execute=True):
        assert message_status_apply(
            message_id=waited.pk, status="failed", error_code=30008, source="test"
        )
    # The hook queued the task on the broker; run it here, as the worker would.
    assert message_status_changed in hooks.status_handlers()
    flow_message_failed(waited.pk, "failed")
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.ENDED
    assert execution.context["flow"]["variables"]["code"] == "30008"


# ---------------------------------------------------------------- split and set-variables


@pytest.mark.parametrize(
    ("answer", "branch"),
    [
        ("1", "one"),
        (" UNO ", "one"),
        ("two", "two"),
        ("2", "two"),
        ("call me", "other"),
        ("", "other"),
    ],
)
def test_split_takes_the_first_matching_condition(flows, answer, branch):
    source = "{{trigger.message.Body}}"
    flows.flow(
        state(
            "split",
            "split-based-on",
            [
                {
                    "event": "match",
                    "next": "one",
                    "conditions": [
                        {
                            "friendly_name": "1",
                            "arguments": [source],
                            "type": "matches_any_of",
                            "value": "1, uno",
                        }
                    ],
                },
                {
                    "event": "match",
                    "next": "two",
                    "conditions": [
                        {
                            "friendly_name": "2",
                            "arguments": [source],
                            "type": "regex",
                            "value": "(2|two)",
                        }
                    ],
                },
                go("noMatch", "other"),
            ],
            input=source,
        ),
        send("one", "one"),
        send("two", "two"),
        send("other", "other"),
    )
    flows.say(answer or " ")
    assert flows.replies() == [branch]


def test_split_on_time_uses_the_flows_time_zone(flows):
    # 02:30 UTC is 21:30 the day before in Bogotá: "after 21:00" holds there, not in UTC.
    flow = flows.flow(
        state(
            "split",
            "split-based-on",
            [
                {
                    "event": "match",
                    "next": "late",
                    "conditions": [
                        {
                            "friendly_name": "late",
                            "arguments": ["x"],
                            "type": "is_after_time",
                            "value": "21:00",
                        }
                    ],
                },
                go("noMatch", "early"),
            ],
            input="x",
        ),
        send("late", "late"),
        send("early", "early"),
        time_zone="America/Bogota",
    )
    now = timezone.now()
    at = now.replace(hour=2, minute=30)
    from unittest import mock  # the clock only: database, Redis and Celery stay real

    with mock.patch("contactcenter.flows.engine.timezone.now", return_value=at):
        flows.say("hola")
    assert flows.replies() == ["late"]
    flow.time_zone = "UTC"
    flow.save()
    attachments_cache_clear()  # senders' flows are cached 5 s per process
    with mock.patch("contactcenter.flows.engine.timezone.now", return_value=at):
        flows.say("hola", customer=OTHER)
    assert flows.replies(OTHER) == ["early"]


def test_set_variables_renders_and_parses_json(flows):
    flows.flow(
        state(
            "remember",
            "set-variables",
            [go("next", "say")],
            variables=[
                {"key": "name", "value": "{{trigger.message.Body | capitalize}}"},
                {"key": "order", "value": '{"id": 7, "items": ["a", "b"]}', "type": "json"},
                {"key": "broken", "value": "{not json", "type": "json"},
            ],
        ),
        send(
            "say",
            "{{flow.variables.name}} #{{flow.variables.order.id}} "
            "{{flow.variables.order.items | size}}",
        ),
    )
    flows.say("ana")
    variables = Execution.objects.get().context["flow"]["variables"]
    assert variables["order"] == {"id": 7, "items": ["a", "b"]}
    assert variables["broken"] == "{not json"  # kept as text, with a warning on the step
    assert flows.replies() == ["Ana #7 2"]
    assert (
        "broken"
        in Step.objects.get(name="remember").execution.context["widgets"]["remember"]["warnings"][0]
    )


# ---------------------------------------------------------------- execution rules


def test_one_active_execution_per_pair_and_flow(flows):
    flow = flows.flow(reply_and_wait("ask", "?", on_reply="again"), reply_and_wait("again", "??"))
    flows.say("a")
    flows.say("b")
    assert flow.executions.count() == 1
    flows.say("c", customer=OTHER)
    assert flow.executions.count() == 2
    assert flow.executions.filter(status=ExecutionStatus.ACTIVE).count() == 2


def test_after_an_execution_ends_the_next_message_starts_a_new_one(flows):
    flow = flows.flow(send("hello", "Hello"))
    flows.say("a")
    flows.say("b")
    assert list(flow.executions.values_list("status", flat=True)) == ["ended", "ended"]
    assert flows.replies() == ["Hello", "Hello"]


def test_a_message_handled_twice_is_handled_once(flows):
    flow = flows.flow(reply_and_wait("ask", "?", on_reply="done"), send("done", "done"))
    first = flows.inbound("a")
    from contactcenter.flows.services import flow_inbound_handle

    flow_inbound_handle(first.pk)
    assert flow_inbound_handle(first.pk) == "already handled"
    assert flows.replies() == ["?"]
    assert flow.executions.get().waiting == Waiting.REPLY


def test_a_message_while_the_execution_is_busy_is_logged_not_lost(flows):
    flow = flows.flow(reply_and_wait("ask", "?", on_reply="done"), send("done", "done"))
    flows.say("a")
    execution = flow.executions.get()
    Execution.objects.filter(pk=execution.pk).update(waiting=Waiting.IO)
    message = flows.inbound("while busy")
    from contactcenter.flows.services import flow_inbound_handle

    assert flow_inbound_handle(message.pk) == f"{execution.sid} was busy"
    step = Step.objects.get(inbound_message=message)
    assert step.data["ignored"]["Body"] == "while busy"
    assert "not waiting" in step.error


def test_opt_out_keywords_do_not_start_a_flow(flows):
    flow = flows.flow(send("hello", "Hello"))
    assert flows.say("STOP") == "opt-out keyword: answered by messaging"
    assert flow.executions.count() == 0


def test_an_unpublished_flow_does_not_answer_but_a_test_address_runs_the_draft(flows):
    flow = flows.flow(send("hello", "draft"), publish=False, test_addresses=[OTHER])
    assert flows.say("a") == f"{flow.sid} is not published"
    flows.say("a", customer=OTHER)
    assert flows.replies(OTHER) == ["draft"]
    assert flow.executions.get().draft_definition is not None


def test_test_addresses_run_the_draft_everyone_else_the_published_revision(flows):
    flow = flows.flow(send("hello", "published"), test_addresses=[OTHER])
    flow.definition["states"][1]["properties"]["body"] = "draft"
    flow.save()
    flows.say("a")
    flows.say("a", customer=OTHER)
    assert flows.replies() == ["published"]
    assert flows.replies(OTHER) == ["draft"]


def test_the_same_widget_ten_times_in_a_row_ends_the_execution(flows):
    flows.flow(
        state(
            "loop",
            "split-based-on",
            [
                {
                    "event": "match",
                    "next": "loop",
                    "conditions": [
                        {
                            "friendly_name": "always",
                            "arguments": ["x"],
                            "type": "equal_to",
                            "value": "x",
                        }
                    ],
                },
                go("noMatch"),
            ],
            input="x",
        )
    )
    flows.say("a")
    execution = Execution.objects.get()
    assert execution.status == ExecutionStatus.FAILED
    assert "10 times in a row" in execution.ended_reason
    assert execution.steps.filter(name="loop").count() == 10


def test_an_execution_stops_at_1000_steps(flows):
    flows.flow(
        state("a", "set-variables", [go("next", "b")], variables=[{"key": "n", "value": "1"}]),
        state("b", "set-variables", [go("next", "a")], variables=[{"key": "n", "value": "2"}]),
    )
    flows.say("go")
    execution = Execution.objects.get()
    assert execution.status == ExecutionStatus.FAILED
    assert "1000 steps" in execution.ended_reason
    assert execution.steps.count() == 1000


def test_an_execution_ends_after_30_days(flows):
    flow = flows.flow(reply_and_wait("ask", "?", on_reply="done"), send("done", "done"))
    flows.say("a")
    execution = flow.executions.get()
    assert execution.expires_at > timezone.now() + timedelta(days=29)
    Execution.objects.filter(pk=execution.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1), wait_until=None
    )
    assert flows_tick()["expired"] == 1
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert "30-day" in execution.ended_reason
    # The customer's next message starts afresh.
    flows.say("b")
    assert flow.executions.filter(status=ExecutionStatus.ACTIVE).count() == 1


def test_ending_an_execution_on_request(flows):
    flow = flows.flow(reply_and_wait("ask", "?"))
    flows.say("a")
    execution = flow.executions.get()
    assert engine.execution_end(execution.pk, reason="because")
    execution.refresh_from_db()
    assert (execution.status, execution.ended_reason) == (ExecutionStatus.ENDED, "because")
    assert not engine.execution_end(execution.pk, reason="again")


def test_the_tick_gives_the_flow_an_inbound_message_whose_task_was_lost(flows):
    from messaging.models import Message

    flow = flows.flow(send("hello", "Hello {{trigger.message.Body}}"))
    lost = flows.inbound("lost")  # stored, but its task never ran (broker down, say)
    too_old = flows.inbound("ancient", customer=OTHER)
    now = timezone.now()
    Message.objects.filter(pk=lost.pk).update(date_created=now - timedelta(seconds=45))
    Message.objects.filter(pk=too_old.pk).update(date_created=now - timedelta(hours=1))
    fresh = flows.inbound("fresh", customer="+14155550125")  # its task may still be coming

    assert flows_tick()["swept"] == 1
    assert flows.replies() == ["Hello lost"]
    assert flow.executions.count() == 1
    assert Step.objects.filter(inbound_message=fresh).count() == 0
    assert flows_tick()["swept"] == 0  # taken: it has its step now
