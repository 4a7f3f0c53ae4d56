"""The Twilio adapter: SMS, MMS and WhatsApp sent and received through a Twilio account.

Wire facts it follows (REFERENCE.md 1; Twilio's Messaging API and webhook security docs):

- Send: `POST {api_base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded
  (`To`, `From`, `Body`, `MediaUrl` repeated, `StatusCallback`), HTTP Basic auth with the
  account sid and auth token, or an API key sid and secret. Sent with the official `twilio`
  package; its URLs are built on `https://api.twilio.com`, which a small HTTP client
  rewrites to the configured base. Twilio has no idempotency key for messages.
- Errors: JSON `{"code", "message", "more_info", "status"}`; Twilio's codes are ours.
- Webhooks: form POSTs signed with `X-Twilio-Signature` (HMAC-SHA1 of the URL and the sorted
  parameters, keyed with the auth token, even when sends use an API key); JSON bodies carry
  `bodySHA256` in the URL instead. Inbound messages carry `MessageSid, From, To, Body,
  NumMedia, MediaUrl{N}, MediaContentType{N}` (WhatsApp adds `ProfileName, WaId, Button*`,
  `Latitude`...); status callbacks carry `MessageStatus` and, on failure, `ErrorCode`. The
  answer is TwiML; an empty `<Response>` sends no reply.
- Media: `MediaUrl{N}` answers with a redirect to a CDN; Basic auth goes to Twilio only.

Credentials: `account_sid`, `auth_token`, optionally `api_key_sid` + `api_key_secret`.
Settings: `api_base_url` (default https://api.twilio.com), `timeout_seconds` (default 10),
`max_media_bytes` (default 16 MiB).
"""

import hmac
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import requests
from django.conf import settings as django_settings
from django.urls import NoReverseMatch, reverse
from django.utils.datastructures import MultiValueDict
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import SIGNATURE_HEADER, RequestValidator
from twilio.rest import Client

from messaging.providers import register
from messaging.providers.base import (
    HandshakeAnswer,
    InboundMedia,
    InboundMessage,
    MediaFile,
    OutboundContent,
    ProviderAdapter,
    ProviderError,
    SendResult,
    StatusUpdate,
    WebhookEvents,
    WebhookPayloadError,
    WebhookRequest,
    unanswered_send,
)
from messaging.services.providers import provider_credentials

TWILIO_API_BASE_URL = "https://api.twilio.com"
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_MEDIA_BYTES = 16 * 1024 * 1024
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

AUTHENTICATION_FAILED = 20003
FORBIDDEN = 20403
NOT_FOUND = 20404
TOO_MANY_REQUESTS = 20429
BODY_REQUIRED = 21602
UNKNOWN_ERROR = 30008

# Receipts we report; the others (queued, sending, accepted, scheduled, canceled...) are
# either the engine's own statuses or not delivery news, so they make no event.
REPORTED_STATUSES = frozenset({"sent", "delivered", "undelivered", "failed", "read"})
INBOUND_STATUSES = frozenset({"received", "receiving"})
MESSAGE_ID_PARAMS = ("MessageSid", "SmsMessageSid", "SmsSid")


# ---------------------------------------------------------------- configuration


def _settings(provider) -> dict:
    return provider.settings or {}


def api_base_url(provider) -> str:
    return str(_settings(provider).get("api_base_url") or TWILIO_API_BASE_URL).rstrip("/")


def timeout_seconds(provider) -> float:
    return float(_settings(provider).get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS)


def max_media_bytes(provider) -> int:
    return int(_settings(provider).get("max_media_bytes") or DEFAULT_MAX_MEDIA_BYTES)


def _credentials(provider) -> dict:
    try:
        return provider_credentials(provider)
    except Exception:  # unreadable secrets (encrypted under another key) count as missing
        return {}


def _credential(credentials: dict, name: str) -> str:
    return str(credentials.get(name) or "")


def _rest_auth(provider) -> tuple[str, str, str]:
    """(account sid, username, password) for the REST API: an API key when one is set."""
    credentials = _credentials(provider)
    account_sid = _credential(credentials, "account_sid")
    key_sid = _credential(credentials, "api_key_sid")
    key_secret = _credential(credentials, "api_key_secret")
    if key_sid and key_secret:
        username, password = key_sid, key_secret
    else:
        username, password = account_sid, _credential(credentials, "auth_token")
    missing = [
        name
        for name, value in (("account_sid", account_sid), ("auth_token", password))
        if not value
    ]
    if missing:
        raise ProviderError(
            AUTHENTICATION_FAILED,
            f"Twilio credentials missing: {', '.join(missing)} (or api_key_sid/api_key_secret).",
            permanent=True,
        )
    return account_sid, username, password


def _media_auth(provider) -> tuple[str, str]:
    """Media URLs take the account sid and auth token (an API key when no token is set)."""
    credentials = _credentials(provider)
    account_sid = _credential(credentials, "account_sid")
    token = _credential(credentials, "auth_token")
    if account_sid and token:
        return account_sid, token
    _account_sid, username, password = _rest_auth(provider)
    return username, password


def status_callback_url(provider) -> str | None:
    """Our webhook for this provider, where Twilio POSTs the delivery receipts; None when the
    deployment has no public URL (Twilio could not reach us anyway)."""
    base = str(getattr(django_settings, "PUBLIC_BASE_URL", "") or "").rstrip("/")
    if not base:
        return None
    try:
        return base + reverse("webhooks:provider", args=[provider.sid])
    except NoReverseMatch:
        return None


# ---------------------------------------------------------------- sending


class BaseUrlHttpClient(TwilioHttpClient):
    """The `twilio` package's HTTP client, sending to `base_url` instead of api.twilio.com and
    remembering the last response (its headers carry Retry-After)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url
        self.last_response = None

    def close(self) -> None:
        if self.session is not None:
            self.session.close()

    def request(self, method, url, *args, **kwargs):
        if url.startswith(TWILIO_API_BASE_URL):
            url = self.base_url + url[len(TWILIO_API_BASE_URL) :]
        self.last_response = None
        response = super().request(method, url, *args, **kwargs)
        self.last_response = response
        return response


def text_with_options(content: OutboundContent) -> str:
    """The text, with quick replies and list rows appended as a numbered list: Twilio shows
    buttons only through a Content SID, and an option must never be dropped silently."""
    options = [reply.title for reply in content.quick_replies]
    if content.list_picker is not None:
        options += [
            f"{row.title} - {row.description}" if row.description else row.title
            for row in content.list_picker.rows
        ]
    if not options:
        return content.text
    numbered = "\n".join(f"{number}. {title}" for number, title in enumerate(options, 1))
    return f"{content.text.rstrip()}\n\n{numbered}" if content.text.strip() else numbered


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _twilio_message(error: TwilioRestException | TwilioServiceException) -> str:
    if isinstance(error, TwilioServiceException):
        return ": ".join(part for part in (error.title, error.detail) if part)
    return str(error.msg or "")


def _twilio_code(error) -> int | None:
    """Twilio's error code; None when the body had none (the package then uses the HTTP
    status as the code)."""
    try:
        code = int(error.code)
    except (TypeError, ValueError):
        return None
    return code if code >= 10000 else None


def error_from_twilio(error, headers) -> ProviderError:
    """Map a refused API call to our codes (Twilio's own codes are ours)."""
    status = int(error.status or 0)
    code = _twilio_code(error)
    detail = f"HTTP {status}, Twilio code {code or 'none'}: {_twilio_message(error)}"
    if status == 401:
        return ProviderError(
            AUTHENTICATION_FAILED, f"Twilio authentication failed ({detail}).", permanent=True
        )
    if status == 429 or code == TOO_MANY_REQUESTS:
        retry_after = retry_after_seconds((headers or {}).get("Retry-After"))
        return ProviderError(
            TOO_MANY_REQUESTS,
            f"Twilio is throttling requests ({detail}).",
            permanent=False,
            throttled=True,
            retry_after=retry_after,
        )
    if status >= 500:
        return ProviderError(UNKNOWN_ERROR, f"Twilio server error ({detail}).", permanent=False)
    if status == 403:
        return ProviderError(
            code or FORBIDDEN,
            f"Twilio refused the request as forbidden ({detail}).",
            permanent=True,
        )
    return ProviderError(
        code or UNKNOWN_ERROR, f"Twilio refused the message ({detail}).", permanent=True
    )


def error_from_network(error: requests.RequestException) -> ProviderError:
    """Connection problems are worth retrying; a malformed base URL is not."""
    if isinstance(
        error,
        requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema,
    ):
        return ProviderError(
            UNKNOWN_ERROR, f"Twilio api_base_url is not usable: {error}", permanent=True
        )
    if isinstance(
        error, requests.exceptions.ReadTimeout | requests.exceptions.ChunkedEncodingError
    ):
        # Twilio got the request and may have queued the message: no idempotency key, so
        # retrying could send it twice.
        return unanswered_send("Twilio", error)
    kind = "timed out" if isinstance(error, requests.exceptions.Timeout) else "failed"
    return ProviderError(
        UNKNOWN_ERROR,
        f"Connection to Twilio {kind} (reported as 30008): {type(error).__name__}: {error}",
        permanent=False,
    )


# ---------------------------------------------------------------- webhooks


def _content_type(request: WebhookRequest) -> str:
    return request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


def _is_json(request: WebhookRequest) -> bool:
    return _content_type(request) in ("application/json", "application/scim+json")


def webhook_params(request: WebhookRequest) -> dict[str, list[str]]:
    """Every parameter with all its values: the parsed form when the view gave one, else
    the raw form body (or the query string of a GET webhook)."""
    if request.method == "GET":
        return parse_qs(urlsplit(request.url).query, keep_blank_values=True)
    if request.form:
        return {name: list(values) for name, values in request.form.items()}
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookPayloadError(f"the form body is not UTF-8: {exc}") from exc
    return parse_qs(text, keep_blank_values=True)


def _first(params: dict[str, list[str]], name: str) -> str:
    values = params.get(name) or [""]
    return str(values[0])


def _required(params: dict[str, list[str]], name: str) -> str:
    value = _first(params, name).strip()
    if not value:
        raise WebhookPayloadError(f"{name} is missing")
    return value


def _integer(params: dict[str, list[str]], name: str) -> int | None:
    value = _first(params, name).strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise WebhookPayloadError(f"{name} is not an integer: {value!r}") from None


def _message_id(params: dict[str, list[str]]) -> str:
    for name in MESSAGE_ID_PARAMS:
        value = _first(params, name).strip()
        if value:
            return value
    raise WebhookPayloadError("MessageSid is missing (nor SmsMessageSid/SmsSid)")


def parse_status(params: dict[str, list[str]], status: str) -> StatusUpdate | None:
    if status not in REPORTED_STATUSES:
        return None
    return StatusUpdate(
        status=status,
        provider_message_id=_message_id(params),
        error_code=_integer(params, "ErrorCode") or None,
        error_message=_first(params, "ErrorMessage"),
    )


def _media(params: dict[str, list[str]]) -> tuple[InboundMedia, ...]:
    count = _integer(params, "NumMedia") or 0
    return tuple(
        InboundMedia(
            url=_required(params, f"MediaUrl{index}"),
            content_type=_first(params, f"MediaContentType{index}"),
        )
        for index in range(count)
    )


def _is_mapped(name: str) -> bool:
    """Parameters that become InboundMessage fields rather than `extra`."""
    if name in (*MESSAGE_ID_PARAMS, "From", "To", "Body", "NumMedia", "ProfileName"):
        return True
    for prefix in ("MediaUrl", "MediaContentType"):
        if name.startswith(prefix) and name[len(prefix) :].isdigit():
            return True
    return False


def parse_inbound(params: dict[str, list[str]]) -> InboundMessage:
    return InboundMessage(
        provider_message_id=_message_id(params),
        from_address=_required(params, "From"),
        to_address=_required(params, "To"),
        body=_first(params, "Body"),
        media=_media(params),
        profile_name=_first(params, "ProfileName"),
        extra={name: _first(params, name) for name in params if not _is_mapped(name)},
    )


def url_variants(url: str) -> tuple[str, ...]:
    """The URL as requested, and with its scheme's default port added or removed: Twilio
    signs whichever form it called. Another port is another URL."""
    parts = urlsplit(url)
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.netloc.rpartition("@")[2]
    if default_port is None or not host:
        return (url,)
    bare_host = host.rsplit(":", 1)[0] if parts.port is not None else host
    if parts.port is None:
        other = parts._replace(netloc=f"{parts.netloc}:{default_port}")
    elif parts.port == default_port:
        other = parts._replace(netloc=parts.netloc[: -len(host)] + bare_host)
    else:
        return (url,)
    return (url, other.geturl())


def signature_matches(validator: RequestValidator, url: str, params, signature: str) -> bool:
    """The `twilio` package's signature of each URL form, compared in constant time (its
    own `validate` also accepts the URL with any port removed)."""
    return any(
        hmac.compare_digest(validator.compute_signature(candidate, params), signature)
        for candidate in url_variants(url)
    )


def json_body_signed(validator: RequestValidator, request: WebhookRequest, signature: str) -> bool:
    """JSON webhooks are signed over the URL alone, whose `bodySHA256` covers the body."""
    given = parse_qs(urlsplit(request.url).query).get("bodySHA256", [""])[0]
    if not given:
        return False
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if not hmac.compare_digest(validator.compute_hash(body), given.lower()):
        return False
    return signature_matches(validator, request.url, {}, signature)


# ---------------------------------------------------------------- media


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _is_twilio_host(url: str, base_url: str) -> bool:
    """Whether our credentials may go to `url`: our API base or an https Twilio host."""
    if _origin(url) == _origin(base_url):
        return True
    scheme, host, _port = _origin(url)
    return scheme == "https" and (host == "twilio.com" or host.endswith(".twilio.com"))


def _media_error(response: httpx.Response, url: str) -> ProviderError:
    status = response.status_code
    where = f"{url} answered HTTP {status}"
    if status in (401, 403):
        return ProviderError(AUTHENTICATION_FAILED, f"Media refused: {where}.", permanent=True)
    if status == 404:
        return ProviderError(NOT_FOUND, f"Media not found: {where}.", permanent=True)
    if status == 429:
        return ProviderError(
            TOO_MANY_REQUESTS,
            f"Media download throttled: {where}.",
            permanent=False,
            throttled=True,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
    return ProviderError(UNKNOWN_ERROR, f"Media download failed: {where}.", permanent=status < 500)


def _read_capped(response: httpx.Response, limit: int, url: str) -> bytes:
    too_large = ProviderError(
        UNKNOWN_ERROR, f"Media at {url} is larger than max_media_bytes ({limit}).", permanent=True
    )
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------- the adapter


@register("twilio")
class TwilioAdapter(ProviderAdapter):
    # Twilio's Messages API has no idempotency key: an unfinished send is never repeated.
    idempotent = False
    network = True

    # -- sending

    def send(self, message, *, content: OutboundContent, idempotency_key: str) -> SendResult:
        parameters = self._message_parameters(message, content)
        account_sid, username, password = _rest_auth(self.provider)
        # One client per send: the adapter is called from several threads at once, and the
        # client remembers its last response (for Retry-After).
        http_client = BaseUrlHttpClient(api_base_url(self.provider), timeout_seconds(self.provider))
        client = Client(
            username,
            password,
            account_sid,
            http_client=http_client,
            # The provider's settings choose the host, not TWILIO_EDGE/REGION of the process.
            environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
        )
        try:
            created = client.messages.create(**parameters)
        except (TwilioRestException, TwilioServiceException) as error:
            headers = http_client.last_response.headers if http_client.last_response else {}
            raise error_from_twilio(error, headers) from error
        except requests.RequestException as error:
            raise error_from_network(error) from error
        finally:
            http_client.close()
        if not created.sid:
            # Twilio may have accepted it: fail rather than risk sending it twice.
            raise ProviderError(
                UNKNOWN_ERROR, "Twilio accepted the message but answered no sid.", permanent=True
            )
        return SendResult(provider_message_id=created.sid)

    def _message_parameters(self, message, content: OutboundContent) -> dict:
        text = text_with_options(content)
        if not text and content.template is not None and not content.media_urls:
            raise ProviderError(
                BODY_REQUIRED,
                f"Template {content.template.name!r} cannot be sent over Twilio without a "
                "Twilio Content SID (HX...), and the message has no text to send instead.",
                permanent=True,
            )
        if not text and not content.media_urls:
            raise ProviderError(BODY_REQUIRED, "A body or media is required.", permanent=True)
        parameters = {"to": message.to_address, "from_": message.sender.address}
        if text:
            parameters["body"] = text
        if content.media_urls:
            parameters["media_url"] = list(content.media_urls)
        callback = status_callback_url(self.provider)
        if callback:
            parameters["status_callback"] = callback
        return parameters

    # -- webhooks

    def verify_request(self, request: WebhookRequest) -> bool:
        token = _credential(_credentials(self.provider), "auth_token")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not token or not signature:
            return False
        validator = RequestValidator(token)
        if _is_json(request):
            return json_body_signed(validator, request, signature)
        try:
            params = webhook_params(request)
        except WebhookPayloadError:
            return False
        # POST parameters only: a GET's parameters are already in the signed URL.
        signed = MultiValueDict({} if request.method == "GET" else params)
        return signature_matches(validator, request.url, signed, signature)

    def parse_webhook(self, request: WebhookRequest) -> WebhookEvents:
        if request.method != "GET" and _content_type(request) != FORM_CONTENT_TYPE:
            raise WebhookPayloadError(
                f"expected a {FORM_CONTENT_TYPE} body, got "
                f"{request.headers.get('Content-Type') or 'no Content-Type'}"
            )
        params = webhook_params(request)
        status = (_first(params, "MessageStatus") or _first(params, "SmsStatus")).strip().lower()
        if status and status not in INBOUND_STATUSES:
            update = parse_status(params, status)
            return WebhookEvents(statuses=(update,) if update else ())
        return WebhookEvents(messages=(parse_inbound(params),))

    def webhook_ack(self, events: WebhookEvents) -> HandshakeAnswer:
        return HandshakeAnswer(status=200, body=EMPTY_TWIML, content_type="text/xml")

    # -- media

    def fetch_media(self, media: InboundMedia) -> MediaFile:
        if not media.url:
            raise ProviderError(NOT_FOUND, "The media item has no URL.", permanent=True)
        auth = None
        if _is_twilio_host(media.url, api_base_url(self.provider)):
            auth = httpx.BasicAuth(*_media_auth(self.provider))
        limit = max_media_bytes(self.provider)
        try:
            # httpx drops the Authorization header when a redirect leaves the origin (CDN).
            with (
                httpx.Client(
                    timeout=timeout_seconds(self.provider), follow_redirects=True, max_redirects=5
                ) as client,
                client.stream("GET", media.url, auth=auth) as response,
            ):
                if response.status_code != 200:
                    raise _media_error(response, media.url)
                content = _read_capped(response, limit, media.url)
                content_type = response.headers.get("Content-Type", "")
        except (httpx.TooManyRedirects, httpx.InvalidURL, httpx.UnsupportedProtocol) as error:
            raise ProviderError(
                UNKNOWN_ERROR, f"Media at {media.url} cannot be fetched: {error}", permanent=True
            ) from error
        except httpx.HTTPError as error:
            raise ProviderError(
                UNKNOWN_ERROR,
                f"Media download from {media.url} failed: {type(error).__name__}: {error}",
                permanent=False,
            ) from error
        content_type = content_type.split(";", 1)[0].strip() or media.content_type
        return MediaFile(content=content, content_type=content_type)
