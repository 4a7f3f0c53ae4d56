"""Provider adapters: one interface, one implementation per provider kind."""

from messaging.providers.base import ProviderAdapter, ProviderError, SendResult

_ADAPTERS: dict[str, type[ProviderAdapter]] = {}


def register(kind: str):
    def decorate(cls: type[ProviderAdapter]) -> type[ProviderAdapter]:
        _ADAPTERS[kind] = cls
        return cls

    return decorate


def adapter_for(provider) -> ProviderAdapter:
    from messaging.providers import simulator  # noqa: F401  (registers itself)

    cls = _ADAPTERS.get(provider.kind)
    if cls is None:
        raise ProviderError(
            30008, f"No adapter for provider kind {provider.kind!r} yet.", permanent=True
        )
    return cls(provider)


__all__ = ["ProviderAdapter", "ProviderError", "SendResult", "adapter_for", "register"]
