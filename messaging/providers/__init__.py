"""Provider adapters: one interface (`base.py`), one implementation per provider kind.

Each adapter module registers itself for its `ProviderKind`; `adapter_for` imports them all
on first use, so callers need only this package.
"""

import importlib
import threading

from messaging.providers.base import (
    HandshakeAnswer,
    InboundMedia,
    InboundMessage,
    ListPicker,
    ListRow,
    MediaFile,
    OutboundContent,
    ProviderAdapter,
    ProviderError,
    QuickReply,
    SendResult,
    StatusUpdate,
    TemplateRef,
    WebhookEvents,
    WebhookPayloadError,
    WebhookRequest,
)

_ADAPTERS: dict[str, type[ProviderAdapter]] = {}
# Modules that register adapters; a missing one means that kind has no adapter yet.
_ADAPTER_MODULES = ("simulator", "twilio", "whatsapp_cloud", "messenger")


def register(kind: str):
    def decorate(cls: type[ProviderAdapter]) -> type[ProviderAdapter]:
        _ADAPTERS[kind] = cls
        return cls

    return decorate


_loaded = False
_load_lock = threading.Lock()


def _load_adapters() -> None:
    """Import every adapter once. `_loaded` is set only after the imports, under a lock:
    set first, concurrent first requests of a fresh process found no adapter and answered
    webhooks 404 (seen in the desk bench)."""
    global _loaded
    with _load_lock:
        if _loaded:
            return
        for name in _ADAPTER_MODULES:
            try:
                importlib.import_module(f"messaging.providers.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"messaging.providers.{name}":
                    raise
        _loaded = True


def adapter_for(provider) -> ProviderAdapter:
    if not _loaded:
        _load_adapters()
    cls = _ADAPTERS.get(provider.kind)
    if cls is None:
        raise ProviderError(
            30008, f"No adapter for provider kind {provider.kind!r} yet.", permanent=True
        )
    return cls(provider)


__all__ = [
    "HandshakeAnswer",
    "InboundMedia",
    "InboundMessage",
    "ListPicker",
    "ListRow",
    "MediaFile",
    "OutboundContent",
    "ProviderAdapter",
    "ProviderError",
    "QuickReply",
    "SendResult",
    "StatusUpdate",
    "TemplateRef",
    "WebhookEvents",
    "WebhookPayloadError",
    "WebhookRequest",
    "adapter_for",
    "register",
]
