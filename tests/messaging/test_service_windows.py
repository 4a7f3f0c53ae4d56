"""Customer-service windows, enforced by the engine: WhatsApp free-form only within 24 h of
the customer's last message (else an approved template), Messenger 24 h or 7 days with
HUMAN_AGENT; refused at once when From is known, failed with 63016 at send time when the
window closed while the message waited."""

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging import windows
from messaging.errors import MessagingError
from messaging.models import (
    Channel,
    ContentTemplate,
    ContentTemplateTranslation,
    Message,
    TemplateStatus,
)
from messaging.services.messages import MessageRequest, message_create
from tests.messaging.conftest import open_window
from tests.support.delivery import deliver_now

WA_SENDER = "whatsapp:+14155550199"
WA_CUSTOMER = "whatsapp:+14155550123"
PAGE = "messenger:100200300"
PSID = "messenger:7001"
NOW = timezone.now()


def create(world, to: str, from_: str, **fields) -> Message:
    request = MessageRequest(to=to, from_=from_, body=fields.pop("body", "Hello"), **fields)
    return message_create(account=world.account, request=request)


@pytest.mark.parametrize(
    ("channel", "age", "tag", "template", "allowed"),
    [
        (Channel.SMS, None, "", False, True),
        (Channel.WHATSAPP, None, "", False, False),
        (Channel.WHATSAPP, timedelta(hours=23, minutes=59), "", False, True),
        (Channel.WHATSAPP, timedelta(hours=24), "", False, False),
        (Channel.WHATSAPP, timedelta(days=30), "", True, True),
        (Channel.WHATSAPP, None, "", True, True),
        (Channel.MESSENGER, timedelta(hours=23), "", False, True),
        (Channel.MESSENGER, timedelta(hours=25), "", False, False),
        (Channel.MESSENGER, timedelta(hours=25), windows.HUMAN_AGENT, False, True),
        (Channel.MESSENGER, timedelta(days=7, seconds=1), windows.HUMAN_AGENT, False, False),
        (Channel.MESSENGER, timedelta(days=2), "", True, False),  # templates are WhatsApp's
    ],
)
def test_the_window_rules(channel, age, tag, template, allowed):
    last = None if age is None else NOW - age
    assert windows.may_send(channel, last, NOW, template=template, tag=tag) is allowed


def test_whatsapp_without_a_customer_message_is_refused_with_63016(world):
    with pytest.raises(MessagingError) as refused:
        create(world, WA_CUSTOMER, WA_SENDER)
    assert refused.value.code == 63016
    assert "never written" in refused.value.message
    assert not Message.objects.exists()


def test_whatsapp_inside_the_window_is_accepted_and_outside_refused(world):
    conversation = open_window(world.account, WA_CUSTOMER, WA_SENDER)
    assert conversation.window_ends_at == conversation.last_inbound_at + timedelta(hours=24)
    assert create(world, WA_CUSTOMER, WA_SENDER).status == "queued"
    open_window(world.account, WA_CUSTOMER, WA_SENDER, at=timezone.now() - timedelta(hours=25))
    with pytest.raises(MessagingError) as refused:
        create(world, WA_CUSTOMER, WA_SENDER)
    assert refused.value.code == 63016
    assert "approved template" in refused.value.message


def test_an_approved_template_may_open_a_whatsapp_conversation(world):
    template = ContentTemplate.objects.create(
        account=world.account, friendly_name="Hello", name="hello", default_language="en_US"
    )
    ContentTemplateTranslation.objects.create(
        template=template,
        language="en_US",
        status=TemplateStatus.APPROVED,
        body="Hello {{1}}, welcome.",
    )
    request = MessageRequest(
        to=WA_CUSTOMER, from_=WA_SENDER, content_sid=template.sid, content_variables={"1": "Ana"}
    )
    message = message_create(account=world.account, request=request)
    assert (message.status, message.body) == ("queued", "Hello Ana, welcome.")


def test_messenger_human_agent_answers_up_to_seven_days(world):
    conversation = open_window(world.account, PSID, PAGE, at=timezone.now() - timedelta(days=3))
    assert conversation.human_agent_window_ends_at == conversation.last_inbound_at + timedelta(
        days=7
    )
    with pytest.raises(MessagingError):
        create(world, PSID, PAGE)
    message = create(world, PSID, PAGE, messenger_tag=windows.HUMAN_AGENT)
    assert message.tags[windows.TAG_KEY] == windows.HUMAN_AGENT


def test_the_window_is_per_business_address(world, account):
    open_window(world.account, WA_CUSTOMER, "whatsapp:+14155550777")
    with pytest.raises(MessagingError):
        create(world, WA_CUSTOMER, WA_SENDER)


def test_sms_has_no_window(world):
    assert create(world, "+14155550123", "+14155550100").status == "queued"


def test_a_window_that_closes_while_the_message_waits_fails_it_at_send_time(world):
    world.provider.settings = {"receipt_delay_seconds": None, "record_sends": True}
    world.provider.save()
    conversation = open_window(world.account, WA_CUSTOMER, WA_SENDER)
    waiting = create(world, WA_CUSTOMER, WA_SENDER, body="still in time?")
    on_time = create(world, "+14155550123", "+14155550100", body="sms goes")
    # Meanwhile the window closes (the message waited in the queue past it).
    conversation.last_inbound_at = timezone.now() - timedelta(hours=24, seconds=1)
    conversation.save(update_fields=["last_inbound_at"])
    deliver_now(seconds=3)
    waiting.refresh_from_db()
    on_time.refresh_from_db()
    assert (waiting.status, waiting.error_code) == ("failed", 63016)
    assert "customer-service window" in waiting.error_message
    assert on_time.status == "sent"
    from messaging.providers.simulator import recorded_sends

    assert [s["to"] for s in recorded_sends(world.provider.id)] == ["+14155550123"]


def test_a_template_outside_the_window_goes_through_the_simulator(world):
    world.provider.settings = {"receipt_delay_seconds": None, "record_sends": True}
    world.provider.save()
    template = ContentTemplate.objects.create(
        account=world.account, friendly_name="Hello", name="hello", default_language="en_US"
    )
    ContentTemplateTranslation.objects.create(
        template=template,
        language="en_US",
        status=TemplateStatus.APPROVED,
        body="Hello {{1}}, your table is ready.",
    )
    request = MessageRequest(
        to=WA_CUSTOMER, from_=WA_SENDER, content_sid=template.sid, content_variables={"1": "Ana"}
    )
    message = message_create(account=world.account, request=request)
    deliver_now(seconds=3)
    message.refresh_from_db()
    assert (message.status, message.body) == ("sent", "Hello Ana, your table is ready.")
    from messaging.providers.simulator import recorded_sends

    assert [s["to"] for s in recorded_sends(world.provider.id)] == [WA_CUSTOMER]
