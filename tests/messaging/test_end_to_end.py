"""The whole outbound path on a real Celery worker: route, send to the simulator, delivery
receipt, signed status callbacks."""

import pytest
from twilio.request_validator import RequestValidator

from messaging.models import Message, StatusCallback
from messaging.services.messages import MessageRequest, message_create
from tests.support.http import RecordingServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


def test_message_through_a_service_is_delivered_and_every_change_called_back(
    live_world, celery_worker_process
):
    receiver = RecordingServer()
    try:
        message = message_create(
            account=live_world.account,
            request=MessageRequest(
                to="+14155550123",
                messaging_service_sid=live_world.service.sid,
                body="Your order has shipped",
                status_callback=f"{receiver.url}/cb",
            ),
        )
        assert wait_for(lambda: len(receiver.received) >= 4), [r.form for r in receiver.received]
        failing = message_create(
            account=live_world.account,
            request=MessageRequest(
                to="+14155550007",
                from_="+14155550100",
                body="x",
                status_callback=f"{receiver.url}/cb",
            ),
        )
        assert wait_for(lambda: Message.objects.get(id=failing.id).status == "undelivered")
    finally:
        receiver.close()

    message.refresh_from_db()
    assert message.status == "delivered"
    assert message.sender_rule == "short_code"
    posted = sorted(r.form["MessageStatus"] for r in receiver.received[:4])
    assert posted == sorted(["queued", "sending", "sent", "delivered"])
    validator = RequestValidator(live_world.token)
    for request in receiver.received:
        assert validator.validate(
            f"{receiver.url}{request.path}", request.form, request.headers["X-Twilio-Signature"]
        )
    assert set(StatusCallback.objects.filter(message=message).values_list("state", flat=True)) == {
        "delivered"
    }
    failing.refresh_from_db()
    assert failing.error_code == 30007
