"""Every task and reservation transition of REFERENCE.md 7, through the services."""

from datetime import timedelta

import pytest
from django.utils import timezone

from routing.errors import RoutingError
from routing.models import Event, Reservation, Task, Worker, WorkerChannel
from routing.services import config, reservations, tasks, workers
from routing.services.tick import routing_tick
from tests.routing.conftest import activity


def _create(workspace, workflow, commit, *, language="es", channel="sms", **kwargs):
    with commit():
        task = tasks.task_create(
            workspace=workspace,
            workflow=workflow,
            attributes={"language": language, **kwargs.pop("attributes", {})},
            task_channel=channel,
            **kwargs,
        )
    task.refresh_from_db()
    return task


def _held(worker, channel="sms") -> int:
    return WorkerChannel.objects.get(
        worker=worker, task_channel__unique_name=channel
    ).assigned_tasks


def _events(task) -> list[str]:
    return list(
        Event.objects.filter(data__task_sid=task.sid)
        .order_by("id")
        .values_list("event_type", flat=True)
    )


def test_pending_reserved_assigned_wrapping_completed(workspace, workflow, make_worker, commit):
    with commit():
        ana = make_worker("ana", capacity={"sms": 2})
    task = _create(workspace, workflow, commit)
    assert task.assignment_status == "reserved"
    offer = Reservation.objects.get(task=task)
    assert (offer.worker, offer.status, offer.queue.friendly_name) == (ana, "pending", "Spanish")
    assert _held(ana) == 1
    assert offer.timeout_at == pytest.approx(
        offer.date_created + timedelta(seconds=120), abs=timedelta(seconds=1)
    )

    with commit():
        reservations.reservation_accept(offer)
    task.refresh_from_db()
    offer.refresh_from_db()
    assert (task.assignment_status, offer.status) == ("assigned", "accepted")
    assert task.assigned_at is not None and _held(ana) == 1

    with commit():
        tasks.task_wrapup(task)
    task.refresh_from_db()
    offer.refresh_from_db()
    assert (task.assignment_status, offer.status) == ("wrapping", "wrapping")
    assert _held(ana) == 1  # wrapping still holds capacity

    with commit():
        tasks.task_complete(task, reason="resolved")
    task.refresh_from_db()
    offer.refresh_from_db()
    assert (task.assignment_status, offer.status, task.reason) == (
        "completed",
        "completed",
        "resolved",
    )
    assert _held(ana) == 0
    assert _events(task) == [
        "task.created",
        "task-queue.entered",
        "workflow.target-matched",
        "reservation.created",
        "reservation.accepted",
        "task.wrapup",
        "reservation.wrapup",
        "task.completed",
        "reservation.completed",
    ]


def test_a_task_waits_pending_until_a_worker_becomes_available(
    workspace, workflow, make_worker, commit
):
    with commit():
        bea = make_worker("bea", available=False)
    task = _create(workspace, workflow, commit)
    assert task.assignment_status == "pending"
    with commit():
        workers.worker_activity_set(bea, activity=activity(workspace, "Available"))
    task.refresh_from_db()
    assert task.assignment_status == "reserved"
    assert Reservation.objects.get(task=task).worker == bea


def test_reject_reroutes_to_another_worker_and_moves_the_worker(
    workspace, workflow, make_worker, commit
):
    with commit():
        ana = make_worker("ana")
        bea = make_worker("bea")
    task = _create(workspace, workflow, commit)
    first = Reservation.objects.get(task=task)
    with commit():
        reservations.reservation_reject(first, activity=activity(workspace, "Break"))
    first.refresh_from_db()
    assert first.status == "rejected"
    task.refresh_from_db()
    second = Reservation.objects.get(task=task, status="pending")
    assert second.worker != first.worker
    assert {first.worker, second.worker} == {ana, bea}
    rejecter = Worker.objects.get(pk=first.worker_id)
    assert rejecter.activity.friendly_name == "Break" and not rejecter.available
    assert _held(rejecter) == 0


def test_a_worker_who_rejected_is_not_offered_the_same_task_again_at_that_step(
    workspace, workflow, make_worker, commit
):
    with commit():
        ana = make_worker("ana")
    task = _create(workspace, workflow, commit)
    with commit():
        reservations.reservation_reject(Reservation.objects.get(task=task))
    task.refresh_from_db()
    assert task.assignment_status == "pending"
    assert not Reservation.objects.filter(task=task, status="pending").exists()
    assert _held(ana) == 0


def test_reservation_timeout_moves_the_worker_to_offline_and_reroutes(
    workspace, workflow, make_worker, commit
):
    with commit():
        ana = make_worker("ana")
    task = _create(workspace, workflow, commit)
    offer = Reservation.objects.get(task=task)
    Reservation.objects.filter(pk=offer.pk).update(timeout_at=timezone.now() - timedelta(seconds=1))
    with commit():
        report = routing_tick()
    assert report.reservations_timed_out == 1
    offer.refresh_from_db()
    ana.refresh_from_db()
    task.refresh_from_db()
    assert offer.status == "timeout"
    assert ana.activity.friendly_name == "Offline" and not ana.available
    assert task.assignment_status == "pending"
    assert _held(ana) == 0
    assert "reservation.timeout" in _events(task)


def test_cancel_a_waiting_task_cancels_its_offer_and_frees_capacity(
    workspace, workflow, make_worker, commit
):
    with commit():
        ana = make_worker("ana")
    task = _create(workspace, workflow, commit)
    with commit():
        tasks.task_cancel(task, reason="customer left")
    task.refresh_from_db()
    assert (task.assignment_status, task.reason) == ("canceled", "customer left")
    assert Reservation.objects.get(task=task).status == "canceled"
    assert _held(ana) == 0


def test_an_assigned_task_cannot_be_canceled(workspace, workflow, make_worker, commit):
    with commit():
        make_worker("ana")
    task = _create(workspace, workflow, commit)
    with commit():
        reservations.reservation_accept(Reservation.objects.get(task=task))
    with pytest.raises(RoutingError) as raised:
        tasks.task_cancel(task)
    assert raised.value.code == 20409
    task.refresh_from_db()
    assert task.assignment_status == "assigned"


def test_accepting_twice_or_after_cancel_is_a_conflict(workspace, workflow, make_worker, commit):
    with commit():
        make_worker("ana")
    task = _create(workspace, workflow, commit)
    offer = Reservation.objects.get(task=task)
    with commit():
        tasks.task_cancel(task)
    with pytest.raises(RoutingError) as raised:
        reservations.reservation_accept(offer)
    assert raised.value.code == 20409
    assert Task.objects.get(pk=task.pk).assignment_status == "canceled"


def test_ttl_expiry_cancels_a_waiting_task(workspace, workflow, commit):
    task = _create(workspace, workflow, commit, timeout=60)
    assert task.expires_at == pytest.approx(
        task.date_created + timedelta(seconds=60), abs=timedelta(seconds=1)
    )
    Task.objects.filter(pk=task.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with commit():
        assert routing_tick().tasks_expired == 1
    task.refresh_from_db()
    assert (task.assignment_status, task.reason) == ("canceled", "Task TTL Exceeded")


def test_max_reserved_workers_offers_several_and_rescinds_the_rest(
    workspace, queues, workflow, make_worker, commit
):
    config.queue_update(queues["es"], max_reserved_workers=3)
    with commit():
        for name in ("ana", "bea", "carla", "dora"):
            make_worker(name)
    task = _create(workspace, workflow, commit)
    offers = list(Reservation.objects.filter(task=task, status="pending"))
    assert len(offers) == 3
    with commit():
        reservations.reservation_accept(offers[1])
    statuses = {r.pk: r.status for r in Reservation.objects.filter(task=task)}
    assert statuses[offers[1].pk] == "accepted"
    assert sorted(statuses[o.pk] for o in offers if o.pk != offers[1].pk) == [
        "rescinded",
        "rescinded",
    ]
    assert sum(_held(o.worker) for o in offers) == 1


def test_capacity_per_channel_is_never_exceeded_and_frees_on_complete(
    workspace, workflow, make_worker, commit
):
    with commit():
        ana = make_worker("ana", capacity={"sms": 2, "whatsapp": 1})
    made = [_create(workspace, workflow, commit) for _ in range(3)]
    assert [t.assignment_status for t in made] == ["reserved", "reserved", "pending"]
    chat = _create(workspace, workflow, commit, channel="whatsapp")
    assert chat.assignment_status == "reserved"
    assert (_held(ana, "sms"), _held(ana, "whatsapp")) == (2, 1)
    first = Reservation.objects.get(task=made[0])
    with commit():
        reservations.reservation_accept(first)
        tasks.task_complete(made[0])
    made[2].refresh_from_db()
    assert made[2].assignment_status == "reserved"  # the freed slot went to the waiting task
    assert _held(ana, "sms") == 2


def test_a_channel_switched_off_or_at_zero_capacity_gets_nothing(
    workspace, workflow, make_worker, commit
):
    with commit():
        ana = make_worker("ana", capacity={"sms": 0})
    task = _create(workspace, workflow, commit)
    assert task.assignment_status == "pending"
    with commit():
        workers.worker_channel_update(ana, task_channel="sms", capacity=1, available=False)
    assert Task.objects.get(pk=task.pk).assignment_status == "pending"
    with commit():
        workers.worker_channel_update(ana, task_channel="sms", available=True)
    assert Task.objects.get(pk=task.pk).assignment_status == "reserved"


def test_single_tasking_workspace_offers_one_task_at_a_time(
    workspace, workflow, make_worker, commit
):
    config.workspace_update(workspace, multitask_enabled=False)
    with commit():
        make_worker("ana", capacity={"sms": 3, "whatsapp": 3})
    first = _create(workspace, workflow, commit)
    second = _create(workspace, workflow, commit, channel="whatsapp")
    assert (first.assignment_status, second.assignment_status) == ("reserved", "pending")


def test_going_unavailable_rejects_pending_offers(workspace, workflow, make_worker, commit):
    with commit():
        ana = make_worker("ana")
    task = _create(workspace, workflow, commit)
    with commit():
        workers.worker_activity_set(ana, activity=activity(workspace, "Break"))
    offer = Reservation.objects.get(task=task)
    assert offer.status == "rejected"
    assert Task.objects.get(pk=task.pk).assignment_status == "pending"
    assert _held(ana) == 0


def test_longest_idle_worker_gets_the_task_first(workspace, workflow, make_worker, commit):
    with commit():
        ana = make_worker("ana")
        bea = make_worker("bea")
    Worker.objects.filter(pk=bea.pk).update(idle_since=timezone.now() - timedelta(hours=1))
    task = _create(workspace, workflow, commit)
    assert Reservation.objects.get(task=task).worker == bea
    second = _create(workspace, workflow, commit)
    assert Reservation.objects.get(task=second).worker == ana


def test_priority_then_age_in_a_fifo_queue_and_newest_first_in_lifo(
    workspace, queues, workflow, make_worker, commit
):
    low_old = _create(workspace, workflow, commit, priority=1)
    high = _create(workspace, workflow, commit, priority=5)
    low_new = _create(workspace, workflow, commit, priority=1)
    with commit():
        ana = make_worker("ana", capacity={"sms": 1})
    assert Reservation.objects.get(worker=ana).task == high
    with commit():
        reservations.reservation_accept(Reservation.objects.get(task=high))
        tasks.task_complete(high)
    assert Reservation.objects.get(worker=ana, status="pending").task == low_old

    config.queue_update(queues["es"], task_order="LIFO")
    with commit():
        reservations.reservation_accept(Reservation.objects.get(task=low_old))
        workers.worker_activity_set(ana, activity=activity(workspace, "Break"))
        tasks.task_complete(low_old)
    newest = _create(workspace, workflow, commit, priority=1)
    with commit():
        workers.worker_activity_set(ana, activity=activity(workspace, "Available"))
    assert Reservation.objects.get(worker=ana, status="pending").task == newest
    assert Task.objects.get(pk=low_new.pk).assignment_status == "pending"


def test_attribute_update_reroutes_a_waiting_task(workspace, workflow, queues, commit):
    task = _create(workspace, workflow, commit)
    assert task.queue == queues["es"]
    with commit():
        tasks.task_update(task, attributes={"language": "en"})
    task.refresh_from_db()
    assert task.queue == queues["en"]
    assert "task-queue.moved" in _events(task)


def test_worker_attribute_change_updates_queue_membership(workspace, queues, make_worker, commit):
    with commit():
        ana = make_worker("ana", languages=["es"])
    assert set(ana.queues.values_list("friendly_name", flat=True)) == {"Spanish", "Everyone"}
    with commit():
        workers.worker_update(ana, attributes={"languages": ["en"]})
    assert set(ana.queues.values_list("friendly_name", flat=True)) == {"English", "Everyone"}
    event = Event.objects.filter(event_type="worker.attributes.update").get()
    assert event.resource_sid == ana.sid


def test_worker_validation_refuses_bad_input_and_writes_nothing(workspace):
    with pytest.raises(RoutingError) as raised:
        workers.worker_create(
            workspace=workspace, friendly_name="big", attributes={"x": "y" * 5000}
        )
    assert raised.value.code == 20001 and raised.value.field == "attributes"
    with pytest.raises(RoutingError):
        workers.worker_create(workspace=workspace, friendly_name="cap", capacities={"sms": 51})
    with pytest.raises(RoutingError):
        workers.worker_create(workspace=workspace, friendly_name="chan", capacities={"fax": 1})
    assert not Worker.objects.exists()


def test_task_validation(workspace, workflow):
    with pytest.raises(RoutingError) as raised:
        tasks.task_create(workspace=workspace, workflow=workflow, task_channel="fax")
    assert raised.value.field == "task_channel"
    with pytest.raises(RoutingError) as raised:
        tasks.task_create(workspace=workspace, workflow=workflow, attributes=["not", "object"])
    assert raised.value.field == "attributes"
    with pytest.raises(RoutingError) as raised:
        tasks.task_create(workspace=workspace, workflow=workflow, timeout=15 * 24 * 3600)
    assert raised.value.field == "timeout"
    assert not Task.objects.exists()


def test_a_new_task_channel_reaches_existing_workers(workspace, make_worker, commit):
    with commit():
        ana = make_worker("ana")
    channel = config.task_channel_create(workspace=workspace, unique_name="email")
    row = WorkerChannel.objects.get(worker=ana, task_channel=channel)
    assert (row.capacity, row.available, row.assigned_tasks) == (1, True, 0)


def test_workspace_delete_refuses_active_tasks_then_deletes_everything(
    workspace, workflow, make_worker, commit
):
    from routing.models import Workspace

    with commit():
        make_worker("ana")
    task = _create(workspace, workflow, commit)
    with pytest.raises(RoutingError) as raised:
        config.workspace_delete(workspace)
    assert raised.value.code == 20409
    with commit():
        tasks.task_cancel(task)
    config.workspace_delete(workspace)
    assert not Workspace.objects.exists()
    assert not Task.objects.exists() and not Worker.objects.exists()


def test_acting_on_a_reservation_whose_task_was_deleted_is_a_404(
    workspace, workflow, make_worker, commit
):
    with commit():
        make_worker("ana")
    task = _create(workspace, workflow, commit)
    offer = Reservation.objects.get(task=task)
    with commit():
        tasks.task_delete(task)
    with pytest.raises(RoutingError) as raised:
        reservations.reservation_accept(offer)
    assert raised.value.code == 20404


def test_a_pending_task_behind_many_reserved_ones_reaches_a_newly_available_worker(
    workspace, workflow, make_worker, commit
):
    from routing.services.assignment import TASK_BATCH

    with commit():
        make_worker("busy", capacity={"sms": TASK_BATCH})
    reserved = [_create(workspace, workflow, commit) for _ in range(TASK_BATCH)]
    assert {t.assignment_status for t in reserved} == {"reserved"}
    late = _create(workspace, workflow, commit)
    assert late.assignment_status == "pending"
    with commit():
        ana = make_worker("ana")  # becomes available: the worker-side attempt runs
    assert Reservation.objects.get(task=late).worker == ana
