from django.apps import AppConfig


class MessagingConfig(AppConfig):
    """Engine 1: channels, senders, services, messages. Never imports contactcenter."""

    name = "messaging"
    verbose_name = "Messaging"
