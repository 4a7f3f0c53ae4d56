"""URL patterns of the routing API. Include them at the root, without a namespace:

    urlpatterns += [path("", include(routing_patterns))]

Every path but the workspace list is under `/api/v1/routing/workspaces/{workspace_sid}/`.
"""

from django.urls import path

from routing.api import config, reports, tasks, workers

ROOT = "api/v1/routing/workspaces"
WS = f"{ROOT}/<str:workspace_sid>"

routing_patterns = [
    path(ROOT, config.WorkspacesEndpoint.as_view(), name="routing-api-workspaces"),
    path(WS, config.WorkspaceEndpoint.as_view(), name="routing-api-workspace"),
    # activities and task channels
    path(f"{WS}/activities", config.ActivitiesEndpoint.as_view(), name="routing-api-activities"),
    path(
        f"{WS}/activities/<str:activity_sid>",
        config.ActivityEndpoint.as_view(),
        name="routing-api-activity",
    ),
    path(
        f"{WS}/task-channels",
        config.TaskChannelsEndpoint.as_view(),
        name="routing-api-task-channels",
    ),
    path(
        f"{WS}/task-channels/<str:channel_sid>",
        config.TaskChannelRetrieveApi.as_view(),
        name="routing-api-task-channel",
    ),
    # task queues and workflows
    path(f"{WS}/task-queues", config.TaskQueuesEndpoint.as_view(), name="routing-api-queues"),
    path(
        f"{WS}/task-queues/<str:queue_sid>",
        config.TaskQueueEndpoint.as_view(),
        name="routing-api-queue",
    ),
    path(
        f"{WS}/task-queues/<str:queue_sid>/statistics",
        reports.QueueStatisticsApi.as_view(),
        name="routing-api-queue-statistics",
    ),
    path(f"{WS}/workflows", config.WorkflowsEndpoint.as_view(), name="routing-api-workflows"),
    path(
        f"{WS}/workflows/<str:workflow_sid>",
        config.WorkflowEndpoint.as_view(),
        name="routing-api-workflow",
    ),
    # workers ("me" before the sid pattern: it would match it)
    path(f"{WS}/workers", workers.WorkersEndpoint.as_view(), name="routing-api-workers"),
    path(f"{WS}/workers/me", workers.WorkerMeApi.as_view(), name="routing-api-worker-me"),
    path(
        f"{WS}/workers/<str:worker_sid>",
        workers.WorkerEndpoint.as_view(),
        name="routing-api-worker",
    ),
    path(
        f"{WS}/workers/<str:worker_sid>/activity",
        workers.WorkerActivityApi.as_view(),
        name="routing-api-worker-activity",
    ),
    path(
        f"{WS}/workers/<str:worker_sid>/channels/<str:unique_name>",
        workers.WorkerChannelApi.as_view(),
        name="routing-api-worker-channel",
    ),
    path(
        f"{WS}/workers/<str:worker_sid>/reservations",
        workers.WorkerReservationsApi.as_view(),
        name="routing-api-worker-reservations",
    ),
    # tasks
    path(f"{WS}/tasks", tasks.TasksEndpoint.as_view(), name="routing-api-tasks"),
    path(f"{WS}/tasks/<str:task_sid>", tasks.TaskEndpoint.as_view(), name="routing-api-task"),
    path(
        f"{WS}/tasks/<str:task_sid>/cancel",
        tasks.TaskCancelApi.as_view(),
        name="routing-api-task-cancel",
    ),
    path(
        f"{WS}/tasks/<str:task_sid>/wrapup",
        tasks.TaskWrapupApi.as_view(),
        name="routing-api-task-wrapup",
    ),
    path(
        f"{WS}/tasks/<str:task_sid>/complete",
        tasks.TaskCompleteApi.as_view(),
        name="routing-api-task-complete",
    ),
    path(
        f"{WS}/tasks/<str:task_sid>/reservations",
        tasks.TaskReservationsApi.as_view(),
        name="routing-api-task-reservations",
    ),
    # reservations
    path(
        f"{WS}/reservations/<str:reservation_sid>",
        tasks.ReservationRetrieveApi.as_view(),
        name="routing-api-reservation",
    ),
    path(
        f"{WS}/reservations/<str:reservation_sid>/accept",
        tasks.ReservationAcceptApi.as_view(),
        name="routing-api-reservation-accept",
    ),
    path(
        f"{WS}/reservations/<str:reservation_sid>/reject",
        tasks.ReservationRejectApi.as_view(),
        name="routing-api-reservation-reject",
    ),
    path(
        f"{WS}/reservations/<str:reservation_sid>/wrapup",
        tasks.ReservationWrapupApi.as_view(),
        name="routing-api-reservation-wrapup",
    ),
    path(
        f"{WS}/reservations/<str:reservation_sid>/complete",
        tasks.ReservationCompleteApi.as_view(),
        name="routing-api-reservation-complete",
    ),
    # statistics and events
    path(
        f"{WS}/statistics",
        reports.WorkspaceStatisticsApi.as_view(),
        name="routing-api-statistics",
    ),
    path(f"{WS}/events", reports.EventListApi.as_view(), name="routing-api-events"),
]
