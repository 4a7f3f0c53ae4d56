"""Inbound media: each item the provider offered is downloaded with the provider's
credentials into Django's storage, once, and served only to authorised users (staff signed
in, or an integrator with the account's credentials)."""

import logging
import mimetypes

from django.core.files.base import ContentFile
from django.db import transaction

from messaging.models import Media, Message
from messaging.providers import InboundMedia, ProviderError, adapter_for

log = logging.getLogger(__name__)


def _file_name(message: Message, media: Media, content_type: str) -> str:
    extension = mimetypes.guess_extension(content_type.split(";")[0].strip()) or ".bin"
    return f"inbound/{message.sid}/{media.sid}{extension}"


def inbound_media_fetch(*, message_id: int) -> int:
    """Download the message's media not stored yet; returns how many were stored. A failed
    item is marked `failed` with the reason (the message itself is kept as it is)."""
    message = Message.objects.select_related("sender__provider").filter(id=message_id).first()
    if message is None or message.sender is None:
        return 0
    stored = 0
    for media in message.media.filter(state=Media.State.REMOTE).order_by("id"):
        stored += _fetch_one(message, media)
    return stored


def _fetch_one(message: Message, media: Media) -> int:
    offer = InboundMedia(
        url=media.url, content_type=media.content_type, provider_media_id=media.provider_media_id
    )
    try:
        fetched = adapter_for(message.sender.provider).fetch_media(offer)
    except (ProviderError, NotImplementedError) as exc:
        reason = getattr(exc, "message", "") or "this provider cannot download media"
        log.warning("media %s of %s not downloaded: %s", media.sid, message.sid, reason)
        Media.objects.filter(id=media.id, state=Media.State.REMOTE).update(
            state=Media.State.FAILED, error=reason[:255]
        )
        return 0
    content_type = fetched.content_type or media.content_type or "application/octet-stream"
    with transaction.atomic():
        # Claim the row first: a second run of the task must not store a second copy.
        locked = Media.objects.select_for_update().filter(id=media.id, state=Media.State.REMOTE)
        if not locked.exists():
            return 0
        media.file.save(
            _file_name(message, media, content_type), ContentFile(fetched.content), save=False
        )
        Media.objects.filter(id=media.id).update(
            file=media.file.name,
            size=len(fetched.content),
            content_type=content_type[:128],
            state=Media.State.STORED,
            error="",
        )
    return 1


def media_file_response(media: Media):
    """The stored file as an HTTP response; 404 (Twilio's JSON error) while not stored."""
    from django.http import FileResponse

    from messaging.errors import MessagingError

    if media.state != Media.State.STORED or not media.file:
        state = media.get_state_display().lower()
        raise MessagingError(20404, f"Media {media.sid} has no stored file ({state}).")
    response = FileResponse(media.file.open("rb"), content_type=media.content_type)
    # A customer's file must not run as a page of ours, whatever its type says.
    response["Content-Security-Policy"] = "sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response
