"""Websocket URL routes."""

from django.urls import path

from contactcenter.core.consumers import PingConsumer
from contactcenter.desk.consumers import DeskConsumer

websocket_urlpatterns = [
    path("ws/ping/", PingConsumer.as_asgi()),
    path("ws/desk/", DeskConsumer.as_asgi()),
]
