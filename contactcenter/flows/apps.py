from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FlowsConfig(AppConfig):
    name = "contactcenter.flows"
    label = "flows"
    verbose_name = _("Bot flows")

    def ready(self) -> None:
        # Explicit registration with the messaging engine (no model signals).
        from contactcenter.flows import demo_functions  # noqa: F401  (registers functions)
        from contactcenter.flows.hooks import inbound_message_arrived, message_status_changed
        from messaging import hooks

        hooks.register_inbound_handler(inbound_message_arrived)
        hooks.register_status_handler(message_status_changed)
