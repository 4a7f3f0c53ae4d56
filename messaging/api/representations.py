"""Twilio's JSON shape for our resources: field names, RFC 2822 dates, counts as strings."""

from datetime import UTC, datetime
from email.utils import format_datetime

from messaging.models import Message

BASE = "/2010-04-01/Accounts/{account}"


def rfc2822(value: datetime | None) -> str | None:
    if value is None:
        return None
    return format_datetime(value.astimezone(UTC).replace(microsecond=0), usegmt=False)


def message_uri(account_sid: str, sid: str) -> str:
    return f"{BASE.format(account=account_sid)}/Messages/{sid}.json"


def message_json(message: Message, account_sid: str, service_sid: str | None) -> dict:
    uri = message_uri(account_sid, message.sid)
    return {
        "account_sid": account_sid,
        "api_version": message.api_version,
        "body": message.body,
        "date_created": rfc2822(message.date_created),
        "date_sent": rfc2822(message.date_sent),
        "date_updated": rfc2822(message.date_updated),
        "direction": message.direction,
        "error_code": message.error_code,
        "error_message": message.error_message or None,
        "from": message.from_address or None,
        "messaging_service_sid": service_sid,
        "num_media": str(message.num_media),
        "num_segments": str(message.num_segments),
        "price": None if message.price is None else f"{message.price:.5f}",
        "price_unit": message.price_unit,
        "sid": message.sid,
        "status": message.status,
        "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
        "tags": message.tags or {},
        "to": message.to_address,
        "uri": uri,
    }
