"""Configuration: workspaces, activities, task channels, task queues and workflows.

Administrators change configuration; supervisors read it; an agent may list the activities
and task channels of a workspace it works in (the desk's activity switch).
"""

from django.db.models import Count
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from routing.api import serializers as s
from routing.api.drf import RoutingApi, access, configure, errors, lookup, signed_in, supervise
from routing.models import Activity, TaskChannel, TaskQueue, Workflow, Workspace
from routing.services import config

ADMINS = "Administrators only."
SUPERVISORS = "Supervisors and administrators."
MEMBERS = "Supervisors, administrators, and agents who have a worker in this workspace."


def _workspaces():
    return Workspace.objects.select_related("default_activity", "timeout_activity")


def _queues(workspace: Workspace):
    return TaskQueue.objects.filter(workspace=workspace).annotate(
        members_count=Count("queuemembership")
    )


# ---------------------------------------------------------------- workspaces


class WorkspaceListApi(RoutingApi):
    @extend_schema(
        operation_id="routing_workspaces_list",
        tags=["routing: workspaces"],
        summary="List workspaces",
        description=SUPERVISORS,
        responses={200: s.WorkspaceListOutput, **errors()},
    )
    @access(supervise)
    def get(self, request: Request) -> Response:
        workspaces = _workspaces().order_by("id")
        return Response(s.WorkspaceListOutput({"results": workspaces}).data)


class WorkspaceCreateApi(RoutingApi):
    @extend_schema(
        operation_id="routing_workspaces_create",
        tags=["routing: workspaces"],
        summary="Create a workspace",
        description=f"{ADMINS} It comes with the activities Offline (default and timeout "
        "activity), Available, Unavailable and Break and the task channels default, sms, "
        "whatsapp, messenger, chat and voice.",
        request=s.WorkspaceCreateInput,
        responses={201: s.WorkspaceOutput, **errors(400)},
    )
    @access(configure)
    def post(self, request: Request) -> Response:
        data = self.body(s.WorkspaceCreateInput)
        workspace = config.workspace_create(**data)
        return Response(s.WorkspaceOutput(_workspaces().get(pk=workspace.pk)).data, status=201)


class WorkspaceRetrieveApi(RoutingApi):
    @extend_schema(
        operation_id="routing_workspaces_retrieve",
        tags=["routing: workspaces"],
        summary="Fetch a workspace",
        description=SUPERVISORS,
        responses={200: s.WorkspaceOutput, **errors(404)},
    )
    @access(supervise)
    def get(self, request: Request, workspace_sid: str) -> Response:
        return Response(s.WorkspaceOutput(self.workspace).data)


class WorkspaceUpdateApi(RoutingApi):
    @extend_schema(
        operation_id="routing_workspaces_update",
        tags=["routing: workspaces"],
        summary="Change a workspace",
        description=f"{ADMINS} Only the fields given change.",
        request=s.WorkspaceUpdateInput(partial=True),
        responses={200: s.WorkspaceOutput, **errors(400, 404)},
    )
    @access(configure)
    def patch(self, request: Request, workspace_sid: str) -> Response:
        workspace = self.workspace
        data = self.body(s.WorkspaceUpdateInput, partial=True)
        activities = Activity.objects.filter(workspace=workspace)
        for name in ("default_activity", "timeout_activity"):
            if f"{name}_sid" in data:
                data[name] = lookup(
                    activities,
                    data.pop(f"{name}_sid"),
                    label="activity",
                    prefix="WA",
                    field=f"{name}_sid",
                )
        if data:
            config.workspace_update(workspace, **data)
        return Response(s.WorkspaceOutput(_workspaces().get(pk=workspace.pk)).data)


class WorkspaceDeleteApi(RoutingApi):
    @extend_schema(
        operation_id="routing_workspaces_delete",
        tags=["routing: workspaces"],
        summary="Delete a workspace",
        description=f"{ADMINS} Deletes its workers, finished tasks, queues, workflows and "
        "events; refused (409) while any task is still active.",
        request=None,
        responses={204: None, **errors(404, 409)},
    )
    @access(configure)
    def delete(self, request: Request, workspace_sid: str) -> Response:
        config.workspace_delete(self.workspace)
        return Response(status=204)


class WorkspacesEndpoint(WorkspaceListApi, WorkspaceCreateApi):
    """GET lists, POST creates."""


class WorkspaceEndpoint(WorkspaceRetrieveApi, WorkspaceUpdateApi, WorkspaceDeleteApi):
    """GET fetches, PATCH changes, DELETE deletes."""


# ---------------------------------------------------------------- activities


class ActivityListApi(RoutingApi):
    @extend_schema(
        operation_id="routing_activities_list",
        tags=["routing: activities"],
        summary="List the workspace's activities",
        description=MEMBERS,
        responses={200: s.ActivityListOutput, **errors(404)},
    )
    @access(signed_in)
    def get(self, request: Request, workspace_sid: str) -> Response:
        self.require_member()
        activities = Activity.objects.filter(workspace=self.workspace).order_by("id")
        return Response(s.ActivityListOutput({"results": activities}).data)


class ActivityCreateApi(RoutingApi):
    @extend_schema(
        operation_id="routing_activities_create",
        tags=["routing: activities"],
        summary="Create an activity",
        description=ADMINS,
        request=s.ActivityInput,
        responses={201: s.ActivityOutput, **errors(400, 404)},
    )
    @access(configure)
    def post(self, request: Request, workspace_sid: str) -> Response:
        workspace = self.workspace
        data = self.body(s.ActivityInput)
        activity = config.activity_create(workspace=workspace, **data)
        return Response(s.ActivityOutput(activity).data, status=201)


class ActivityLookup(RoutingApi):
    def activity(self, sid: str) -> Activity:
        return lookup(
            Activity.objects.filter(workspace=self.workspace), sid, label="activity", prefix="WA"
        )


class ActivityRetrieveApi(ActivityLookup):
    @extend_schema(
        operation_id="routing_activities_retrieve",
        tags=["routing: activities"],
        summary="Fetch an activity",
        description=MEMBERS,
        responses={200: s.ActivityOutput, **errors(404)},
    )
    @access(signed_in)
    def get(self, request: Request, workspace_sid: str, activity_sid: str) -> Response:
        self.require_member()
        return Response(s.ActivityOutput(self.activity(activity_sid)).data)


class ActivityDeleteApi(ActivityLookup):
    @extend_schema(
        operation_id="routing_activities_delete",
        tags=["routing: activities"],
        summary="Delete an activity",
        description=f"{ADMINS} Refused (409) for the default and timeout activities and while "
        "workers are in it.",
        request=None,
        responses={204: None, **errors(404, 409)},
    )
    @access(configure)
    def delete(self, request: Request, workspace_sid: str, activity_sid: str) -> Response:
        config.activity_delete(self.activity(activity_sid))
        return Response(status=204)


class ActivitiesEndpoint(ActivityListApi, ActivityCreateApi):
    """GET lists, POST creates."""


class ActivityEndpoint(ActivityRetrieveApi, ActivityDeleteApi):
    """GET fetches, DELETE deletes."""


# ---------------------------------------------------------------- task channels


class TaskChannelListApi(RoutingApi):
    @extend_schema(
        operation_id="routing_task_channels_list",
        tags=["routing: task channels"],
        summary="List the workspace's task channels",
        description=MEMBERS,
        responses={200: s.TaskChannelListOutput, **errors(404)},
    )
    @access(signed_in)
    def get(self, request: Request, workspace_sid: str) -> Response:
        self.require_member()
        channels = TaskChannel.objects.filter(workspace=self.workspace).order_by("id")
        return Response(s.TaskChannelListOutput({"results": channels}).data)


class TaskChannelCreateApi(RoutingApi):
    @extend_schema(
        operation_id="routing_task_channels_create",
        tags=["routing: task channels"],
        summary="Create a task channel",
        description=f"{ADMINS} Existing workers get no capacity on it until it is set.",
        request=s.TaskChannelInput,
        responses={201: s.TaskChannelOutput, **errors(400, 404)},
    )
    @access(configure)
    def post(self, request: Request, workspace_sid: str) -> Response:
        workspace = self.workspace
        data = self.body(s.TaskChannelInput)
        channel = config.task_channel_create(workspace=workspace, **data)
        return Response(s.TaskChannelOutput(channel).data, status=201)


class TaskChannelRetrieveApi(RoutingApi):
    @extend_schema(
        operation_id="routing_task_channels_retrieve",
        tags=["routing: task channels"],
        summary="Fetch a task channel",
        description=MEMBERS,
        responses={200: s.TaskChannelOutput, **errors(404)},
    )
    @access(signed_in)
    def get(self, request: Request, workspace_sid: str, channel_sid: str) -> Response:
        self.require_member()
        channel = lookup(
            TaskChannel.objects.filter(workspace=self.workspace),
            channel_sid,
            label="task channel",
            prefix="TC",
        )
        return Response(s.TaskChannelOutput(channel).data)


class TaskChannelsEndpoint(TaskChannelListApi, TaskChannelCreateApi):
    """GET lists, POST creates."""


# ---------------------------------------------------------------- task queues


class QueueLookup(RoutingApi):
    def queue(self, sid: str) -> TaskQueue:
        return lookup(_queues(self.workspace), sid, label="task queue", prefix="WQ")


class TaskQueueListApi(RoutingApi):
    @extend_schema(
        operation_id="routing_task_queues_list",
        tags=["routing: task queues"],
        summary="List the workspace's task queues",
        description=SUPERVISORS,
        responses={200: s.TaskQueueListOutput, **errors(404)},
    )
    @access(supervise)
    def get(self, request: Request, workspace_sid: str) -> Response:
        queues = _queues(self.workspace).order_by("id")
        return Response(s.TaskQueueListOutput({"results": queues}).data)


class TaskQueueCreateApi(QueueLookup):
    @extend_schema(
        operation_id="routing_task_queues_create",
        tags=["routing: task queues"],
        summary="Create a task queue",
        description=f"{ADMINS} Its members (the workers target_workers matches) are computed "
        "at once.",
        request=s.TaskQueueInput,
        responses={201: s.TaskQueueOutput, **errors(400, 404)},
    )
    @access(configure)
    def post(self, request: Request, workspace_sid: str) -> Response:
        workspace = self.workspace
        data = self.body(s.TaskQueueInput)
        queue = config.queue_create(workspace=workspace, **data)
        return Response(s.TaskQueueOutput(self.queue(queue.sid)).data, status=201)


class TaskQueueRetrieveApi(QueueLookup):
    @extend_schema(
        operation_id="routing_task_queues_retrieve",
        tags=["routing: task queues"],
        summary="Fetch a task queue",
        description=SUPERVISORS,
        responses={200: s.TaskQueueOutput, **errors(404)},
    )
    @access(supervise)
    def get(self, request: Request, workspace_sid: str, queue_sid: str) -> Response:
        return Response(s.TaskQueueOutput(self.queue(queue_sid)).data)


class TaskQueueUpdateApi(QueueLookup):
    @extend_schema(
        operation_id="routing_task_queues_update",
        tags=["routing: task queues"],
        summary="Change a task queue",
        description=f"{ADMINS} Only the fields given change; members are recomputed.",
        request=s.TaskQueueInput(partial=True),
        responses={200: s.TaskQueueOutput, **errors(400, 404)},
    )
    @access(configure)
    def patch(self, request: Request, workspace_sid: str, queue_sid: str) -> Response:
        queue = self.queue(queue_sid)
        data = self.body(s.TaskQueueInput, partial=True)
        if data:
            config.queue_update(queue, **data)
        return Response(s.TaskQueueOutput(self.queue(queue_sid)).data)


class TaskQueueDeleteApi(QueueLookup):
    @extend_schema(
        operation_id="routing_task_queues_delete",
        tags=["routing: task queues"],
        summary="Delete a task queue",
        description=f"{ADMINS} Refused (409) while it holds active tasks or a workflow routes "
        "to it.",
        request=None,
        responses={204: None, **errors(404, 409)},
    )
    @access(configure)
    def delete(self, request: Request, workspace_sid: str, queue_sid: str) -> Response:
        config.queue_delete(self.queue(queue_sid))
        return Response(status=204)


class TaskQueuesEndpoint(TaskQueueListApi, TaskQueueCreateApi):
    """GET lists, POST creates."""


class TaskQueueEndpoint(TaskQueueRetrieveApi, TaskQueueUpdateApi, TaskQueueDeleteApi):
    """GET fetches, PATCH changes, DELETE deletes."""


# ---------------------------------------------------------------- workflows


class WorkflowLookup(RoutingApi):
    def workflow(self, sid: str) -> Workflow:
        return lookup(
            Workflow.objects.filter(workspace=self.workspace), sid, label="workflow", prefix="WW"
        )


class WorkflowListApi(RoutingApi):
    @extend_schema(
        operation_id="routing_workflows_list",
        tags=["routing: workflows"],
        summary="List the workspace's workflows",
        description=SUPERVISORS,
        responses={200: s.WorkflowListOutput, **errors(404)},
    )
    @access(supervise)
    def get(self, request: Request, workspace_sid: str) -> Response:
        workflows = Workflow.objects.filter(workspace=self.workspace).order_by("id")
        return Response(s.WorkflowListOutput({"results": workflows}).data)


class WorkflowCreateApi(RoutingApi):
    @extend_schema(
        operation_id="routing_workflows_create",
        tags=["routing: workflows"],
        summary="Create a workflow",
        description=f"{ADMINS} A configuration error names where it is, e.g. "
        "`task_routing.filters[0].expression: ... at position 12` (20001, field "
        "`configuration`).",
        request=s.WorkflowInput,
        responses={201: s.WorkflowOutput, **errors(400, 404)},
    )
    @access(configure)
    def post(self, request: Request, workspace_sid: str) -> Response:
        workspace = self.workspace
        data = self.body(s.WorkflowInput)
        workflow = config.workflow_create(workspace=workspace, **data)
        return Response(s.WorkflowOutput(workflow).data, status=201)


class WorkflowRetrieveApi(WorkflowLookup):
    @extend_schema(
        operation_id="routing_workflows_retrieve",
        tags=["routing: workflows"],
        summary="Fetch a workflow",
        description=SUPERVISORS,
        responses={200: s.WorkflowOutput, **errors(404)},
    )
    @access(supervise)
    def get(self, request: Request, workspace_sid: str, workflow_sid: str) -> Response:
        return Response(s.WorkflowOutput(self.workflow(workflow_sid)).data)


class WorkflowUpdateApi(WorkflowLookup):
    @extend_schema(
        operation_id="routing_workflows_update",
        tags=["routing: workflows"],
        summary="Change a workflow",
        description=f"{ADMINS} Only the fields given change. Tasks already placed stay where "
        "they are until they move.",
        request=s.WorkflowInput(partial=True),
        responses={200: s.WorkflowOutput, **errors(400, 404)},
    )
    @access(configure)
    def patch(self, request: Request, workspace_sid: str, workflow_sid: str) -> Response:
        workflow = self.workflow(workflow_sid)
        data = self.body(s.WorkflowInput, partial=True)
        if data:
            workflow = config.workflow_update(workflow, **data)
        return Response(s.WorkflowOutput(workflow).data)


class WorkflowDeleteApi(WorkflowLookup):
    @extend_schema(
        operation_id="routing_workflows_delete",
        tags=["routing: workflows"],
        summary="Delete a workflow",
        description=f"{ADMINS} Refused (409) while active tasks use it; its finished tasks are "
        "deleted with it.",
        request=None,
        responses={204: None, **errors(404, 409)},
    )
    @access(configure)
    def delete(self, request: Request, workspace_sid: str, workflow_sid: str) -> Response:
        config.workflow_delete(self.workflow(workflow_sid))
        return Response(status=204)


class WorkflowsEndpoint(WorkflowListApi, WorkflowCreateApi):
    """GET lists, POST creates."""


class WorkflowEndpoint(WorkflowRetrieveApi, WorkflowUpdateApi, WorkflowDeleteApi):
    """GET fetches, PATCH changes, DELETE deletes."""
