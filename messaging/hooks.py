"""The engine's only way to tell the product that something happened.

The product registers handlers explicitly in `AppConfig.ready()`; no model signals. Handlers
run after the transaction that stored the event has committed.
"""

from collections.abc import Callable

InboundHandler = Callable[[int], None]  # receives the inbound Message id
StatusHandler = Callable[[int, str], None]  # receives the Message id and its new status

_inbound_handlers: list[InboundHandler] = []
_status_handlers: list[StatusHandler] = []


def register_inbound_handler(handler: InboundHandler) -> None:
    if handler not in _inbound_handlers:
        _inbound_handlers.append(handler)


def register_status_handler(handler: StatusHandler) -> None:
    if handler not in _status_handlers:
        _status_handlers.append(handler)


def inbound_handlers() -> tuple[InboundHandler, ...]:
    return tuple(_inbound_handlers)


def status_handlers() -> tuple[StatusHandler, ...]:
    return tuple(_status_handlers)
