from dataclasses import dataclass


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


class ProviderAdapter:
    # The provider de-duplicates sends by `idempotency_key`: after a crash mid-send the engine
    # may safely send again. Without it, an unfinished send is failed (30008), never repeated.
    idempotent = False
    # Sends go over the network: the engine calls them from a thread pool so that one slow
    # provider call does not delay other senders' slots.
    network = True

    def __init__(self, provider) -> None:
        self.provider = provider

    def send(self, message, *, text: str, idempotency_key: str) -> SendResult:  # pragma: no cover
        raise NotImplementedError
