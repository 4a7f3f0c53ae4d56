from django.apps import AppConfig


class FlowsConfig(AppConfig):
    name = "contactcenter.flows"
    label = "flows"
    verbose_name = "Bot flows"
