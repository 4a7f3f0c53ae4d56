from django.apps import AppConfig


class DeskConfig(AppConfig):
    name = "contactcenter.desk"
    label = "desk"
    verbose_name = "Agent desktop and supervisor console"
