from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MessagingConfig(AppConfig):
    """Engine 1: channels, senders, services, messages. Never imports contactcenter."""

    name = "messaging"
    verbose_name = _("Messaging")
