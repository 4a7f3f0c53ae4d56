"""The customer phone page, mounted by the project under `simulator/` (namespace "simulator")."""

from django.urls import path

from messaging.simulator import views

simulator_patterns = (
    [
        path("", views.simulator_index, name="index"),
        path("reply", views.simulator_reply, name="reply"),
        path("api/thread", views.simulator_thread_api, name="thread"),
        path("api/threads", views.simulator_threads_api, name="threads"),
    ],
    "simulator",
)
