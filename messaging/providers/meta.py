"""What the WhatsApp Cloud API and the Messenger Platform share (REFERENCE.md 4, 5): the
Graph API's base URL and version, the `hub.challenge` subscription handshake and the
`X-Hub-Signature-256` signature over the raw body.

Credentials (provider account secrets): `app_secret` signs webhooks, `verify_token` answers
the handshake, `access_token` (WhatsApp) or `page_access_token` (Messenger) authorises
sends. Settings: `graph_base_url` (default https://graph.facebook.com; tests point it at a
local server) and `api_version` (default below).
"""

import hashlib
import hmac

from messaging.providers.base import HandshakeAnswer, WebhookRequest
from messaging.services.providers import provider_credentials

SIGNATURE_HEADER = "X-Hub-Signature-256"
DEFAULT_GRAPH_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"
# Graph calls answer in well under a second; a provider that hangs must not hold a send
# slot's thread for long (the engine retries a timeout with back-off).
TIMEOUT_SECONDS = 10.0


def graph_url(provider, path: str) -> str:
    settings = provider.settings or {}
    base = str(settings.get("graph_base_url") or DEFAULT_GRAPH_BASE_URL).rstrip("/")
    version = str(settings.get("api_version") or DEFAULT_API_VERSION)
    return f"{base}/{version}/{path.lstrip('/')}"


def credential(provider, name: str) -> str:
    try:
        return str(provider_credentials(provider).get(name) or "")
    except Exception:  # unreadable secrets (another key) count as missing
        return ""


def body_signature(app_secret: str, body: bytes) -> str:
    """The header value Meta sends: `sha256=<hex HMAC-SHA256(app_secret, raw body)>`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(provider, request: WebhookRequest) -> bool:
    secret = credential(provider, "app_secret")
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not secret or not given:
        return False
    return hmac.compare_digest(body_signature(secret, request.body), given)


def subscription_handshake(provider, request: WebhookRequest) -> HandshakeAnswer | None:
    """Meta's GET `?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C`: 200 with C when T
    is ours, else 403. None for any request that is not a handshake."""
    if request.method != "GET":
        return None
    mode = request.query.get("hub.mode", "")
    token = request.query.get("hub.verify_token", "")
    challenge = request.query.get("hub.challenge", "")
    expected = credential(provider, "verify_token")
    if mode == "subscribe" and expected and hmac.compare_digest(token, expected) and challenge:
        return HandshakeAnswer(status=200, body=challenge)
    return HandshakeAnswer(status=403, body="verification failed")


class MetaWebhooks:
    """The handshake and signature check of any Meta webhook, for the adapters' classes."""

    provider = None  # set by ProviderAdapter.__init__

    def handshake(self, request: WebhookRequest) -> HandshakeAnswer | None:
        return subscription_handshake(self.provider, request)

    def verify_request(self, request: WebhookRequest) -> bool:
        return signature_valid(self.provider, request)
