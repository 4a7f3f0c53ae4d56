"""The supervisor console's figures, on a routing world built through the services and on
messages whose timestamps the tests set; time is fixed by passing `now`/`start`/`end`."""

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from contactcenter.desk import supervision
from contactcenter.desk.services import HandoffRequest, conversation_handoff
from messaging.addresses import parse_address
from messaging.models import Account, Message, MessagingService
from messaging.services.accounts import account_get_or_create_default
from messaging.services.messages import contact_get_or_create, conversation_get_or_open
from routing.models import DEFAULT_CHANNELS, Activity, Reservation, Task, Worker
from routing.services import config, reservations, tasks, workers

# ---------------------------------------------------------------- a routing world


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """`with commit(): service(...)`: the on-commit work (assignment attempts) runs too."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


def _activity(workspace, name: str) -> Activity:
    return Activity.objects.get(workspace=workspace, friendly_name=name)


def _worker(workspace, commit, name, *, team, available=True, capacities=None, user=None):
    with commit():
        worker = workers.worker_create(
            workspace=workspace,
            friendly_name=name,
            attributes={"team": team},
            capacities=capacities,
            user=user,
        )
        if available:
            workers.worker_activity_set(worker, activity=_activity(workspace, "Available"))
    return Worker.objects.get(pk=worker.pk)


def _task(center, topic="billing", *, priority=0, **attributes) -> Task:
    with center.commit():
        task = tasks.task_create(
            workspace=center.workspace,
            workflow=center.workflow,
            attributes={"topic": topic, **attributes},
            task_channel="sms",
            priority=priority,
        )
    return Task.objects.get(pk=task.pk)


def _accept(center, task: Task) -> Reservation:
    offer = Reservation.objects.get(task=task, status="pending")
    with center.commit():
        reservations.reservation_accept(offer)
    return Reservation.objects.get(pk=offer.pk)


def _timing(task: Task, *, created: datetime, accepted: datetime | None = None) -> None:
    """The task came in at `created` and (if given) its agent accepted it at `accepted`."""
    Task.objects.filter(pk=task.pk).update(date_created=created)
    if accepted is not None:
        Reservation.objects.filter(task=task, accepted_at__isnull=False).update(
            accepted_at=accepted
        )


def _zero_capacity() -> dict[str, int]:
    return dict.fromkeys(DEFAULT_CHANNELS, 0)


@pytest.fixture
def center(db, commit, agent1):
    """Billing and Sales queues (Sales created first: rows are ordered by name), workers bea
    (billing, 2 SMS slots), carl (billing, no capacity), dan (billing, offline) and erin
    (sales), and tasks in every state. Timestamps are set relative to `now`."""
    workspace = config.workspace_create(friendly_name="Support")
    sales = config.queue_create(
        workspace=workspace, friendly_name="Sales", target_workers="team == 'sales'"
    )
    billing = config.queue_create(
        workspace=workspace, friendly_name="Billing", target_workers="team == 'billing'"
    )
    workflow = config.workflow_create(
        workspace=workspace,
        friendly_name="By topic",
        configuration={
            "task_routing": {
                "filters": [
                    {
                        "filter_friendly_name": "Billing",
                        "expression": "topic == 'billing'",
                        "targets": [{"queue": billing.sid}],
                    }
                ],
                "default_filter": {"queue": sales.sid},
            }
        },
    )
    w = SimpleNamespace(commit=commit, workspace=workspace, workflow=workflow)
    w.sales, w.billing = sales, billing
    w.bea = _worker(
        workspace,
        commit,
        "bea",
        team="billing",
        capacities={**_zero_capacity(), "sms": 2},
        user=agent1,
    )
    w.carl = _worker(workspace, commit, "carl", team="billing", capacities=_zero_capacity())
    w.dan = _worker(workspace, commit, "dan", team="billing", available=False)
    w.erin = _worker(workspace, commit, "erin", team="sales")
    now = timezone.now()
    w.now = now

    # Answered 30 h ago: outside the 24 h window.
    w.old = _task(w)
    _accept(w, w.old)
    with commit():
        tasks.task_complete(w.old)
    _timing(
        w.old, created=now - timedelta(hours=30, seconds=400), accepted=now - timedelta(hours=30)
    )

    # Handed off from a conversation, answered after 12 s, still assigned.
    account = account_get_or_create_default()
    contact = contact_get_or_create(
        account=account, address=parse_address("+14155550123"), name="Ana Cliente"
    )
    conversation = conversation_get_or_open(
        contact=contact, business_address="+14155550100", service=None
    )
    with commit():
        handoff = conversation_handoff(
            conversation=conversation,
            request=HandoffRequest(workflow=workflow.sid, attributes={"topic": "billing"}),
        )
    w.conversation = conversation
    w.assigned = Task.objects.get(pk=handoff.task_id)
    _accept(w, w.assigned)
    _timing(w.assigned, created=now - timedelta(seconds=100), accepted=now - timedelta(seconds=88))

    # Answered after 45 s, now wrapping up. bea is full from here on.
    w.wrapping = _task(w)
    _accept(w, w.wrapping)
    with commit():
        tasks.task_wrapup(w.wrapping)
    _timing(w.wrapping, created=now - timedelta(seconds=145), accepted=now - timedelta(seconds=100))

    # Waiting in Billing (nobody has room): two at priority 10, one at 0.
    w.vip_old = _task(
        w, priority=10, conversationSid="CHfromattributes", name="Bob", customerAddress="+1555"
    )
    w.vip_new = _task(w, priority=10)
    w.normal = _task(w)
    _timing(w.vip_old, created=now - timedelta(seconds=90))
    _timing(w.vip_new, created=now - timedelta(seconds=30))
    _timing(w.normal, created=now - timedelta(seconds=60))

    # Offered to erin in Sales, not accepted yet.
    w.offered = _task(w, topic="sales")
    _timing(w.offered, created=now - timedelta(seconds=5))

    # Canceled while waiting: abandoned (in the window), out of the window, and one that had
    # been assigned once (set by hand: not abandoned, an agent took it).
    w.abandoned = _canceled(w, ended=now - timedelta(hours=1))
    _canceled(w, ended=now - timedelta(hours=25))
    assigned_once = _canceled(w, ended=now - timedelta(hours=2))
    Task.objects.filter(pk=assigned_once.pk).update(assigned_at=now - timedelta(hours=3))
    return w


def _canceled(center, *, ended: datetime) -> Task:
    task = _task(center)
    with center.commit():
        tasks.task_cancel(task, reason="customer left")
    Task.objects.filter(pk=task.pk).update(ended_at=ended)
    return task


# ---------------------------------------------------------------- queues


def test_queue_rows(center, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):
        rows = supervision.queue_rows(center.workspace, now=center.now)

    assert [row["name"] for row in rows] == ["Billing", "Sales"]
    billing, sales = rows
    assert billing == {
        "sid": center.billing.sid,
        "name": "Billing",
        "waiting": 3,
        "waiting_by_priority": {"10": 2, "0": 1},
        "longest_wait": 90,
        "assigned": 1,
        "wrapping": 1,
        "available_workers": 2,  # bea and carl; dan is offline
        "eligible_workers": 0,  # bea is full, carl has no capacity
        "answered": 2,  # the old one is outside the window
        "answered_within_threshold": 1,  # 12 s, not 45 s
        "abandoned": 1,  # not the old one, nor the one that had been assigned
        "service_level": 0.333,  # 1 / (2 + 1)
        "threshold": 30,
    }
    assert list(billing["waiting_by_priority"]) == ["10", "0"]  # highest first
    assert sales == {
        "sid": center.sales.sid,
        "name": "Sales",
        "waiting": 1,  # reserved counts as waiting
        "waiting_by_priority": {"0": 1},
        "longest_wait": 5,
        "assigned": 0,
        "wrapping": 0,
        "available_workers": 1,
        "eligible_workers": 1,  # erin's SMS slot is offered, her other channels are free
        "answered": 0,
        "answered_within_threshold": 0,
        "abandoned": 0,
        "service_level": None,
        "threshold": 30,
    }


def _billing(center, **options) -> dict:
    return supervision.queue_rows(center.workspace, now=center.now, **options)[0]


def test_queue_rows_threshold_and_window(center):
    billing = _billing(center, threshold=50)
    assert (billing["answered_within_threshold"], billing["service_level"]) == (2, 0.667)
    assert billing["threshold"] == 50

    # A window of 1 h 30 min still holds both answers (88 and 100 s ago) and the abandoned
    # task (1 h ago); 90 s holds only the later answer.
    billing = _billing(center, window=timedelta(minutes=90))
    assert (billing["answered"], billing["abandoned"]) == (2, 1)
    billing = _billing(center, window=timedelta(seconds=90))
    assert (billing["answered"], billing["answered_within_threshold"], billing["abandoned"]) == (
        1,
        1,
        0,
    )
    assert billing["service_level"] == 1.0


def test_queue_rows_eligibility_follows_capacity(center):
    # bea's wrap-up ends: one SMS slot frees up (and the oldest VIP task is offered to her).
    reservation = Reservation.objects.get(task=center.wrapping)
    with center.commit():
        reservations.reservation_complete(reservation)
    billing = supervision.queue_rows(center.workspace, now=center.now)[0]
    assert billing["wrapping"] == 0
    assert billing["waiting"] == 3  # the offered one is reserved: still waiting
    offered = Reservation.objects.get(status="pending", worker=center.bea)
    assert offered.task_id == center.vip_old.pk
    assert billing["eligible_workers"] == 0  # the free slot went to the offer

    with center.commit():
        reservations.reservation_reject(offered, activity=_activity(center.workspace, "Break"))
    billing = supervision.queue_rows(center.workspace, now=center.now)[0]
    assert billing["available_workers"] == 1  # carl; bea is on a break


# ---------------------------------------------------------------- agents


def test_agent_rows(center, django_assert_max_num_queries):
    Worker.objects.filter(pk=center.dan.pk).update(
        activity_changed_at=center.now - timedelta(seconds=300)
    )
    with django_assert_max_num_queries(4):
        rows = supervision.agent_rows(center.workspace, now=center.now)

    assert [row["name"] for row in rows] == ["bea", "carl", "dan", "erin"]
    bea, carl, dan, erin = rows
    assert bea["sid"] == center.bea.sid and bea["user"] == "agent1"
    assert (bea["activity_name"], bea["available"]) == ("Available", True)
    assert bea["activity_sid"] == _activity(center.workspace, "Available").sid
    assert (bea["offered"], bea["held"]) == (0, 2)  # one accepted, one wrapping
    assert (bea["capacity"], bea["assigned"]) == (2, 2)
    assert bea["channels"]["sms"] == {"capacity": 2, "assigned": 2}
    assert bea["channels"]["whatsapp"] == {"capacity": 0, "assigned": 0}
    assert set(bea["channels"]) == set(DEFAULT_CHANNELS)
    # Only the task with a hand-off carries a conversation.
    assert bea["conversations"] == [
        {
            "conversation_sid": center.conversation.sid,
            "customer_name": "Ana Cliente",
            "status": "accepted",
        }
    ]

    assert carl["user"] is None and (carl["capacity"], carl["assigned"]) == (0, 0)
    assert (dan["activity_name"], dan["available"]) == ("Offline", False)
    assert dan["seconds_in_activity"] == 300
    assert dan["activity_since"] == (center.now - timedelta(seconds=300)).isoformat()
    assert (erin["offered"], erin["held"], erin["conversations"]) == (1, 0, [])
    assert (erin["capacity"], erin["assigned"]) == (len(DEFAULT_CHANNELS), 1)


def test_agent_rows_wrapping_conversation(center):
    with center.commit():
        tasks.task_wrapup(center.assigned)
    bea = supervision.agent_rows(center.workspace, now=center.now)[0]
    assert [c["status"] for c in bea["conversations"]] == ["wrapping"]
    with center.commit():
        tasks.task_complete(center.assigned)
    bea = supervision.agent_rows(center.workspace, now=center.now)[0]
    assert (bea["held"], bea["conversations"]) == (1, [])
    # The freed slot went straight to the oldest VIP task: an offer, holding capacity.
    assert (bea["offered"], bea["assigned"]) == (1, 2)


# ---------------------------------------------------------------- live tasks


def test_live_tasks(center, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        rows = supervision.live_tasks(center.workspace, now=center.now)

    # Highest priority first, then oldest; completed and canceled tasks are not live.
    assert [row["task_sid"] for row in rows] == [
        center.vip_old.sid,
        center.vip_new.sid,
        center.wrapping.sid,
        center.assigned.sid,
        center.normal.sid,
        center.offered.sid,
    ]
    by_sid = {row["task_sid"]: row for row in rows}
    assert by_sid[center.assigned.sid] == {
        "task_sid": center.assigned.sid,
        "status": "assigned",
        "priority": 0,
        "queue_sid": center.billing.sid,
        "queue_name": "Billing",
        "age": 100,
        "channel": "sms",
        "conversation_sid": center.conversation.sid,
        "customer_name": "Ana Cliente",
        "customer_address": "+14155550123",
        "agent_name": "bea",
        "worker_sid": center.bea.sid,
    }
    wrapping = by_sid[center.wrapping.sid]
    assert (wrapping["status"], wrapping["agent_name"], wrapping["age"]) == ("wrapping", "bea", 145)
    # No hand-off: what the task's attributes say.
    vip = by_sid[center.vip_old.sid]
    assert (vip["conversation_sid"], vip["customer_name"], vip["customer_address"]) == (
        "CHfromattributes",
        "Bob",
        "+1555",
    )
    assert (vip["status"], vip["priority"], vip["agent_name"], vip["worker_sid"]) == (
        "pending",
        10,
        None,
        None,
    )
    bare = by_sid[center.vip_new.sid]
    assert (bare["conversation_sid"], bare["customer_name"], bare["customer_address"]) == (
        None,
        None,
        None,
    )
    # An offer is not a holder.
    offered = by_sid[center.offered.sid]
    assert (offered["status"], offered["queue_name"], offered["agent_name"]) == (
        "reserved",
        "Sales",
        None,
    )


# ---------------------------------------------------------------- wait-time histogram


def test_wait_time_labels():
    assert supervision.wait_time_labels([10, 30, 60, 120, 300]) == [
        "<10 s",
        "10\u201330 s",
        "30\u201360 s",
        "1\u20132 min",
        "2\u20135 min",
        "\u22655 min",
    ]
    assert supervision.wait_time_labels([45, 90]) == ["<45 s", "45\u201390 s", "\u226590 s"]
    assert supervision.wait_time_labels([60]) == ["<1 min", "\u22651 min"]


def test_wait_time_histogram(center, django_assert_max_num_queries):
    now = center.now
    with django_assert_max_num_queries(1):
        buckets = supervision.wait_time_histogram(
            center.workspace, start=now - timedelta(days=2), end=now
        )
    assert [b["label"] for b in buckets] == supervision.wait_time_labels([10, 30, 60, 120, 300])
    # 12 s, 45 s, and the old one 400 s.
    assert [b["count"] for b in buckets] == [0, 1, 1, 0, 0, 1]

    hour = supervision.wait_time_histogram(
        center.workspace, start=now - timedelta(hours=1), end=now
    )
    assert [b["count"] for b in hour] == [0, 1, 1, 0, 0, 0]

    # Bounds are lower-inclusive: exactly 10 s is in the second bucket, 300 s in the last.
    _timing(
        center.assigned, created=now - timedelta(seconds=98), accepted=now - timedelta(seconds=88)
    )
    _timing(
        center.wrapping, created=now - timedelta(seconds=400), accepted=now - timedelta(seconds=100)
    )
    old_created = now - timedelta(hours=30, seconds=9.5)
    Task.objects.filter(pk=center.old.pk).update(date_created=old_created)
    buckets = supervision.wait_time_histogram(
        center.workspace, start=now - timedelta(days=2), end=now
    )
    assert [b["count"] for b in buckets] == [1, 1, 0, 0, 0, 1]
    # The end is exclusive: an answer accepted exactly at `end` is left out.
    buckets = supervision.wait_time_histogram(
        center.workspace, start=now - timedelta(days=2), end=now - timedelta(seconds=100)
    )
    assert [b["count"] for b in buckets] == [1, 0, 0, 0, 0, 0]
    custom = supervision.wait_time_histogram(
        center.workspace, start=now - timedelta(days=2), end=now, bounds=(60,)
    )
    assert custom == [{"label": "<1 min", "count": 2}, {"label": "\u22651 min", "count": 1}]


def test_wait_time_histogram_other_workspace_is_empty(center):
    other = config.workspace_create(friendly_name="Other")
    buckets = supervision.wait_time_histogram(
        other, start=center.now - timedelta(days=2), end=center.now
    )
    assert sum(b["count"] for b in buckets) == 0 and len(buckets) == 6


# ---------------------------------------------------------------- messages


def _message(
    account,
    *,
    at: datetime,
    direction: str = "outbound-api",
    to: str = "+15550001",
    sender: str = "+14155550100",
    status: str = "delivered",
    service=None,
    tags=None,
    **fields,
) -> Message:
    inbound = direction == "inbound"
    message = Message.objects.create(
        sid=f"{'MM' if inbound else 'SM'}{uuid.uuid4().hex}",
        account=account,
        service=service,
        channel="sms",
        direction=direction,
        from_address=to if inbound else sender,
        to_address=sender if inbound else to,
        status="received" if inbound else status,
        tags=tags or {},
        **fields,
    )
    Message.objects.filter(pk=message.pk).update(date_created=at)
    return message


def test_volume_per_hour(db, django_assert_max_num_queries):
    account = account_get_or_create_default()
    now = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    _message(account, at=now.replace(minute=5), direction="inbound")
    _message(account, at=now.replace(minute=10), direction="outbound-api")
    _message(account, at=now.replace(minute=29), direction="outbound-reply")
    _message(account, at=now.replace(hour=10, minute=59, second=59), direction="outbound-call")
    _message(account, at=now.replace(hour=10, minute=0), direction="inbound")
    _message(account, at=now.replace(hour=9, minute=59), direction="inbound")  # too old
    _message(account, at=now.replace(minute=31), direction="inbound")  # after now

    with django_assert_max_num_queries(1):
        volume = supervision.volume_per_hour(now=now, hours=3)
    assert volume == [
        {"hour": "2026-03-01T10:00:00+00:00", "inbound": 1, "outbound": 1},
        {"hour": "2026-03-01T11:00:00+00:00", "inbound": 0, "outbound": 0},
        {"hour": "2026-03-01T12:00:00+00:00", "inbound": 1, "outbound": 2},
    ]
    day = supervision.volume_per_hour(now=now)
    assert len(day) == 24 and day[0]["hour"] == "2026-02-28T13:00:00+00:00"
    assert sum(h["inbound"] + h["outbound"] for h in day) == 6


@pytest.fixture
def campaign(db):
    """A day of messages through two services and without one. Recipients +1001…+1005 got
    the spring campaign; +1001 answered, +1003 wrote STOP, +1002 wrote only before its
    message, +1004 only after the window."""
    account = account_get_or_create_default()
    t0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    marketing = MessagingService.objects.create(account=account, friendly_name="Marketing")
    alerts = MessagingService.objects.create(account=account, friendly_name="Alerts")
    spring = {"campaign": "spring"}

    def out(to, status, hours, **fields):
        fields.setdefault("service", marketing)
        fields.setdefault("tags", spring)
        return _message(account, at=t0 + timedelta(hours=hours), to=to, status=status, **fields)

    def reply(frm, hours, **fields):
        return _message(
            account, at=t0 + timedelta(hours=hours), direction="inbound", to=frm, **fields
        )

    out("+1001", "delivered", 1)
    out("+1002", "read", 1)
    out("+1003", "failed", 1, error_code=30003)
    out("+1004", "undelivered", 1, error_code=30003)
    out("+1005", "failed", 1, error_code=30007)
    out("+1001", "sent", 3)
    out("+1006", "scheduled", 2)  # never left
    out("+1007", "canceled", 2)  # never left
    out("+1008", "delivered", -1)  # before the window
    out("+1003", "delivered", 4.5, keyword_reply=True, tags={})  # the STOP confirmation
    reply("+1001", 2, service=marketing)
    reply("+1002", 0.5, service=marketing)
    reply("+1003", 4, service=marketing, opt_out_type="STOP")
    reply("+1004", 25, service=marketing)

    out("+2001", "delivered", 2, service=alerts, tags={"bulk": "run42"})
    out("+2002", "delivered", 2, service=alerts, tags={})

    out("+3001", "failed", 2, service=None, tags={})
    reply("+3002", 3, service=None, opt_out_type="STOP")

    other = Account.objects.create(friendly_name="Other", auth_token_encrypted="x")
    _message(other, at=t0 + timedelta(hours=2), to="+4001", status="delivered")
    return SimpleNamespace(account=account, t0=t0, marketing=marketing, alerts=alerts, other=other)


def test_messaging_analytics_per_service(campaign, django_assert_max_num_queries):
    start, end = campaign.t0, campaign.t0 + timedelta(days=1)
    with django_assert_max_num_queries(6):
        analytics = supervision.messaging_analytics(start=start, end=end, account=campaign.account)
    assert (analytics["start"], analytics["end"]) == (start.isoformat(), end.isoformat())
    services = analytics["services"]
    assert [s["name"] for s in services] == ["Alerts", "Marketing", "No service"]
    alerts, marketing, none = services
    assert marketing == {
        "key": campaign.marketing.sid,
        "name": "Marketing",
        "sent": 6,
        "delivered": 2,  # delivered + read
        "delivered_rate": 0.333,
        "failed": 3,  # failed + undelivered
        "failed_by_error": [{"code": 30003, "count": 2}, {"code": 30007, "count": 1}],
        "recipients": 5,
        "responded": 2,  # +1001 and +1003 (after their first message)
        "response_rate": 0.4,
        "opt_outs": 1,
    }
    assert alerts == {
        "key": campaign.alerts.sid,
        "name": "Alerts",
        "sent": 2,
        "delivered": 2,
        "delivered_rate": 1.0,
        "failed": 0,
        "failed_by_error": [],
        "recipients": 2,
        "responded": 0,
        "response_rate": 0.0,
        "opt_outs": 0,
    }
    assert none["key"] is None
    assert (none["sent"], none["failed"], none["failed_by_error"]) == (
        1,
        1,
        [{"code": None, "count": 1}],
    )
    assert (none["opt_outs"], none["delivered_rate"], none["response_rate"]) == (1, 0.0, 0.0)


def test_messaging_analytics_per_campaign_tag(campaign):
    start, end = campaign.t0, campaign.t0 + timedelta(days=1)
    tags = supervision.messaging_analytics(start=start, end=end, account=campaign.account)["tags"]
    # The caller's "campaign" tag, and send_bulk's run id where there is none.
    assert [(t["key"], t["name"]) for t in tags] == [("run42", "run42"), ("spring", "spring")]
    run, spring = tags
    assert (run["sent"], run["delivered_rate"], run["recipients"], run["opt_outs"]) == (
        1,
        1.0,
        1,
        0,
    )
    assert spring["sent"] == 6 and spring["failed"] == 3
    assert (spring["recipients"], spring["responded"], spring["response_rate"]) == (5, 2, 0.4)
    assert spring["opt_outs"] == 1  # +1003 wrote STOP after a spring message


def test_messaging_analytics_window_and_accounts(campaign):
    start = campaign.t0
    # Until 2 h 30 min: +1001 has answered, +1003 has not written STOP yet.
    early = supervision.messaging_analytics(
        start=start, end=start + timedelta(hours=2, minutes=30), account=campaign.account
    )
    marketing = early["services"][1]
    assert (marketing["sent"], marketing["responded"], marketing["opt_outs"]) == (5, 1, 0)

    everyone = supervision.messaging_analytics(start=start, end=start + timedelta(days=1))
    none = everyone["services"][-1]
    assert (none["name"], none["sent"]) == ("No service", 2)  # the other account's too

    empty = supervision.messaging_analytics(
        start=start - timedelta(days=9), end=start - timedelta(days=8)
    )
    assert (empty["services"], empty["tags"]) == ([], [])
