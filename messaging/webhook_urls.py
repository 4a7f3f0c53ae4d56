"""Provider webhooks, mounted by the project under `webhooks/` (namespace "webhooks")."""

from django.urls import path

from messaging import webhooks

webhook_patterns = (
    [
        path(
            "simulator/<str:provider_sid>/inbound",
            webhooks.simulator_inbound,
            name="simulator-inbound",
        ),
        path("p/<str:provider_sid>", webhooks.provider_webhook, name="provider"),
    ],
    "webhooks",
)
