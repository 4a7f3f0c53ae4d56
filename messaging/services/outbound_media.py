"""Outbound media are fetched and checked before the message may be sent.

A message created with MediaUrl is held (`not_before` far ahead, so the delivery engine
skips it) until the task `outbound_media_check` has fetched every URL, streamed and capped:
JPEG, PNG and GIF up to 5 MB, the other types carriers accept up to 500 KB (REFERENCE.md:
Twilio's MMS limits). Then the hold is lifted and the sender marked due; otherwise the
message fails before reaching any provider: 11751 (too large), 12300 (a type we do not
send), 11200 (the URL could not be fetched, after retries). The reason is on the media row.
"""

import logging
import mimetypes
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from django.utils import timezone

from messaging.models import Media, Message
from messaging.statuses import Status

log = logging.getLogger(__name__)

# Longer than any validity period: the expiry sweep still fails a message held too long.
HOLD = timedelta(days=36)
IMAGE_LIMIT = 5 * 1024 * 1024
OTHER_LIMIT = 500 * 1024
IMAGE_TYPES = {"image/jpeg", "image/jpg", "image/png", "image/gif"}
OTHER_TYPES = {
    "audio/basic", "audio/l24", "audio/mp4", "audio/mpeg", "audio/ogg", "audio/vnd.wave",
    "audio/3gpp", "audio/3gpp2", "audio/ac3", "audio/webm", "audio/amr-nb", "audio/amr",
    "video/mpeg", "video/mp4", "video/quicktime", "video/webm", "video/3gpp", "video/3gpp2",
    "video/h263", "video/h264", "image/bmp", "image/tiff", "image/webp", "text/vcard",
    "text/x-vcard", "text/csv", "text/rtf", "text/richtext", "text/calendar",
    "text/directory", "text/plain", "application/pdf", "application/vcard",
    "application/vnd.apple.pkpass",
}  # fmt: skip
TOO_LARGE = 11751
UNSUPPORTED_TYPE = 12300
UNREACHABLE = 11200
TIMEOUT = httpx.Timeout(15.0, connect=5.0)


@dataclass(frozen=True)
class Checked:
    content_type: str
    size: int


class MediaRefused(Exception):
    def __init__(self, code: int, reason: str, *, transient: bool = False) -> None:
        super().__init__(reason)
        self.code, self.reason, self.transient = code, reason, transient


def hold_until(now):
    return now + HOLD


def limit_for(content_type: str) -> int | None:
    if content_type in IMAGE_TYPES:
        return IMAGE_LIMIT
    if content_type in OTHER_TYPES:
        return OTHER_LIMIT
    return None


def _type_of(response: httpx.Response, url: str) -> str:
    declared = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if declared and declared != "application/octet-stream":
        return declared
    guessed, _ = mimetypes.guess_type(urlsplit(url).path)
    return (guessed or declared or "").lower()


def media_fetch_check(url: str) -> Checked:
    """Fetch one URL as a provider would and check its type and size (MediaRefused if not)."""
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=TIMEOUT) as response:
            if response.status_code >= 400:
                raise MediaRefused(
                    UNREACHABLE,
                    f"{url} answered HTTP {response.status_code}",
                    transient=response.status_code >= 500 or response.status_code == 429,
                )
            content_type = _type_of(response, url)
            limit = limit_for(content_type)
            if limit is None:
                raise MediaRefused(
                    UNSUPPORTED_TYPE, f"{url} is {content_type or 'of no type'}, not sent"
                )
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise MediaRefused(
                        TOO_LARGE, f"{url} is larger than {limit // 1024} KB ({content_type})"
                    )
    except httpx.HTTPError as exc:
        reason = f"{url} could not be fetched: {exc}"
        raise MediaRefused(UNREACHABLE, reason, transient=True) from exc
    return Checked(content_type=content_type, size=size)


def outbound_media_check(*, message_id: int, final_attempt: bool = True) -> str:
    """Check the held message's media; returns "released", "failed", "retry" or "skipped".
    With `final_attempt` False, a transient failure asks to be retried instead of failing."""
    message = Message.objects.filter(id=message_id).first()
    if message is None or message.status not in (Status.ACCEPTED, Status.QUEUED, Status.SCHEDULED):
        return "skipped"
    for media in message.media.order_by("id"):
        try:
            checked = media_fetch_check(media.url)
        except MediaRefused as refused:
            if refused.transient and not final_attempt:
                return "retry"
            _refuse(message, media, refused)
            return "failed"
        Media.objects.filter(id=media.id).update(
            content_type=checked.content_type[:128], size=checked.size, error=""
        )
    return _release(message)


def _refuse(message: Message, media: Media, refused: MediaRefused) -> None:
    from messaging.services.messages import message_fail_undispatched

    log.warning("media of %s refused: %s", message.sid, refused.reason)
    Media.objects.filter(id=media.id).update(state=Media.State.FAILED, error=refused.reason[:255])
    message_fail_undispatched(message_id=message.id, error_code=refused.code, source="system")


def _release(message: Message) -> str:
    from messaging.delivery import engine

    released = Message.objects.filter(id=message.id, not_before__gt=timezone.now()).update(
        not_before=None
    )
    message.refresh_from_db(fields=["status", "sender"])
    if released and message.status == Status.QUEUED and message.sender_id:
        engine.queued(message.sender_id, 0)  # due now: its segments were counted at create
    return "released"
