"""The engine's only way to tell the product that something happened.

The product registers handlers explicitly in `AppConfig.ready()`; no model signals. Handlers
run after the transaction that wrote the events has committed, with the events as plain dicts
(`routing.events.EventRecord`), in the order they were written.
"""

from collections.abc import Callable

EventHandler = Callable[[list[dict]], None]

_event_handlers: list[EventHandler] = []


def register_event_handler(handler: EventHandler) -> None:
    if handler not in _event_handlers:
        _event_handlers.append(handler)


def unregister_event_handler(handler: EventHandler) -> None:
    if handler in _event_handlers:
        _event_handlers.remove(handler)


def event_handlers() -> tuple[EventHandler, ...]:
    return tuple(_event_handlers)
