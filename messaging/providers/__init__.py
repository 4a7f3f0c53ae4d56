"""Provider adapters: one interface (`base.py`), one implementation per provider kind.

Each adapter module registers itself for its `ProviderKind`; `adapter_for` imports them all
on first use, so callers need only this package.
"""

import importlib

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


def _load_adapters() -> None:
    global _loaded
    _loaded = True
    for name in _ADAPTER_MODULES:
        try:
            importlib.import_module(f"messaging.providers.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"messaging.providers.{name}":
                raise


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
