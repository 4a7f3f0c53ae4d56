"""Statuses as a monotonic state machine, status callbacks signed like Twilio, sender choice
recorded on the message, opt-out while queued, scheduled release, dispatch to the simulator."""

from datetime import timedelta

import pytest
from django.utils import timezone
from twilio.request_validator import RequestValidator

from messaging import statuses
from messaging.errors import MessagingError
from messaging.models import Message, StatusCallback, StickySender
from messaging.services.callbacks import MAX_ATTEMPTS, status_callback_deliver
from messaging.services.dispatch import message_status_from_provider
from messaging.services.messages import (
    MessageRequest,
    message_create,
    message_route,
    message_status_apply,
    scheduled_release_due,
)
from messaging.services.optout import optout_block, optout_unblock
from messaging.statuses import Status
from tests.support.delivery import deliver_now
from tests.support.http import RecordingServer

CUSTOMER = "+14155550123"


@pytest.fixture
def receiver():
    server = RecordingServer()
    yield server
    server.close()


def send(world, **kwargs) -> Message:
    kwargs.setdefault("to", CUSTOMER)
    kwargs.setdefault("body", "hello")
    if "messaging_service_sid" not in kwargs:
        kwargs.setdefault("from_", "+14155550100")
    return message_create(account=world.account, request=MessageRequest(**kwargs))


def history(message: Message) -> list[str]:
    return list(message.history.values_list("status", flat=True))


# ---------------------------------------------------------------- state machine


def test_every_status_is_in_the_machine_and_terminal_ones_go_nowhere():
    assert set(statuses.TRANSITIONS) == set(Status)
    for status in statuses.TERMINAL:
        assert not statuses.TRANSITIONS[status]
    assert statuses.can_move("sent", "delivered")
    assert not statuses.can_move("delivered", "sent")
    assert not statuses.can_move("failed", "delivered")
    assert statuses.can_move("delivered", "read")


def test_late_sent_never_replaces_delivered(world):
    message = send(world)
    for status in ("sending", "delivered"):
        assert message_status_apply(message_id=message.id, status=status, source="provider")
    assert not message_status_apply(message_id=message.id, status="sent", source="provider")
    message.refresh_from_db()
    assert message.status == "delivered"
    assert message.date_sent is not None
    assert history(message) == ["queued", "sending", "delivered"]


def test_failure_records_the_code_and_message(world):
    message = send(world)
    message_status_apply(message_id=message.id, status="sending", source="system")
    message_status_apply(message_id=message.id, status="undelivered", error_code=30007, source="p")
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("undelivered", 30007)
    assert "carrier" in message.error_message
    assert message.history.last().error_code == 30007


# ---------------------------------------------------------------- callbacks


def test_each_change_after_the_first_is_posted_signed(
    world, receiver, django_capture_on_commit_callbacks
):
    message = send(world, status_callback=f"{receiver.url}/status?x=1")
    assert not StatusCallback.objects.exists()  # no callback for the initial status

    message_status_apply(message_id=message.id, status="sending", source="system")
    message_status_apply(message_id=message.id, status="sent", source="provider")
    message_status_apply(message_id=message.id, status="undelivered", error_code=30003, source="p")
    callbacks = list(StatusCallback.objects.order_by("id"))
    assert [c.status for c in callbacks] == ["sending", "sent", "undelivered"]
    for callback in callbacks:
        assert status_callback_deliver(callback_id=callback.id) == "delivered"

    validator = RequestValidator(world.token)
    assert [r.form["MessageStatus"] for r in receiver.received] == [
        "sending",
        "sent",
        "undelivered",
    ]
    for request in receiver.received:
        url = f"{receiver.url}{request.path}"
        assert validator.validate(url, request.form, request.headers["X-Twilio-Signature"])
        assert request.form["MessageSid"] == request.form["SmsSid"] == message.sid
        assert request.form["AccountSid"] == world.account.sid
        assert request.form["From"] == "+14155550100"
        assert request.form["To"] == CUSTOMER
        assert request.form["ApiVersion"] == "2010-04-01"
        assert request.form["MessagingServiceSid"] == world.service.sid
    assert "ErrorCode" not in receiver.received[1].form
    assert receiver.received[2].form["ErrorCode"] == "30003"
    assert not validator.validate(
        f"{receiver.url}{receiver.received[0].path}",
        {**receiver.received[0].form, "MessageStatus": "delivered"},
        receiver.received[0].headers["X-Twilio-Signature"],
    )


def test_service_callback_is_used_when_the_message_has_none(world, receiver):
    world.service.status_callback = f"{receiver.url}/svc"
    world.service.save()
    message = send(world)
    message_status_apply(message_id=message.id, status="sending", source="system")
    assert StatusCallback.objects.get().url == f"{receiver.url}/svc"


def test_failing_callback_is_retried_then_marked_failed(world):
    server = RecordingServer(statuses=[500])
    try:
        message = send(world, status_callback=f"{server.url}/broken")
        message_status_apply(message_id=message.id, status="sending", source="system")
        callback = StatusCallback.objects.get()
        states = [status_callback_deliver(callback_id=callback.id) for _ in range(MAX_ATTEMPTS)]
    finally:
        server.close()
    assert states == ["pending"] * (MAX_ATTEMPTS - 1) + ["failed"]
    callback.refresh_from_db()
    assert (callback.attempts, callback.last_status_code) == (MAX_ATTEMPTS, 500)
    assert callback.last_error == "HTTP 500"
    assert status_callback_deliver(callback_id=callback.id) == "skipped"


def test_unreachable_callback_records_the_error(world):
    message = send(world, status_callback="http://127.0.0.1:9/nothing-listens")
    message_status_apply(message_id=message.id, status="sending", source="system")
    callback = StatusCallback.objects.get()
    assert status_callback_deliver(callback_id=callback.id) == "pending"
    callback.refresh_from_db()
    assert callback.last_status_code is None
    assert "Connect" in callback.last_error


# ---------------------------------------------------------------- sender choice through a service


def test_route_records_the_rule_and_remembers_the_sticky_sender(world):
    message = send(world, messaging_service_sid=world.service.sid)
    assert (message.status, message.from_address, message.num_segments) == ("accepted", "", 0)

    assert message_route(message_id=message.id)

    message.refresh_from_db()
    assert message.status == "queued"
    assert message.from_address == "55501"  # a US short code beats the long code (rule 4)
    assert message.sender_rule == "short_code"
    assert message.num_segments == 1
    assert StickySender.objects.get(contact_address=CUSTOMER).sender == world.senders["short_code"]
    second = send(world, messaging_service_sid=world.service.sid)
    message_route(message_id=second.id)
    second.refresh_from_db()
    assert second.sender_rule == "sticky"
    assert history(second) == ["accepted", "queued"]
    assert not message_route(message_id=second.id)  # idempotent: already routed


def test_route_uses_the_alphanumeric_sender_for_spain(world):
    message = send(world, to="+34612345678", messaging_service_sid=world.service.sid)
    message_route(message_id=message.id)
    message.refresh_from_db()
    assert (message.from_address, message.sender_rule) == ("ACME", "alphanumeric_country")


def test_route_picks_the_whatsapp_sender_for_a_whatsapp_recipient(world):
    message = send(world, to="whatsapp:+14155550123", messaging_service_sid=world.service.sid)
    message_route(message_id=message.id)
    message.refresh_from_db()
    assert message.from_address == "whatsapp:+14155550199"
    assert message.channel == "whatsapp"


# ---------------------------------------------------------------- opt-out


def test_opting_out_while_queued_fails_the_waiting_message(world):
    queued = send(world)
    optout_block(address=CUSTOMER, sender=world.senders["long_code"], keyword="STOP")
    queued.refresh_from_db()
    assert (queued.status, queued.error_code) == ("failed", 21610)
    assert deliver_now().planned == 0


def test_sender_scoped_block_applies_to_the_senders_pool(world):
    optout_block(address=CUSTOMER, sender=world.senders["long_code"])
    # The sender belongs to a service: the block covers the whole pool.
    with pytest.raises(Exception) as info:
        send(world, from_="+18885550100")
    assert info.value.code == 21610
    assert optout_unblock(address=CUSTOMER, service=world.service)
    assert send(world, from_="+18885550100").status == "queued"


def test_block_on_a_sender_outside_any_service_is_that_senders_only(db):
    from tests.messaging.conftest import build_world

    world = build_world(pooled=False)
    optout_block(address=CUSTOMER, sender=world.senders["long_code"])
    with pytest.raises(Exception) as info:
        send(world)
    assert info.value.code == 21610
    assert send(world, from_="+18885550100").status == "queued"


# ---------------------------------------------------------------- dispatch & schedule


def test_send_claims_once_and_hands_to_the_simulator(world):
    message = send(world)
    assert deliver_now().sent == 1
    assert deliver_now().planned == 0
    message.refresh_from_db()
    assert message.status == "sent"
    assert message.provider_message_id.startswith("SS")
    assert message_status_from_provider(
        provider_id=world.provider.id,
        provider_message_id=message.provider_message_id,
        status="delivered",
    )
    message.refresh_from_db()
    assert history(message) == ["queued", "sending", "sent", "delivered"]


def test_expired_message_fails_with_30036(world):
    message = send(world, validity_period=5)
    Message.objects.filter(id=message.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert deliver_now().planned == 0
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", 30036)


def test_scheduled_message_is_released_when_due_and_rechecked(world):
    later = timezone.now() + timedelta(hours=1)
    due = send(world, messaging_service_sid=world.service.sid, schedule_type="fixed", send_at=later)
    blocked = send(
        world,
        to="+14155550124",
        messaging_service_sid=world.service.sid,
        schedule_type="fixed",
        send_at=later,
    )
    assert due.status == blocked.status == "scheduled"
    optout_block(address="+14155550124", service=world.service)
    blocked.refresh_from_db()
    assert (blocked.status, blocked.error_code) == ("failed", 21610)

    assert scheduled_release_due(now=timezone.now()) == 0
    assert scheduled_release_due(now=later + timedelta(seconds=1)) == 1
    due.refresh_from_db()
    assert due.status == "accepted"
    assert message_route(message_id=due.id)
    assert history(Message.objects.get(id=due.id)) == ["scheduled", "accepted", "queued"]


def test_sticky_mappings_unused_for_a_year_are_purged(world):
    from messaging.services.messages import sticky_purge_stale

    now = timezone.now()
    StickySender.objects.create(
        service=world.service,
        contact_address="+14155550130",
        sender=world.senders["long_code"],
        last_used_at=now - timedelta(days=366),
    )
    StickySender.objects.create(
        service=world.service,
        contact_address="+14155550131",
        sender=world.senders["long_code"],
        last_used_at=now - timedelta(days=300),
    )
    assert sticky_purge_stale(now=now) == 1
    assert list(StickySender.objects.values_list("contact_address", flat=True)) == ["+14155550131"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("from_", "+1415\x00"),
        ("body", "a\x00b"),
        ("tags", {"k\x00": "v"}),
        ("media_urls", ["https://e.com/\x00"]),
    ],
)
def test_create_refuses_nul_characters_before_any_query(world, field, value):
    # Every caller (APIs, flows, the desk) gets the same guard: PostgreSQL cannot store NUL.
    with pytest.raises(MessagingError) as info:
        send(world, **{field: value})
    assert info.value.code == 20422
    assert not Message.objects.exists()
