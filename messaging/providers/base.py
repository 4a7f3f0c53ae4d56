"""The one interface every provider adapter implements.

Sending: `send(message, content=..., idempotency_key=...)` with what to send already worked
out (`OutboundContent`, neutral across providers; each adapter maps it to its wire format).

Receiving: the webhook view hands the adapter a `WebhookRequest` (method, public URL,
headers, raw body). The adapter answers verification handshakes (`handshake`), checks the
signature (`verify_request`, before anything else) and turns the body into neutral events
(`parse_webhook` → `WebhookEvents` of `InboundMessage`s and `StatusUpdate`s). Adapters touch
no database: looking up senders, storing and de-duplicating is the inbound service's job.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import httpx


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str


class ProviderError(Exception):
    """A send the provider refused. `permanent` ones fail the message with `code`; the others
    are retried with back-off within the validity period. `throttled` (HTTP 429, SMPP
    throttling) also pauses the sender for `retry_after` seconds."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        permanent: bool,
        throttled: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.permanent = permanent
        self.throttled = throttled
        self.retry_after = retry_after


# Failures after the request went out whole: the provider may have accepted the message.
# Without an idempotency key a retry could deliver it twice, so such a send fails (30008)
# instead of being retried; failures before that (connect errors and timeouts) are retried.
MAYBE_DELIVERED = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)


def unanswered_send(provider_label: str, error: Exception) -> ProviderError:
    return ProviderError(
        30008,
        f"{provider_label} received the request but did not answer ({type(error).__name__}: "
        f"{error}); not retried, because a retry could deliver the message twice.",
        permanent=True,
    )


class WebhookPayloadError(Exception):
    """The webhook is signed correctly but its body cannot be understood (answered 400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------- outbound


@dataclass(frozen=True)
class QuickReply:
    payload: str  # what comes back when the customer taps it (button id)
    title: str


@dataclass(frozen=True)
class ListRow:
    id: str
    title: str
    description: str = ""


@dataclass(frozen=True)
class ListPicker:
    button: str  # the label of the button that opens the list
    rows: tuple[ListRow, ...]
    section_title: str = ""


@dataclass(frozen=True)
class TemplateRef:
    """An approved WhatsApp template: name, language and the values of its placeholders."""

    name: str
    language: str  # e.g. "es_MX"
    body_params: tuple[str, ...] = ()
    header_params: tuple[str, ...] = ()
    header_media_url: str = ""
    header_media_type: str = ""  # image, video, document
    # Quick-reply buttons' payloads by button index; URL buttons' suffix values by index.
    button_payloads: Mapping[int, str] = field(default_factory=dict)
    button_url_params: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundContent:
    """What to send, worked out by the engine: text (already smart-encoded), media URLs,
    interactive parts and, for WhatsApp outside the service window, an approved template."""

    text: str = ""
    media_urls: tuple[str, ...] = ()
    media_types: tuple[str, ...] = ()  # content types of media_urls when known
    quick_replies: tuple[QuickReply, ...] = ()
    list_picker: ListPicker | None = None
    template: TemplateRef | None = None
    # Messenger: "HUMAN_AGENT" lets a person answer up to 7 days after the customer's last
    # message; empty means a plain RESPONSE inside the 24-hour window.
    tag: str = ""


# ---------------------------------------------------------------- inbound


@dataclass(frozen=True)
class WebhookRequest:
    method: str  # "GET" or "POST"
    url: str  # the public URL the provider called, query string included
    headers: Mapping[str, str]  # case-insensitive (Django's request.headers)
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    # Form-encoded bodies parsed (Twilio signs every value of every parameter).
    form: Mapping[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class HandshakeAnswer:
    status: int
    body: str
    content_type: str = "text/plain"


@dataclass(frozen=True)
class InboundMedia:
    url: str = ""  # where to fetch it (Twilio), or "" when only an id is given
    content_type: str = ""
    provider_media_id: str = ""  # WhatsApp media id: the adapter resolves it when fetching


@dataclass(frozen=True)
class MediaFile:
    content: bytes
    content_type: str


@dataclass(frozen=True)
class InboundMessage:
    provider_message_id: str
    # Customer address in our canonical form: +E164, whatsapp:+E164 or messenger:<PSID>.
    from_address: str
    # Our sender: its address as stored (+E164, whatsapp:+E164, messenger:<page id>), or
    # the provider's id for it (`Sender.provider_ref`, e.g. the WhatsApp phone number id).
    to_address: str = ""
    to_ref: str = ""
    body: str = ""
    media: tuple[InboundMedia, ...] = ()
    profile_name: str = ""
    timestamp: datetime | None = None
    # Twilio-style extra webhook parameters: ButtonText, ButtonPayload, Latitude,
    # Longitude, Address, Label, WaId, ... (forwarded to integrators as they are).
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery receipt. Either for one message (`provider_message_id`), or, Messenger's
    watermarks, for every message to `recipient` sent up to `watermark`."""

    status: str  # our status: sent, delivered, read, failed, undelivered
    provider_message_id: str = ""
    error_code: int | None = None  # already mapped to our codes (e.g. 131047 → 63016)
    error_message: str = ""
    recipient: str = ""  # canonical customer address, with `watermark`
    sender_ref: str = ""  # our sender (address or provider_ref), with `watermark`
    watermark: datetime | None = None
    timestamp: datetime | None = None


@dataclass(frozen=True)
class WebhookEvents:
    messages: tuple[InboundMessage, ...] = ()
    statuses: tuple[StatusUpdate, ...] = ()


class ProviderAdapter:
    # The provider de-duplicates sends by `idempotency_key`: after a crash mid-send the engine
    # may safely send again. Without it, an unfinished send is failed (30008), never repeated.
    idempotent = False
    # Sends go over the network: the engine calls them from a thread pool so that one slow
    # provider call does not delay other senders' slots.
    network = True

    def __init__(self, provider) -> None:
        self.provider = provider

    def send(
        self, message, *, content: OutboundContent, idempotency_key: str
    ) -> SendResult:  # pragma: no cover
        raise NotImplementedError

    # -- webhooks

    def handshake(self, request: WebhookRequest) -> HandshakeAnswer | None:
        """A subscription handshake (Meta's GET hub.challenge); None when `request` is not one."""
        return None

    def verify_request(self, request: WebhookRequest) -> bool:  # pragma: no cover
        """Whether the request carries the provider's valid signature."""
        raise NotImplementedError

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvents:  # pragma: no cover
        """Events in a verified request; `WebhookPayloadError` when the body makes no sense."""
        raise NotImplementedError

    def fetch_media(self, media: InboundMedia) -> MediaFile:  # pragma: no cover
        """Download an inbound media item with the provider's credentials (`ProviderError`
        when it cannot be fetched)."""
        raise NotImplementedError

    def webhook_ack(self, events: WebhookEvents) -> HandshakeAnswer:
        """What to answer the provider once the events are stored."""
        return HandshakeAnswer(status=200, body="", content_type="text/plain")
