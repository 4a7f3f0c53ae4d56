from django.urls import path

from contactcenter.desk import api, views

desk_patterns = (
    [
        path("", views.desk_index, name="index"),
        path("attachments/<str:token>/<str:name>", views.attachment, name="attachment"),
        path("api/state", api.state, name="api-state"),
        path("api/activity", api.activity, name="api-activity"),
        path("api/encoding", api.encoding_preview, name="api-encoding"),
        path("api/transfer-targets", api.transfer_targets, name="api-transfer-targets"),
        path("api/reservations/<str:sid>/accept", api.reservation_accept, name="api-accept"),
        path("api/reservations/<str:sid>/reject", api.reservation_reject, name="api-reject"),
        path("api/conversations/<str:sid>", api.conversation, name="api-conversation"),
        path("api/conversations/<str:sid>/messages", api.message_send, name="api-messages"),
        path("api/conversations/<str:sid>/notes", api.note_create, name="api-notes"),
        path("api/conversations/<str:sid>/read", api.conversation_read, name="api-read"),
        path(
            "api/conversations/<str:sid>/transfer", api.conversation_transfer, name="api-transfer"
        ),
        path("api/conversations/<str:sid>/wrapup", api.conversation_wrapup, name="api-wrapup"),
        path(
            "api/conversations/<str:sid>/complete", api.conversation_complete, name="api-complete"
        ),
    ],
    "desk",
)
supervisor_patterns = (
    [
        path("", views.supervisor_index, name="index"),
        path("api/state", api.supervisor_state, name="api-state"),
        path("api/analytics", api.supervisor_analytics, name="api-analytics"),
        path("api/tasks/<str:sid>/transfer", api.supervisor_task_transfer, name="api-transfer"),
        path(
            "api/workers/<str:sid>/activity",
            api.supervisor_worker_activity,
            name="api-worker-activity",
        ),
    ],
    "supervisor",
)
