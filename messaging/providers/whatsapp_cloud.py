"""The WhatsApp Business Cloud API adapter (REFERENCE.md 4), over `httpx`.

Wire facts it follows (Meta's Cloud API reference):

- Send: `POST {graph}/{phone_number_id}/messages` with `Authorization: Bearer <access_token>`
  and JSON `{"messaging_product": "whatsapp", "recipient_type": "individual", "to": <digits>,
  "type": ..., <type>: {...}}`; the answer is `{"messages": [{"id": "wamid..."}]}`. Errors
  come as `{"error": {"message", "type", "code", "error_subcode", "error_data": {"details"},
  "fbtrace_id"}}` and are mapped by `GRAPH_ERRORS` below.
- One WhatsApp message carries one media item: several media go out as one call each, the
  text as the caption of the first that takes one (image, video, document; never audio).
  Interactive messages carry no media: media go first, then the buttons or list with the
  text. The result id is the first call's; a later call failing fails the message for good
  (repeating it would send the parts already accepted twice). The Cloud API has no
  idempotency key, so the adapter is not `idempotent`.
- Interactive limits: reply buttons ≤ 3 with titles ≤ 20 characters (more, or longer, quick
  replies become a list); lists ≤ 10 rows, row titles ≤ 24, descriptions ≤ 72, button ≤ 20.
  Content WhatsApp cannot carry is refused before any call with 63021 (Twilio's "Channel
  invalid content error", what Twilio reports for WhatsApp content the channel refuses).
- Templates: Twilio's codes 63027 (template does not exist) and 63028 (parameters do not
  match) for Meta's 132001 and 132000 / 132012, as Twilio maps WhatsApp's 2001 and 2000.
- Webhooks: `object == "whatsapp_business_account"`, `entry[].changes[]` of `field ==
  "messages"` with `value.metadata`, `value.contacts[]`, `value.messages[]` and
  `value.statuses[]`; signed `X-Hub-Signature-256` and verified by the `hub.challenge`
  handshake (`meta.py`). Skipped without error: other change fields, `value.errors`,
  statuses other than sent/delivered/read/failed, messages of type reaction, system,
  unsupported, contacts, request_welcome, ephemeral, interactive replies other than button/list
  replies, and unknown types that carry no text.
- Media: `GET {graph}/{media_id}` → `{"url", "mime_type", "file_size"}`, then `GET url`, both
  with the Bearer token (Meta requires it on the download too).
- Templates (WABA management): `{graph}/{waba_id}/message_templates`, GET paged with
  `paging.next`, POST to create, DELETE `?name=`.

Credentials: `access_token`, `app_secret`, `verify_token`. Settings: `graph_base_url`,
`api_version`, `waba_id`, `timeout_seconds`, `max_media_bytes`, `list_button` (the label of
the list that too many quick replies become, default "Options").
"""

import json
import re
import threading
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

import httpx

from messaging.providers import meta, register
from messaging.providers.base import (
    MAYBE_DELIVERED,
    InboundMedia,
    InboundMessage,
    ListPicker,
    ListRow,
    MediaFile,
    OutboundContent,
    ProviderAdapter,
    ProviderError,
    SendResult,
    StatusUpdate,
    TemplateRef,
    WebhookEvents,
    WebhookPayloadError,
    WebhookRequest,
    unanswered_send,
)

PERMANENT, TRANSIENT, THROTTLED = "permanent", "transient", "throttled"


class ErrorRule(NamedTuple):
    code: int  # ours (Twilio's)
    kind: str  # PERMANENT, TRANSIENT or THROTTLED
    meaning: str


# Meta's error code → ours. Codes not listed fall back on the HTTP status (401/403 → 20003,
# 429 → throttled 20429, 5xx → transient 30008), then permanent 30008; the text always keeps
# Meta's code and message.
GRAPH_ERRORS: dict[int, ErrorRule] = {
    131047: ErrorRule(63016, PERMANENT, "outside the 24-hour window: send an approved template"),
    131026: ErrorRule(30003, PERMANENT, "the message could not be delivered to this recipient"),
    131050: ErrorRule(21610, PERMANENT, "the recipient stopped marketing messages"),
    131049: ErrorRule(30007, PERMANENT, "Meta held the message back (ecosystem engagement)"),
    131051: ErrorRule(63021, PERMANENT, "WhatsApp does not support this message type"),
    132000: ErrorRule(63028, PERMANENT, "the template parameters do not match"),
    132001: ErrorRule(63027, PERMANENT, "the template does not exist in this language"),
    132012: ErrorRule(63028, PERMANENT, "a template parameter has the wrong format"),
    133010: ErrorRule(21606, PERMANENT, "the sender's phone number is not registered"),
    190: ErrorRule(20003, PERMANENT, "WhatsApp refused the access token"),
    130429: ErrorRule(63018, THROTTLED, "Cloud API throughput reached"),
    131048: ErrorRule(63018, THROTTLED, "spam rate limit reached"),
    131056: ErrorRule(63018, THROTTLED, "too many messages to this recipient"),
    80007: ErrorRule(63018, THROTTLED, "WhatsApp Business Account rate limit reached"),
    131000: ErrorRule(30008, TRANSIENT, "WhatsApp had an internal error"),
}

# Meta's status → ours; other statuses (deleted, warning...) are skipped.
STATUSES = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed"}

DEFAULT_MAX_MEDIA_BYTES = 16 * 1024 * 1024
DEFAULT_LIST_BUTTON = "Options"
MAX_BUTTONS, MAX_BUTTON_TITLE = 3, 20
MAX_ROWS, MAX_ROW_TITLE, MAX_ROW_DESCRIPTION, MAX_LIST_BUTTON = 10, 24, 72, 20
MAX_TEMPLATE_PAGES = 100  # a guard against a `paging.next` that never ends

# What WhatsApp accepts for each media type; anything else goes as a document, so a GIF or
# a WebP still reaches the customer.
MEDIA_TYPES = {
    "image": {"image/jpeg", "image/png"},
    "video": {"video/mp4", "video/3gpp"},
    "audio": {"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg", "audio/opus"},
}
MEDIA_EXTENSIONS = {
    ".jpg": "image",
    ".jpeg": "image",
    ".png": "image",
    ".mp4": "video",
    ".3gp": "video",
    ".aac": "audio",
    ".amr": "audio",
    ".mp3": "audio",
    ".m4a": "audio",
    ".ogg": "audio",
    ".opus": "audio",
}
CAPTIONED = {"image", "video", "document"}
INBOUND_MEDIA = ("image", "audio", "video", "document", "sticker")
URL_IN_TEXT = re.compile(r"https?://\S", re.IGNORECASE)

# Click-to-WhatsApp ad referrals, under Twilio's parameter names.
REFERRAL_PARAMS = {
    "source_url": "ReferralSourceUrl",
    "source_id": "ReferralSourceId",
    "source_type": "ReferralSourceType",
    "headline": "ReferralHeadline",
    "body": "ReferralBody",
    "media_type": "ReferralMediaType",
    "image_url": "ReferralMediaUrl",
    "video_url": "ReferralMediaUrl",
    "ctwa_clid": "ReferralCtwaClid",
}


# ---------------------------------------------------------------- HTTP


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def http_client() -> httpx.Client:
    """One pooled client per process (thread-safe): sends reuse connections to Graph."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(follow_redirects=True)
        return _client


def _timeout(provider) -> float:
    return float((provider.settings or {}).get("timeout_seconds") or meta.TIMEOUT_SECONDS)


def _bearer(provider) -> dict[str, str]:
    token = meta.credential(provider, "access_token")
    if not token:
        raise ProviderError(
            20003, "The WhatsApp provider has no access_token credential.", permanent=True
        )
    return {"Authorization": f"Bearer {token}"}


def graph_call(provider, method: str, url: str, **kwargs) -> dict:
    """One Graph API call: its JSON answer, or the mapped `ProviderError`."""
    headers = _bearer(provider)
    try:
        response = http_client().request(
            method, url, headers=headers, timeout=_timeout(provider), **kwargs
        )
    except MAYBE_DELIVERED as exc:
        if method == "POST":  # a send (or a template submission) may have gone through
            raise unanswered_send("WhatsApp", exc) from exc
        raise ProviderError(30008, f"WhatsApp did not answer: {exc!r}", permanent=False) from exc
    except httpx.TimeoutException as exc:
        raise ProviderError(30008, f"WhatsApp timed out: {exc!r}", permanent=False) from exc
    except httpx.TransportError as exc:
        raise ProviderError(
            30008, f"WhatsApp could not be reached: {exc!r}", permanent=False
        ) from exc
    if response.is_success:
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(
                30008,
                f"WhatsApp answered HTTP {response.status_code} without JSON.",
                permanent=True,
            ) from exc
    raise error_from_response(response)


def error_from_response(response: httpx.Response) -> ProviderError:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    return graph_error(response.status_code, error, _retry_after(response))


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _describe(status: int, error: dict) -> str:
    """Meta's own words: code/subcode, message, details and trace id (for Meta's support)."""
    code = error.get("code")
    subcode = error.get("error_subcode")
    parts = [f"HTTP {status}"]
    if code is not None:
        parts.append(f"Meta error {code}" + (f"/{subcode}" if subcode else ""))
    text = ", ".join(parts)
    if error.get("message"):
        text += f": {error['message']}"
    data = error.get("error_data")
    if isinstance(data, dict) and data.get("details"):
        text += f" ({data['details']})"
    if error.get("fbtrace_id"):
        text += f" [fbtrace_id {error['fbtrace_id']}]"
    return text


def _as_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def graph_error(status: int, error: dict, retry_after: float | None = None) -> ProviderError:
    """The `ProviderError` for a Graph error body (`{"error": {...}}`'s inside)."""
    described = _describe(status, error)
    rule = GRAPH_ERRORS.get(_as_int(error.get("code")))
    if rule is None:
        rule = _rule_for_status(status)
    return ProviderError(
        rule.code,
        f"{rule.meaning} — {described}",
        permanent=rule.kind == PERMANENT,
        throttled=rule.kind == THROTTLED,
        retry_after=retry_after,
    )


def _rule_for_status(status: int) -> ErrorRule:
    if status in (401, 403):
        return ErrorRule(20003, PERMANENT, "WhatsApp refused the access token or its permissions")
    if status == 429:
        return ErrorRule(20429, THROTTLED, "WhatsApp asked to slow down")
    if status >= 500:
        return ErrorRule(30008, TRANSIENT, "WhatsApp had a server error")
    return ErrorRule(30008, PERMANENT, "WhatsApp refused the message")


# ---------------------------------------------------------------- outbound payloads


def recipient_digits(address: str) -> str:
    """`whatsapp:+14155550123` → `14155550123` (Meta wants digits only)."""
    digits = re.sub(r"\D", "", address.removeprefix("whatsapp:"))
    if not digits:
        raise ProviderError(21211, f"Invalid WhatsApp recipient {address!r}.", permanent=True)
    return digits


def _refuse(text: str) -> ProviderError:
    return ProviderError(63021, text, permanent=True)


def text_payload(text: str) -> dict:
    return {"type": "text", "text": {"body": text, "preview_url": bool(URL_IN_TEXT.search(text))}}


def media_kind(url: str, content_type: str = "") -> str:
    """image, video, audio or document: by content type when known, else by extension."""
    content_type = content_type.split(";")[0].strip().lower()
    if content_type:
        return next(
            (kind for kind, types in MEDIA_TYPES.items() if content_type in types), "document"
        )
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    return MEDIA_EXTENSIONS.get(suffix, "document")


def media_payload(url: str, kind: str, caption: str = "") -> dict:
    item = {"link": url}
    if caption and kind in CAPTIONED:
        item["caption"] = caption
    if kind == "document":
        # Without a filename WhatsApp shows the document as "Untitled".
        name = unquote(PurePosixPath(urlsplit(url).path).name)
        if PurePosixPath(name).suffix:
            item["filename"] = name
    return {"type": kind, kind: item}


def media_payloads(content: OutboundContent, caption: str) -> list[dict]:
    """One payload per media item; `caption` on the first item that takes one, or as a text
    message first when none does (audio only)."""
    kinds = [
        media_kind(url, content.media_types[i] if i < len(content.media_types) else "")
        for i, url in enumerate(content.media_urls)
    ]
    captioned = next((i for i, kind in enumerate(kinds) if kind in CAPTIONED), None)
    payloads = [
        media_payload(url, kind, caption if i == captioned else "")
        for i, (url, kind) in enumerate(zip(content.media_urls, kinds, strict=True))
    ]
    if caption and captioned is None:
        payloads.insert(0, text_payload(caption))
    return payloads


def _body_text(text: str) -> dict:
    if not text:
        raise _refuse("WhatsApp interactive messages need body text.")
    return {"text": text}


def buttons_payload(content: OutboundContent) -> dict:
    buttons = [
        {"type": "reply", "reply": {"id": reply.payload, "title": reply.title}}
        for reply in content.quick_replies
    ]
    return {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": _body_text(content.text),
            "action": {"buttons": buttons},
        },
    }


def _check_list(picker: ListPicker) -> None:
    if not picker.rows or len(picker.rows) > MAX_ROWS:
        raise _refuse(f"A WhatsApp list holds 1 to {MAX_ROWS} rows, not {len(picker.rows)}.")
    if not picker.button or len(picker.button) > MAX_LIST_BUTTON:
        raise _refuse(
            f"A WhatsApp list button label needs 1 to {MAX_LIST_BUTTON} characters: "
            f"{picker.button!r}."
        )
    if len(picker.section_title) > MAX_ROW_TITLE:
        raise _refuse(f"WhatsApp list section titles are at most {MAX_ROW_TITLE} characters.")
    for row in picker.rows:
        if not row.title or len(row.title) > MAX_ROW_TITLE:
            raise _refuse(
                f"WhatsApp list row titles need 1 to {MAX_ROW_TITLE} characters: {row.title!r}."
            )
        if len(row.description) > MAX_ROW_DESCRIPTION:
            raise _refuse(
                f"WhatsApp list row descriptions are at most {MAX_ROW_DESCRIPTION} characters: "
                f"{row.description!r}."
            )


def list_payload(text: str, picker: ListPicker) -> dict:
    _check_list(picker)
    rows = []
    for row in picker.rows:
        item = {"id": row.id, "title": row.title}
        if row.description:
            item["description"] = row.description
        rows.append(item)
    section = (
        {"title": picker.section_title, "rows": rows} if picker.section_title else {"rows": rows}
    )
    return {
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": _body_text(text),
            "action": {"button": picker.button, "sections": [section]},
        },
    }


def _fits_buttons(content: OutboundContent) -> bool:
    replies = content.quick_replies
    return len(replies) <= MAX_BUTTONS and all(
        0 < len(reply.title) <= MAX_BUTTON_TITLE for reply in replies
    )


def interactive_payload(content: OutboundContent, list_button: str) -> dict | None:
    """A list for `list_picker`; reply buttons for quick replies that fit, else a list of
    them; None when the content is not interactive."""
    if content.list_picker is not None:
        return list_payload(content.text, content.list_picker)
    if not content.quick_replies:
        return None
    if _fits_buttons(content):
        return buttons_payload(content)
    rows = tuple(ListRow(id=reply.payload, title=reply.title) for reply in content.quick_replies)
    return list_payload(content.text, ListPicker(button=list_button, rows=rows))


def _text_parameters(values) -> list[dict]:
    return [{"type": "text", "text": value} for value in values]


def template_payload(template: TemplateRef) -> dict:
    components = []
    if template.header_media_url:
        kind = template.header_media_type or media_kind(template.header_media_url)
        if kind not in CAPTIONED:
            raise _refuse(f"A WhatsApp template header cannot be of type {kind!r}.")
        components.append(
            {
                "type": "header",
                "parameters": [{"type": kind, kind: {"link": template.header_media_url}}],
            }
        )
    elif template.header_params:
        components.append(
            {"type": "header", "parameters": _text_parameters(template.header_params)}
        )
    if template.body_params:
        components.append({"type": "body", "parameters": _text_parameters(template.body_params)})
    components.extend(_template_buttons(template))
    body = {"name": template.name, "language": {"code": template.language}}
    if components:
        body["components"] = components
    return {"type": "template", "template": body}


def _template_buttons(template: TemplateRef) -> list[dict]:
    indexes = sorted({*template.button_payloads, *template.button_url_params})
    buttons = []
    for index in indexes:
        if index in template.button_payloads:
            sub_type = "quick_reply"
            parameter = {"type": "payload", "payload": template.button_payloads[index]}
        else:
            sub_type = "url"
            parameter = {"type": "text", "text": template.button_url_params[index]}
        buttons.append(
            {"type": "button", "sub_type": sub_type, "index": str(index), "parameters": [parameter]}
        )
    return buttons


def message_payloads(content: OutboundContent, *, list_button: str = DEFAULT_LIST_BUTTON):
    """The type-specific halves of the calls one message takes, in order."""
    if content.template is not None:
        return [template_payload(content.template)]
    interactive = interactive_payload(content, list_button)
    if interactive is not None:
        # Interactive messages carry no media: the media go first, the text with the buttons.
        return [*media_payloads(content, caption=""), interactive]
    if content.media_urls:
        return media_payloads(content, caption=content.text)
    if content.text:
        return [text_payload(content.text)]
    raise ProviderError(21602, "Nothing to send: no text, media or template.", permanent=True)


def _sent_id(answer: dict) -> str:
    messages = answer.get("messages") if isinstance(answer, dict) else None
    first = messages[0] if isinstance(messages, list) and messages else None
    if isinstance(first, dict) and first.get("id"):
        return str(first["id"])
    # It may have gone out: never retried, so never sent twice.
    raise ProviderError(
        30008, f"WhatsApp answered without a message id: {answer!r:.200}", permanent=True
    )


# ---------------------------------------------------------------- inbound parsing


def _whatsapp_address(digits) -> str:
    digits = re.sub(r"\D", "", str(digits or ""))
    # WhatsApp still gives Mexican mobiles the "1" Mexico dropped in 2019 (521 55...); the
    # number plan (and phonenumbers) knows them as 52 55..., which is also what we store.
    if len(digits) == 13 and digits.startswith("521"):
        digits = "52" + digits[3:]
    return f"whatsapp:+{digits}" if digits else ""


def _object(value, path: str) -> dict:
    if not isinstance(value, dict):
        raise WebhookPayloadError(f"{path} is not an object")
    return value


def _list(value, path: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise WebhookPayloadError(f"{path} is not a list")
    return value


def _required(node: dict, key: str, path: str):
    value = node.get(key)
    if value is None or value == "":
        raise WebhookPayloadError(f"{path}.{key} is missing")
    return value


def _timestamp(node: dict, path: str) -> datetime | None:
    value = node.get("timestamp")
    if value is None or value == "":
        return None
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise WebhookPayloadError(f"{path}.timestamp is not epoch seconds: {value!r}") from exc


class Content(NamedTuple):
    body: str = ""
    media: tuple[InboundMedia, ...] = ()
    extra: dict = {}


def _text(message: dict, path: str) -> Content:
    text = _object(_required(message, "text", path), f"{path}.text")
    return Content(body=str(_required(text, "body", f"{path}.text")))


def _media(message: dict, path: str, kind: str) -> Content:
    item = _object(_required(message, kind, path), f"{path}.{kind}")
    media = InboundMedia(
        provider_media_id=str(_required(item, "id", f"{path}.{kind}")),
        content_type=str(item.get("mime_type") or ""),
    )
    extra = {"Filename": str(item["filename"])} if item.get("filename") else {}
    return Content(body=str(item.get("caption") or ""), media=(media,), extra=extra)


def _button(message: dict, path: str) -> Content:
    button = _object(_required(message, "button", path), f"{path}.button")
    text = str(button.get("text") or "")
    payload = str(button.get("payload") or "")
    return Content(body=text, extra={"ButtonText": text, "ButtonPayload": payload})


def _interactive(message: dict, path: str) -> Content | None:
    interactive = _object(_required(message, "interactive", path), f"{path}.interactive")
    kind = interactive.get("type")
    if kind not in ("button_reply", "list_reply"):
        return None  # flows' nfm_reply and later kinds: nothing for a conversation yet
    reply_path = f"{path}.interactive.{kind}"
    reply = _object(_required(interactive, kind, f"{path}.interactive"), reply_path)
    reply_id = str(_required(reply, "id", reply_path))
    title = str(reply.get("title") or "")
    return Content(body=title, extra={"ButtonPayload": reply_id, "ButtonText": title})


def _location(message: dict, path: str) -> Content:
    location = _object(_required(message, "location", path), f"{path}.location")
    where = f"{path}.location"
    extra = {
        "Latitude": str(_required(location, "latitude", where)),
        "Longitude": str(_required(location, "longitude", where)),
    }
    if location.get("address"):
        extra["Address"] = str(location["address"])
    if location.get("name"):
        extra["Label"] = str(location["name"])
    return Content(body="", extra=extra)


# Notifications and reactions, not words from the customer.
SKIPPED_TYPES = {"reaction", "system", "unsupported", "request_welcome", "contacts", "ephemeral"}


def _other(message: dict, kind: str) -> Content | None:
    """An unknown type is kept only when it carries text (an order's `text`, say)."""
    item = message.get(kind)
    if kind in SKIPPED_TYPES or not isinstance(item, dict):
        return None
    text = next((item[k] for k in ("text", "body", "caption") if isinstance(item.get(k), str)), "")
    return Content(body=text) if text else None


def message_content(message: dict, path: str) -> Content | None:
    kind = str(_required(message, "type", path))
    if kind == "text":
        return _text(message, path)
    if kind in INBOUND_MEDIA:
        return _media(message, path, kind)
    if kind == "button":
        return _button(message, path)
    if kind == "interactive":
        return _interactive(message, path)
    if kind == "location":
        return _location(message, path)
    return _other(message, kind)


def _referral_extra(message: dict) -> dict:
    referral = message.get("referral")
    if not isinstance(referral, dict):
        return {}
    return {name: str(referral[key]) for key, name in REFERRAL_PARAMS.items() if referral.get(key)}


class Recipient(NamedTuple):
    """Our side of one change: the phone number id and display number, and the customers'
    profile names by wa_id."""

    to_ref: str
    to_address: str
    names: dict


def _recipient(value: dict, path: str) -> Recipient:
    metadata = _object(_required(value, "metadata", path), f"{path}.metadata")
    to_ref = str(_required(metadata, "phone_number_id", f"{path}.metadata"))
    names = {}
    for i, contact in enumerate(_list(value.get("contacts"), f"{path}.contacts")):
        contact = _object(contact, f"{path}.contacts[{i}]")
        profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
        if contact.get("wa_id"):
            names[str(contact["wa_id"])] = str(profile.get("name") or "")
    display = _whatsapp_address(metadata.get("display_phone_number"))
    return Recipient(to_ref=to_ref, to_address=display, names=names)


def inbound_message(message: dict, path: str, recipient: Recipient) -> InboundMessage | None:
    sender_digits = str(_required(message, "from", path))
    message_id = str(_required(message, "id", path))
    timestamp = _timestamp(message, path)
    content = message_content(message, path)
    if content is None:
        return None
    wa_id = sender_digits
    if wa_id not in recipient.names and len(recipient.names) == 1:
        wa_id = next(iter(recipient.names))  # Meta's wa_id may differ from `from` in format
    name = recipient.names.get(wa_id, "")
    extra = {"WaId": wa_id, **content.extra, **_referral_extra(message)}
    if name:
        extra["ProfileName"] = name
    context = message.get("context")
    if isinstance(context, dict) and context.get("id"):
        extra["ReplyToProviderId"] = str(context["id"])
    return InboundMessage(
        provider_message_id=message_id,
        from_address=_whatsapp_address(sender_digits),
        to_address=recipient.to_address,
        to_ref=recipient.to_ref,
        body=content.body,
        media=content.media,
        profile_name=name,
        timestamp=timestamp,
        extra=extra,
    )


def status_error(errors: list, path: str) -> tuple[int, str]:
    """Our code and a text for a failed status's `errors[0]` (transient codes are 30008:
    the message has failed either way)."""
    if not errors:
        return 30008, "WhatsApp reported the message failed without saying why."
    error = _object(errors[0], f"{path}.errors[0]")
    meta_code = _as_int(error.get("code"))
    rule = GRAPH_ERRORS.get(meta_code)
    code = rule.code if rule is not None and rule.kind == PERMANENT else 30008
    text = str(error.get("message") or error.get("title") or "")
    data = error.get("error_data")
    if isinstance(data, dict) and data.get("details"):
        text += f" ({data['details']})"
    return code, f"Meta error {meta_code}: {text}".strip()


def status_update(status: dict, path: str, recipient: Recipient) -> StatusUpdate | None:
    message_id = str(_required(status, "id", path))
    ours = STATUSES.get(str(_required(status, "status", path)))
    if ours is None:
        return None
    timestamp = _timestamp(status, path)
    code, text = None, ""
    if ours == "failed":
        code, text = status_error(_list(status.get("errors"), f"{path}.errors"), path)
    return StatusUpdate(
        status=ours,
        provider_message_id=message_id,
        error_code=code,
        error_message=text,
        recipient=_whatsapp_address(status.get("recipient_id")),
        sender_ref=recipient.to_ref,
        timestamp=timestamp,
    )


def change_events(value: dict, path: str) -> tuple[list, list]:
    messages = _list(value.get("messages"), f"{path}.messages")
    statuses = _list(value.get("statuses"), f"{path}.statuses")
    if not messages and not statuses:
        return [], []  # e.g. only `errors`: nothing to store
    recipient = _recipient(value, path)
    inbound = []
    for i, item in enumerate(messages):
        where = f"{path}.messages[{i}]"
        event = inbound_message(_object(item, where), where, recipient)
        if event is not None:
            inbound.append(event)
    updates = []
    for i, item in enumerate(statuses):
        where = f"{path}.statuses[{i}]"
        update = status_update(_object(item, where), where, recipient)
        if update is not None:
            updates.append(update)
    return inbound, updates


def parse_events(body: bytes) -> WebhookEvents:
    """The events of a webhook body (`WebhookPayloadError` naming the bad field)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookPayloadError(f"body is not JSON: {exc}") from exc
    payload = _object(payload, "body")
    if payload.get("object") != "whatsapp_business_account":
        raise WebhookPayloadError(
            f"object is {payload.get('object')!r}, expected 'whatsapp_business_account'"
        )
    messages, statuses = [], []
    entries = _list(_required(payload, "entry", "body"), "entry")
    for e, entry in enumerate(entries):
        entry = _object(entry, f"entry[{e}]")
        for c, change in enumerate(_list(entry.get("changes"), f"entry[{e}].changes")):
            path = f"entry[{e}].changes[{c}]"
            change = _object(change, path)
            if _required(change, "field", path) != "messages":
                continue  # account updates, template status, ...: not message events
            value = _object(_required(change, "value", path), f"{path}.value")
            inbound, updates = change_events(value, f"{path}.value")
            messages.extend(inbound)
            statuses.extend(updates)
    return WebhookEvents(messages=tuple(messages), statuses=tuple(statuses))


# ---------------------------------------------------------------- the adapter


@register("whatsapp_cloud")
class WhatsAppCloudAdapter(meta.MetaWebhooks, ProviderAdapter):
    # The Cloud API has no idempotency key: an unfinished send is failed, never repeated.
    idempotent = False

    def send(self, message, *, content: OutboundContent, idempotency_key: str) -> SendResult:
        phone_number_id = message.sender.provider_ref
        if not phone_number_id:
            raise ProviderError(
                21606, "The WhatsApp sender has no phone number id.", permanent=True
            )
        to = recipient_digits(message.to_address)
        list_button = str((self.provider.settings or {}).get("list_button") or DEFAULT_LIST_BUTTON)
        payloads = message_payloads(content, list_button=list_button)
        url = meta.graph_url(self.provider, f"{phone_number_id}/messages")
        first_id = ""
        for number, payload in enumerate(payloads, start=1):
            body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
            body.update(payload)
            try:
                sent_id = _sent_id(graph_call(self.provider, "POST", url, json=body))
            except ProviderError as exc:
                if not first_id:
                    raise
                raise _partial_send(exc, number, len(payloads), first_id) from exc
            first_id = first_id or sent_id
        return SendResult(provider_message_id=first_id)

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvents:
        return parse_events(request.body)

    def fetch_media(self, media: InboundMedia) -> MediaFile:
        if not media.provider_media_id:
            raise ProviderError(30008, "The WhatsApp media has no media id.", permanent=True)
        info = graph_call(
            self.provider, "GET", meta.graph_url(self.provider, media.provider_media_id)
        )
        url = info.get("url") if isinstance(info, dict) else None
        if not url:
            raise ProviderError(
                30008, f"WhatsApp gave no URL for media {media.provider_media_id}.", permanent=True
            )
        cap = int((self.provider.settings or {}).get("max_media_bytes") or DEFAULT_MAX_MEDIA_BYTES)
        size = _as_int(info.get("file_size"))
        if size is not None and size > cap:
            raise _too_large(media.provider_media_id, cap)
        content_type = str(info.get("mime_type") or media.content_type)
        return download(self.provider, str(url), cap, content_type, media.provider_media_id)


def _partial_send(exc: ProviderError, number: int, total: int, first_id: str) -> ProviderError:
    # Part of the message went out: repeating it would send those parts twice.
    return ProviderError(
        exc.code,
        f"WhatsApp accepted {number - 1} of {total} parts (first {first_id}), then: {exc.message}",
        permanent=True,
    )


def _too_large(media_id: str, cap: int) -> ProviderError:
    return ProviderError(
        30008, f"WhatsApp media {media_id} is larger than max_media_bytes ({cap}).", permanent=True
    )


def download(provider, url: str, cap: int, content_type: str, media_id: str) -> MediaFile:
    """GET the media URL with the Bearer token, streamed and stopped at `cap` bytes."""
    headers = _bearer(provider)
    try:
        with http_client().stream("GET", url, headers=headers, timeout=_timeout(provider)) as r:
            if not r.is_success:
                r.read()
                raise error_from_response(r)
            chunks, received = [], 0
            for chunk in r.iter_bytes():
                received += len(chunk)
                if received > cap:
                    raise _too_large(media_id, cap)
                chunks.append(chunk)
            content_type = content_type or r.headers.get("Content-Type", "")
    except httpx.TimeoutException as exc:
        raise ProviderError(30008, f"WhatsApp media timed out: {exc!r}", permanent=False) from exc
    except httpx.TransportError as exc:
        raise ProviderError(
            30008, f"WhatsApp media could not be fetched: {exc!r}", permanent=False
        ) from exc
    return MediaFile(content=b"".join(chunks), content_type=content_type)


# ---------------------------------------------------------------- template management


def _templates_url(provider) -> str:
    waba_id = str((provider.settings or {}).get("waba_id") or "")
    if not waba_id:
        raise ProviderError(
            30008, "The WhatsApp provider has no waba_id setting (templates).", permanent=True
        )
    return meta.graph_url(provider, f"{waba_id}/message_templates")


def templates_list(provider) -> list[dict]:
    """Every message template of the provider's WhatsApp Business Account, all pages."""
    answer = graph_call(provider, "GET", _templates_url(provider), params={"limit": 100})
    templates = list(answer.get("data") or [])
    for _ in range(MAX_TEMPLATE_PAGES):
        next_url = (answer.get("paging") or {}).get("next")
        if not next_url:
            break
        answer = graph_call(provider, "GET", str(next_url))
        templates.extend(answer.get("data") or [])
    return templates


def template_submit(provider, payload: dict) -> dict:
    """Create a template (`{"name", "language", "category", "components"}`): Meta's answer,
    `{"id", "status", "category"}`."""
    return graph_call(provider, "POST", _templates_url(provider), json=payload)


def template_delete(provider, name: str) -> None:
    """Delete a template by name (every language of it)."""
    answer = graph_call(provider, "DELETE", _templates_url(provider), params={"name": name})
    if isinstance(answer, dict) and answer.get("success") is False:
        raise ProviderError(30008, f"WhatsApp did not delete template {name!r}.", permanent=True)
