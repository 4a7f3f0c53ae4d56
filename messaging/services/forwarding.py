"""Forwarding inbound messages to the integrator's app, exactly as Twilio calls it.

Which URL: a sender in a messaging service uses the service's inbound request URL (and its
fallback), unless the service says `use_inbound_webhook_on_number` or has no URL, in which
case the sender's own; a lone sender uses its own. The request carries Twilio's inbound
parameters (REFERENCE.md 1: MessageSid, From, To, Body, NumMedia, MediaUrlN, geography,
OptOutType, the channel's extras), signed with `X-Twilio-Signature` by our account's auth
token, so existing TwiML apps run unchanged. A `<Response><Message>` answer is sent back to
the customer through the normal pipeline. When the primary URL fails (network error or a
non-2xx answer), the fallback URL gets the same request, with `ErrorCode`/`ErrorUrl` added
as Twilio does.

A message is forwarded at most once: `forwarded_at` is claimed by a conditional update
before the request, so a repeated task run never calls the app twice.
"""

import logging
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import phonenumbers
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from phonenumbers import geocoder

from messaging.errors import MessagingError
from messaging.models import API_VERSION, Channel, Direction, Media, Message, Sender
from messaging.services.callbacks import sign

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(15.0, connect=5.0)  # Twilio waits 15 s for an app's answer
MAX_ANSWER_BYTES = 64 * 1024
MAX_REPLY_MEDIA = 10
# Twilio's error for "the app's URL failed"; sent to the fallback URL as ErrorCode.
ERROR_APP_UNREACHABLE = 11200


@dataclass(frozen=True)
class ForwardUrls:
    primary: str = ""
    method: str = "POST"
    fallback: str = ""
    fallback_method: str = "POST"


@dataclass(frozen=True)
class Reply:
    body: str
    media_urls: tuple[str, ...] = ()


def forward_urls(sender: Sender) -> ForwardUrls:
    service = sender.service
    number_decides = service is not None and service.use_inbound_webhook_on_number
    if (
        service is not None
        and service.inbound_request_url
        and not (number_decides and sender.inbound_request_url)
    ):
        return ForwardUrls(
            service.inbound_request_url,
            service.inbound_method,
            service.fallback_url,
            service.fallback_method,
        )
    if sender.inbound_request_url:
        return ForwardUrls(sender.inbound_request_url, sender.inbound_method, sender.fallback_url)
    return ForwardUrls()


# ---------------------------------------------------------------- the request


def _geography(prefix: str, address: str) -> dict[str, str]:
    """FromCountry/FromState/FromCity/FromZip (or To...) from the number, as far as the
    `phonenumbers` geocoder knows it (no zip codes: numbers do not carry them)."""
    number = address.removeprefix("whatsapp:")
    if not number.startswith("+"):
        return {}
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return {}
    country = phonenumbers.region_code_for_number(parsed) or ""
    place = geocoder.description_for_number(parsed, "en")
    city, _, state = place.rpartition(", ")
    if not city and country in ("US", "CA"):
        state = place  # NANP numbers often resolve to a state or province only
    elif not city:
        city, state = place, ""
    return {
        f"{prefix}Country": country,
        f"{prefix}State": state,
        f"{prefix}City": city,
        f"{prefix}Zip": "",
    }


def media_public_url(message: Message, media: Media) -> str:
    """Where the integrator fetches an inbound media item (HTTP Basic auth, as Twilio)."""
    path = reverse(
        "twilio-message-media-content",
        kwargs={"account_sid": message.account.sid, "sid": message.sid, "media_sid": media.sid},
    )
    return f"{settings.PUBLIC_BASE_URL}{path}"


def inbound_params(message: Message) -> dict[str, str]:
    """Twilio's inbound webhook parameters for a stored inbound message."""
    media = list(message.media.order_by("id"))
    params = {
        "MessageSid": message.sid,
        "SmsMessageSid": message.sid,
        "SmsSid": message.sid,
        "AccountSid": message.account.sid,
        "From": message.from_address,
        "To": message.to_address,
        "Body": message.body,
        "NumMedia": str(len(media)),
        "NumSegments": str(message.num_segments),
        "SmsStatus": "received",
        "ApiVersion": API_VERSION,
    }
    if message.service_id:
        params["MessagingServiceSid"] = message.service.sid
    for index, item in enumerate(media):
        params[f"MediaUrl{index}"] = media_public_url(message, item)
        params[f"MediaContentType{index}"] = item.content_type
    if message.channel == Channel.SMS:
        params.update(_geography("From", message.from_address))
        params.update(_geography("To", message.to_address))
    if message.channel == Channel.WHATSAPP:
        params["WaId"] = message.from_address.removeprefix("whatsapp:+")
    tags = message.tags or {}
    if tags.get("profile_name"):
        params["ProfileName"] = tags["profile_name"]
    opt_out_type = getattr(message, "opt_out_type", "")
    if opt_out_type:
        params["OptOutType"] = opt_out_type
    for name, value in (tags.get("params") or {}).items():
        params.setdefault(name, value)  # the provider's extras never override ours
    return params


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


def _call(url: str, method: str, params: dict[str, str], auth_token: str) -> httpx.Response:
    headers = {"User-Agent": "contactcenter-inbound/1", "Accept": "text/xml, */*"}
    if method == "GET":
        target = _with_query(url, params)
        headers["X-Twilio-Signature"] = sign(target, {}, auth_token)
        return httpx.get(target, headers=headers, timeout=TIMEOUT)
    headers["X-Twilio-Signature"] = sign(url, params, auth_token)
    return httpx.post(url, data=params, headers=headers, timeout=TIMEOUT)


def _attempt(url: str, method: str, params: dict[str, str], token: str) -> tuple[str, str | None]:
    """POST/GET once: (the answer's text or "", an error or None)."""
    try:
        response = _call(url, method, params, token)
    except httpx.HTTPError as exc:
        return "", f"{type(exc).__name__}: {exc}"
    if not response.is_success:
        return "", f"HTTP {response.status_code}"
    content = response.content[: MAX_ANSWER_BYTES + 1]
    if len(content) > MAX_ANSWER_BYTES:
        return "", f"answer larger than {MAX_ANSWER_BYTES} bytes"
    return content.decode(response.encoding or "utf-8", errors="replace"), None


# ---------------------------------------------------------------- TwiML


def twiml_replies(text: str) -> list[Reply]:
    """The `<Message>`s of a TwiML answer. Anything that is not TwiML is no reply (an app may
    answer 200 with an empty body or JSON); malformed TwiML raises ValueError."""
    stripped = text.strip()
    if not stripped.startswith("<"):
        return []
    try:
        root = ElementTree.fromstring(stripped)
    except ElementTree.ParseError as exc:
        raise ValueError(f"the TwiML answer is not well-formed XML: {exc}") from exc
    if root.tag != "Response":
        raise ValueError(f"the TwiML root element is <{root.tag}>, not <Response>")
    replies = []
    for element in root.iter("Message"):
        bodies = element.findall("Body")
        media = tuple((m.text or "").strip() for m in element.findall("Media") if m.text)
        if bodies:
            body = "".join(b.text or "" for b in bodies)
        else:
            body = "".join(element.itertext()) if not media else (element.text or "")
        body = body.strip()
        if body or media:
            replies.append(Reply(body=body, media_urls=media[:MAX_REPLY_MEDIA]))
    return replies


def _send_replies(message: Message, replies: list[Reply]) -> list[str]:
    """Send each reply from the sender that received the message; returns sids or errors."""
    from messaging.services.messages import MessageRequest, message_create

    outcomes = []
    for reply in replies:
        request = MessageRequest(
            to=message.from_address,
            from_=message.sender.address,
            body=reply.body or None,
            media_urls=reply.media_urls,
            direction=Direction.OUTBOUND_REPLY,
        )
        try:
            created = message_create(account=message.account, request=request, source="twiml")
            outcomes.append(created.sid)
        except MessagingError as error:
            log.warning("TwiML reply to %s refused: %s %s", message.sid, error.code, error.message)
            outcomes.append(f"refused {error.code}")
    return outcomes


# ---------------------------------------------------------------- the whole forward


def _claim(message_id: int) -> bool:
    return bool(
        Message.objects.filter(id=message_id, forwarded_at__isnull=True).update(
            forwarded_at=timezone.now()
        )
    )


def inbound_forward(*, message_id: int) -> str:
    """Forward one inbound message to its app, at most once; returns what happened (also
    stored in `forward_result`)."""
    message = (
        Message.objects.select_related("account", "service", "sender", "sender__service")
        .filter(id=message_id, direction=Direction.INBOUND)
        .first()
    )
    if message is None or message.sender is None:
        return "no message"
    urls = forward_urls(message.sender)
    if not urls.primary:
        return "no webhook"
    if not _claim(message.id):
        return "already forwarded"
    params = inbound_params(message)
    token = message.account.auth_token
    answer, error = _attempt(urls.primary, urls.method, params, token)
    result = "primary"
    if error and urls.fallback:
        log.warning(
            "inbound %s: %s failed (%s); trying the fallback", message.sid, urls.primary, error
        )
        fallback_params = {
            **params,
            "ErrorCode": str(ERROR_APP_UNREACHABLE),
            "ErrorUrl": urls.primary,
        }
        answer, fallback_error = _attempt(
            urls.fallback, urls.fallback_method, fallback_params, token
        )
        result = (
            "fallback" if not fallback_error else f"failed: {error}; fallback: {fallback_error}"
        )
        error = fallback_error
    elif error:
        result = f"failed: {error}"
    if not error:
        try:
            sent = _send_replies(message, twiml_replies(answer))
        except ValueError as exc:
            result, sent = f"{result}; bad TwiML: {exc}", []
        if sent:
            result = f"{result}; replies: {', '.join(sent)}"
    if error:
        log.warning("inbound %s not delivered to the app: %s", message.sid, result)
    Message.objects.filter(id=message.id).update(forward_result=result[:255])
    return result
