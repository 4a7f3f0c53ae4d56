"""Websocket URL routes. The desk adds its consumers here."""

from django.urls import path

from contactcenter.core.consumers import PingConsumer

websocket_urlpatterns = [
    path("ws/ping/", PingConsumer.as_asgi()),
]
