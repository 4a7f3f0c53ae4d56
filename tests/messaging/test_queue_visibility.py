"""Queue visibility: depths and ages per sender and per service from the database, the
`/api/v1/queues` endpoint, and the admin columns and page."""

import base64
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging import crypto
from messaging.models import Account, Message, MessagingService, ProviderAccount, Sender
from messaging.selectors import delivery_queue_depths
from messaging.services.messages import MessageRequest, message_create, message_status_apply
from messaging.statuses import Status

QUEUES = "/api/v1/queues"
LONG_CODE = "+14155550100"
TOLL_FREE = "+18885550100"
CUSTOMERS = [f"+1415555{n:04d}" for n in range(200, 260)]
TWO_SEGMENTS = "x" * 200  # GSM-7: 153 characters a segment once concatenated


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def send(account, *, to: str, from_: str | None = None, service=None, body: str = "hi", **extra):
    return message_create(
        account=account,
        request=MessageRequest(
            to=to,
            from_=from_,
            messaging_service_sid=service.sid if service else None,
            body=body,
            **extra,
        ),
    )


def backdate(message: Message, when, **fields) -> None:
    Message.objects.filter(id=message.id).update(date_created=when, **fields)


def other_account_with_queue() -> Account:
    """Another tenant with a queued message and a service: must never show up for ours."""
    other = Account.objects.create(
        friendly_name="Other", auth_token_encrypted=crypto.encrypt(crypto.new_token())
    )
    provider = ProviderAccount.objects.create(account=other, name="Theirs", kind="simulator")
    service = MessagingService.objects.create(account=other, friendly_name="Their service")
    Sender.objects.create(
        account=other, provider=provider, service=service, kind="long_code", address="+14155550177"
    )
    send(other, to=CUSTOMERS[-1], from_="+14155550177", body=TWO_SEGMENTS)
    return other


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def queues(world, now):
    """On the long code: 3 queued (4 segments; the oldest waited 120 s) and 1 sending. On
    the toll-free (throughput 2.5): one 2-segment message released from a schedule 10 s ago,
    created three days ago. On the service: 2 accepted (oldest 30 s) and 1 scheduled. A
    second, idle service. An unpooled sender with 1 queued. Another account's queue."""
    account, service = world.account, world.service
    first = send(account, to=CUSTOMERS[0], from_=LONG_CODE)
    backdate(first, now - timedelta(seconds=120))
    second = send(account, to=CUSTOMERS[1], from_=LONG_CODE, body=TWO_SEGMENTS)
    backdate(second, now - timedelta(seconds=60))
    send(account, to=CUSTOMERS[2], from_=LONG_CODE)
    leaving = send(account, to=CUSTOMERS[3], from_=LONG_CODE, body=TWO_SEGMENTS)
    assert message_status_apply(message_id=leaving.id, status=Status.SENDING, source="system")
    gone = send(account, to=CUSTOMERS[4], from_=LONG_CODE)
    assert message_status_apply(message_id=gone.id, status=Status.SENT, source="system")

    toll_free = world.senders["toll_free"]
    Sender.objects.filter(id=toll_free.id).update(throughput=Decimal("2.50"))
    released = send(account, to=CUSTOMERS[5], from_=TOLL_FREE, body=TWO_SEGMENTS)
    backdate(released, now - timedelta(days=3), send_at=now - timedelta(seconds=10))

    for index, age in ((6, 30), (7, 5)):
        accepted = send(account, to=CUSTOMERS[index], service=service)
        assert accepted.status == Status.ACCEPTED
        backdate(accepted, now - timedelta(seconds=age))
    scheduled = send(
        account,
        to=CUSTOMERS[8],
        service=service,
        schedule_type="fixed",
        send_at=now + timedelta(hours=1),
    )
    assert scheduled.status == Status.SCHEDULED

    idle = MessagingService.objects.create(account=account, friendly_name="Idle service")
    loner = Sender.objects.create(
        account=account, provider=world.provider, kind="long_code", address="+14155550111"
    )
    lone = send(account, to=CUSTOMERS[9], from_=loner.address, body=TWO_SEGMENTS * 2)
    backdate(lone, now - timedelta(seconds=7))
    other = other_account_with_queue()
    return {"idle": idle, "loner": loner, "lone": lone, "other": other}


# ---------------------------------------------------------------- selector


def test_depths_per_sender(world, queues, now):
    depths = delivery_queue_depths(account=world.account, now=now)
    assert depths["generated_at"] == now
    by_address = {entry["address"]: entry for entry in depths["senders"]}
    # Idle senders are left out; the other account's sender too.
    assert set(by_address) == {LONG_CODE, TOLL_FREE, "+14155550111"}

    long_code = by_address[LONG_CODE]
    assert long_code["sid"] == world.senders["long_code"].sid
    assert long_code["service_sid"] == world.service.sid
    assert (long_code["queued_messages"], long_code["queued_segments"]) == (3, 4)
    assert long_code["sending"] == 1
    assert long_code["oldest_queued_age_seconds"] == pytest.approx(120, abs=0.01)
    assert long_code["throughput"] == 1.0  # a US long code's default
    assert long_code["drain_seconds_estimate"] == pytest.approx(4.0)

    toll_free = by_address[TOLL_FREE]
    assert (toll_free["queued_messages"], toll_free["queued_segments"]) == (1, 2)
    # Released from a schedule: counted from send_at, not from three days ago.
    assert toll_free["oldest_queued_age_seconds"] == pytest.approx(10, abs=0.01)
    assert toll_free["throughput"] == 2.5
    assert toll_free["drain_seconds_estimate"] == pytest.approx(0.8)

    loner = by_address["+14155550111"]
    assert loner["service_sid"] is None
    lone_segments = Message.objects.get(id=queues["lone"].id).num_segments
    assert loner["queued_segments"] == lone_segments == 3
    assert loner["oldest_queued_age_seconds"] == pytest.approx(7, abs=0.01)
    # Fullest first.
    assert [e["address"] for e in depths["senders"]] == [LONG_CODE, "+14155550111", TOLL_FREE]


def test_depths_per_service(world, queues, now):
    depths = delivery_queue_depths(account=world.account, now=now)
    by_sid = {entry["sid"]: entry for entry in depths["services"]}
    # Every service of the account, idle ones too; none of the other account's.
    assert set(by_sid) == {world.service.sid, queues["idle"].sid}

    service = by_sid[world.service.sid]
    assert service["accepted"] == 2
    assert service["scheduled"] == 1
    assert service["oldest_accepted_age_seconds"] == pytest.approx(30, abs=0.01)
    # Queued on its senders: long code 3 (4 segments) + toll-free 1 (2 segments).
    assert (service["queued_messages"], service["queued_segments"]) == (4, 6)
    assert service["sending"] == 1
    assert service["oldest_queued_age_seconds"] == pytest.approx(120, abs=0.01)
    # Six pooled senders: 1 + 2.5 + 100 + 10 + 80 + 80 segments/s.
    assert service["senders"] == 6
    assert service["throughput"] == pytest.approx(273.5)
    # Senders drain in parallel: the slowest holder (the long code, 4 s) decides.
    assert service["drain_seconds_estimate"] == pytest.approx(4.0)

    idle = by_sid[queues["idle"].sid]
    assert {k: idle[k] for k in ("accepted", "scheduled", "queued_messages", "sending")} == {
        "accepted": 0,
        "scheduled": 0,
        "queued_messages": 0,
        "sending": 0,
    }
    assert idle["oldest_queued_age_seconds"] is None
    assert (idle["throughput"], idle["drain_seconds_estimate"], idle["senders"]) == (0, 0.0, 0)


def test_an_inactive_sender_does_not_drain(world, queues, now):
    Sender.objects.filter(id=world.senders["toll_free"].id).update(active=False)
    depths = delivery_queue_depths(account=world.account, now=now)
    toll_free = next(e for e in depths["senders"] if e["address"] == TOLL_FREE)
    assert (toll_free["active"], toll_free["drain_seconds_estimate"]) == (False, None)
    service = next(e for e in depths["services"] if e["sid"] == world.service.sid)
    assert service["drain_seconds_estimate"] is None
    assert service["throughput"] == pytest.approx(271.0)  # the toll-free's 2.5 no longer counts


def test_all_accounts_when_no_account_is_given(world, queues, now):
    depths = delivery_queue_depths(now=now)
    assert "+14155550177" in {e["address"] for e in depths["senders"]}
    assert "Their service" in {e["friendly_name"] for e in depths["services"]}


def test_the_figures_cost_a_fixed_number_of_queries(world, queues, now):
    with CaptureQueriesContext(connection) as few:
        delivery_queue_depths(account=world.account, now=now)
    for index in range(5):  # more senders and services with queues: still four queries
        service = MessagingService.objects.create(account=world.account, friendly_name=f"S{index}")
        sender = Sender.objects.create(
            account=world.account,
            provider=world.provider,
            service=service,
            kind="long_code",
            address=f"+1415555012{index}",
        )
        send(world.account, to=CUSTOMERS[10 + index], from_=sender.address)
        send(world.account, to=CUSTOMERS[20 + index], service=service)
    with CaptureQueriesContext(connection) as many:
        delivery_queue_depths(account=world.account, now=now)
    assert len(many) == len(few) == 4


# ---------------------------------------------------------------- JSON endpoint


def test_the_endpoint_needs_credentials(db, client):
    response = client.get(QUEUES)
    assert response.status_code == 401
    assert response.json()["code"] == 20003
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    wrong = client.get(QUEUES, headers={"Authorization": basic("SKnope", "nope")})
    assert wrong.status_code == 401


def test_the_endpoint_shows_the_callers_queues_only(world, queues, client):
    response = client.get(QUEUES, headers={"Authorization": basic(world.key_sid, world.key_secret)})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"senders", "services", "generated_at"}
    assert body["generated_at"].endswith("Z")
    senders = {entry["address"]: entry for entry in body["senders"]}
    assert set(senders) == {LONG_CODE, TOLL_FREE, "+14155550111"}
    long_code = senders[LONG_CODE]
    assert long_code == {
        "sid": world.senders["long_code"].sid,
        "address": LONG_CODE,
        "kind": "long_code",
        "channel": "sms",
        "friendly_name": "",
        "active": True,
        "messaging_service_sid": world.service.sid,
        "throughput": 1.0,
        "queued_messages": 3,
        "queued_segments": 4,
        "sending": 1,
        "oldest_queued_age_seconds": long_code["oldest_queued_age_seconds"],
        "drain_seconds_estimate": 4.0,
    }
    assert 120 <= long_code["oldest_queued_age_seconds"] < 180
    services = {entry["sid"]: entry for entry in body["services"]}
    assert set(services) == {world.service.sid, queues["idle"].sid}
    assert services[world.service.sid]["accepted"] == 2
    assert services[world.service.sid]["queued_segments"] == 6

    # The other account sees its own queue, not ours.
    other = queues["other"]
    theirs = client.get(QUEUES, headers={"Authorization": basic(other.sid, other.auth_token)})
    assert theirs.status_code == 200
    assert [e["address"] for e in theirs.json()["senders"]] == ["+14155550177"]
    assert theirs.json()["senders"][0]["queued_segments"] == 2
    assert [e["friendly_name"] for e in theirs.json()["services"]] == ["Their service"]


def test_the_endpoint_is_in_the_schema(db, client):
    document = client.get("/api/schema/", {"format": "json"}).json()
    operation = document["paths"]["/api/v1/queues"]["get"]
    assert operation["operationId"] == "queues_retrieve"
    assert set(operation["responses"]) == {"200", "401", "403"}
    sender = document["components"]["schemas"]["QueueSenderOutput"]["properties"]
    assert {"queued_segments", "oldest_queued_age_seconds", "drain_seconds_estimate"} <= set(sender)


# ---------------------------------------------------------------- admin


def cell(html: str, sid: str, figure: str) -> str:
    row = re.search(rf'<tr data-sid="{sid}"[^>]*>(.*?)</tr>', html, re.S)
    assert row, sid
    value = re.search(rf'data-figure="{figure}"[^>]*>([^<]*)<', row.group(1))
    assert value, (sid, figure)
    return value.group(1).strip()


def test_the_admin_queue_page_lists_the_figures(admin_user, client_for, world, queues):
    client = client_for(admin_user)
    response = client.get("/admin/messaging/messagingservice/queues/")
    assert response.status_code == 200
    html = response.content.decode()
    long_code = world.senders["long_code"].sid
    assert cell(html, long_code, "queued_messages") == "3"
    assert cell(html, long_code, "queued_segments") == "4"
    assert cell(html, long_code, "sending") == "1"
    assert re.fullmatch(r"2 min [0-9]+ s", cell(html, long_code, "oldest"))
    assert cell(html, long_code, "drain") == "4 s"
    toll_free = world.senders["toll_free"].sid
    assert cell(html, toll_free, "throughput") == "2.50"
    assert re.fullmatch(r"1[0-9] s", cell(html, toll_free, "oldest"))  # from send_at
    assert cell(html, world.service.sid, "accepted") == "2"
    assert cell(html, world.service.sid, "scheduled") == "1"
    assert cell(html, world.service.sid, "queued_segments") == "6"
    assert cell(html, queues["idle"].sid, "oldest") == "—"
    # The admin sees every account; the other account's sender is there, labelled.
    assert "+14155550177" in html
    assert queues["other"].sid in html
    # Linked from the service and sender changelists and from the app index.
    for page in ("messagingservice/", "sender/", ""):
        linked = client.get(f"/admin/messaging/{page}").content.decode()
        assert 'href="/admin/messaging/messagingservice/queues/"' in linked, page


def test_the_admin_queue_page_speaks_spanish(admin_user, client_for, world, queues):
    client = client_for(admin_user)
    html = client.get(
        "/admin/messaging/messagingservice/queues/", headers={"Accept-Language": "es"}
    ).content.decode()
    assert "Colas de envío" in html
    assert "Más antiguo en cola" in html


def test_the_admin_queue_page_is_for_admins_only(agent1, client_for, db):
    response = client_for(agent1).get("/admin/messaging/messagingservice/queues/")
    assert response.status_code == 302
    assert "/admin/login/" in response.headers["Location"]


def test_the_changelists_show_queued_segments_and_age(admin_user, client_for, world, queues):
    client = client_for(admin_user)
    senders = client.get("/admin/messaging/sender/")
    html = senders.content.decode()
    assert "Queued (segments)" in html and "Oldest queued" in html
    assert "3 (4)" in html  # the long code
    assert "1 (2)" in html  # the toll-free
    assert re.search(r"2 min [0-9]+ s", html)
    services = client.get("/admin/messaging/messagingservice/").content.decode()
    assert "4 (6)" in services
    assert "0 (0)" in services  # the idle service
    # Sorting by the annotation works (no 500, the fullest first).
    by_depth = client.get("/admin/messaging/sender/", {"o": "-7"}).content.decode()
    assert by_depth.index("3 (4)") < by_depth.index("1 (2)")


def test_the_changelists_do_not_query_per_row(admin_user, client_for, world, queues):
    client = client_for(admin_user)
    client.get("/admin/messaging/sender/")  # warm up sessions, content types
    with CaptureQueriesContext(connection) as few:
        client.get("/admin/messaging/sender/")
        client.get("/admin/messaging/messagingservice/")
    for index in range(5):
        service = MessagingService.objects.create(account=world.account, friendly_name=f"S{index}")
        Sender.objects.create(
            account=world.account,
            provider=world.provider,
            service=service,
            kind="long_code",
            address=f"+1415555012{index}",
        )
    with CaptureQueriesContext(connection) as many:
        client.get("/admin/messaging/sender/")
        client.get("/admin/messaging/messagingservice/")
    assert len(many) == len(few)
