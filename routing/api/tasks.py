"""Tasks and reservations.

Supervisors (and administrators) create, change, cancel and complete any task and act on any
reservation; an agent acts on its own reservations and wraps up or completes the tasks it
holds. Deleting a task (its history goes with it) is for administrators.
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from routing.api import serializers as s
from routing.api.drf import (
    RESERVATION_RELATED,
    RoutingApi,
    access,
    configure,
    errors,
    lookup,
    signed_in,
    supervise,
)
from routing.models import Activity, Reservation, Task, TaskQueue, Workflow
from routing.selectors import reservation_for_actor, task_for_actor, tasks_list
from routing.services import reservations, tasks

ADMINS = "Administrators only."
SUPERVISORS = "Supervisors and administrators."
HOLDER = "Supervisors and administrators; an agent for a task it holds a reservation of."
OWN = "Supervisors and administrators; an agent for its own reservation."


def _tasks():
    return Task.objects.select_related("workflow", "task_channel", "queue")


def _reservations():
    return Reservation.objects.select_related(*RESERVATION_RELATED)


class TaskLookup(RoutingApi):
    def task(self, sid: str) -> Task:
        return lookup(_tasks().filter(workspace=self.workspace), sid, label="task", prefix="WT")

    def held_task(self, sid: str) -> Task:
        """The task, if the caller may act on it (403 for a task reserved for someone else)."""
        return task_for_actor(self.task(sid), self.request.user)

    def render(self, task: Task, *, status: int = 200) -> Response:
        task = _tasks().get(pk=task.pk)
        return Response(s.TaskOutput(task, context={"now": timezone.now()}).data, status=status)


# ---------------------------------------------------------------- tasks


class TaskListApi(RoutingApi):
    @extend_schema(
        operation_id="routing_tasks_list",
        tags=["routing: tasks"],
        summary="List tasks, newest first",
        description=f"{SUPERVISORS} Keyset-paged: pass next_page_token as page_token until it "
        "is null. Pages stay stable while new tasks arrive.",
        parameters=[s.TaskListQuery],
        responses={200: s.TaskPageOutput, **errors(400, 404)},
    )
    @access(supervise)
    def get(self, request: Request, workspace_sid: str) -> Response:
        workspace = self.workspace
        query = self.query(s.TaskListQuery)
        queue = None
        if "queue_sid" in query:
            queue = lookup(
                TaskQueue.objects.filter(workspace=workspace),
                query["queue_sid"],
                label="task queue",
                prefix="WQ",
                field="queue_sid",
            )
        before = query.get("page_token")
        page_size = query["page_size"]
        rows = tasks_list(
            workspace,
            statuses=query.get("status", []),
            queue=queue,
            before_id=int(before[len(s.PAGE_TOKEN_PREFIX) :]) if before else None,
            limit=page_size + 1,
        )
        items = rows[:page_size]
        token = f"{s.PAGE_TOKEN_PREFIX}{items[-1].id}" if len(rows) > page_size else None
        body = s.TaskPageOutput(
            {"results": items, "next_page_token": token}, context={"now": timezone.now()}
        ).data
        return Response(body)


class TaskCreateApi(TaskLookup):
    @extend_schema(
        operation_id="routing_tasks_create",
        tags=["routing: tasks"],
        summary="Create a task",
        description=f"{SUPERVISORS} Its workflow places it in a queue at once and it is offered "
        "to a worker as soon as one is eligible. A task no filter matches is canceled.",
        request=s.TaskCreateInput,
        responses={201: s.TaskOutput, **errors(400, 404)},
    )
    @access(supervise)
    def post(self, request: Request, workspace_sid: str) -> Response:
        workspace = self.workspace
        data = self.body(s.TaskCreateInput)
        workflow = lookup(
            Workflow.objects.filter(workspace=workspace),
            data.pop("workflow_sid"),
            label="workflow",
            prefix="WW",
            field="workflow_sid",
        )
        task = tasks.task_create(workspace=workspace, workflow=workflow, actor=self.actor, **data)
        return self.render(task, status=201)


class TaskRetrieveApi(TaskLookup):
    @extend_schema(
        operation_id="routing_tasks_retrieve",
        tags=["routing: tasks"],
        summary="Fetch a task",
        description=HOLDER,
        responses={200: s.TaskOutput, **errors(404)},
    )
    @access(signed_in)
    def get(self, request: Request, workspace_sid: str, task_sid: str) -> Response:
        return self.render(self.held_task(task_sid))


class TaskUpdateApi(TaskLookup):
    @extend_schema(
        operation_id="routing_tasks_update",
        tags=["routing: tasks"],
        summary="Change a task's attributes, priority or timeout",
        description=f"{SUPERVISORS} New attributes send a waiting task through its workflow "
        "again. A completed or canceled task cannot change (409).",
        request=s.TaskUpdateInput,
        responses={200: s.TaskOutput, **errors(400, 404, 409)},
    )
    @access(supervise)
    def patch(self, request: Request, workspace_sid: str, task_sid: str) -> Response:
        task = self.task(task_sid)
        data = self.body(s.TaskUpdateInput)
        task = tasks.task_update(task, actor=self.actor, **data)
        return self.render(task)


class TaskDeleteApi(TaskLookup):
    @extend_schema(
        operation_id="routing_tasks_delete",
        tags=["routing: tasks"],
        summary="Delete a task",
        description=f"{ADMINS} Its reservations are canceled and the workers' capacity freed.",
        request=None,
        responses={204: None, **errors(404)},
    )
    @access(configure)
    def delete(self, request: Request, workspace_sid: str, task_sid: str) -> Response:
        tasks.task_delete(self.task(task_sid), actor=self.actor)
        return Response(status=204)


class TaskCancelApi(TaskLookup):
    @extend_schema(
        operation_id="routing_tasks_cancel",
        tags=["routing: tasks"],
        summary="Cancel a waiting task",
        description=f"{SUPERVISORS} Only a pending or reserved task can be canceled (409 "
        "otherwise: an assigned task is completed).",
        request=s.TaskReasonInput,
        responses={200: s.TaskOutput, **errors(400, 404, 409)},
    )
    @access(supervise)
    def post(self, request: Request, workspace_sid: str, task_sid: str) -> Response:
        task = self.task(task_sid)
        data = self.body(s.TaskReasonInput)
        task = tasks.task_cancel(task, reason=data["reason"], actor=self.actor)
        return self.render(task)


class TaskWrapupApi(TaskLookup):
    @extend_schema(
        operation_id="routing_tasks_wrapup",
        tags=["routing: tasks"],
        summary="Wrap up an assigned task",
        description=f"{HOLDER} The worker keeps the capacity until the task completes.",
        request=None,
        responses={200: s.TaskOutput, **errors(400, 404, 409)},
    )
    @access(signed_in)
    def post(self, request: Request, workspace_sid: str, task_sid: str) -> Response:
        task = self.held_task(task_sid)
        self.body(s.EmptyInput)
        task = tasks.task_wrapup(task, actor=self.actor)
        return self.render(task)


class TaskCompleteApi(TaskLookup):
    @extend_schema(
        operation_id="routing_tasks_complete",
        tags=["routing: tasks"],
        summary="Complete an assigned or wrapping task",
        description=f"{HOLDER} The worker's capacity is freed and it may get the next task.",
        request=s.TaskReasonInput,
        responses={200: s.TaskOutput, **errors(400, 404, 409)},
    )
    @access(signed_in)
    def post(self, request: Request, workspace_sid: str, task_sid: str) -> Response:
        task = self.held_task(task_sid)
        data = self.body(s.TaskReasonInput)
        task = tasks.task_complete(task, reason=data["reason"], actor=self.actor)
        return self.render(task)


class TaskReservationsApi(TaskLookup):
    @extend_schema(
        operation_id="routing_tasks_reservations_list",
        tags=["routing: tasks"],
        summary="List a task's reservations, newest first",
        description=SUPERVISORS,
        responses={200: s.ReservationListOutput, **errors(404)},
    )
    @access(supervise)
    def get(self, request: Request, workspace_sid: str, task_sid: str) -> Response:
        task = self.task(task_sid)
        rows = _reservations().filter(task=task).order_by("-id")
        context = {"now": timezone.now()}
        return Response(s.ReservationListOutput({"results": rows}, context=context).data)


class TasksEndpoint(TaskListApi, TaskCreateApi):
    """GET lists, POST creates."""


class TaskEndpoint(TaskRetrieveApi, TaskUpdateApi, TaskDeleteApi):
    """GET fetches, PATCH changes, DELETE deletes."""


# ---------------------------------------------------------------- reservations


class ReservationLookup(RoutingApi):
    def reservation(self, sid: str) -> Reservation:
        """The reservation, if the caller may act on it (403 for another agent's)."""
        reservation = lookup(
            _reservations().filter(workspace=self.workspace),
            sid,
            label="reservation",
            prefix="WR",
        )
        return reservation_for_actor(reservation, self.request.user)

    def render(self, reservation: Reservation) -> Response:
        reservation = _reservations().get(pk=reservation.pk)
        context = {"now": timezone.now()}
        return Response(s.ReservationOutput(reservation, context=context).data)


class ReservationRetrieveApi(ReservationLookup):
    @extend_schema(
        operation_id="routing_reservations_retrieve",
        tags=["routing: reservations"],
        summary="Fetch a reservation",
        description=OWN,
        responses={200: s.ReservationOutput, **errors(404)},
    )
    @access(signed_in)
    def get(self, request: Request, workspace_sid: str, reservation_sid: str) -> Response:
        return self.render(self.reservation(reservation_sid))


class ReservationAcceptApi(ReservationLookup):
    @extend_schema(
        operation_id="routing_reservations_accept",
        tags=["routing: reservations"],
        summary="Accept a pending reservation",
        description=f"{OWN} The task becomes assigned to the worker; other pending "
        "reservations of the task are rescinded. Only a pending reservation (409).",
        request=None,
        responses={200: s.ReservationOutput, **errors(400, 404, 409)},
    )
    @access(signed_in)
    def post(self, request: Request, workspace_sid: str, reservation_sid: str) -> Response:
        reservation = self.reservation(reservation_sid)
        self.body(s.EmptyInput)
        reservations.reservation_accept(reservation, actor=self.actor)
        return self.render(reservation)


class ReservationRejectApi(ReservationLookup):
    @extend_schema(
        operation_id="routing_reservations_reject",
        tags=["routing: reservations"],
        summary="Reject a pending reservation",
        description=f"{OWN} The task is offered to someone else; with activity_sid the "
        "worker moves to that activity too.",
        request=s.ReservationRejectInput,
        responses={200: s.ReservationOutput, **errors(400, 404, 409)},
    )
    @access(signed_in)
    def post(self, request: Request, workspace_sid: str, reservation_sid: str) -> Response:
        reservation = self.reservation(reservation_sid)
        data = self.body(s.ReservationRejectInput)
        activity = None
        if data.get("activity_sid") is not None:
            activity = lookup(
                Activity.objects.filter(workspace=self.workspace),
                data["activity_sid"],
                label="activity",
                prefix="WA",
                field="activity_sid",
            )
        reservations.reservation_reject(reservation, activity=activity, actor=self.actor)
        return self.render(reservation)


class ReservationWrapupApi(ReservationLookup):
    @extend_schema(
        operation_id="routing_reservations_wrapup",
        tags=["routing: reservations"],
        summary="Wrap up an accepted reservation (and its task)",
        description=f"{OWN} The worker keeps the capacity until it completes.",
        request=None,
        responses={200: s.ReservationOutput, **errors(400, 404, 409)},
    )
    @access(signed_in)
    def post(self, request: Request, workspace_sid: str, reservation_sid: str) -> Response:
        reservation = self.reservation(reservation_sid)
        self.body(s.EmptyInput)
        reservations.reservation_wrapup(reservation, actor=self.actor)
        return self.render(reservation)


class ReservationCompleteApi(ReservationLookup):
    @extend_schema(
        operation_id="routing_reservations_complete",
        tags=["routing: reservations"],
        summary="Complete an accepted or wrapping reservation (and its task)",
        description=f"{OWN} The worker's capacity is freed.",
        request=None,
        responses={200: s.ReservationOutput, **errors(400, 404, 409)},
    )
    @access(signed_in)
    def post(self, request: Request, workspace_sid: str, reservation_sid: str) -> Response:
        reservation = self.reservation(reservation_sid)
        self.body(s.EmptyInput)
        reservations.reservation_complete(reservation, actor=self.actor)
        return self.render(reservation)
