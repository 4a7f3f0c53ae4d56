"""The routing Celery tasks on a real worker process: the beat tick times out a reservation
and the event callback is delivered, signed."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from routing.models import CallbackState, Event, Reservation
from routing.services import config, tasks
from routing.tasks import routing_tick
from tests.support.http import RecordingServer
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_tick_and_callbacks_run_on_a_real_worker(
    workspace, workflow, make_worker, celery_worker_process
):
    receiver = RecordingServer()
    try:
        config.workspace_update(
            workspace,
            event_callback_url=f"{receiver.url}/events",
            events_filter=["reservation.timeout"],
        )
        ana = make_worker("ana")  # transaction=True: on-commit work runs for real
        task = tasks.task_create(
            workspace=workspace,
            workflow=workflow,
            attributes={"language": "es"},
            task_channel="sms",
        )
        offer = Reservation.objects.get(task=task)
        Reservation.objects.filter(pk=offer.pk).update(
            timeout_at=timezone.now() - timedelta(seconds=1)
        )
        routing_tick.delay()
        assert wait_for(lambda: Reservation.objects.get(pk=offer.pk).status == "timeout")
        assert wait_for(lambda: len(receiver.received) == 1)
    finally:
        receiver.close()
    ana.refresh_from_db()
    assert ana.activity.friendly_name == "Offline"
    body = json.loads(receiver.received[0].body)
    assert (body["event_type"], body["resource_sid"]) == ("reservation.timeout", offer.sid)
    assert wait_for(
        lambda: (
            Event.objects.get(event_type="reservation.timeout").callback_state
            == CallbackState.DELIVERED
        )
    )
