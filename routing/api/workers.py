"""Workers: their attributes, activity and capacity per channel, and their reservations.

Administrators create, change and delete workers; supervisors read any worker, move it to
another activity and change its channels; an agent reads its own worker, moves it to another
activity and lists its reservations.
"""

import re

from django.contrib.auth import get_user_model
from django.db.models import prefetch_related_objects
from drf_spectacular.utils import OpenApiParameter, extend_schema
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
from routing.errors import RoutingError, invalid
from routing.models import Activity, Worker
from routing.selectors import reservations_of_worker, worker_for_actor, worker_of_user
from routing.services import workers

ADMINS = "Administrators only."
SUPERVISORS = "Supervisors and administrators."
OWN = "Supervisors and administrators; an agent for its own worker."

_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,64}")
_CHANNEL_NAME = OpenApiParameter(
    "unique_name", str, OpenApiParameter.PATH, description="The task channel, e.g. sms."
)


def _workers():
    return Worker.objects.select_related("activity", "user").prefetch_related(
        "channels__task_channel"
    )


def _user(username: str | None):
    if username is None:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise invalid("user", f"No user {username!r}.")
    return user


class WorkerLookup(RoutingApi):
    def worker(self, sid: str) -> Worker:
        return lookup(_workers().filter(workspace=self.workspace), sid, label="worker", prefix="WK")

    def own_worker(self, sid: str) -> Worker:
        """The worker, if the caller may act on it (403 for another agent's worker)."""
        return worker_for_actor(self.worker(sid), self.request.user)

    def render(self, worker: Worker) -> Response:
        return Response(s.WorkerOutput(_workers().get(pk=worker.pk)).data)

    def activity(self, sid: str, *, field: str) -> Activity:
        activities = Activity.objects.filter(workspace=self.workspace)
        return lookup(activities, sid, label="activity", prefix="WA", field=field)


class WorkerListApi(RoutingApi):
    @extend_schema(
        operation_id="routing_workers_list",
        tags=["routing: workers"],
        summary="List the workspace's workers, oldest first",
        description=f"{SUPERVISORS} Keyset-paged: pass next_page_token as page_token until it "
        "is null.",
        parameters=[s.WorkerListQuery],
        responses={200: s.WorkerPageOutput, **errors(400, 404)},
    )
    @access(supervise)
    def get(self, request: Request, workspace_sid: str) -> Response:
        query = self.query(s.WorkerListQuery)
        rows = _workers().filter(workspace=self.workspace)
        if query.get("page_token"):
            rows = rows.filter(id__gt=int(query["page_token"][len(s.PAGE_TOKEN_PREFIX) :]))
        page_size = query["page_size"]
        rows = list(rows.order_by("id")[: page_size + 1])
        items = rows[:page_size]
        token = f"{s.PAGE_TOKEN_PREFIX}{items[-1].id}" if len(rows) > page_size else None
        return Response(s.WorkerPageOutput({"results": items, "next_page_token": token}).data)


class WorkerCreateApi(WorkerLookup):
    @extend_schema(
        operation_id="routing_workers_create",
        tags=["routing: workers"],
        summary="Create a worker",
        description=f"{ADMINS} It starts in the workspace's default activity unless "
        "activity_sid says otherwise, with capacity 1 on every task channel unless capacities "
        "say otherwise.",
        request=s.WorkerCreateInput,
        responses={201: s.WorkerOutput, **errors(400, 404)},
    )
    @access(configure)
    def post(self, request: Request, workspace_sid: str) -> Response:
        workspace = self.workspace
        data = self.body(s.WorkerCreateInput)
        activity = None
        if data.get("activity_sid") is not None:
            activity = self.activity(data["activity_sid"], field="activity_sid")
        worker = workers.worker_create(
            workspace=workspace,
            friendly_name=data["friendly_name"],
            attributes=data["attributes"],
            activity=activity,
            user=_user(data.get("user")),
            capacities=data.get("capacities"),
            actor=self.actor,
        )
        response = self.render(worker)
        response.status_code = 201
        return response


class WorkerMeApi(WorkerLookup):
    @extend_schema(
        operation_id="routing_workers_me",
        tags=["routing: workers"],
        summary="Fetch the caller's own worker",
        description="Any signed-in user: the worker linked to the caller in this workspace "
        "(404 when there is none).",
        responses={200: s.WorkerOutput, **errors(404)},
    )
    @access(signed_in)
    def get(self, request: Request, workspace_sid: str) -> Response:
        worker = worker_of_user(self.workspace, request.user)
        if worker is None:
            raise RoutingError(20404, "You have no worker in this workspace.")
        return self.render(worker)


class WorkerRetrieveApi(WorkerLookup):
    @extend_schema(
        operation_id="routing_workers_retrieve",
        tags=["routing: workers"],
        summary="Fetch a worker",
        description=OWN,
        responses={200: s.WorkerOutput, **errors(404)},
    )
    @access(signed_in)
    def get(self, request: Request, workspace_sid: str, worker_sid: str) -> Response:
        return Response(s.WorkerOutput(self.own_worker(worker_sid)).data)


class WorkerUpdateApi(WorkerLookup):
    @extend_schema(
        operation_id="routing_workers_update",
        tags=["routing: workers"],
        summary="Change a worker's name, attributes or user",
        description=f"{ADMINS} New attributes recompute the worker's queues.",
        request=s.WorkerUpdateInput,
        responses={200: s.WorkerOutput, **errors(400, 404)},
    )
    @access(configure)
    def patch(self, request: Request, workspace_sid: str, worker_sid: str) -> Response:
        worker = self.worker(worker_sid)
        data = self.body(s.WorkerUpdateInput)
        changes = {}
        if "user" in data:
            changes["user"] = _user(data["user"])
        if data:
            worker = workers.worker_update(
                worker,
                friendly_name=data.get("friendly_name"),
                attributes=data.get("attributes"),
                actor=self.actor,
                **changes,
            )
        return self.render(worker)


class WorkerDeleteApi(WorkerLookup):
    @extend_schema(
        operation_id="routing_workers_delete",
        tags=["routing: workers"],
        summary="Delete a worker",
        description=f"{ADMINS} Refused (409) while it holds reservations.",
        request=None,
        responses={204: None, **errors(404, 409)},
    )
    @access(configure)
    def delete(self, request: Request, workspace_sid: str, worker_sid: str) -> Response:
        workers.worker_delete(self.worker(worker_sid))
        return Response(status=204)


class WorkerActivityApi(WorkerLookup):
    @extend_schema(
        operation_id="routing_workers_activity_set",
        tags=["routing: workers"],
        summary="Move a worker to another activity",
        description=f"{OWN} Leaving availability rejects the worker's pending reservations; "
        "becoming available offers it waiting tasks.",
        request=s.WorkerActivityInput,
        responses={200: s.WorkerOutput, **errors(400, 404)},
    )
    @access(signed_in)
    def post(self, request: Request, workspace_sid: str, worker_sid: str) -> Response:
        worker = self.own_worker(worker_sid)
        data = self.body(s.WorkerActivityInput)
        activity = self.activity(data["activity_sid"], field="activity_sid")
        worker = workers.worker_activity_set(worker, activity=activity, actor=self.actor)
        return self.render(worker)


class WorkerChannelApi(WorkerLookup):
    @extend_schema(
        operation_id="routing_workers_channel_update",
        tags=["routing: workers"],
        summary="Change a worker's capacity on a channel, or switch the channel off",
        description=f"{SUPERVISORS} Capacity 0 to 50. Lowering it below the tasks the worker "
        "holds takes no task away; it only stops new offers.",
        parameters=[_CHANNEL_NAME],
        request=s.WorkerChannelInput,
        responses={200: s.WorkerOutput, **errors(400, 404)},
    )
    @access(supervise)
    def post(
        self, request: Request, workspace_sid: str, worker_sid: str, unique_name: str
    ) -> Response:
        worker = self.worker(worker_sid)
        if not _SLUG.fullmatch(unique_name):
            raise RoutingError(20404, f"The worker has no channel {unique_name!r}.")
        data = self.body(s.WorkerChannelInput)
        if not data:
            raise invalid("capacity", "Give capacity, available or both.")
        try:
            workers.worker_channel_update(
                worker,
                task_channel=unique_name,
                capacity=data.get("capacity"),
                available=data.get("available"),
                actor=self.actor,
            )
        except RoutingError as error:
            if error.code != 20404:
                raise
            # The channel is part of the path, not a body field.
            raise RoutingError(20404, error.message) from error
        return self.render(worker)


class WorkerReservationsApi(WorkerLookup):
    @extend_schema(
        operation_id="routing_workers_reservations_list",
        tags=["routing: workers"],
        summary="List a worker's reservations, newest first (at most 200)",
        description=f"{OWN} Filter with status=pending (repeatable).",
        parameters=[s.ReservationListQuery],
        responses={200: s.ReservationListOutput, **errors(400, 404)},
    )
    @access(signed_in)
    def get(self, request: Request, workspace_sid: str, worker_sid: str) -> Response:
        worker = self.own_worker(worker_sid)
        query = self.query(s.ReservationListQuery)
        reservations = reservations_of_worker(worker, statuses=query.get("status", []))
        prefetch_related_objects(reservations, *RESERVATION_RELATED)
        body = s.ReservationListOutput({"results": reservations}).data
        return Response(body)


class WorkersEndpoint(WorkerListApi, WorkerCreateApi):
    """GET lists, POST creates."""


class WorkerEndpoint(WorkerRetrieveApi, WorkerUpdateApi, WorkerDeleteApi):
    """GET fetches, PATCH changes, DELETE deletes."""
