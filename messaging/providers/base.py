from dataclasses import dataclass


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str


class ProviderError(Exception):
    """A send the provider refused. `permanent` ones fail the message with `code`; the others
    may be retried within the validity period."""

    def __init__(self, code: int, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.permanent = permanent


class ProviderAdapter:
    def __init__(self, provider) -> None:
        self.provider = provider

    def send(self, message, *, text: str) -> SendResult:  # pragma: no cover - interface
        raise NotImplementedError
