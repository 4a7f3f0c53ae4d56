"""Events reach registered handlers after commit and the workspace's callback URL, signed;
statistics count what happened."""

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.utils import timezone

from routing import hooks
from routing.models import CallbackState, Event, Reservation, Task
from routing.selectors import cumulative_statistics, events_list, realtime_statistics, summary
from routing.services import config, reservations, tasks, workers
from routing.tasks import SIGNATURE_HEADER, event_callback_deliver
from tests.routing.conftest import activity
from tests.support.http import RecordingServer


@pytest.fixture
def received():
    batches: list[list[dict]] = []
    hooks.register_event_handler(batches.append)
    yield batches
    hooks.unregister_event_handler(batches.append)


def test_handlers_get_events_only_after_commit_in_order(workspace, workflow, received, commit):
    with commit() as callbacks:
        task = tasks.task_create(
            workspace=workspace, workflow=workflow, attributes={"language": "es"}
        )
        assert received == []  # nothing before commit
    assert callbacks
    types = [record["event_type"] for batch in received for record in batch]
    assert types == ["task.created", "task-queue.entered", "workflow.target-matched"]
    first = received[0][0]
    assert first["resource_sid"] == task.sid
    assert first["workspace_sid"] == workspace.sid
    assert first["data"]["task_attributes"] == {"language": "es"}
    json.dumps(received)  # plain JSON all the way down


def test_a_failing_handler_does_not_stop_routing_or_other_handlers(
    workspace, workflow, received, make_worker, commit
):
    def broken(_records):
        raise RuntimeError("boom")

    hooks.register_event_handler(broken)
    try:
        with commit():
            make_worker("ana")
        with commit():
            task = tasks.task_create(
                workspace=workspace,
                workflow=workflow,
                attributes={"language": "es"},
                task_channel="sms",
            )
    finally:
        hooks.unregister_event_handler(broken)
    assert Task.objects.get(pk=task.pk).assignment_status == "reserved"
    assert "reservation.created" in [r["event_type"] for b in received for r in b]


def test_callback_is_posted_signed_and_retried(workspace, workflow, commit):
    server = RecordingServer(statuses=[500, 200])
    try:
        config.workspace_update(
            workspace,
            event_callback_url=f"{server.url}/events",
            events_filter=["task.created"],
        )
        with commit():
            task = tasks.task_create(workspace=workspace, workflow=workflow)
        event = Event.objects.get(event_type="task.created", resource_sid=task.sid)
        assert event.callback_state == CallbackState.PENDING
        # Filtered out: not sent.
        assert (
            Event.objects.get(event_type="workflow.target-matched").callback_state
            == CallbackState.NONE
        )

        with pytest.raises(Retry):
            event_callback_deliver(event.pk)
        event.refresh_from_db()
        assert (event.callback_state, event.callback_attempts) == ("pending", 1)

        assert event_callback_deliver(event.pk) == "delivered"
        assert event_callback_deliver(event.pk) == "skipped"  # idempotent
    finally:
        server.close()
    assert len(server.received) == 2
    request = server.received[-1]
    body = json.loads(request.body)
    assert (body["event_type"], body["resource_sid"]) == ("task.created", task.sid)
    expected = hmac.new(
        workspace.event_callback_secret.encode(), request.body, hashlib.sha256
    ).hexdigest()
    assert request.headers[SIGNATURE_HEADER] == f"sha256={expected}"


def test_events_list_filters_and_pages(workspace, workflow, make_worker, commit):
    with commit():
        make_worker("ana")
    for _ in range(3):
        with commit():
            tasks.task_create(workspace=workspace, workflow=workflow, task_channel="sms")
    created = events_list(workspace, event_types=["task.created"], limit=2)
    assert [e.event_type for e in created] == ["task.created"] * 2
    rest = events_list(workspace, event_types=["task.created"], before_id=created[-1].id)
    assert len(rest) == 1
    one = events_list(workspace, resource_sid=rest[0].resource_sid)
    assert {e.resource_sid for e in one} == {rest[0].resource_sid}


def test_realtime_statistics(workspace, workflow, queues, make_worker, commit):
    with commit():
        ana = make_worker("ana", capacity={"sms": 1})
        make_worker("bea", available=False)
    with commit():
        tasks.task_create(
            workspace=workspace,
            workflow=workflow,
            attributes={"language": "es"},
            task_channel="sms",
            priority=2,
        )
        tasks.task_create(
            workspace=workspace,
            workflow=workflow,
            attributes={"language": "es"},
            task_channel="sms",
            priority=5,
        )
        tasks.task_create(workspace=workspace, workflow=workflow, attributes={"language": "en"})
    stats = realtime_statistics(workspace)
    assert stats["tasks_by_status"] == {
        "pending": 2,
        "reserved": 1,
        "assigned": 0,
        "wrapping": 0,
    }
    assert stats["total_tasks"] == 3
    assert stats["tasks_by_priority"] == {"5": 1, "2": 1, "0": 1}
    assert stats["total_workers"] == 2
    assert stats["total_available_workers"] == 1
    # ana's only sms slot is taken, but she has room on other channels.
    assert stats["total_eligible_workers"] == 1
    by_activity = {a["friendly_name"]: a["workers"] for a in stats["activity_statistics"]}
    assert by_activity == {"Available": 1, "Break": 0, "Offline": 1, "Unavailable": 0}
    assert stats["longest_task_waiting_sid"] is not None

    spanish = realtime_statistics(workspace, queue=queues["es"])
    assert spanish["total_tasks"] == 2
    assert spanish["tasks_by_status"]["reserved"] == 1
    assert Reservation.objects.filter(worker=ana).count() == 1


def test_cumulative_statistics(workspace, workflow, queues, make_worker, commit):
    start = timezone.now() - timedelta(seconds=1)
    with commit():
        ana = make_worker("ana", capacity={"sms": 3})
    made = []
    for _ in range(3):
        with commit():
            made.append(
                tasks.task_create(
                    workspace=workspace,
                    workflow=workflow,
                    attributes={"language": "es"},
                    task_channel="sms",
                )
            )
    offers = {r.task_id: r for r in Reservation.objects.filter(worker=ana)}
    with commit():
        reservations.reservation_accept(offers[made[0].pk])
        tasks.task_complete(made[0])
        reservations.reservation_reject(offers[made[1].pk])
        tasks.task_cancel(made[2])
        workers.worker_activity_set(ana, activity=activity(workspace, "Offline"))
    stats = cumulative_statistics(
        workspace, start=start, end=timezone.now() + timedelta(seconds=1), split_by_wait_time=[60]
    )
    assert stats["tasks_entered"] == 3
    assert stats["tasks_completed"] == 1
    assert stats["tasks_canceled"] == 1
    assert stats["reservations_created"] == 3
    assert stats["reservations_accepted"] == 1
    assert stats["reservations_rejected"] == 1
    assert stats["reservations_canceled"] == 1
    assert stats["wait_duration_until_accepted"]["max"] < 60
    assert stats["split_by_wait_time"] == {"60": {"below": 1, "above": 0}}

    spanish = cumulative_statistics(
        workspace, queue=queues["es"], start=start, end=timezone.now() + timedelta(seconds=1)
    )
    assert spanish["tasks_entered"] == 3
    english = cumulative_statistics(
        workspace, queue=queues["en"], start=start, end=timezone.now() + timedelta(seconds=1)
    )
    assert english["tasks_entered"] == 0 and english["reservations_created"] == 0


def test_summary_percentiles():
    values = list(range(1, 101))
    result = summary([float(v) for v in values])
    assert (result["min"], result["max"], result["avg"]) == (1, 100, 50.5)
    assert (result["p50"], result["p90"], result["p99"]) == (50, 90, 99)
    assert summary([])["avg"] == 0
