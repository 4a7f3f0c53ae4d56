"""The routing admin: every page renders; writes go through the services (workspace defaults,
queue membership, worker activity and capacity); expressions and workflow configurations are
refused with their positioned messages next to the field; tasks change only through the
actions; the event log is read-only; the expression page lists exactly what matches."""

import html
import json
import re

import pytest
from django.utils import timezone

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
from routing.services import reservations, tasks
from tests.routing.conftest import activity

MODELS = (
    "workspace",
    "activity",
    "taskchannel",
    "worker",
    "taskqueue",
    "workflow",
    "task",
    "reservation",
    "event",
)


def _page(response) -> str:
    return html.unescape(response.content.decode())


def _field(page: str, name: str) -> str:
    """The admin form row of a field that has errors: its messages and its input."""
    row = re.search(rf'<div class="form-row errors field-{name}">(.*?)</textarea>', page, re.S)
    assert row, f"no error next to {name}"
    return row.group(1)


def _task(workspace, workflow, commit, language="es", channel="sms", **attributes):
    with commit():
        task = tasks.task_create(
            workspace=workspace,
            workflow=workflow,
            attributes={"language": language, **attributes},
            task_channel=channel,
        )
    task.refresh_from_db()
    return task


@pytest.fixture
def admin(admin_user, client_for):
    return client_for(admin_user)


@pytest.fixture
def world(workspace, queues, workflow, make_worker, commit):
    """Ana (es, level 3) holds an assigned task; Ben (es, en) and Cy (en) are available;
    a Spanish task waits (Ana is full) and an English one is offered to Ben or Cy."""
    with commit():
        ana = make_worker("ana", languages=("es",), level=3)
    assigned = _task(workspace, workflow, commit)
    with commit():
        reservations.reservation_accept(Reservation.objects.get(task=assigned))
    with commit():
        ben = make_worker("ben", languages=("es", "en"), level=1, available=False)
        cy = make_worker("cy", languages=("en",), level=2, available=False)
    waiting = _task(workspace, workflow, commit)
    english = _task(workspace, workflow, commit, language="en", vip=True)
    assigned.refresh_from_db()
    return {
        "ana": ana,
        "ben": ben,
        "cy": cy,
        "assigned": assigned,
        "waiting": waiting,
        "english": english,
    }


# ---------------------------------------------------------------- pages


def test_every_routing_changelist_add_and_change_page_renders(admin, world, workspace, queues):
    for model in MODELS:
        response = admin.get(f"/admin/routing/{model}/")
        assert response.status_code == 200, model
    for model in ("workspace", "activity", "taskchannel", "worker", "taskqueue", "workflow"):
        response = admin.get(f"/admin/routing/{model}/add/")
        assert response.status_code == 200, model
    reservation = Reservation.objects.get(task=world["assigned"])
    event = Event.objects.filter(resource_sid=world["assigned"].sid).first()
    objects = {
        "workspace": workspace,
        "activity": activity(workspace, "Available"),
        "taskchannel": TaskChannel.objects.get(workspace=workspace, unique_name="sms"),
        "worker": world["ana"],
        "taskqueue": queues["es"],
        "workflow": Workflow.objects.get(),
        "task": world["assigned"],
        "reservation": reservation,
        "event": event,
    }
    for model, obj in objects.items():
        response = admin.get(f"/admin/routing/{model}/{obj.pk}/change/")
        assert response.status_code == 200, model
        assert obj.sid in response.content.decode(), model
    # The task page shows its attributes pretty-printed and its reservation.
    page = _page(admin.get(f"/admin/routing/task/{world['assigned'].pk}/change/"))
    assert '"language": "es"' in page and reservation.sid in page


def test_the_admin_site_refuses_an_agent(agent1, client_for, workspace):
    response = client_for(agent1).get("/admin/routing/workspace/")
    assert response.status_code == 302 and "/login/" in response["Location"]
    response = client_for(agent1).get(f"/admin/routing/workspace/{workspace.pk}/evaluate/")
    assert response.status_code == 302 and "/login/" in response["Location"]


# ---------------------------------------------------------------- workspaces


def test_creating_a_workspace_creates_its_activities_and_channels(admin):
    response = admin.post(
        "/admin/routing/workspace/add/",
        {
            "friendly_name": "Sales",
            "multitask_enabled": "on",
            "event_callback_url": "hooks.example.com/routing",
            "event_callback_secret": "",
            "events_filter": '["task.created"]',
        },
    )
    assert response.status_code == 302, _page(response)
    workspace = Workspace.objects.get(friendly_name="Sales")
    assert set(workspace.activities.values_list("friendly_name", "available")) == {
        ("Offline", False),
        ("Available", True),
        ("Unavailable", False),
        ("Break", False),
    }
    assert sorted(workspace.channels.values_list("unique_name", flat=True)) == [
        "chat",
        "default",
        "messenger",
        "sms",
        "voice",
        "whatsapp",
    ]
    assert workspace.default_activity.friendly_name == "Offline"
    assert workspace.timeout_activity.friendly_name == "Offline"
    assert len(workspace.event_callback_secret) >= 32
    assert workspace.event_callback_url == "https://hooks.example.com/routing"
    assert workspace.events_filter == ["task.created"]


def test_a_workspace_offers_only_its_own_activities_and_refuses_bad_event_types(admin, workspace):
    other = Workspace.objects.create(friendly_name="Other")
    foreign = Activity.objects.create(workspace=other, friendly_name="Elsewhere")
    page = _page(admin.get(f"/admin/routing/workspace/{workspace.pk}/change/"))
    assert "Elsewhere" not in page and "Unavailable" in page
    assert f"/admin/routing/workspace/{workspace.pk}/evaluate/" in page
    data = {
        "friendly_name": "Support",
        "default_activity": foreign.pk,
        "timeout_activity": activity(workspace, "Offline").pk,
        "multitask_enabled": "on",
        "event_callback_url": "",
        "event_callback_secret": workspace.event_callback_secret,
        "events_filter": '["task.nope"]',
    }
    page = _page(admin.post(f"/admin/routing/workspace/{workspace.pk}/change/", data))
    assert "Select a valid choice" in page
    assert 'A JSON list of event types, e.g. ["task.created"].' in page
    workspace.refresh_from_db()
    assert workspace.default_activity.friendly_name == "Offline"


# ---------------------------------------------------------------- activities


def test_the_default_activity_cannot_be_deleted_and_a_busy_one_keeps_its_availability(
    admin, workspace, make_worker
):
    offline = activity(workspace, "Offline")
    response = admin.post(f"/admin/routing/activity/{offline.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert Activity.objects.filter(pk=offline.pk).exists()
    follow = _page(admin.get(response["Location"]))
    assert "default or timeout activity cannot be deleted" in follow

    make_worker("ana")  # in Available
    available = activity(workspace, "Available")
    page = _page(admin.get(f"/admin/routing/activity/{available.pk}/change/"))
    assert 'name="available"' not in page  # read-only while workers are in it
    brk = activity(workspace, "Break")
    response = admin.post(
        f"/admin/routing/activity/{brk.pk}/change/", {"friendly_name": "Lunch", "available": "on"}
    )
    assert response.status_code == 302
    brk.refresh_from_db()
    assert (brk.friendly_name, brk.available, brk.workspace) == ("Lunch", True, workspace)
    response = admin.post(f"/admin/routing/activity/{brk.pk}/delete/", {"post": "yes"})
    assert not Activity.objects.filter(pk=brk.pk).exists()


# ---------------------------------------------------------------- queues


def _queue_data(workspace, **changes) -> dict:
    return {
        "workspace": workspace.pk,
        "friendly_name": "Billing",
        "target_workers": "1==1",
        "task_order": "FIFO",
        "max_reserved_workers": "1",
        **changes,
    }


def test_a_queue_with_a_bad_expression_shows_the_positioned_error_and_saves_nothing(
    admin, workspace, queues
):
    before = TaskQueue.objects.count()
    response = admin.post(
        "/admin/routing/taskqueue/add/",
        _queue_data(workspace, target_workers="skills HAS AND languages HAS 'es'"),
    )
    assert response.status_code == 200
    page = _page(response)
    # Next to the field, with its position.
    assert "expected a value at position 11, found 'AND'" in _field(page, "target_workers")
    assert TaskQueue.objects.count() == before

    spanish = queues["es"]
    response = admin.post(
        f"/admin/routing/taskqueue/{spanish.pk}/change/",
        _queue_data(workspace, friendly_name="Spanish", target_workers="languages HAS ('es'"),
    )
    assert response.status_code == 200
    assert "expected a value at position 14, found '('" in _page(response)
    spanish.refresh_from_db()
    assert spanish.target_workers == "languages HAS 'es'"


def test_saving_a_queue_refreshes_its_members(admin, workspace, queues, make_worker, commit):
    ana = make_worker("ana", languages=("es",))
    ben = make_worker("ben", languages=("en",), level=2)
    spanish = queues["es"]
    assert set(spanish.members.all()) == {ana}
    page = _page(admin.get(f"/admin/routing/taskqueue/{spanish.pk}/change/"))
    members = re.search(r'<ul class="routing-members">(.*?)</ul>', page, re.S).group(1)
    assert "ana" in members and "ben" not in members
    # The page links to the expression page, with this queue's expression.
    assert f"/admin/routing/workspace/{workspace.pk}/evaluate/?mode=workers&expression=" in page

    with commit():
        response = admin.post(
            f"/admin/routing/taskqueue/{spanish.pk}/change/",
            _queue_data(workspace, friendly_name="Spanish", target_workers="level >= 2"),
        )
    assert response.status_code == 302
    assert set(spanish.members.all()) == {ben}

    with commit():
        response = admin.post(
            "/admin/routing/taskqueue/add/",
            _queue_data(workspace, target_workers="languages HAS 'es' OR languages HAS 'en'"),
        )
    assert response.status_code == 302
    billing = TaskQueue.objects.get(friendly_name="Billing")
    assert set(billing.members.all()) == {ana, ben}
    assert billing.sid.startswith("WQ")


def test_a_queue_a_workflow_routes_to_cannot_be_deleted(admin, workflow, queues):
    response = admin.post(f"/admin/routing/taskqueue/{queues['es'].pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert TaskQueue.objects.filter(pk=queues["es"].pk).exists()
    assert "A workflow routes to this queue" in _page(admin.get(response["Location"]))


# ---------------------------------------------------------------- workflows


def test_a_workflow_with_a_bad_configuration_shows_the_path_and_position(
    admin, workspace, queues, workflow
):
    configuration = {
        "task_routing": {
            "filters": [
                {
                    "filter_friendly_name": "Spanish",
                    "expression": "language == 'es'",
                    "targets": [
                        {"queue": queues["es"].sid},
                        {"queue": queues["all"].sid, "expression": "task.language == AND"},
                    ],
                }
            ]
        }
    }
    data = {
        "workspace": workspace.pk,
        "friendly_name": "Broken",
        "configuration": json.dumps(configuration),
        "task_reservation_timeout": "120",
    }
    response = admin.post("/admin/routing/workflow/add/", data)
    assert response.status_code == 200
    page = _page(response)
    message = (
        "task_routing.filters[0].targets[1].expression: "
        "expected a value at position 17, found 'AND'"
    )
    assert message in _field(page, "configuration")
    assert not Workflow.objects.filter(friendly_name="Broken").exists()

    # Invalid JSON is refused as such; the change page shows the configuration indented.
    data.update(configuration="{not json")
    assert "Enter a valid JSON." in _page(admin.post("/admin/routing/workflow/add/", data))
    page = _page(admin.get(f"/admin/routing/workflow/{workflow.pk}/change/"))
    assert '{\n  "task_routing": {\n    "filters": [' in page
    assert queues["es"].sid in page  # the queues to route to are listed

    data.update(configuration=json.dumps(configuration).replace("== AND", "== 'es'"))
    response = admin.post("/admin/routing/workflow/add/", data)
    assert response.status_code == 302
    assert Workflow.objects.get(friendly_name="Broken").configuration == json.loads(
        data["configuration"]
    )


def test_a_workflow_is_deleted_through_the_service(admin, world, workflow, commit):
    # Active tasks keep it.
    response = admin.post(f"/admin/routing/workflow/{workflow.pk}/delete/", {"post": "yes"})
    assert response.status_code == 200 and "Cannot delete workflow" in _page(response)
    assert Workflow.objects.filter(pk=workflow.pk).exists()
    # Once every task is finished, the service removes them with the workflow.
    with commit():
        tasks.task_complete(world["assigned"])
        tasks.task_cancel(world["waiting"])
        tasks.task_cancel(world["english"])
    response = admin.post(f"/admin/routing/workflow/{workflow.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Workflow.objects.filter(pk=workflow.pk).exists()
    assert not Task.objects.exists()


# ---------------------------------------------------------------- workers


def _worker_data(workspace, **changes) -> dict:
    data = {
        "workspace": workspace.pk,
        "friendly_name": "dora",
        "user": "",
        "activity": "",
        "attributes": '{"languages": ["es"]}',
        "channels-TOTAL_FORMS": "0",
        "channels-INITIAL_FORMS": "0",
        "channels-MIN_NUM_FORMS": "0",
        "channels-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return data


def test_creating_a_worker_gives_it_every_channel_and_its_queues(admin, workspace, queues):
    sms = TaskChannel.objects.get(workspace=workspace, unique_name="sms")
    response = admin.post(
        "/admin/routing/worker/add/",
        _worker_data(
            workspace,
            **{
                "channels-TOTAL_FORMS": "1",
                "channels-0-task_channel": sms.pk,
                "channels-0-capacity": "3",
                "channels-0-available": "on",
            },
        ),
    )
    assert response.status_code == 302, _page(response)
    dora = Worker.objects.get(friendly_name="dora")
    assert dora.activity.friendly_name == "Offline"  # the workspace's default
    assert dora.available is False
    capacities = dict(
        WorkerChannel.objects.filter(worker=dora).values_list(
            "task_channel__unique_name", "capacity"
        )
    )
    assert capacities == {
        "default": 1,
        "sms": 3,
        "whatsapp": 1,
        "messenger": 1,
        "chat": 1,
        "voice": 1,
    }
    assert set(dora.queues.all()) == {queues["es"], queues["all"]}
    assert Event.objects.filter(resource_sid=dora.sid, event_type="worker.created").exists()


def test_changing_a_worker_goes_through_the_services(admin, workspace, queues, make_worker):
    ana = make_worker("ana", languages=("es",), available=False)
    assert ana.available is False
    sms = WorkerChannel.objects.get(worker=ana, task_channel__unique_name="sms")
    channels = list(WorkerChannel.objects.filter(worker=ana).order_by("id"))
    data = _worker_data(
        workspace,
        friendly_name="ana",
        activity=activity(workspace, "Available").pk,
        attributes='{"languages": ["en"]}',
        **{
            "channels-TOTAL_FORMS": str(len(channels)),
            "channels-INITIAL_FORMS": str(len(channels)),
        },
    )
    del data["workspace"]  # read-only on change
    for i, wc in enumerate(channels):
        data[f"channels-{i}-id"] = wc.pk
        data[f"channels-{i}-worker"] = ana.pk
        data[f"channels-{i}-capacity"] = "5" if wc.pk == sms.pk else str(wc.capacity)
        if wc.available:
            data[f"channels-{i}-available"] = "on"
    response = admin.post(f"/admin/routing/worker/{ana.pk}/change/", data)
    assert response.status_code == 302, _page(response)
    ana.refresh_from_db()
    sms.refresh_from_db()
    assert (ana.activity.friendly_name, ana.available) == ("Available", True)
    assert sms.capacity == 5
    assert set(ana.queues.all()) == {queues["en"], queues["all"]}
    assert set(Event.objects.filter(resource_sid=ana.sid).values_list("event_type", flat=True)) >= {
        "worker.activity.update",
        "worker.attributes.update",
        "worker.capacity.update",
    }

    # A capacity over 50 and an activity of another workspace are refused.
    other = Workspace.objects.create(friendly_name="Other")
    foreign = Activity.objects.create(workspace=other, friendly_name="Elsewhere")
    data.update(activity=foreign.pk, **{"channels-0-capacity": "51"})
    page = _page(admin.post(f"/admin/routing/worker/{ana.pk}/change/", data))
    assert "Select a valid choice" in page
    assert "Ensure this value is less than or equal to 50." in page


def test_the_set_activity_action_moves_workers(admin, workspace, make_worker):
    ana = make_worker("ana", available=False)
    ben = make_worker("ben", available=False)
    response = admin.post(
        "/admin/routing/worker/",
        {"action": "set_activity", "_selected_action": [ana.pk, ben.pk]},
    )
    assert response.status_code == 200
    assert "Set the activity of workers" in _page(response)
    response = admin.post(
        "/admin/routing/worker/",
        {
            "action": "set_activity",
            "_selected_action": [ana.pk, ben.pk],
            "apply": "1",
            "activity": activity(workspace, "Available").pk,
        },
        follow=True,
    )
    assert "2 workers are now Available." in _page(response)
    assert set(Worker.objects.values_list("available", flat=True)) == {True}


# ---------------------------------------------------------------- expression page


def _evaluate(admin, workspace, **params):
    response = admin.get(f"/admin/routing/workspace/{workspace.pk}/evaluate/", params)
    assert response.status_code == 200
    page = _page(response)
    sids = re.findall(r'<tr data-sid="([A-Z]{2}[0-9a-f]{32})"', page)
    return page, sids


def test_the_expression_page_lists_exactly_the_matching_workers(admin, workspace, world):
    page, sids = _evaluate(admin, workspace)
    assert "Evaluate an expression" in page and sids == []

    page, sids = _evaluate(
        admin, workspace, expression="languages HAS 'es' AND level < 3", mode="workers"
    )
    assert sids == [world["ben"].sid]
    assert '<strong data-testid="match-count">1</strong> of 3 workers match.' in page
    assert "<code>languages</code> <code>level</code>" in page

    page, sids = _evaluate(admin, workspace, expression="languages HAS 'en'", mode="workers")
    assert sids == [world["ben"].sid, world["cy"].sid]

    # As a target: task.* from the sample attributes, worker.* with the engine's extras.
    page, sids = _evaluate(
        admin,
        workspace,
        expression="task.language IN worker.languages AND worker.activity_name == 'Available'",
        mode="target",
        task_attributes='{"language": "es"}',
    )
    assert sids == [world["ana"].sid]
    page, sids = _evaluate(
        admin,
        workspace,
        expression="task.vip == true AND worker.channel.sms.assigned_tasks == 0",
        mode="target",
        task_sid=world["english"].sid,
    )
    assert sids == [world["ben"].sid, world["cy"].sid]  # Ana holds the assigned task


def test_the_expression_page_lists_exactly_the_matching_tasks(admin, workspace, world, commit):
    page, sids = _evaluate(admin, workspace, expression="language == 'es'", mode="tasks")
    assert sorted(sids) == sorted([world["assigned"].sid, world["waiting"].sid])
    assert "2</strong> of 3 waiting or active tasks match." in page
    with commit():
        tasks.task_cancel(world["waiting"])
    page, sids = _evaluate(admin, workspace, expression="language == 'es'", mode="tasks")
    assert sids == [world["assigned"].sid]  # a canceled task is not active
    page, sids = _evaluate(admin, workspace, expression="vip == true", mode="tasks")
    assert sids == [world["english"].sid]


def test_the_expression_page_shows_a_caret_under_the_error(admin, workspace, world):
    page, sids = _evaluate(
        admin, workspace, expression="languages HAS 'es' AND AND level > 1", mode="workers"
    )
    assert sids == []
    assert "expected a value at position 23, found 'AND'" in page
    caret = re.search(r'<pre class="routing-caret" data-position="23">(.*?)</pre>', page, re.S)
    line, marker = caret.group(1).split("\n")
    assert line == "languages HAS 'es' AND AND level > 1"
    assert marker == " " * 23 + '<span class="caret">^</span>'

    # On the second line of a multi-line expression, under the right column.
    page, sids = _evaluate(admin, workspace, expression="level > 1\n  AND (x ==", mode="workers")
    caret = re.search(r'<pre class="routing-caret" data-position="(\d+)">(.*?)</pre>', page, re.S)
    assert caret.group(2).split("\n") == ["  AND (x ==", " " * 11 + '<span class="caret">^</span>']

    # A target expression must prefix its keys.
    page, sids = _evaluate(admin, workspace, expression="language == 'es'", mode="target")
    assert "key 'language' at position 0 must start with one of: task., worker." in page
    # A bad sample task is a form error, not a crash.
    page, sids = _evaluate(
        admin, workspace, expression="task.x == 1", mode="target", task_sid="WTnope"
    )
    assert "No task with this sid in the workspace." in page
    page, sids = _evaluate(
        admin, workspace, expression="task.x == 1", mode="target", task_attributes="[1]"
    )
    assert "Enter a JSON object." in page


# ---------------------------------------------------------------- tasks, reservations, events


def test_task_actions_cancel_and_complete_through_the_services(admin, world):
    waiting, assigned = world["waiting"], world["assigned"]
    response = admin.post(
        "/admin/routing/task/",
        {"action": "cancel_tasks", "_selected_action": [waiting.pk, assigned.pk]},
        follow=True,
    )
    assert response.status_code == 200
    page = _page(response)
    assert "1 task canceled." in page
    assert f"{assigned.sid}: The task is assigned: only pending or reserved tasks" in page
    waiting.refresh_from_db()
    assigned.refresh_from_db()
    assert (waiting.assignment_status, assigned.assignment_status) == ("canceled", "assigned")
    assert waiting.reason == "Canceled in the admin by admin"
    assert Event.objects.filter(
        resource_sid=waiting.sid, event_type="task.canceled", actor="admin"
    ).exists()

    response = admin.post(
        "/admin/routing/task/",
        {"action": "complete_tasks", "_selected_action": [assigned.pk, waiting.pk]},
        follow=True,
    )
    page = _page(response)
    assert "1 task completed." in page and f"{waiting.sid}: The task is canceled" in page
    assigned.refresh_from_db()
    assert assigned.assignment_status == "completed"
    assert (
        WorkerChannel.objects.get(
            worker=world["ana"], task_channel__unique_name="sms"
        ).assigned_tasks
        == 0
    )


def test_tasks_and_reservations_are_read_only(admin, world):
    task = world["waiting"]
    assert admin.get("/admin/routing/task/add/").status_code == 403
    assert admin.get("/admin/routing/reservation/add/").status_code == 403
    response = admin.post(f"/admin/routing/task/{task.pk}/change/", {"priority": "9"})
    assert response.status_code == 403
    assert admin.post(f"/admin/routing/task/{task.pk}/delete/", {"post": "yes"}).status_code == 403
    task.refresh_from_db()
    assert task.priority == 0 and Task.objects.filter(pk=task.pk).exists()


def test_events_cannot_be_added_changed_or_deleted(admin, world):
    event = Event.objects.filter(resource_sid=world["assigned"].sid).order_by("id").first()
    assert admin.get("/admin/routing/event/add/").status_code == 403
    assert (
        admin.post("/admin/routing/event/add/", {"event_type": "task.created"}).status_code == 403
    )
    response = admin.post(f"/admin/routing/event/{event.pk}/change/", {"description": "edited"})
    assert response.status_code == 403
    assert (
        admin.post(f"/admin/routing/event/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    count = Event.objects.count()
    response = admin.post(
        "/admin/routing/event/", {"action": "delete_selected", "_selected_action": [event.pk]}
    )
    assert Event.objects.count() == count
    event.refresh_from_db()
    assert event.description != "edited"
    page = _page(admin.get(f"/admin/routing/event/{event.pk}/change/"))
    assert 'name="description"' not in page and 'name="_save"' not in page
    changelist = _page(admin.get("/admin/routing/event/"))
    assert 'value="delete_selected"' not in changelist


def test_events_filter_by_type_resource_and_date(admin, world):
    english = world["english"]
    response = admin.get("/admin/routing/event/", {"resource_sid": english.sid})
    assert response.status_code == 200
    shown = response.context["cl"].result_list
    assert shown and {e.resource_sid for e in shown} == {english.sid}
    response = admin.get(
        "/admin/routing/event/", {"resource_sid": english.sid, "event_type": "task.created"}
    )
    assert [e.event_type for e in response.context["cl"].result_list] == ["task.created"]
    response = admin.get("/admin/routing/event/", {"event_type": "reservation.accepted"})
    assert {e.resource_sid for e in response.context["cl"].result_list} == set(
        Reservation.objects.filter(status="accepted").values_list("sid", flat=True)
    )
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    response = admin.get("/admin/routing/event/", {"date_created__gte": str(today)})
    assert len(response.context["cl"].result_list) == Event.objects.count()
    response = admin.get("/admin/routing/event/", {"date_created__lt": str(today)})
    assert len(response.context["cl"].result_list) == 0
    page = _page(admin.get("/admin/routing/event/"))
    assert "worker.activity.update" in page  # every declared type is a filter choice


def test_membership_rows_survive_the_admin_pages(admin, world, queues):
    """Opening pages writes nothing (no save on GET)."""
    before = set(QueueMembership.objects.values_list("queue_id", "worker_id"))
    for model in MODELS:
        admin.get(f"/admin/routing/{model}/")
    admin.get(f"/admin/routing/taskqueue/{queues['es'].pk}/change/")
    assert set(QueueMembership.objects.values_list("queue_id", "worker_id")) == before
