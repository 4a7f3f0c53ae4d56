from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DeskConfig(AppConfig):
    name = "contactcenter.desk"
    label = "desk"
    verbose_name = _("Agent desktop and supervisor console")

    def ready(self) -> None:
        # Explicit registration with both engines (no model signals).
        from contactcenter.desk.hooks import (
            inbound_message_arrived,
            message_status_changed,
            routing_events,
        )
        from messaging import hooks as messaging_hooks
        from routing import hooks as routing_hooks

        routing_hooks.register_event_handler(routing_events)
        messaging_hooks.register_inbound_handler(inbound_message_arrived)
        messaging_hooks.register_status_handler(message_status_changed)
