"""Workflow semantics (REFERENCE.md 7): filters, targets, cumulative timeouts, skip_if, target
priority, known-worker routing, order_by, the next filter and cancellation; parse errors."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from routing.errors import RoutingError
from routing.models import Event, Reservation, Task
from routing.services import config, reservations, tasks
from routing.services.tick import routing_tick
from routing.workflows import WorkflowError, parse_workflow


def _workflow(workspace, routing: dict, **kwargs):
    return config.workflow_create(
        workspace=workspace,
        friendly_name=kwargs.pop("name", "Flow"),
        configuration={"task_routing": routing},
        **kwargs,
    )


def _create(workspace, workflow, commit, **attributes):
    with commit():
        task = tasks.task_create(
            workspace=workspace, workflow=workflow, attributes=attributes, task_channel="sms"
        )
    task.refresh_from_db()
    return task


def _time_out_step(task, commit) -> None:
    Task.objects.filter(pk=task.pk).update(step_deadline=timezone.now() - timedelta(seconds=1))
    with commit():
        routing_tick()
    task.refresh_from_db()


def test_first_matching_filter_wins_and_default_catches_the_rest(
    workspace, workflow, queues, commit
):
    assert _create(workspace, workflow, commit, language="es").queue == queues["es"]
    assert _create(workspace, workflow, commit, language="en").queue == queues["en"]
    assert _create(workspace, workflow, commit, language="fr").queue == queues["all"]
    assert _create(workspace, workflow, commit).queue == queues["all"]


def test_no_matching_filter_and_no_default_cancels(workspace, queues, commit):
    flow = _workflow(
        workspace,
        {"filters": [{"expression": "vip == true", "targets": [{"queue": queues["es"].sid}]}]},
    )
    task = _create(workspace, flow, commit, vip=False)
    assert task.assignment_status == "canceled"
    assert task.reason == "No workflow filter matched the task"


def test_target_timeouts_add_up_then_the_task_falls_off_and_is_canceled(workspace, queues, commit):
    flow = _workflow(
        workspace,
        {
            "filters": [
                {
                    "filter_friendly_name": "Escalation",
                    "expression": "1 == 1",
                    "targets": [
                        {"queue": queues["es"].sid, "timeout": 60},
                        {"queue": queues["en"].sid, "timeout": 30, "priority": 7},
                    ],
                }
            ]
        },
    )
    task = _create(workspace, flow, commit)
    assert (task.queue, task.target_index) == (queues["es"], 0)
    assert task.step_deadline == task.filter_entered_at + timedelta(seconds=60)

    _time_out_step(task, commit)
    assert (task.queue, task.target_index, task.priority) == (queues["en"], 1, 7)
    assert task.step_deadline == task.filter_entered_at + timedelta(seconds=90)

    _time_out_step(task, commit)
    assert (task.assignment_status, task.reason) == ("canceled", "Workflow Timeout")
    types = list(
        Event.objects.filter(resource_sid=task.sid)
        .order_by("id")
        .values_list("event_type", flat=True)
    )
    assert types == [
        "task.created",
        "task-queue.entered",
        "workflow.target-matched",
        "task-queue.timeout",
        "task-queue.moved",
        "workflow.target-matched",
        "task-queue.timeout",
        "workflow.timeout",
        "task.canceled",
    ]


def test_past_the_last_target_the_next_matching_filter_applies(workspace, queues, commit):
    flow = _workflow(
        workspace,
        {
            "filters": [
                {
                    "expression": "language == 'es'",
                    "targets": [{"queue": queues["es"].sid, "timeout": 10}],
                },
                {"expression": "tier == 'gold'", "targets": [{"queue": queues["en"].sid}]},
                {"expression": "language == 'es'", "targets": [{"queue": queues["all"].sid}]},
            ]
        },
    )
    task = _create(workspace, flow, commit, language="es")
    _time_out_step(task, commit)
    # "gold" does not match: the third filter is the next that does.
    assert (task.filter_index, task.queue) == (2, queues["all"])
    assert task.assignment_status == "pending"


def test_skip_if_skips_a_target_with_no_available_worker(workspace, queues, make_worker, commit):
    flow = _workflow(
        workspace,
        {
            "filters": [
                {
                    "expression": "1==1",
                    "targets": [
                        {"queue": queues["en"].sid, "skip_if": "workers.available == 0"},
                        {"queue": queues["es"].sid},
                    ],
                }
            ]
        },
    )
    with commit():
        ana = make_worker("ana", languages=["es"])
    task = _create(workspace, flow, commit)
    assert (task.target_index, task.queue) == (1, queues["es"])
    assert Reservation.objects.get(task=task).worker == ana
    assert Event.objects.filter(resource_sid=task.sid, event_type="workflow.skipped").exists()

    with commit():
        make_worker("bob", languages=["en"])
    second = _create(workspace, flow, commit)
    assert (second.target_index, second.queue) == (0, queues["en"])


def test_target_expression_matches_task_against_worker(workspace, queues, make_worker, commit):
    flow = _workflow(
        workspace,
        {
            "filters": [
                {
                    "expression": "1==1",
                    "targets": [
                        {
                            "queue": queues["all"].sid,
                            "expression": "task.language IN worker.languages AND "
                            "worker.channel.sms.assigned_tasks < 1",
                        }
                    ],
                }
            ]
        },
    )
    with commit():
        make_worker("ana", languages=["es"], capacity={"sms": 3})
        bob = make_worker("bob", languages=["en"], capacity={"sms": 3})
    first = _create(workspace, flow, commit, language="en")
    assert Reservation.objects.get(task=first).worker == bob
    # bob already holds one sms task: the channel counter keeps him out of the second.
    second = _create(workspace, flow, commit, language="en")
    assert second.assignment_status == "pending"


def test_order_by_beats_longest_idle(workspace, queues, make_worker, commit):
    flow = _workflow(
        workspace,
        {
            "filters": [
                {
                    "expression": "1==1",
                    "targets": [{"queue": queues["all"].sid, "order_by": "worker.level DESC"}],
                }
            ]
        },
    )
    with commit():
        make_worker("junior", level=1)
        senior = make_worker("senior", level=9)
        make_worker("middle", level=5)
    task = _create(workspace, flow, commit)
    assert Reservation.objects.get(task=task).worker == senior


def test_known_worker_routing_offers_only_that_worker(workspace, queues, make_worker, commit):
    flow = _workflow(
        workspace,
        {
            "filters": [
                {
                    "expression": "returning == true",
                    "targets": [
                        {"queue": queues["all"].sid, "known_worker_friendly_name": "agent"},
                        {"queue": queues["all"].sid},
                    ],
                }
            ]
        },
    )
    with commit():
        make_worker("ana")
        bea = make_worker("bea")
    task = _create(workspace, flow, commit, returning=True, agent="bea")
    assert Reservation.objects.get(task=task).worker == bea
    with commit():
        reservations.reservation_reject(Reservation.objects.get(task=task))
    # Only bea may get it at this step; she refused, so it waits.
    assert not Reservation.objects.filter(task=task, status="pending").exists()

    by_sid = _workflow(
        workspace,
        {
            "filters": [
                {
                    "expression": "1==1",
                    "targets": [{"queue": queues["all"].sid, "known_worker_sid": "task.owner"}],
                }
            ]
        },
        name="By sid",
    )
    task = _create(workspace, by_sid, commit, owner=bea.sid)
    assert Reservation.objects.get(task=task, status="pending").worker == bea


@pytest.mark.parametrize(
    ("routing", "path", "fragment"),
    [
        ({}, "task_routing", "at least one filter"),
        ({"filters": "x"}, "task_routing.filters", "must be a list"),
        (
            {"filters": [{"expression": "a ==", "targets": [{"queue": "Q"}]}]},
            "task_routing.filters[0].expression",
            "position 4",
        ),
        (
            {"filters": [{"expression": "a == 1 AND", "targets": [{"queue": "ES"}]}]},
            "task_routing.filters[0].expression",
            "position",
        ),
        (
            {"filters": [{"expression": "1==1", "targets": [{"queue": "WQnope"}]}]},
            "task_routing.filters[0].targets[0].queue",
            "no task queue",
        ),
        (
            {
                "filters": [
                    {"expression": "1==1", "targets": [{"queue": "ES", "expression": "lang == 1"}]}
                ]
            },
            "task_routing.filters[0].targets[0].expression",
            "task., worker.",
        ),
        (
            {"filters": [{"expression": "1==1", "targets": [{"queue": "ES", "timeout": -5}]}]},
            "task_routing.filters[0].targets[0].timeout",
            "integer",
        ),
        (
            {"filters": [{"expression": "1==1", "targets": [{"queue": "ES", "order_by": "x"}]}]},
            "task_routing.filters[0].targets[0].order_by",
            "worker.",
        ),
        (
            {"filters": [{"expression": "1==1", "targets": [{"queue": "ES", "colour": 1}]}]},
            "task_routing.filters[0].targets[0]",
            "unknown key 'colour'",
        ),
        ({"default_filter": {}}, "task_routing.default_filter.queue", "required"),
    ],
)
def test_configuration_errors_name_the_path(workspace, queues, routing, path, fragment):
    # The table writes "ES" for the Spanish queue's sid.
    routing = json.loads(json.dumps(routing).replace('"ES"', json.dumps(queues["es"].sid)))
    with pytest.raises(WorkflowError) as raised:
        parse_workflow({"task_routing": routing}, workspace_id=workspace.pk)
    assert raised.value.path.startswith(path)
    assert fragment in str(raised.value)


def test_the_service_refuses_a_bad_configuration_and_writes_nothing(workspace, queues):
    with pytest.raises(RoutingError) as raised:
        _workflow(workspace, {"filters": [{"expression": "((", "targets": []}]})
    assert raised.value.code == 20001 and raised.value.field == "configuration"
    assert "task_routing.filters[0].expression" in raised.value.message
    assert not workspace.workflows.exists()
