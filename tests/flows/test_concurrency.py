"""Several workers at once (PostgreSQL): one execution per pair, each message taken once."""

import threading

import pytest
from django.db import connection, connections

from contactcenter.flows.models import Execution, Step
from contactcenter.flows.services import flow_inbound_handle
from tests.flows.conftest import go, state

pytestmark = pytest.mark.django_db(transaction=True)


def _in_threads(*calls):
    barrier = threading.Barrier(len(calls))
    results, errors = [], []

    def run(call):
        try:
            barrier.wait()
            results.append(call())
        except Exception as error:  # surfaced below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    return results


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_two_first_messages_at_once_make_one_execution(live_flows):
    flow = live_flows.flow(
        state(
            "ask",
            "send-and-wait-for-reply",
            [go("incomingMessage", "again"), go("timeout"), go("deliveryFailure")],
            body="?",
        ),
        state(
            "again",
            "send-and-wait-for-reply",
            [go("incomingMessage"), go("timeout"), go("deliveryFailure")],
            body="??",
        ),
    )
    first, second = live_flows.inbound("a"), live_flows.inbound("b")
    outcomes = _in_threads(
        lambda: flow_inbound_handle(first.pk), lambda: flow_inbound_handle(second.pk)
    )

    execution = Execution.objects.get(flow=flow)
    assert sorted(o.split(" ")[0] for o in outcomes) == ["delivered", "started"]
    assert Step.objects.filter(inbound_message__in=[first, second]).count() == 2
    assert execution.current_state == "again"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_a_reply_handled_by_two_workers_at_once_is_taken_once(live_flows):
    flow = live_flows.flow(
        state(
            "ask",
            "send-and-wait-for-reply",
            [go("incomingMessage", "done"), go("timeout"), go("deliveryFailure")],
            body="?",
        ),
        state("done", "send-message", [go("sent"), go("failed")], body="thanks"),
    )
    live_flows.say("hola")
    reply = live_flows.inbound("sure")
    _in_threads(lambda: flow_inbound_handle(reply.pk), lambda: flow_inbound_handle(reply.pk))
    assert live_flows.replies() == ["?", "thanks"]
    assert Step.objects.filter(inbound_message=reply).count() == 1
    assert Execution.objects.get(flow=flow).status == "ended"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_two_rest_starts_for_one_pair_at_once_make_one_execution_and_a_409(live_flows):
    from contactcenter.flows.services import FlowError, execution_start_rest

    flow = live_flows.flow(
        state(
            "ask",
            "send-and-wait-for-reply",
            [go("incomingMessage"), go("timeout"), go("deliveryFailure")],
            body="Hi {{flow.data.name}}?",
        ),
        attach=False,
    )

    def start(name):
        try:
            return execution_start_rest(
                flow=flow,
                to="+14155550123",
                from_=live_flows.sender.address,
                parameters={"name": name},
            ).sid
        except FlowError as error:
            return error

    outcomes = _in_threads(lambda: start("A"), lambda: start("B"))
    (winner,) = [o for o in outcomes if isinstance(o, str)]
    (refused,) = [o for o in outcomes if isinstance(o, FlowError)]
    assert (refused.status, refused.code) == (409, 20409)
    assert refused.extra["details"]["conflicting_execution_sid"] == winner
    assert list(Execution.objects.values_list("sid", flat=True)) == [winner]
    assert len(live_flows.replies()) == 1
