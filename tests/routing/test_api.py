"""The routing REST API under /api/v1/routing/: configuration, workers, tasks, reservations,
statistics and events; who may do what; errors as data; the OpenAPI schema."""

import base64
import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django.utils.crypto import get_random_string

from routing.models import (
    Activity,
    Event,
    QueueMembership,
    Reservation,
    Task,
    TaskChannel,
    TaskQueue,
    Worker,
    WorkerChannel,
    Workflow,
    Workspace,
)
from routing.services import config, tasks, workers
from tests.conftest import PASSWORD
from tests.routing.conftest import activity

ROOT = "/api/v1/routing/workspaces"
# Nested deeper than the API stores (32 levels).
DEEP = json.loads("[" * 40 + "1" + "]" * 40)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class Api:
    """A JSON client, signed in with a session (`client`) or HTTP Basic (`authorization`)."""

    def __init__(self, client: Client | None = None, authorization: str | None = None):
        self.client = client or Client()
        self.headers = {"Authorization": authorization} if authorization else {}

    def get(self, path: str, params=None):
        return self.client.get(path, params or {}, headers=self.headers)

    def post(self, path: str, data=None, *, raw: str | None = None, **kwargs):
        body = raw if raw is not None else json.dumps(data if data is not None else {})
        content_type = kwargs.pop("content_type", "application/json")
        return self.client.post(path, body, content_type=content_type, headers=self.headers)

    def patch(self, path: str, data):
        return self.client.patch(
            path, json.dumps(data), content_type="application/json", headers=self.headers
        )

    def delete(self, path: str):
        return self.client.delete(path, headers=self.headers)


def assert_error(response, status: int, code: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["field"] == field, body
    assert isinstance(body["message"], str) and body["message"]
    return body


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    return response.json() if status != 204 else {}


@pytest.fixture
def api(client_for):
    """`api(user)`: a JSON client signed in as `user` (None: anonymous)."""

    def make(user=None) -> Api:
        return Api(client_for(user)) if user is not None else Api()

    return make


@pytest.fixture
def world(workspace, queues, workflow, make_worker, agent1, agent2, admin_user, supervisor, api):
    """The routing world of tests/routing/conftest.py, with agent1 working as Ana (Spanish)
    and agent2 as Bob (English); both Offline, so that nothing is offered until a test says."""
    ana = workers.worker_update(make_worker("Ana", languages=["es"], available=False), user=agent1)
    bob = workers.worker_update(make_worker("Bob", languages=["en"], available=False), user=agent2)
    ws = f"{ROOT}/{workspace.sid}"
    return SimpleNamespace(
        workspace=workspace,
        queues=queues,
        workflow=workflow,
        ana=ana,
        bob=bob,
        ws=ws,
        admin=api(admin_user),
        supervisor=api(supervisor),
        agent1=api(agent1),
        agent2=api(agent2),
        anonymous=api(),
    )


def set_available(world, worker: Worker, commit) -> None:
    with commit():
        workers.worker_activity_set(worker, activity=activity(world.workspace, "Available"))


def new_task(world, commit, **attributes) -> Task:
    with commit():
        task = tasks.task_create(
            workspace=world.workspace,
            workflow=world.workflow,
            attributes=attributes or {"language": "es"},
            task_channel="chat",
        )
    return Task.objects.get(pk=task.pk)


def other_workspace():
    """A second workspace with one of everything, whose sids must be 404 in the first."""
    workspace = config.workspace_create(friendly_name="Sales")
    queue = config.queue_create(workspace=workspace, friendly_name="All of sales")
    workflow = config.workflow_create(
        workspace=workspace,
        friendly_name="Sales flow",
        configuration={"task_routing": {"default_filter": {"queue": queue.sid}}},
    )
    worker = workers.worker_create(workspace=workspace, friendly_name="Carla")
    workers.worker_activity_set(worker, activity=activity(workspace, "Available"))
    task = tasks.task_create(workspace=workspace, workflow=workflow, task_channel="chat")
    return SimpleNamespace(
        workspace=workspace, queue=queue, workflow=workflow, worker=worker, task=task
    )


# ---------------------------------------------------------------- the life of a task


def test_the_life_of_a_task_through_the_api(world, commit):
    set_available(world, world.ana, commit)

    with commit():
        created = world.supervisor.post(
            f"{world.ws}/tasks",
            {
                "workflow_sid": world.workflow.sid,
                "attributes": {"language": "es", "customer": "+34600000000"},
                "task_channel": "chat",
                "priority": 5,
                "timeout": 600,
            },
        )
    task = ok(created, 201)
    assert task["sid"].startswith("WT")
    assert task["workflow_sid"] == world.workflow.sid
    assert task["attributes"] == {"language": "es", "customer": "+34600000000"}
    assert task["task_channel"] == "chat"
    assert task["priority"] == 5 and task["timeout"] == 600
    assert task["task_queue_sid"] == world.queues["es"].sid
    # The after-commit assignment attempt reserved it for the available Spanish speaker.
    row = Task.objects.get(sid=task["sid"])
    assert row.assignment_status == "reserved"
    assert abs(row.expires_at - row.date_created - timedelta(seconds=600)) < timedelta(seconds=1)

    # The agent finds the offer in its own list of pending reservations.
    pending = ok(
        world.agent1.get(f"{world.ws}/workers/{world.ana.sid}/reservations?status=pending")
    )
    assert len(pending["results"]) == 1
    offer = pending["results"][0]
    assert offer["status"] == "pending"
    assert offer["worker_sid"] == world.ana.sid
    assert offer["task"]["sid"] == task["sid"]
    assert offer["task"]["attributes"]["customer"] == "+34600000000"
    assert offer["task_queue_sid"] == world.queues["es"].sid
    chat = WorkerChannel.objects.get(worker=world.ana, task_channel__unique_name="chat")
    assert chat.assigned_tasks == 1

    accepted = ok(world.agent1.post(f"{world.ws}/reservations/{offer['sid']}/accept"))
    assert accepted["status"] == "accepted"
    assert accepted["accepted_at"] is not None
    assert accepted["task"]["assignment_status"] == "assigned"
    assert Task.objects.get(sid=task["sid"]).assignment_status == "assigned"

    wrapping = ok(world.agent1.post(f"{world.ws}/tasks/{task['sid']}/wrapup"))
    assert wrapping["assignment_status"] == "wrapping"
    assert Reservation.objects.get(sid=offer["sid"]).status == "wrapping"
    chat.refresh_from_db()
    assert chat.assigned_tasks == 1  # wrapping still holds the capacity

    with commit():
        completed = world.agent1.post(
            f"{world.ws}/tasks/{task['sid']}/complete", {"reason": "Resolved"}
        )
    done = ok(completed)
    assert done["assignment_status"] == "completed"
    assert done["reason"] == "Resolved"
    assert done["ended_at"] is not None
    assert Reservation.objects.get(sid=offer["sid"]).status == "completed"
    chat.refresh_from_db()
    assert chat.assigned_tasks == 0  # capacity freed

    # Every step was recorded with who did it.
    actors = dict(
        Event.objects.filter(resource_sid__in=[task["sid"], offer["sid"]]).values_list(
            "event_type", "actor"
        )
    )
    assert actors["task.created"] == "user:supervisor"
    assert actors["reservation.accepted"] == "user:agent1"
    assert actors["task.wrapup"] == "user:agent1"
    assert actors["task.completed"] == "user:agent1"
    assert actors["reservation.created"] == "system"


def test_a_rejected_offer_goes_to_the_next_worker_and_the_rejecter_changes_activity(world, commit):
    both = workers.worker_update(world.bob, attributes={"languages": ["es", "en"]})
    set_available(world, world.ana, commit)
    task = new_task(world, commit, language="es")
    offer = Reservation.objects.get(task=task)
    first = offer.worker
    other = both if first == world.ana else world.ana
    set_available(world, other, commit)
    client = world.agent1 if first == world.ana else world.agent2
    brk = activity(world.workspace, "Break")

    with commit():
        rejected = client.post(
            f"{world.ws}/reservations/{offer.sid}/reject", {"activity_sid": brk.sid}
        )
    body = ok(rejected)
    assert body["status"] == "rejected"
    assert body["ended_at"] is not None
    first.refresh_from_db()
    assert first.activity == brk and not first.available
    # Re-offered to the other available Spanish speaker.
    again = Reservation.objects.get(task=task, status="pending")
    assert again.worker == other
    assert (
        WorkerChannel.objects.get(worker=first, task_channel__unique_name="chat").assigned_tasks
        == 0
    )


def test_reject_without_an_activity_keeps_the_worker_where_it_is(world, commit):
    set_available(world, world.ana, commit)
    task = new_task(world, commit)
    offer = Reservation.objects.get(task=task)
    with commit():
        ok(world.agent1.post(f"{world.ws}/reservations/{offer.sid}/reject", {}))
    world.ana.refresh_from_db()
    assert world.ana.activity.friendly_name == "Available"
    assert Task.objects.get(pk=task.pk).assignment_status == "pending"


def test_accepting_twice_or_a_rejected_reservation_is_a_conflict(world, commit):
    set_available(world, world.ana, commit)
    offer = Reservation.objects.get(task=new_task(world, commit))
    ok(world.agent1.post(f"{world.ws}/reservations/{offer.sid}/accept"))
    assert_error(world.agent1.post(f"{world.ws}/reservations/{offer.sid}/accept"), 409, 20409)
    assert_error(world.agent1.post(f"{world.ws}/reservations/{offer.sid}/reject"), 409, 20409)
    assert Reservation.objects.get(pk=offer.pk).status == "accepted"


def test_reservation_wrapup_and_complete_endpoints(world, commit):
    set_available(world, world.ana, commit)
    task = new_task(world, commit)
    offer = Reservation.objects.get(task=task)
    # Not accepted yet: neither wraps up nor completes.
    assert_error(world.agent1.post(f"{world.ws}/reservations/{offer.sid}/wrapup"), 409, 20409)
    assert_error(world.agent1.post(f"{world.ws}/reservations/{offer.sid}/complete"), 409, 20409)
    ok(world.agent1.post(f"{world.ws}/reservations/{offer.sid}/accept"))

    wrapped = ok(world.agent1.post(f"{world.ws}/reservations/{offer.sid}/wrapup"))
    assert wrapped["status"] == "wrapping"
    assert wrapped["task"]["assignment_status"] == "wrapping"
    with commit():
        done = ok(world.agent1.post(f"{world.ws}/reservations/{offer.sid}/complete"))
    assert done["status"] == "completed"
    assert done["task"]["assignment_status"] == "completed"
    assert Task.objects.get(pk=task.pk).assignment_status == "completed"
    assert (
        WorkerChannel.objects.get(worker=world.ana, task_channel__unique_name="chat").assigned_tasks
        == 0
    )


def test_fetch_a_reservation_and_a_tasks_reservations(world, commit):
    set_available(world, world.ana, commit)
    task = new_task(world, commit)
    offer = Reservation.objects.get(task=task)

    mine = ok(world.agent1.get(f"{world.ws}/reservations/{offer.sid}"))
    assert mine["sid"] == offer.sid and mine["worker_name"] == "Ana"
    assert mine["task"]["sid"] == task.sid
    assert mine["task"]["age"] >= 0
    listed = ok(world.supervisor.get(f"{world.ws}/tasks/{task.sid}/reservations"))
    assert [r["sid"] for r in listed["results"]] == [offer.sid]
    assert_error(world.agent1.get(f"{world.ws}/tasks/{task.sid}/reservations"), 403, 20403)


def test_an_agent_cannot_touch_another_agents_reservation_or_task(world, commit):
    set_available(world, world.ana, commit)
    task = new_task(world, commit)
    offer = Reservation.objects.get(task=task)

    for path in ("accept", "reject", "wrapup", "complete"):
        response = world.agent2.post(f"{world.ws}/reservations/{offer.sid}/{path}")
        assert_error(response, 403, 20403)
    assert_error(world.agent2.get(f"{world.ws}/reservations/{offer.sid}"), 403, 20403)
    assert_error(world.agent2.get(f"{world.ws}/tasks/{task.sid}"), 403, 20403)
    assert_error(world.agent2.post(f"{world.ws}/tasks/{task.sid}/complete"), 403, 20403)
    assert Reservation.objects.get(pk=offer.pk).status == "pending"
    # Ana holds the offer: she may read the task; it is not hers to cancel.
    assert ok(world.agent1.get(f"{world.ws}/tasks/{task.sid}"))["sid"] == task.sid
    assert_error(world.agent1.post(f"{world.ws}/tasks/{task.sid}/cancel"), 403, 20403)
    assert Task.objects.get(pk=task.pk).assignment_status == "reserved"


def test_a_supervisor_acts_on_anyones_reservation_and_task(world, commit):
    set_available(world, world.ana, commit)
    task = new_task(world, commit)
    offer = Reservation.objects.get(task=task)

    accepted = ok(world.supervisor.post(f"{world.ws}/reservations/{offer.sid}/accept"))
    assert accepted["status"] == "accepted"
    with commit():
        done = ok(world.supervisor.post(f"{world.ws}/tasks/{task.sid}/complete", {"reason": "x"}))
    assert done["assignment_status"] == "completed"
    event = Event.objects.get(event_type="reservation.accepted", resource_sid=offer.sid)
    assert event.actor == "user:supervisor"


# ---------------------------------------------------------------- tasks


def test_create_a_task_with_defaults(world):
    created = ok(world.admin.post(f"{world.ws}/tasks", {"workflow_sid": world.workflow.sid}), 201)
    row = Task.objects.get(sid=created["sid"])
    assert row.attributes == {} and row.priority == 0 and row.timeout == 24 * 3600
    assert row.task_channel.unique_name == "default"
    assert created["task_queue_sid"] == world.queues["all"].sid  # the default filter
    assert created["assignment_status"] == "pending"
    assert created["reason"] == ""
    assert created["date_created"].endswith("Z")


def test_fetch_update_and_reroute_a_waiting_task(world, commit):
    task = new_task(world, commit, language="es")
    assert task.queue == world.queues["es"]

    fetched = ok(world.supervisor.get(f"{world.ws}/tasks/{task.sid}"))
    assert fetched["task_queue_name"] == "Spanish"
    assert fetched["assignment_status"] == "pending"

    with commit():
        changed = world.supervisor.patch(
            f"{world.ws}/tasks/{task.sid}", {"attributes": {"language": "en"}, "priority": 9}
        )
    body = ok(changed)
    assert body["attributes"] == {"language": "en"}
    assert body["priority"] == 9
    assert body["task_queue_sid"] == world.queues["en"].sid
    task.refresh_from_db()
    assert task.queue == world.queues["en"] and task.priority == 9
    assert Event.objects.filter(event_type="task-queue.moved", resource_sid=task.sid).exists()


def test_cancel_a_waiting_task_but_not_an_assigned_one(world, commit):
    waiting = new_task(world, commit)
    canceled = ok(
        world.supervisor.post(f"{world.ws}/tasks/{waiting.sid}/cancel", {"reason": "Spam"})
    )
    assert canceled["assignment_status"] == "canceled" and canceled["reason"] == "Spam"
    assert Task.objects.get(pk=waiting.pk).assignment_status == "canceled"
    # A finished task cannot be changed either.
    assert_error(
        world.supervisor.patch(f"{world.ws}/tasks/{waiting.sid}", {"priority": 1}), 409, 20409
    )

    set_available(world, world.ana, commit)
    held = new_task(world, commit)
    offer = Reservation.objects.get(task=held)
    ok(world.agent1.post(f"{world.ws}/reservations/{offer.sid}/accept"))
    assert_error(world.supervisor.post(f"{world.ws}/tasks/{held.sid}/cancel"), 409, 20409)
    assert_error(world.agent1.post(f"{world.ws}/tasks/{held.sid}/cancel"), 403, 20403)
    assert Task.objects.get(pk=held.pk).assignment_status == "assigned"


def test_wrapup_and_complete_need_an_assigned_task(world, commit):
    task = new_task(world, commit)
    assert_error(world.supervisor.post(f"{world.ws}/tasks/{task.sid}/wrapup"), 409, 20409)
    assert_error(world.supervisor.post(f"{world.ws}/tasks/{task.sid}/complete"), 409, 20409)
    assert Task.objects.get(pk=task.pk).assignment_status == "pending"


def test_delete_a_task_frees_the_capacity_admins_only(world, commit):
    set_available(world, world.ana, commit)
    task = new_task(world, commit)
    offer = Reservation.objects.get(task=task)
    assert_error(world.supervisor.delete(f"{world.ws}/tasks/{task.sid}"), 403, 20403)

    with commit():
        ok(world.admin.delete(f"{world.ws}/tasks/{task.sid}"), 204)
    assert not Task.objects.filter(pk=task.pk).exists()
    assert not Reservation.objects.filter(pk=offer.pk).exists()
    assert (
        WorkerChannel.objects.get(worker=world.ana, task_channel__unique_name="chat").assigned_tasks
        == 0
    )
    assert Event.objects.filter(event_type="task.deleted", resource_sid=task.sid).exists()
    assert_error(world.admin.get(f"{world.ws}/tasks/{task.sid}"), 404, 20404)


def test_list_tasks_filters_and_pages_newest_first(world, commit):
    spanish = [new_task(world, commit, language="es") for _ in range(3)]
    english = new_task(world, commit, language="en")
    tasks.task_cancel(spanish[0])

    everything = ok(world.supervisor.get(f"{world.ws}/tasks"))
    assert [t["sid"] for t in everything["results"]] == [
        english.sid,
        spanish[2].sid,
        spanish[1].sid,
        spanish[0].sid,
    ]
    assert everything["next_page_token"] is None

    pending = ok(world.supervisor.get(f"{world.ws}/tasks", {"status": "pending"}))
    assert {t["sid"] for t in pending["results"]} == {english.sid, spanish[1].sid, spanish[2].sid}
    both = ok(world.supervisor.get(f"{world.ws}/tasks?status=pending&status=canceled"))
    assert len(both["results"]) == 4
    queue = ok(world.supervisor.get(f"{world.ws}/tasks", {"queue_sid": world.queues["en"].sid}))
    assert [t["sid"] for t in queue["results"]] == [english.sid]

    first = ok(world.supervisor.get(f"{world.ws}/tasks", {"page_size": 3}))
    assert len(first["results"]) == 3 and first["next_page_token"].startswith("PI")
    # A task created now does not shift the next page.
    new_task(world, commit, language="es")
    second = ok(
        world.supervisor.get(
            f"{world.ws}/tasks", {"page_size": 3, "page_token": first["next_page_token"]}
        )
    )
    assert [t["sid"] for t in second["results"]] == [spanish[0].sid]
    assert second["next_page_token"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"status": "lost"},
        {"page_size": 0},
        {"page_size": 1001},
        {"page_token": "abc"},
        {"page_token": "PI0"},
        {"status": "pending\x00"},
    ],
)
def test_list_tasks_refuses_bad_parameters(world, params):
    assert_error(world.supervisor.get(f"{world.ws}/tasks", params), 400, 20001, next(iter(params)))


def test_list_tasks_of_an_unknown_queue_is_not_found(world):
    other = other_workspace()
    for sid in (other.queue.sid, "WQ" + "0" * 32, "nope"):
        response = world.supervisor.get(f"{world.ws}/tasks", {"queue_sid": sid})
        assert_error(response, 404, 20404, "queue_sid")


# ---------------------------------------------------------------- task input validation


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"attributes": ["not", "an", "object"]}, "attributes"),
        ({"attributes": '{"language": "es"}'}, "attributes"),
        ({"attributes": {"blob": "x" * 4100}}, "attributes"),
        ({"attributes": {"note": "a\x00b"}}, "attributes"),
        ({"attributes": {"a\x00": 1}}, "attributes"),
        ({"attributes": {"deep": DEEP}}, "attributes"),
        ({"priority": -1}, "priority"),
        ({"priority": 2**31}, "priority"),
        ({"priority": "high"}, "priority"),
        ({"priority": True}, "priority"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 15 * 24 * 3600}, "timeout"),
        ({"task_channel": "no such"}, "task_channel"),
        ({"task_channel": "fax"}, "task_channel"),
        ({"task_channel": "ch\x00t"}, "task_channel"),
        ({"workflow_sid": None}, "workflow_sid"),
        ({"workflow_sid": 7}, "workflow_sid"),
        ({"sid": "WT" + "0" * 32}, "sid"),
    ],
)
def test_create_a_task_refuses_bad_input_and_writes_nothing(world, change, field):
    payload = {"workflow_sid": world.workflow.sid, "attributes": {"language": "es"}, **change}
    response = world.supervisor.post(f"{world.ws}/tasks", payload)
    assert_error(response, 400, 20001, field)
    assert not Task.objects.exists()
    assert not Event.objects.filter(event_type="task.created").exists()


def test_create_a_task_with_an_unknown_workflow_is_not_found(world):
    other = other_workspace()
    for sid in (other.workflow.sid, "WW" + "f" * 32, "WW\x00"):
        response = world.supervisor.post(f"{world.ws}/tasks", {"workflow_sid": sid})
        if "\x00" in sid:
            assert_error(response, 400, 20001, "workflow_sid")
        else:
            assert_error(response, 404, 20404, "workflow_sid")
    assert not Task.objects.filter(workspace=world.workspace).exists()


def test_attributes_of_exactly_four_kilobytes_are_accepted(world):
    padding = 4096 - len(json.dumps({"language": "es", "blob": ""}, separators=(",", ":")))
    attributes = {"language": "es", "blob": "x" * padding}
    created = world.supervisor.post(
        f"{world.ws}/tasks", {"workflow_sid": world.workflow.sid, "attributes": attributes}
    )
    assert ok(created, 201)["attributes"] == attributes


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        '{"workflow_sid": "x", "priority": NaN}',
        '{"workflow_sid": "x", "attributes": {"big": 1e400}}',
        "[" * 100000 + "]" * 100000,
        '"just a string"',
        "[]",
        "null",
        "true",
        '{"workflow_sid": "\\ud800"}',
        b'{"a": "\xff\xfe"}',  # not UTF-8
    ],
)
def test_malformed_bodies_are_client_errors(world, raw):
    response = world.supervisor.post(f"{world.ws}/tasks", raw=raw)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == 20001
    assert not Task.objects.exists()


def test_a_form_body_is_unsupported(world):
    response = world.supervisor.post(
        f"{world.ws}/tasks", raw="workflow_sid=x", content_type="application/x-www-form-urlencoded"
    )
    assert_error(response, 415, 20415)


def test_update_a_task_refuses_bad_input(world, commit):
    task = new_task(world, commit)
    for payload, field in (
        ({"attributes": 5}, "attributes"),
        ({"priority": -3}, "priority"),
        ({"assignment_status": "completed"}, "assignment_status"),
    ):
        response = world.supervisor.patch(f"{world.ws}/tasks/{task.sid}", payload)
        assert_error(response, 400, 20001, field)
    task.refresh_from_db()
    assert task.attributes == {"language": "es"} and task.priority == 0
    assert task.assignment_status == "pending"


def test_actions_refuse_unknown_body_fields(world, commit):
    set_available(world, world.ana, commit)
    offer = Reservation.objects.get(task=new_task(world, commit))
    response = world.agent1.post(f"{world.ws}/reservations/{offer.sid}/accept", {"force": True})
    assert_error(response, 400, 20001, "force")
    assert Reservation.objects.get(pk=offer.pk).status == "pending"


# ---------------------------------------------------------------- authentication


def test_anonymous_calls_are_refused_with_401(world):
    for response in (
        world.anonymous.get(f"{world.ws}/task-queues"),
        world.anonymous.get(ROOT),
        world.anonymous.post(f"{world.ws}/tasks", {"workflow_sid": world.workflow.sid}),
        world.anonymous.get(f"{world.ws}/workers/{world.ana.sid}"),
    ):
        assert_error(response, 401, 20003)
        assert response["WWW-Authenticate"] == 'Basic realm="contactcenter"'
    assert not Task.objects.exists()


def test_http_basic_with_username_and_password(world, supervisor):
    good = Api(authorization=basic("supervisor", PASSWORD))
    listed = ok(good.get(f"{world.ws}/task-queues"))
    assert len(listed["results"]) == 3
    # Basic needs no CSRF token: it is not ambient authority like a cookie.
    created = good.post(f"{world.ws}/tasks", {"workflow_sid": world.workflow.sid})
    assert ok(created, 201)["sid"].startswith("WT")

    for authorization in (
        basic("supervisor", "wrong"),
        basic("nobody", PASSWORD),
        basic("super\x00visor", PASSWORD),
        basic("supervisor", "pass\x00word"),
        "Basic !!!",
        "Bearer abc",
    ):
        # A scheme other than Basic is not ours: the call is anonymous, hence 401 too.
        response = Api(authorization=authorization).get(f"{world.ws}/task-queues")
        assert_error(response, 401, 20003)
    supervisor.is_active = False
    supervisor.save()
    assert_error(good.get(f"{world.ws}/task-queues"), 401, 20003)


def test_messaging_api_keys_are_not_routing_credentials(world):
    from messaging.services.accounts import account_get_or_create_default, api_key_create

    account = account_get_or_create_default()
    key = api_key_create(account=account, friendly_name="messaging only")
    for authorization in (
        basic(key.key.sid, key.secret),
        basic(account.sid, account.auth_token),
    ):
        response = Api(authorization=authorization).get(f"{world.ws}/task-queues")
        assert_error(response, 401, 20003)


def test_session_writes_need_the_csrf_token(world, supervisor):
    client = Client(enforce_csrf_checks=True)
    client.force_login(supervisor)
    api = Api(client)

    assert ok(api.get(f"{world.ws}/task-queues"))["results"]
    refused = api.post(f"{world.ws}/tasks", {"workflow_sid": world.workflow.sid})
    body = assert_error(refused, 403, 20403)
    assert "CSRF" in body["message"]
    assert not Task.objects.exists()

    # What a page of the site gives the browser: the cookie, and the token for the header.
    token = get_random_string(32)
    client.cookies[settings.CSRF_COOKIE_NAME] = token
    api.headers = {"X-CSRFToken": token}
    accepted = api.post(f"{world.ws}/tasks", {"workflow_sid": world.workflow.sid})
    assert ok(accepted, 201)
    assert Task.objects.count() == 1


def test_action_endpoints_take_json_objects_only(world, commit):
    set_available(world, world.ana, commit)
    offer = Reservation.objects.get(task=new_task(world, commit))
    for raw in ("null", "[]", "1", "{"):
        response = world.agent1.post(f"{world.ws}/reservations/{offer.sid}/accept", raw=raw)
        assert_error(response, 400, 20001)
    assert Reservation.objects.get(pk=offer.pk).status == "pending"
    # An empty body is an empty object.
    accepted = world.agent1.post(f"{world.ws}/reservations/{offer.sid}/accept", raw="")
    assert ok(accepted)["status"] == "accepted"


def test_head_is_a_get_without_a_body(world):
    response = world.supervisor.client.head(f"{world.ws}/task-queues")
    assert response.status_code == 200 and response.content == b""
    assert world.agent1.client.head(f"{world.ws}/task-queues").status_code == 403


def test_wrong_method_is_405_and_options_is_not_served(world):
    assert_error(world.admin.client.put(f"{world.ws}/tasks", "{}", "application/json"), 405, 20004)
    assert_error(world.admin.delete(ROOT), 405, 20004)
    assert world.admin.client.options(f"{world.ws}/tasks").status_code == 405


# ---------------------------------------------------------------- permission matrix


def _matrix_call(world, name):
    ws = world.ws
    calls = {
        "list queues": ("get", f"{ws}/task-queues", None),
        "create queue": ("post", f"{ws}/task-queues", {"friendly_name": "New"}),
        "list workers": ("get", f"{ws}/workers", None),
        "create task": ("post", f"{ws}/tasks", {"workflow_sid": world.workflow.sid}),
        "list tasks": ("get", f"{ws}/tasks", None),
        "statistics": ("get", f"{ws}/statistics", None),
        "events": ("get", f"{ws}/events", None),
        "list activities": ("get", f"{ws}/activities", None),
        "list channels": ("get", f"{ws}/task-channels", None),
        "own worker": ("get", f"{ws}/workers/{world.ana.sid}", None),
        "other worker": ("get", f"{ws}/workers/{world.bob.sid}", None),
        "own activity": (
            "post",
            f"{ws}/workers/{world.ana.sid}/activity",
            {"activity_sid": activity(world.workspace, "Break").sid},
        ),
        "other activity": (
            "post",
            f"{ws}/workers/{world.bob.sid}/activity",
            {"activity_sid": activity(world.workspace, "Break").sid},
        ),
        "own reservations": ("get", f"{ws}/workers/{world.ana.sid}/reservations", None),
        "other reservations": ("get", f"{ws}/workers/{world.bob.sid}/reservations", None),
        "channel capacity": (
            "post",
            f"{ws}/workers/{world.ana.sid}/channels/chat",
            {"capacity": 2},
        ),
        "update worker": ("patch", f"{ws}/workers/{world.ana.sid}", {"attributes": {"x": 1}}),
        "list workspaces": ("get", ROOT, None),
        "create workspace": ("post", ROOT, {"friendly_name": "Third"}),
    }
    return calls[name]


# Who gets what; the agent is agent1 (Ana's person), the outsider has no role and no worker.
MATRIX = {
    #                     admin supervisor agent outsider
    "list queues": (200, 200, 403, 403),
    "create queue": (201, 403, 403, 403),
    "list workers": (200, 200, 403, 403),
    "create task": (201, 201, 403, 403),
    "list tasks": (200, 200, 403, 403),
    "statistics": (200, 200, 403, 403),
    "events": (200, 200, 403, 403),
    "list activities": (200, 200, 200, 403),
    "list channels": (200, 200, 200, 403),
    "own worker": (200, 200, 200, 403),
    "other worker": (200, 200, 403, 403),
    "own activity": (200, 200, 200, 403),
    "other activity": (200, 200, 403, 403),
    "own reservations": (200, 200, 200, 403),
    "other reservations": (200, 200, 403, 403),
    "channel capacity": (200, 200, 403, 403),
    "update worker": (200, 403, 403, 403),
    "list workspaces": (200, 200, 403, 403),
    "create workspace": (201, 403, 403, 403),
}


@pytest.mark.parametrize("name", MATRIX)
@pytest.mark.parametrize("who", ["admin", "supervisor", "agent", "outsider", "anonymous"])
def test_permission_matrix(world, outsider, api, name, who):
    client = {
        "admin": world.admin,
        "supervisor": world.supervisor,
        "agent": world.agent1,
        "outsider": api(outsider),
        "anonymous": world.anonymous,
    }[who]
    method, path, data = _matrix_call(world, name)
    before = (Task.objects.count(), TaskQueue.objects.count(), Workspace.objects.count())
    response = client.get(path) if method == "get" else getattr(client, method)(path, data)

    if who == "anonymous":
        assert_error(response, 401, 20003)
        expected = 401
    else:
        expected = MATRIX[name][["admin", "supervisor", "agent", "outsider"].index(who)]
        if expected == 403:
            assert_error(response, 403, 20403)
        else:
            assert response.status_code == expected, response.content
    if expected >= 400:  # a refused call changes nothing
        after = (Task.objects.count(), TaskQueue.objects.count(), Workspace.objects.count())
        assert after == before
        assert Worker.objects.get(pk=world.bob.pk).activity.friendly_name == "Offline"
        assert Worker.objects.get(pk=world.ana.pk).attributes == {"languages": ["es"]}


def test_an_agent_without_a_worker_in_the_workspace_cannot_list_its_activities(world, commit):
    other = other_workspace()
    path = f"{ROOT}/{other.workspace.sid}"
    assert_error(world.agent1.get(f"{path}/activities"), 403, 20403)
    assert_error(world.agent1.get(f"{path}/task-channels"), 403, 20403)
    assert_error(world.agent1.get(f"{path}/workers/me"), 404, 20404)


def test_workers_me_is_the_callers_own_worker(world, outsider, api):
    mine = ok(world.agent1.get(f"{world.ws}/workers/me"))
    assert mine["sid"] == world.ana.sid and mine["user"] == "agent1"
    assert_error(api(outsider).get(f"{world.ws}/workers/me"), 404, 20404)
    assert_error(world.supervisor.get(f"{world.ws}/workers/me"), 404, 20404)


# ---------------------------------------------------------------- workspaces


def test_create_list_fetch_change_and_delete_a_workspace(world):
    created = ok(
        world.admin.post(
            ROOT,
            {
                "friendly_name": "Billing",
                "event_callback_url": "https://example.com/routing-events",
                "events_filter": ["task.created", "task.completed"],
                "multitask_enabled": False,
            },
        ),
        201,
    )
    row = Workspace.objects.get(sid=created["sid"])
    assert row.friendly_name == "Billing" and not row.multitask_enabled
    assert row.events_filter == ["task.created", "task.completed"]
    assert row.event_callback_secret  # generated, and never shown
    assert "event_callback_secret" not in created
    assert created["default_activity_name"] == created["timeout_activity_name"] == "Offline"
    assert created["default_activity_sid"] == row.default_activity.sid
    assert Activity.objects.filter(workspace=row).count() == 4
    assert TaskChannel.objects.filter(workspace=row).count() == 6

    listed = ok(world.supervisor.get(ROOT))
    assert [w["friendly_name"] for w in listed["results"]] == ["Support", "Billing"]
    fetched = ok(world.supervisor.get(f"{ROOT}/{row.sid}"))
    assert fetched == created

    available = Activity.objects.get(workspace=row, friendly_name="Available")
    brk = Activity.objects.get(workspace=row, friendly_name="Break")
    changed = ok(
        world.admin.patch(
            f"{ROOT}/{row.sid}",
            {
                "friendly_name": "Billing EU",
                "default_activity_sid": available.sid,
                "timeout_activity_sid": brk.sid,
                "events_filter": [],
            },
        )
    )
    assert changed["friendly_name"] == "Billing EU"
    assert changed["default_activity_sid"] == available.sid
    assert changed["timeout_activity_name"] == "Break"
    row.refresh_from_db()
    assert row.default_activity == available and row.timeout_activity == brk
    assert row.events_filter == []
    assert row.event_callback_url == "https://example.com/routing-events"  # untouched

    ok(world.admin.delete(f"{ROOT}/{row.sid}"), 204)
    assert not Workspace.objects.filter(pk=row.pk).exists()
    assert not Activity.objects.filter(workspace_id=row.pk).exists()


def test_a_workspace_with_an_active_task_cannot_be_deleted(world, commit):
    new_task(world, commit)
    response = world.admin.delete(world.ws)
    assert_error(response, 409, 20409)
    assert Workspace.objects.filter(pk=world.workspace.pk).exists()
    assert Worker.objects.filter(workspace=world.workspace).count() == 2


def test_deleting_an_idle_workspace_deletes_its_workers_too(world):
    ok(world.admin.delete(world.ws), 204)
    assert not Workspace.objects.filter(pk=world.workspace.pk).exists()
    assert not Worker.objects.filter(workspace_id=world.workspace.pk).exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "friendly_name"),
        ({"friendly_name": ""}, "friendly_name"),
        ({"friendly_name": "x" * 65}, "friendly_name"),
        ({"friendly_name": "Support"}, "friendly_name"),  # taken
        ({"friendly_name": "N", "events_filter": ["task.exploded"]}, "events_filter"),
        ({"friendly_name": "N", "events_filter": "task.created"}, "events_filter"),
        ({"friendly_name": "N", "event_callback_url": "not a url"}, "event_callback_url"),
        ({"friendly_name": "N", "multitask_enabled": "maybe"}, "multitask_enabled"),
        ({"friendly_name": "N", "event_callback_secret": "mine"}, "event_callback_secret"),
    ],
)
def test_create_a_workspace_refuses_bad_input(world, payload, field):
    assert_error(world.admin.post(ROOT, payload), 400, 20001, field)
    assert Workspace.objects.count() == 1


def test_change_a_workspace_refuses_another_workspaces_activity(world):
    other = other_workspace()
    foreign = activity(other.workspace, "Available")
    response = world.admin.patch(world.ws, {"default_activity_sid": foreign.sid})
    assert_error(response, 404, 20404, "default_activity_sid")
    world.workspace.refresh_from_db()
    assert world.workspace.default_activity.friendly_name == "Offline"


# ---------------------------------------------------------------- activities and channels


def test_activities_create_list_fetch_delete(world):
    created = ok(world.admin.post(f"{world.ws}/activities", {"friendly_name": "Training"}), 201)
    assert created["available"] is False
    row = Activity.objects.get(sid=created["sid"])
    assert row.workspace == world.workspace and row.friendly_name == "Training"

    names = [a["friendly_name"] for a in ok(world.agent1.get(f"{world.ws}/activities"))["results"]]
    assert names == ["Offline", "Available", "Unavailable", "Break", "Training"]
    assert ok(world.agent1.get(f"{world.ws}/activities/{row.sid}")) == created

    ok(world.admin.delete(f"{world.ws}/activities/{row.sid}"), 204)
    assert not Activity.objects.filter(pk=row.pk).exists()


def test_activities_refuse_duplicates_and_deleting_one_in_use(world):
    response = world.admin.post(f"{world.ws}/activities", {"friendly_name": "Break"})
    assert_error(response, 400, 20001)
    assert Activity.objects.filter(workspace=world.workspace, friendly_name="Break").count() == 1
    bad = world.admin.post(f"{world.ws}/activities", {"friendly_name": "X", "available": "yes!"})
    assert_error(bad, 400, 20001, "available")

    offline = activity(world.workspace, "Offline")  # the default; workers are in it too
    assert_error(world.admin.delete(f"{world.ws}/activities/{offline.sid}"), 409, 20409)
    brk = activity(world.workspace, "Break")
    workers.worker_activity_set(world.ana, activity=brk)
    assert_error(world.admin.delete(f"{world.ws}/activities/{brk.sid}"), 409, 20409)
    assert Activity.objects.filter(pk=brk.pk).exists()
    assert_error(world.supervisor.delete(f"{world.ws}/activities/{brk.sid}"), 403, 20403)


def test_task_channels_create_list_fetch(world):
    created = ok(
        world.admin.post(
            f"{world.ws}/task-channels", {"unique_name": "email", "friendly_name": "E-mail"}
        ),
        201,
    )
    assert TaskChannel.objects.get(sid=created["sid"]).unique_name == "email"
    listed = ok(world.agent1.get(f"{world.ws}/task-channels"))["results"]
    assert [c["unique_name"] for c in listed] == [
        "default",
        "sms",
        "whatsapp",
        "messenger",
        "chat",
        "voice",
        "email",
    ]
    assert ok(world.agent1.get(f"{world.ws}/task-channels/{created['sid']}")) == created

    for payload in ({"unique_name": "e mail"}, {"unique_name": ""}, {"unique_name": "x" * 65}):
        response = world.admin.post(f"{world.ws}/task-channels", payload)
        assert_error(response, 400, 20001, "unique_name")
    taken = assert_error(
        world.admin.post(f"{world.ws}/task-channels", {"unique_name": "sms"}), 400, 20001
    )
    assert "already exists" in taken["message"]
    assert TaskChannel.objects.filter(workspace=world.workspace).count() == 7


# ---------------------------------------------------------------- task queues


def test_task_queues_create_list_fetch_change_delete(world, make_worker):
    make_worker("Eve", languages=["es", "fr"], available=False)
    created = ok(
        world.admin.post(
            f"{world.ws}/task-queues",
            {
                "friendly_name": "French",
                "target_workers": "languages HAS 'fr'",
                "task_order": "LIFO",
                "max_reserved_workers": 3,
            },
        ),
        201,
    )
    assert created["members"] == 1
    assert created["task_order"] == "LIFO" and created["max_reserved_workers"] == 3
    row = TaskQueue.objects.get(sid=created["sid"])
    assert row.target_workers == "languages HAS 'fr'"
    assert QueueMembership.objects.filter(queue=row).count() == 1

    listed = ok(world.supervisor.get(f"{world.ws}/task-queues"))["results"]
    assert {q["friendly_name"]: q["members"] for q in listed} == {
        "Spanish": 2,  # Ana and Eve
        "English": 1,  # Bob
        "Everyone": 3,
        "French": 1,
    }
    assert ok(world.supervisor.get(f"{world.ws}/task-queues/{row.sid}")) == created

    changed = ok(
        world.admin.patch(
            f"{world.ws}/task-queues/{row.sid}", {"target_workers": "languages HAS 'es'"}
        )
    )
    assert changed["members"] == 2 and changed["task_order"] == "LIFO"
    assert QueueMembership.objects.filter(queue=row).count() == 2

    ok(world.admin.delete(f"{world.ws}/task-queues/{row.sid}"), 204)
    assert not TaskQueue.objects.filter(pk=row.pk).exists()


def test_task_queues_refuse_bad_input_and_deleting_one_in_use(world):
    bad = world.admin.post(
        f"{world.ws}/task-queues", {"friendly_name": "Bad", "target_workers": "skills HAS"}
    )
    body = assert_error(bad, 400, 20001, "target_workers")
    assert "position" in body["message"]
    for payload, field in (
        ({"friendly_name": "Q", "max_reserved_workers": 0}, "max_reserved_workers"),
        ({"friendly_name": "Q", "max_reserved_workers": 51}, "max_reserved_workers"),
        ({"friendly_name": "Q", "task_order": "RANDOM"}, "task_order"),
        ({"friendly_name": "Q", "target_workers": "a\x00"}, "target_workers"),
        ({"target_workers": "1==1"}, "friendly_name"),
    ):
        assert_error(world.admin.post(f"{world.ws}/task-queues", payload), 400, 20001, field)
    assert TaskQueue.objects.count() == 3

    spanish = world.queues["es"]
    response = world.admin.delete(f"{world.ws}/task-queues/{spanish.sid}")
    assert_error(response, 409, 20409)  # the workflow routes to it
    assert TaskQueue.objects.filter(pk=spanish.pk).exists()
    changed = world.admin.patch(f"{world.ws}/task-queues/{spanish.sid}", {"target_workers": "("})
    assert_error(changed, 400, 20001, "target_workers")
    assert TaskQueue.objects.get(pk=spanish.pk).target_workers == "languages HAS 'es'"


# ---------------------------------------------------------------- workflows


def test_workflows_create_list_fetch_change_delete(world):
    configuration = {
        "task_routing": {
            "filters": [
                {
                    "filter_friendly_name": "VIP",
                    "expression": "vip == true",
                    "targets": [{"queue": world.queues["es"].sid, "priority": 10, "timeout": 30}],
                }
            ],
            "default_filter": {"queue": world.queues["all"].sid},
        }
    }
    created = ok(
        world.admin.post(
            f"{world.ws}/workflows",
            {
                "friendly_name": "VIP first",
                "configuration": configuration,
                "task_reservation_timeout": 45,
            },
        ),
        201,
    )
    assert created["configuration"] == configuration
    assert created["task_reservation_timeout"] == 45
    row = Workflow.objects.get(sid=created["sid"])
    assert row.configuration == configuration

    listed = ok(world.supervisor.get(f"{world.ws}/workflows"))["results"]
    assert [w["friendly_name"] for w in listed] == ["By language", "VIP first"]
    assert ok(world.supervisor.get(f"{world.ws}/workflows/{row.sid}")) == created

    changed = ok(world.admin.patch(f"{world.ws}/workflows/{row.sid}", {"friendly_name": "VIP"}))
    assert changed["friendly_name"] == "VIP" and changed["configuration"] == configuration

    ok(world.admin.delete(f"{world.ws}/workflows/{row.sid}"), 204)
    assert not Workflow.objects.filter(pk=row.pk).exists()


def test_workflow_configuration_errors_name_the_path_and_position(world):
    configuration = {
        "task_routing": {
            "filters": [
                {
                    "expression": "language == 'es' AND",
                    "targets": [{"queue": world.queues["es"].sid}],
                }
            ]
        }
    }
    response = world.admin.post(
        f"{world.ws}/workflows", {"friendly_name": "Broken", "configuration": configuration}
    )
    body = assert_error(response, 400, 20001, "configuration")
    assert "task_routing.filters[0].expression" in body["message"]
    assert "position" in body["message"]

    other = other_workspace()
    foreign = {"task_routing": {"default_filter": {"queue": other.queue.sid}}}
    response = world.admin.post(
        f"{world.ws}/workflows", {"friendly_name": "Foreign", "configuration": foreign}
    )
    body = assert_error(response, 400, 20001, "configuration")
    assert "task_routing.default_filter.queue" in body["message"]
    for payload in (
        {"friendly_name": "X", "configuration": []},
        {"friendly_name": "X", "configuration": {}},
        {"friendly_name": "X", "configuration": {"task_routing": {"default_filter": "WQ"}}},
    ):
        response = world.admin.post(f"{world.ws}/workflows", payload)
        assert_error(response, 400, 20001, "configuration")
    assert Workflow.objects.filter(workspace=world.workspace).count() == 1

    patched = world.admin.patch(
        f"{world.ws}/workflows/{world.workflow.sid}", {"configuration": configuration}
    )
    assert_error(patched, 400, 20001, "configuration")
    world.workflow.refresh_from_db()
    assert "default_filter" in world.workflow.configuration["task_routing"]


def test_a_workflow_with_active_tasks_cannot_be_deleted(world, commit):
    new_task(world, commit)
    response = world.admin.delete(f"{world.ws}/workflows/{world.workflow.sid}")
    assert_error(response, 409, 20409)
    assert Workflow.objects.filter(pk=world.workflow.pk).exists()


# ---------------------------------------------------------------- workers


def test_create_a_worker_with_capacities_activity_and_user(world, outsider, commit):
    available = activity(world.workspace, "Available")
    with commit():
        response = world.admin.post(
            f"{world.ws}/workers",
            {
                "friendly_name": "Dora",
                "attributes": {"languages": ["es", "en"], "level": 3},
                "activity_sid": available.sid,
                "capacities": {"chat": 3, "voice": 0},
                "user": "outsider",
            },
        )
    created = ok(response, 201)
    assert created["sid"].startswith("WK")
    assert created["user"] == "outsider"
    assert created["activity_sid"] == available.sid and created["available"] is True
    assert created["attributes"] == {"languages": ["es", "en"], "level": 3}
    channels = {c["task_channel"]: c for c in created["channels"]}
    assert set(channels) == {"default", "sms", "whatsapp", "messenger", "chat", "voice"}
    assert channels["chat"]["capacity"] == 3 and channels["chat"]["assigned_tasks"] == 0
    assert channels["chat"]["available_capacity_percentage"] == 100
    assert channels["voice"]["capacity"] == 0 and channels["sms"]["capacity"] == 1

    row = Worker.objects.get(sid=created["sid"])
    assert row.user == outsider and row.activity == available
    assert WorkerChannel.objects.get(worker=row, task_channel__unique_name="chat").capacity == 3
    assert set(row.queues.values_list("friendly_name", flat=True)) == {
        "Spanish",
        "English",
        "Everyone",
    }
    event = Event.objects.get(event_type="worker.created", resource_sid=row.sid)
    assert event.actor == "user:admin"


def test_a_new_worker_starts_in_the_default_activity(world):
    created = ok(world.admin.post(f"{world.ws}/workers", {"friendly_name": "Finn"}), 201)
    assert created["activity_name"] == "Offline" and created["available"] is False
    assert created["attributes"] == {} and created["user"] is None


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"friendly_name": "Ana"}, 400, None),  # taken
        ({}, 400, "friendly_name"),
        ({"friendly_name": "G", "attributes": [1]}, 400, "attributes"),
        ({"friendly_name": "G", "attributes": {"x": "y" * 5000}}, 400, "attributes"),
        ({"friendly_name": "G", "attributes": {"x\x00": 1}}, 400, "attributes"),
        ({"friendly_name": "G", "capacities": {"chat": 51}}, 400, "capacities"),
        ({"friendly_name": "G", "capacities": {"chat": -1}}, 400, "capacities"),
        ({"friendly_name": "G", "capacities": {"fax": 1}}, 400, "capacities"),
        ({"friendly_name": "G", "capacities": [1]}, 400, "capacities"),
        ({"friendly_name": "G", "user": "nobody"}, 400, "user"),
        ({"friendly_name": "G", "user": "agent1"}, 400, None),  # already works as Ana
        ({"friendly_name": "G", "activity_sid": "WA" + "0" * 32}, 404, "activity_sid"),
        ({"friendly_name": "G\x00"}, 400, "friendly_name"),
    ],
)
def test_create_a_worker_refuses_bad_input_and_writes_nothing(world, payload, status, field):
    response = world.admin.post(f"{world.ws}/workers", payload)
    assert_error(response, status, 20001 if status == 400 else 20404, field)
    assert Worker.objects.filter(workspace=world.workspace).count() == 2


def test_fetch_list_and_page_workers(world, make_worker):
    for name in ("W1", "W2", "W3"):
        make_worker(name, available=False)
    fetched = ok(world.supervisor.get(f"{world.ws}/workers/{world.ana.sid}"))
    assert fetched["friendly_name"] == "Ana" and fetched["user"] == "agent1"
    assert fetched["activity_name"] == "Offline"
    assert len(fetched["channels"]) == 6

    first = ok(world.supervisor.get(f"{world.ws}/workers", {"page_size": 3}))
    assert [w["friendly_name"] for w in first["results"]] == ["Ana", "Bob", "W1"]
    second = ok(
        world.supervisor.get(
            f"{world.ws}/workers", {"page_size": 3, "page_token": first["next_page_token"]}
        )
    )
    assert [w["friendly_name"] for w in second["results"]] == ["W2", "W3"]
    assert second["next_page_token"] is None


def test_change_a_workers_attributes_name_and_user(world, outsider):
    changed = ok(
        world.admin.patch(
            f"{world.ws}/workers/{world.bob.sid}",
            {"friendly_name": "Robert", "attributes": {"languages": ["es"]}, "user": "outsider"},
        )
    )
    assert changed["friendly_name"] == "Robert" and changed["user"] == "outsider"
    world.bob.refresh_from_db()
    assert world.bob.attributes == {"languages": ["es"]} and world.bob.user == outsider
    # Membership follows the attributes: Robert left English and joined Spanish.
    assert set(world.bob.queues.values_list("friendly_name", flat=True)) == {"Spanish", "Everyone"}
    assert Event.objects.filter(
        event_type="worker.attributes.update", resource_sid=world.bob.sid, actor="user:admin"
    ).exists()

    unlinked = ok(world.admin.patch(f"{world.ws}/workers/{world.bob.sid}", {"user": None}))
    assert unlinked["user"] is None
    assert Worker.objects.get(pk=world.bob.pk).user is None

    for payload, field in (
        ({"attributes": "x"}, "attributes"),
        ({"user": "nobody"}, "user"),
        ({"activity_sid": activity(world.workspace, "Break").sid}, "activity_sid"),
    ):
        response = world.admin.patch(f"{world.ws}/workers/{world.bob.sid}", payload)
        assert_error(response, 400, 20001, field)
    assert Worker.objects.get(pk=world.bob.pk).attributes == {"languages": ["es"]}


def test_delete_a_worker_unless_it_holds_reservations(world, commit):
    set_available(world, world.ana, commit)
    new_task(world, commit)
    assert_error(world.admin.delete(f"{world.ws}/workers/{world.ana.sid}"), 409, 20409)
    assert Worker.objects.filter(pk=world.ana.pk).exists()

    ok(world.admin.delete(f"{world.ws}/workers/{world.bob.sid}"), 204)
    assert not Worker.objects.filter(pk=world.bob.pk).exists()


def test_an_agent_changes_its_own_activity_and_gets_offers(world, commit):
    task = new_task(world, commit)
    assert task.assignment_status == "pending"
    available = activity(world.workspace, "Available")

    with commit():
        response = world.agent1.post(
            f"{world.ws}/workers/{world.ana.sid}/activity", {"activity_sid": available.sid}
        )
    body = ok(response)
    assert body["activity_sid"] == available.sid and body["available"] is True
    world.ana.refresh_from_db()
    assert world.ana.activity == available
    # Becoming available got her the waiting Spanish task.
    assert Reservation.objects.get(task=task).worker == world.ana
    event = Event.objects.get(event_type="worker.activity.update", resource_sid=world.ana.sid)
    assert event.actor == "user:agent1"
    assert event.data["previous_activity_name"] == "Offline"

    # Going offline rejects the pending offer.
    offline = activity(world.workspace, "Offline")
    with commit():
        ok(
            world.agent1.post(
                f"{world.ws}/workers/{world.ana.sid}/activity", {"activity_sid": offline.sid}
            )
        )
    assert Reservation.objects.get(task=task).status == "rejected"


def test_change_activity_refuses_unknown_and_foreign_activities(world):
    other = other_workspace()
    for sid in (activity(other.workspace, "Available").sid, "WA" + "0" * 32, "Available"):
        response = world.agent1.post(
            f"{world.ws}/workers/{world.ana.sid}/activity", {"activity_sid": sid}
        )
        assert_error(response, 404, 20404, "activity_sid")
    for payload in ({}, {"activity_sid": None}, {"activity_sid": 3}):
        response = world.agent1.post(f"{world.ws}/workers/{world.ana.sid}/activity", payload)
        assert_error(response, 400, 20001, "activity_sid")
    assert Worker.objects.get(pk=world.ana.pk).activity.friendly_name == "Offline"


def test_change_a_workers_channel_capacity_and_switch(world, commit):
    path = f"{world.ws}/workers/{world.ana.sid}/channels/chat"
    body = ok(world.supervisor.post(path, {"capacity": 4}))
    chat = next(c for c in body["channels"] if c["task_channel"] == "chat")
    assert chat["capacity"] == 4 and chat["available"] is True
    off = ok(world.supervisor.post(path, {"available": False}))
    chat = next(c for c in off["channels"] if c["task_channel"] == "chat")
    assert chat["capacity"] == 4 and chat["available"] is False
    row = WorkerChannel.objects.get(worker=world.ana, task_channel__unique_name="chat")
    assert row.capacity == 4 and not row.available
    assert (
        Event.objects.filter(
            event_type="worker.capacity.update", resource_sid=world.ana.sid
        ).count()
        == 2
    )

    for payload, field in (
        ({"capacity": 51}, "capacity"),
        ({"capacity": -1}, "capacity"),
        ({"capacity": "many"}, "capacity"),
        ({"available": "sometimes"}, "available"),
        ({}, "capacity"),
        ({"assigned_tasks": 0}, "assigned_tasks"),
    ):
        assert_error(world.supervisor.post(path, payload), 400, 20001, field)
    for name in ("fax", "ch%00at", "a" * 80):
        response = world.supervisor.post(
            f"{world.ws}/workers/{world.ana.sid}/channels/{name}", {"capacity": 1}
        )
        assert_error(response, 404, 20404)
    row.refresh_from_db()
    assert row.capacity == 4


def test_a_capacity_raise_offers_more_tasks(world, commit):
    set_available(world, world.ana, commit)
    first, second = new_task(world, commit), new_task(world, commit)
    assert Reservation.objects.filter(worker=world.ana).count() == 1
    with commit():
        ok(
            world.supervisor.post(
                f"{world.ws}/workers/{world.ana.sid}/channels/chat", {"capacity": 2}
            )
        )
    assert set(Reservation.objects.filter(worker=world.ana).values_list("task_id", flat=True)) == {
        first.pk,
        second.pk,
    }


def test_list_a_workers_reservations_by_status(world, commit):
    set_available(world, world.ana, commit)
    ok(world.supervisor.post(f"{world.ws}/workers/{world.ana.sid}/channels/chat", {"capacity": 2}))
    first = new_task(world, commit)
    second = new_task(world, commit)
    offer = Reservation.objects.get(task=first)
    ok(world.agent1.post(f"{world.ws}/reservations/{offer.sid}/accept"))

    path = f"{world.ws}/workers/{world.ana.sid}/reservations"
    everything = ok(world.agent1.get(path))["results"]
    assert [r["task"]["sid"] for r in everything] == [second.sid, first.sid]
    pending = ok(world.agent1.get(path, {"status": "pending"}))["results"]
    assert [r["task"]["sid"] for r in pending] == [second.sid]
    both = ok(world.agent1.get(f"{path}?status=pending&status=accepted"))["results"]
    assert len(both) == 2
    assert_error(world.agent1.get(path, {"status": "lost"}), 400, 20001, "status")


# ---------------------------------------------------------------- not found


def test_another_workspaces_sids_are_not_found(world):
    other = other_workspace()
    reservation_sid = "WR" + "a" * 32
    ws = world.ws
    for path in (
        f"{ws}/workers/{other.worker.sid}",
        f"{ws}/tasks/{other.task.sid}",
        f"{ws}/task-queues/{other.queue.sid}",
        f"{ws}/task-queues/{other.queue.sid}/statistics",
        f"{ws}/workflows/{other.workflow.sid}",
        f"{ws}/activities/{activity(other.workspace, 'Break').sid}",
        f"{ws}/task-channels/{TaskChannel.objects.filter(workspace=other.workspace).first().sid}",
        f"{ws}/reservations/{reservation_sid}",
        f"{ws}/workers/{other.worker.sid}/reservations",
        f"{ws}/tasks/{other.task.sid}/reservations",
    ):
        assert_error(world.admin.get(path), 404, 20404)
    for path, data in (
        (f"{ws}/tasks/{other.task.sid}/cancel", {}),
        (f"{ws}/tasks/{other.task.sid}/complete", {}),
        (f"{ws}/workers/{other.worker.sid}/channels/chat", {"capacity": 2}),
        (
            f"{ws}/workers/{other.worker.sid}/activity",
            {"activity_sid": activity(world.workspace, "Break").sid},
        ),
    ):
        assert_error(world.admin.post(path, data), 404, 20404)
    assert_error(world.admin.patch(f"{ws}/tasks/{other.task.sid}", {"priority": 3}), 404, 20404)
    assert_error(world.admin.delete(f"{ws}/workers/{other.worker.sid}"), 404, 20404)
    assert_error(world.admin.delete(f"{ws}/task-queues/{other.queue.sid}"), 404, 20404)
    other.task.refresh_from_db()
    assert other.task.assignment_status == "pending" and other.task.priority == 0
    assert Worker.objects.filter(pk=other.worker.pk).exists()


def test_unknown_and_malformed_sids_are_not_found(world):
    for path in (
        f"{ROOT}/WS{'0' * 32}",
        f"{ROOT}/WS{'0' * 32}/task-queues",
        f"{ROOT}/nope/tasks",
        f"{ROOT}/WS%00/tasks",
        f"{world.ws}/tasks/WT{'0' * 32}",
        f"{world.ws}/tasks/WK{world.ana.sid[2:]}",  # a sid of the wrong kind
        f"{world.ws}/tasks/%00",
        f"{world.ws}/workers/{world.ana.sid.upper()}",
        f"{world.ws}/reservations/WR%00{'0' * 31}",
    ):
        assert_error(world.admin.get(path), 404, 20404)
    # The agent learns nothing more than the admin about sids that do not exist.
    assert_error(world.agent1.get(f"{world.ws}/reservations/WR{'0' * 32}"), 404, 20404)


# ---------------------------------------------------------------- statistics and events


@pytest.fixture
def scenario(world, commit):
    """Three Spanish tasks: one accepted and completed by Ana, one rejected by her and then
    canceled, one still waiting; Bob stays offline."""
    set_available(world, world.ana, commit)
    done = new_task(world, commit)
    offer = Reservation.objects.get(task=done)
    ok(world.agent1.post(f"{world.ws}/reservations/{offer.sid}/accept"))
    with commit():
        ok(world.agent1.post(f"{world.ws}/tasks/{done.sid}/complete"))
    rejected = Reservation.objects.get(task=new_task(world, commit))
    brk = activity(world.workspace, "Break")
    with commit():
        ok(
            world.agent1.post(
                f"{world.ws}/reservations/{rejected.sid}/reject", {"activity_sid": brk.sid}
            )
        )
    ok(world.supervisor.post(f"{world.ws}/tasks/{rejected.task.sid}/cancel"))
    waiting = new_task(world, commit, language="es")
    return SimpleNamespace(done=done, offer=offer, rejected=rejected, waiting=waiting)


def test_workspace_statistics_after_a_small_scenario(world, scenario):
    body = ok(world.supervisor.get(f"{world.ws}/statistics", {"split_by_wait_time": "30,60"}))
    realtime, cumulative = body["realtime"], body["cumulative"]

    assert realtime["workspace_sid"] == world.workspace.sid
    assert realtime["task_queue_sid"] is None
    assert realtime["total_tasks"] == 1
    assert realtime["tasks_by_status"] == {
        "pending": 1,
        "reserved": 0,
        "assigned": 0,
        "wrapping": 0,
    }
    assert realtime["tasks_by_priority"] == {"0": 1}
    assert realtime["longest_task_waiting_sid"] == scenario.waiting.sid
    assert realtime["total_workers"] == 2
    assert realtime["total_available_workers"] == 0  # Ana is on a break, Bob offline
    assert realtime["total_eligible_workers"] == 0
    per_activity = {a["friendly_name"]: a["workers"] for a in realtime["activity_statistics"]}
    assert per_activity == {"Available": 0, "Break": 1, "Offline": 1, "Unavailable": 0}

    assert cumulative["tasks_entered"] == 3
    assert cumulative["tasks_completed"] == 1
    assert cumulative["tasks_canceled"] == 1
    assert cumulative["reservations_created"] == 2
    assert cumulative["reservations_accepted"] == 1
    assert cumulative["reservations_rejected"] == 1
    assert cumulative["reservations_timed_out"] == 0
    assert set(cumulative["split_by_wait_time"]) == {"30", "60"}
    assert cumulative["split_by_wait_time"]["30"] == {"below": 1, "above": 0}
    assert cumulative["wait_duration_until_accepted"]["max"] < 30
    assert set(cumulative["wait_duration_until_accepted"]) >= {"avg", "min", "max", "p90"}


def test_queue_statistics_and_windows(world, scenario):
    spanish = world.queues["es"]
    body = ok(world.supervisor.get(f"{world.ws}/task-queues/{spanish.sid}/statistics"))
    assert body["realtime"]["task_queue_sid"] == spanish.sid
    assert body["realtime"]["total_workers"] == 1  # Ana is its only member
    assert body["realtime"]["tasks_by_status"]["pending"] == 1
    assert body["cumulative"]["task_queue_sid"] == spanish.sid
    assert body["cumulative"]["tasks_entered"] == 3
    assert body["cumulative"]["reservations_accepted"] == 1
    # Default thresholds when none are asked for.
    assert set(body["cumulative"]["split_by_wait_time"]) == {"30", "60", "120", "300"}

    english = ok(
        world.supervisor.get(f"{world.ws}/task-queues/{world.queues['en'].sid}/statistics")
    )
    assert english["cumulative"]["tasks_entered"] == 0
    assert english["realtime"]["total_tasks"] == 0

    # A window that ended before the scenario counts nothing; one that covers it, everything.
    now = timezone.now()
    before = ok(
        world.supervisor.get(
            f"{world.ws}/statistics",
            {
                "start": (now - timedelta(hours=2)).isoformat(),
                "end": (now - timedelta(hours=1)).isoformat(),
            },
        )
    )
    assert before["cumulative"]["tasks_entered"] == 0
    assert before["realtime"]["total_tasks"] == 1  # real-time ignores the window
    covering = ok(
        world.supervisor.get(
            f"{world.ws}/statistics", {"start": (now - timedelta(minutes=5)).isoformat()}
        )
    )
    assert covering["cumulative"]["tasks_entered"] == 3
    assert (
        ok(world.supervisor.get(f"{world.ws}/statistics", {"minutes": 1}))["cumulative"][
            "tasks_completed"
        ]
        == 1
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"minutes": 0}, "minutes"),
        ({"minutes": 43201}, "minutes"),
        ({"minutes": "x"}, "minutes"),
        ({"minutes": 5, "start": "2024-01-01T00:00:00Z"}, "minutes"),
        ({"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"}, "start"),
        ({"start": "2024-01-01T00:00:00Z", "end": "2024-03-01T00:00:00Z"}, "start"),
        ({"start": "yesterday"}, "start"),
        ({"end": "0001-01-01T00:00:00Z"}, "end"),
        ({"split_by_wait_time": "30,abc"}, "split_by_wait_time"),
        ({"split_by_wait_time": ",".join(["5"] * 11)}, "split_by_wait_time"),
        ({"split_by_wait_time": "30\x00"}, "split_by_wait_time"),
    ],
)
def test_statistics_refuse_bad_windows(world, params, field):
    response = world.supervisor.get(f"{world.ws}/statistics", params)
    assert_error(response, 400, 20001, field)


def test_events_newest_first_with_filters_and_paging(world, scenario):
    everything = ok(world.supervisor.get(f"{world.ws}/events", {"page_size": 1000}))["results"]
    assert len(everything) == Event.objects.filter(workspace=world.workspace).count()
    ids = [Event.objects.get(sid=e["sid"]).id for e in everything]
    assert ids == sorted(ids, reverse=True)

    created = ok(world.supervisor.get(f"{world.ws}/events", {"event_type": "task.created"}))
    assert [e["resource_sid"] for e in created["results"]] == [
        scenario.waiting.sid,
        scenario.rejected.task.sid,
        scenario.done.sid,
    ]
    assert created["results"][0]["actor"] == "api"  # created by the service directly
    assert created["results"][0]["resource_type"] == "task"
    assert created["results"][0]["date_created"].endswith("Z")

    reservation_events = ok(
        world.supervisor.get(
            f"{world.ws}/events?event_type=reservation.accepted&event_type=reservation.rejected"
        )
    )["results"]
    assert [(e["event_type"], e["actor"]) for e in reservation_events] == [
        ("reservation.rejected", "user:agent1"),
        ("reservation.accepted", "user:agent1"),
    ]
    assert reservation_events[1]["data"]["task_sid"] == scenario.done.sid

    of_task = ok(world.supervisor.get(f"{world.ws}/events", {"resource_sid": scenario.done.sid}))
    assert {e["event_type"] for e in of_task["results"]} >= {
        "task.created",
        "task-queue.entered",
        "workflow.target-matched",
        "task.completed",
    }
    assert {e["resource_sid"] for e in of_task["results"]} == {scenario.done.sid}

    seen, token = [], None
    while True:
        params = {"page_size": 4, "event_type": ["task.created", "task.completed", "task.canceled"]}
        if token:
            params["page_token"] = token
        page = ok(world.supervisor.get(f"{world.ws}/events", params))
        seen += [e["sid"] for e in page["results"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert len(seen) == len(set(seen)) == 5

    later = timezone.now() + timedelta(minutes=1)
    assert (
        ok(world.supervisor.get(f"{world.ws}/events", {"start": later.isoformat()}))["results"]
        == []
    )
    until_later = ok(world.supervisor.get(f"{world.ws}/events", {"end": later.isoformat()}))
    assert len(until_later["results"]) == len(everything)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"event_type": "task.exploded"}, "event_type"),
        ({"resource_sid": "nope"}, "resource_sid"),
        ({"resource_sid": "WT\x00"}, "resource_sid"),
        ({"start": "soon"}, "start"),
        ({"page_size": 0}, "page_size"),
        ({"page_token": "PI" + "9" * 19}, "page_token"),
    ],
)
def test_events_refuse_bad_parameters(world, params, field):
    assert_error(world.supervisor.get(f"{world.ws}/events", params), 400, 20001, field)


def test_events_of_another_workspace_are_not_listed(world, scenario):
    other = other_workspace()
    listed = ok(world.supervisor.get(f"{world.ws}/events", {"resource_sid": other.task.sid}))
    assert listed["results"] == []
    theirs = ok(world.supervisor.get(f"{ROOT}/{other.workspace.sid}/events", {"page_size": 1000}))
    assert {e["sid"] for e in theirs["results"]}.isdisjoint(
        Event.objects.filter(workspace=world.workspace).values_list("sid", flat=True)
    )


# ---------------------------------------------------------------- schema

OPERATIONS = (
    "routing_workspaces_list",
    "routing_workspaces_create",
    "routing_workspaces_retrieve",
    "routing_workspaces_update",
    "routing_workspaces_delete",
    "routing_activities_list",
    "routing_activities_create",
    "routing_activities_retrieve",
    "routing_activities_delete",
    "routing_task_channels_list",
    "routing_task_channels_create",
    "routing_task_channels_retrieve",
    "routing_task_queues_list",
    "routing_task_queues_create",
    "routing_task_queues_retrieve",
    "routing_task_queues_update",
    "routing_task_queues_delete",
    "routing_task_queues_statistics",
    "routing_workflows_list",
    "routing_workflows_create",
    "routing_workflows_retrieve",
    "routing_workflows_update",
    "routing_workflows_delete",
    "routing_workers_list",
    "routing_workers_create",
    "routing_workers_me",
    "routing_workers_retrieve",
    "routing_workers_update",
    "routing_workers_delete",
    "routing_workers_activity_set",
    "routing_workers_channel_update",
    "routing_workers_reservations_list",
    "routing_tasks_list",
    "routing_tasks_create",
    "routing_tasks_retrieve",
    "routing_tasks_update",
    "routing_tasks_delete",
    "routing_tasks_cancel",
    "routing_tasks_wrapup",
    "routing_tasks_complete",
    "routing_tasks_reservations_list",
    "routing_reservations_retrieve",
    "routing_reservations_accept",
    "routing_reservations_reject",
    "routing_reservations_wrapup",
    "routing_reservations_complete",
    "routing_statistics",
    "routing_events_list",
)


def test_the_schema_documents_every_routing_operation_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    for operation in OPERATIONS:
        assert f"operationId: {operation}\n" in text
    assert text.count("operationId: routing_") == len(OPERATIONS)


def test_the_served_schema_has_the_routing_paths_and_security(db):
    document = json.loads(Client().get("/api/schema/", {"format": "json"}).content)
    ws = "/api/v1/routing/workspaces/{workspace_sid}"
    assert {
        "/api/v1/routing/workspaces",
        ws,
        f"{ws}/activities",
        f"{ws}/task-channels",
        f"{ws}/task-queues/{{queue_sid}}",
        f"{ws}/task-queues/{{queue_sid}}/statistics",
        f"{ws}/workflows/{{workflow_sid}}",
        f"{ws}/workers/me",
        f"{ws}/workers/{{worker_sid}}/activity",
        f"{ws}/workers/{{worker_sid}}/channels/{{unique_name}}",
        f"{ws}/workers/{{worker_sid}}/reservations",
        f"{ws}/tasks",
        f"{ws}/tasks/{{task_sid}}/complete",
        f"{ws}/reservations/{{reservation_sid}}/accept",
        f"{ws}/statistics",
        f"{ws}/events",
    } <= set(document["paths"])
    tasks_path = document["paths"][f"{ws}/tasks"]
    assert set(tasks_path) >= {"get", "post"}
    assert tasks_path["post"]["security"] == [{"routingBasicAuth": []}, {"routingCookieAuth": []}]
    assert {"400", "401", "403", "404"} <= set(tasks_path["post"]["responses"])
    schemes = document["components"]["schemas"]
    assert {"attributes", "assignment_status", "task_queue_sid", "age"} <= set(
        schemes["TaskOutput"]["properties"]
    )
    assert {"code", "message", "field", "status"} == set(
        schemes["RoutingErrorOutput"]["properties"]
    )
