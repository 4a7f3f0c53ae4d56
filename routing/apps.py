from django.apps import AppConfig


class RoutingConfig(AppConfig):
    """Engine 2: TaskRouter-style routing. Never imports contactcenter or messaging."""

    name = "routing"
    verbose_name = "Routing"
