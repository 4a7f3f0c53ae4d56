"""What a claimed message sends, in the adapters' neutral form (`OutboundContent`).

The pump loads what the send needs (media URLs) while it plans, so the dispatcher thread
never touches the database.
"""

from collections import defaultdict

from messaging import encoding, windows
from messaging.models import Media, Message
from messaging.providers import OutboundContent


def media_attach(messages: list[Message]) -> None:
    """Give each message with media its `(url, content_type)` list, in one query."""
    ids = [m.id for m in messages if m.num_media]
    found: dict[int, list[tuple[str, str]]] = defaultdict(list)
    if ids:
        rows = Media.objects.filter(message_id__in=ids).order_by("id")
        for message_id, url, content_type in rows.values_list("message_id", "url", "content_type"):
            found[message_id].append((url, content_type))
    for message in messages:
        message.outbound_media = found.get(message.id, [])


def content_for(message: Message) -> OutboundContent:
    text = encoding.analyze(message.body, smart_encoding=message.smart_encoded).text
    media = getattr(message, "outbound_media", None)
    if media is None:  # a message that did not come through the pump's plan
        media_attach([message])
        media = message.outbound_media
    return OutboundContent(
        text=text,
        media_urls=tuple(url for url, _ in media if url),
        media_types=tuple(content_type for url, content_type in media if url),
        tag=(message.tags or {}).get(windows.TAG_KEY, ""),
    )
