"""The Messenger Platform adapter (REFERENCE.md 5): sends through the Send API, reads the page
webhook, downloads inbound attachments from Meta's CDN.

Wire facts followed (Meta's Messenger Platform docs: Send API, quick replies, sender actions,
webhook events `messages`, `messaging_postbacks`, `message_deliveries`, `message_reads`,
`message_echoes`, and the Send API error codes):

- Send: `POST {graph}/{version}/me/messages?access_token=<page token>` with JSON
  `{"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {...}}`; a tagged
  message (`HUMAN_AGENT`) is `"messaging_type": "MESSAGE_TAG", "tag": ...`. Answer
  `{"recipient_id", "message_id"}`. One message is a text or one attachment, so media go
  one call per URL (`{"attachment": {"type": image|video|audio|file, "payload": {"url",
  "is_reusable": true}}}`) before the text; the result id is the text's, or the last
  media's when there is no text. Quick replies (at most 13, titles cut to 20 characters as
  Messenger would) ride on the text, else on the last attachment. Messenger has no list
  message: a list picker of up to 13 rows becomes quick replies.
- Text is limited to 2,000 characters. A longer text is refused (21617) rather than split:
  our API already caps bodies at 1,600, and every extra call is one more chance of a
  half-delivered message.
- The Send API has no idempotency key (`idempotent = False`). Once one call of a message
  went through, a later failure is reported permanent (30008, naming what was sent), so the
  engine never repeats the parts the customer already has.
- Errors: Graph's `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`,
  mapped by `GRAPH_ERRORS` below. Subcode 2018109 (sometimes guessed to mean "outside the
  window") is documented as "Attachment size exceeds allowable limit" (code 100): permanent,
  not 63016.
- Webhook: `object == "page"`, `entry[].messaging[]` events with `sender.id` (the customer's
  PSID; for delivery and read receipts too), `recipient.id` (the page) and `timestamp` (ms).
  `message.is_echo` (our own sends echoed) is skipped; `entry[].standby[]` (threads another
  app owns under the handover protocol) is skipped: this app does not answer them. Unknown
  event kinds (reaction, referral, optin, ...) and unknown fields are ignored.

Credentials: `page_access_token` (one page) and/or `page_tokens` (JSON object page id →
token; a page's own entry wins), `app_secret`, `verify_token`. Settings: `graph_base_url`,
`api_version` (see `meta.graph_url`), `timeout_seconds`, `max_media_bytes`.
"""

import json
import mimetypes
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import urlsplit

import httpx

from messaging.providers import meta, register
from messaging.providers.base import (
    MAYBE_DELIVERED,
    InboundMedia,
    InboundMessage,
    MediaFile,
    OutboundContent,
    ProviderAdapter,
    ProviderError,
    QuickReply,
    SendResult,
    StatusUpdate,
    WebhookEvents,
    WebhookPayloadError,
    WebhookRequest,
    unanswered_send,
)
from messaging.services.providers import provider_credentials

PREFIX = "messenger:"
MAX_TEXT_CHARS = 2000
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE = 20
MAX_QUICK_REPLY_PAYLOAD = 1000
DEFAULT_MAX_MEDIA_BYTES = 16 * 1024 * 1024
SENDER_ACTIONS = ("typing_on", "typing_off", "mark_seen")


class Mapped(NamedTuple):
    code: int  # ours (Twilio's)
    permanent: bool
    throttled: bool = False


# (Meta code, subcode) → ours; a (code, None) row applies to any subcode without its own row.
GRAPH_ERRORS: dict[tuple[int, int | None], Mapped] = {
    # Outside the 24-hour window (2018278 the current policy, 2018065 the older text).
    (10, 2018278): Mapped(63016, permanent=True),
    (10, 2018065): Mapped(63016, permanent=True),
    # "This person isn't receiving messages from you right now" (blocked, left, deactivated).
    (551, None): Mapped(30003, permanent=True),
    (10, 2018108): Mapped(30003, permanent=True),
    (200, 1545041): Mapped(30003, permanent=True),
    (100, 2018001): Mapped(21211, permanent=True),  # no matching user (unknown PSID)
    (100, 2018109): Mapped(30008, permanent=True),  # attachment size exceeds the limit
    (190, None): Mapped(20003, permanent=True),  # invalid or expired page token
    # Rate limits: application, user, page, custom, Messenger business-use-case.
    (4, None): Mapped(20429, permanent=False, throttled=True),
    (17, None): Mapped(20429, permanent=False, throttled=True),
    (32, None): Mapped(20429, permanent=False, throttled=True),
    (613, None): Mapped(20429, permanent=False, throttled=True),
    (80006, None): Mapped(20429, permanent=False, throttled=True),
    # Unknown / temporary Graph failures: retry later.
    (1, None): Mapped(30008, permanent=False),
    (2, None): Mapped(30008, permanent=False),
    (1200, None): Mapped(30008, permanent=False),
}
THROTTLED_HTTP = Mapped(20429, permanent=False, throttled=True)
UNAUTHORISED_HTTP = Mapped(20003, permanent=True)
SERVER_HTTP = Mapped(30008, permanent=False)
UNKNOWN = Mapped(30008, permanent=True)

# Attachment type → (content-type family, the type to assume when the URL does not tell).
MEDIA_TYPES = {
    "image": ("image", "image/jpeg"),
    "video": ("video", "video/mp4"),
    "audio": ("audio", "audio/mpeg"),
    "file": ("", "application/octet-stream"),
}


# ---------------------------------------------------------------- configuration


def page_token(provider, page_id: str) -> str:
    """The access token for one page: its own `page_tokens` entry, else `page_access_token`."""
    try:
        credentials = provider_credentials(provider)
    except Exception:  # unreadable secrets (another key) count as missing
        credentials = {}
    tokens = credentials.get("page_tokens") or {}
    if isinstance(tokens, str):
        try:
            tokens = json.loads(tokens)
        except ValueError:
            tokens = {}
    own = tokens.get(page_id) if isinstance(tokens, dict) else None
    token = str(own or credentials.get("page_access_token") or "")
    if not token:
        raise ProviderError(
            20003,
            f"No Messenger page access token for page {page_id}: set page_access_token or a "
            f"page_tokens entry for it in the provider account's credentials.",
            permanent=True,
        )
    return token


def timeout_seconds(provider) -> float:
    return float((provider.settings or {}).get("timeout_seconds") or meta.TIMEOUT_SECONDS)


def max_media_bytes(provider) -> int:
    return int((provider.settings or {}).get("max_media_bytes") or DEFAULT_MAX_MEDIA_BYTES)


def without_prefix(address: str) -> str:
    return address[len(PREFIX) :] if address.startswith(PREFIX) else address


# ---------------------------------------------------------------- errors


def graph_error(response: httpx.Response) -> dict:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _as_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def mapping_for(status: int, code: int | None, subcode: int | None) -> Mapped:
    if code is not None:
        rule = GRAPH_ERRORS.get((code, subcode)) or GRAPH_ERRORS.get((code, None))
        if rule:
            return rule
    if status == 429:
        return THROTTLED_HTTP
    if status in (401, 403):
        return UNAUTHORISED_HTTP
    if status >= 500:
        return SERVER_HTTP
    return UNKNOWN


def error_from_response(response: httpx.Response) -> ProviderError:
    """A refused Graph call as our error, keeping Meta's code, message and trace id."""
    error = graph_error(response)
    code, subcode = _as_int(error.get("code")), _as_int(error.get("error_subcode"))
    rule = mapping_for(response.status_code, code, subcode)
    if error:
        meta_code = f"{code}/{subcode}" if subcode is not None else f"{code}"
        text = f"Messenger error {meta_code}: {error.get('message') or 'no message'}"
        if error.get("fbtrace_id"):
            text += f" (fbtrace_id {error['fbtrace_id']})"
    else:
        text = f"Messenger answered HTTP {response.status_code}: {response.text[:200]}"
    if rule.code == 20003 and code != 190:
        text = f"Messenger refused the page token (HTTP {response.status_code}). {text}"
    retry_after = None
    if rule.throttled:
        retry_after = _retry_after(response)
    return ProviderError(
        rule.code, text, permanent=rule.permanent, throttled=rule.throttled, retry_after=retry_after
    )


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def network_error(exc: httpx.HTTPError, seconds: float) -> ProviderError:
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(
            30008, f"Messenger did not answer within {seconds:g} s.", permanent=False
        )
    return ProviderError(30008, f"Could not reach Messenger: {exc}", permanent=False)


# ---------------------------------------------------------------- sending


def post_message(client: httpx.Client, provider, token: str, body: dict) -> dict:
    """One Send API call; the parsed answer, or `ProviderError`."""
    try:
        response = client.post(
            meta.graph_url(provider, "me/messages"), params={"access_token": token}, json=body
        )
    except MAYBE_DELIVERED as exc:
        raise unanswered_send("Messenger", exc) from exc
    except httpx.HTTPError as exc:
        raise network_error(exc, timeout_seconds(provider)) from exc
    if response.status_code >= 400:
        raise error_from_response(response)
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderError(
            30008,
            f"Messenger answered with a body that is not JSON: {response.text[:200]}",
            permanent=True,
        ) from exc


def sender_action(provider, page_id: str, psid: str, action: str) -> None:
    """Show typing or mark the conversation seen (`typing_on | typing_off | mark_seen`)."""
    if action not in SENDER_ACTIONS:
        raise ValueError(f"Unknown sender action {action!r}; expected one of {SENDER_ACTIONS}.")
    token = page_token(provider, without_prefix(page_id))
    body = {"recipient": {"id": without_prefix(psid)}, "sender_action": action}
    with httpx.Client(timeout=timeout_seconds(provider)) as client:
        post_message(client, provider, token, body)


def quick_replies_for(content: OutboundContent) -> list[dict]:
    """Quick replies, and a list picker's rows as quick replies (Messenger has no lists)."""
    replies = list(content.quick_replies)
    if content.list_picker is not None:
        replies += [QuickReply(payload=row.id, title=row.title) for row in content.list_picker.rows]
    if len(replies) > MAX_QUICK_REPLIES:
        raise ProviderError(
            20422,
            f"Messenger allows at most {MAX_QUICK_REPLIES} quick replies (list rows count as "
            f"quick replies); this message has {len(replies)}.",
            permanent=True,
        )
    for reply in replies:
        if len(reply.payload) > MAX_QUICK_REPLY_PAYLOAD:
            raise ProviderError(
                20422,
                f"A Messenger quick reply payload is at most {MAX_QUICK_REPLY_PAYLOAD} "
                f"characters ({reply.payload[:20]!r}... has {len(reply.payload)}).",
                permanent=True,
            )
    # Messenger itself cuts titles at 20 characters; doing it here keeps what we store true.
    return [
        {"content_type": "text", "title": r.title[:MAX_QUICK_REPLY_TITLE], "payload": r.payload}
        for r in replies
    ]


def attachment_type(url: str, content_type: str) -> str:
    kind = (content_type or mimetypes.guess_type(urlsplit(url).path)[0] or "").split("/")[0]
    return kind if kind in ("image", "video", "audio") else "file"


def message_parts(content: OutboundContent) -> list[dict]:
    """The `message` objects to send, in order: one per media URL, then the text."""
    if len(content.text) > MAX_TEXT_CHARS:
        raise ProviderError(
            21617,
            f"Messenger texts are at most {MAX_TEXT_CHARS} characters; this one has "
            f"{len(content.text)}.",
            permanent=True,
        )
    replies = quick_replies_for(content)
    parts: list[dict] = []
    for index, url in enumerate(content.media_urls):
        given = content.media_types[index] if index < len(content.media_types) else ""
        payload = {"url": url, "is_reusable": True}
        parts.append({"attachment": {"type": attachment_type(url, given), "payload": payload}})
    if content.text:
        parts.append({"text": content.text})
    if not parts:
        raise ProviderError(21602, "A Messenger message needs text or media.", permanent=True)
    if replies:
        parts[-1]["quick_replies"] = replies
    return parts


def envelope(psid: str, content: OutboundContent, message: dict) -> dict:
    body: dict = {"recipient": {"id": psid}, "messaging_type": "RESPONSE", "message": message}
    if content.tag:
        body["messaging_type"] = "MESSAGE_TAG"
        body["tag"] = content.tag
    return body


def partial_failure(error: ProviderError, sent: int, total: int) -> ProviderError:
    """A failure after some parts went through: never retried, so nothing arrives twice."""
    return ProviderError(
        30008 if not error.permanent else error.code,
        f"Messenger accepted {sent} of {total} parts of this message, then: {error.message} "
        f"(not retried: the parts sent would be repeated).",
        permanent=True,
        throttled=error.throttled,
        retry_after=error.retry_after,
    )


@register("messenger")
class MessengerAdapter(meta.MetaWebhooks, ProviderAdapter):
    idempotent = False

    def send(self, message, *, content: OutboundContent, idempotency_key: str) -> SendResult:
        if not message.to_address.startswith(PREFIX):
            raise ProviderError(
                21211, f"{message.to_address!r} is not a Messenger address.", permanent=True
            )
        psid = without_prefix(message.to_address)
        token = page_token(self.provider, without_prefix(message.sender.address))
        parts = message_parts(content)
        message_id = ""
        with httpx.Client(timeout=timeout_seconds(self.provider)) as client:
            for sent, part in enumerate(parts):
                try:
                    answer = post_message(
                        client, self.provider, token, envelope(psid, content, part)
                    )
                except ProviderError as error:
                    if sent == 0:
                        raise
                    raise partial_failure(error, sent, len(parts)) from error
                message_id = str(answer.get("message_id") or "")
        if not message_id:
            raise ProviderError(
                30008,
                f"Messenger accepted the message but gave no message_id: {answer}",
                permanent=True,
            )
        return SendResult(provider_message_id=message_id)

    # -- webhooks

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvents:
        return parse_events(request.body)

    def fetch_media(self, media: InboundMedia) -> MediaFile:
        return download(
            media, seconds=timeout_seconds(self.provider), cap=max_media_bytes(self.provider)
        )


# ---------------------------------------------------------------- webhook parsing


def field_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def required(obj: dict, key: str, path: str):
    value = obj.get(key)
    if value is None or value == "":
        raise WebhookPayloadError(f"{field_path(path, key)} is missing")
    return value


def required_object(obj: dict, key: str, path: str) -> dict:
    value = required(obj, key, path)
    if not isinstance(value, dict):
        raise WebhookPayloadError(f"{field_path(path, key)} is not an object")
    return value


def list_at(obj: dict, key: str, path: str) -> list:
    """An optional list: [] when absent."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise WebhookPayloadError(f"{field_path(path, key)} is not a list")
    return value


def moment(value, path: str) -> datetime:
    """Meta's times are ms since the epoch (sometimes as strings); 10-digit ones are seconds."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise WebhookPayloadError(f"{path} is not a timestamp: {value!r}") from None
    seconds = number / 1000 if number >= 1e11 else number
    return datetime.fromtimestamp(seconds, tz=UTC)


def parse_events(body: bytes) -> WebhookEvents:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise WebhookPayloadError(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise WebhookPayloadError("body is not a JSON object")
    if payload.get("object") != "page":
        raise WebhookPayloadError(f"object is {payload.get('object')!r}, expected 'page'")
    messages: list[InboundMessage] = []
    statuses: list[StatusUpdate] = []
    required(payload, "entry", "")
    for e, entry in enumerate(list_at(payload, "entry", "")):
        if not isinstance(entry, dict):
            raise WebhookPayloadError(f"entry[{e}] is not an object")
        for m, event in enumerate(list_at(entry, "messaging", f"entry[{e}]")):
            path = f"entry[{e}].messaging[{m}]"
            if not isinstance(event, dict):
                raise WebhookPayloadError(f"{path} is not an object")
            found = parse_event(event, path)
            messages += [item for item in found if isinstance(item, InboundMessage)]
            statuses += [item for item in found if isinstance(item, StatusUpdate)]
    return WebhookEvents(messages=tuple(messages), statuses=tuple(statuses))


def parse_event(event: dict, path: str) -> list:
    """One messaging event as neutral events; [] for kinds we do not handle."""
    message = event.get("message")
    if isinstance(message, dict) and message.get("is_echo"):
        return []  # our own send, echoed back
    handlers = (
        ("message", parse_message),
        ("postback", parse_postback),
        ("delivery", parse_delivery),
        ("read", parse_read),
    )
    for kind, handler in handlers:
        if kind in event:
            psid = str(required(required_object(event, "sender", path), "id", f"{path}.sender"))
            page = str(
                required(required_object(event, "recipient", path), "id", f"{path}.recipient")
            )
            timestamp = required(event, "timestamp", path)
            when = moment(timestamp, f"{path}.timestamp")
            part = required_object(event, kind, path)
            context = EventContext(psid, page, timestamp, when, f"{path}.{kind}")
            return handler(part, context)
    return []


class EventContext(NamedTuple):
    psid: str
    page: str
    raw_timestamp: object
    when: datetime
    path: str

    @property
    def customer(self) -> str:
        return PREFIX + self.psid

    @property
    def business(self) -> str:
        return PREFIX + self.page


def parse_message(message: dict, context: EventContext) -> list:
    mid = str(required(message, "mid", context.path))
    text = message.get("text")
    extra: dict[str, str] = {}
    quick_reply = message.get("quick_reply")
    if isinstance(quick_reply, dict) and quick_reply.get("payload") is not None:
        extra["ButtonPayload"] = str(quick_reply["payload"])
    reply_to = message.get("reply_to")
    if isinstance(reply_to, dict) and reply_to.get("mid"):
        extra["ReplyToProviderMessageId"] = str(reply_to["mid"])
    media: list[InboundMedia] = []
    for index, attachment in enumerate(list_at(message, "attachments", context.path)):
        if not isinstance(attachment, dict):
            raise WebhookPayloadError(f"{context.path}.attachments[{index}] is not an object")
        payload = attachment.get("payload") if isinstance(attachment.get("payload"), dict) else {}
        kind = attachment.get("type")
        if kind in MEDIA_TYPES and payload.get("url"):
            url = str(payload["url"])
            media.append(InboundMedia(url=url, content_type=media_content_type(kind, url)))
        elif kind == "location":
            extra.update(coordinates(payload))
    return [
        InboundMessage(
            provider_message_id=mid,
            from_address=context.customer,
            to_address=context.business,
            body=str(text) if isinstance(text, str) else "",
            media=tuple(media),
            timestamp=context.when,
            extra=extra,
        )
    ]


def coordinates(payload: dict) -> dict[str, str]:
    """A shared location (older payloads: `payload.coordinates{lat, long}`)."""
    point = payload.get("coordinates")
    if not isinstance(point, dict) or point.get("lat") is None or point.get("long") is None:
        return {}
    return {"Latitude": str(point["lat"]), "Longitude": str(point["long"])}


def media_content_type(kind: str, url: str) -> str:
    """Messenger says only image/video/audio/file: the URL's extension tells the rest."""
    family, default = MEDIA_TYPES[kind]
    guessed = mimetypes.guess_type(urlsplit(url).path)[0] or ""
    if not guessed:
        return default
    if not family or guessed.startswith(family + "/"):
        return guessed
    if guessed.endswith("/mp4"):  # voice clips come as .mp4: audio, not video
        return f"{family}/mp4"
    return default


def parse_postback(postback: dict, context: EventContext) -> list:
    title = str(postback.get("title") or "")
    mid = postback.get("mid") or f"postback:{context.psid}:{context.raw_timestamp}"
    extra = {"ButtonText": title}
    if postback.get("payload") is not None:
        extra["ButtonPayload"] = str(postback["payload"])
    return [
        InboundMessage(
            provider_message_id=str(mid),
            from_address=context.customer,
            to_address=context.business,
            body=title,
            timestamp=context.when,
            extra=extra,
        )
    ]


def parse_delivery(delivery: dict, context: EventContext) -> list:
    """One update per delivered mid, and one for everything sent up to the watermark."""
    updates = [
        StatusUpdate(status="delivered", provider_message_id=str(mid), timestamp=context.when)
        for mid in list_at(delivery, "mids", context.path)
        if mid
    ]
    return [*updates, watermark_update("delivered", delivery, context)]


def parse_read(read: dict, context: EventContext) -> list:
    return [watermark_update("read", read, context)]


def watermark_update(status: str, receipt: dict, context: EventContext) -> StatusUpdate:
    watermark = required(receipt, "watermark", context.path)
    return StatusUpdate(
        status=status,
        recipient=context.customer,
        sender_ref=context.business,
        watermark=moment(watermark, f"{context.path}.watermark"),
        timestamp=context.when,
    )


# ---------------------------------------------------------------- media


def download(media: InboundMedia, *, seconds: float, cap: int) -> MediaFile:
    """GET an attachment from Meta's CDN (its URL needs no token), at most `cap` bytes."""
    if not media.url:
        raise ProviderError(30008, "This Messenger attachment has no URL.", permanent=True)
    try:
        with (
            httpx.Client(timeout=seconds, follow_redirects=True) as client,
            client.stream("GET", media.url) as response,
        ):
            if response.status_code >= 400:
                raise ProviderError(
                    30008,
                    f"Messenger media download answered HTTP {response.status_code}.",
                    permanent=response.status_code < 500 and response.status_code != 429,
                )
            content = read_capped(response, cap)
    except httpx.HTTPError as exc:
        raise network_error(exc, seconds) from exc
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    return MediaFile(
        content=content,
        content_type=content_type or media.content_type or "application/octet-stream",
    )


def read_capped(response: httpx.Response, cap: int) -> bytes:
    too_big = ProviderError(
        30008, f"Messenger media is larger than the {cap}-byte limit.", permanent=True
    )
    declared = _as_int(response.headers.get("Content-Length"))
    if declared is not None and declared > cap:
        raise too_big
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > cap:
            raise too_big  # streamed: stop before holding more than the cap
        chunks.append(chunk)
    return b"".join(chunks)
