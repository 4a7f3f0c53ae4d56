from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RoutingConfig(AppConfig):
    """Engine 2: TaskRouter-style routing. Never imports contactcenter or messaging."""

    name = "routing"
    verbose_name = _("Routing")
