"""What templates see (REFERENCE.md 8): `trigger.*`, `flow.*`, `contact.*`, `widgets.*`.

The context is stored on the execution as JSON, so a resumed execution (after a reply, a
timeout or a restart) renders exactly what it would have rendered without the pause.
"""

from typing import Any

from messaging.models import Message

# Widget outputs are kept in the context; a huge HTTP body must not grow it without bound.
MAX_KEPT_BODY_CHARS = 16 * 1024


def new_context(
    *, flow_sid: str, execution_sid: str, contact_address: str, business_address: str
) -> dict[str, Any]:
    return {
        "trigger": {},
        "flow": {
            "flow_sid": flow_sid,
            "sid": execution_sid,
            "channel": {"address": business_address},
            "data": {},
            "variables": {},
        },
        "contact": {"channel": {"address": contact_address}},
        "widgets": {},
    }


def message_fields(message: Message) -> dict[str, Any]:
    """A message as Studio shows it (`trigger.message.Body`, `widgets.x.inbound.From`...)."""
    fields: dict[str, Any] = {
        "Body": message.body,
        "From": message.from_address,
        "To": message.to_address,
        "MessageSid": message.sid,
        "SmsSid": message.sid,
        "AccountSid": message.account.sid if message.account_id else "",
        "MessagingServiceSid": message.service.sid if message.service_id else "",
        "NumMedia": str(message.num_media),
        "ChannelType": message.channel,
        "Status": message.status,
    }
    if message.contact_id and message.contact.name:
        fields["ProfileName"] = message.contact.name
    if message.num_media:
        fields.update(media_fields(message))
    return fields


def media_fields(message: Message) -> dict[str, str]:
    fields = {}
    for index, media in enumerate(message.media.all()):
        fields[f"MediaUrl{index}"] = media.url or ""
        fields[f"MediaContentType{index}"] = media.content_type or ""
    return fields


def clipped(text: str) -> str:
    return text if len(text) <= MAX_KEPT_BODY_CHARS else text[:MAX_KEPT_BODY_CHARS]
