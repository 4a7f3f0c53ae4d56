"""Statistics (real-time and cumulative) and the event log: supervisors and administrators."""

from datetime import datetime, timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from routing.api import serializers as s
from routing.api.drf import RoutingApi, access, errors, lookup, supervise
from routing.errors import invalid
from routing.models import TaskQueue
from routing.selectors import (
    DEFAULT_WAIT_THRESHOLDS,
    cumulative_statistics,
    events_list,
    realtime_statistics,
)

SUPERVISORS = "Supervisors and administrators."
WINDOW = (
    "The cumulative part covers the last `minutes` (default "
    f"{s.DEFAULT_STATISTICS_MINUTES}, at most {s.MAX_STATISTICS_MINUTES}), or `start` to `end` "
    "(ISO 8601; `end` defaults to now). `split_by_wait_time=30,60` counts the accepted tasks "
    "that waited less and more than each threshold."
)


def _window(query: dict) -> tuple[datetime, datetime]:
    """The cumulative window asked for, checked: start before end, at most 30 days."""
    now = timezone.now()
    if "start" not in query and "end" not in query:
        return now - timedelta(minutes=query.get("minutes", s.DEFAULT_STATISTICS_MINUTES)), now
    end = query.get("end") or now
    start = query.get("start")
    if start is None:
        try:
            start = end - timedelta(minutes=s.DEFAULT_STATISTICS_MINUTES)
        except OverflowError as error:
            raise invalid("end", "end is too early.") from error
    if start >= end:
        raise invalid("start", "start must be before end.")
    if end - start > timedelta(minutes=s.MAX_STATISTICS_MINUTES):
        raise invalid("start", f"The window may span at most {s.MAX_STATISTICS_MINUTES} minutes.")
    return start, end


def _thresholds(query: dict) -> list[int]:
    text = query.get("split_by_wait_time")
    return [int(t) for t in text.split(",")] if text else list(DEFAULT_WAIT_THRESHOLDS)


class StatisticsApi(RoutingApi):
    def statistics(self, queue: TaskQueue | None) -> Response:
        query = self.query(s.StatisticsQuery)
        start, end = _window(query)
        body = {
            "realtime": realtime_statistics(self.workspace, queue=queue),
            "cumulative": cumulative_statistics(
                self.workspace,
                queue=queue,
                start=start,
                end=end,
                split_by_wait_time=_thresholds(query),
            ),
        }
        return Response(s.StatisticsOutput(body).data)


class WorkspaceStatisticsApi(StatisticsApi):
    @extend_schema(
        operation_id="routing_statistics",
        tags=["routing: statistics"],
        summary="Statistics of the workspace",
        description=f"{SUPERVISORS} {WINDOW}",
        parameters=[s.StatisticsQuery],
        responses={200: s.StatisticsOutput, **errors(400, 404)},
    )
    @access(supervise)
    def get(self, request: Request, workspace_sid: str) -> Response:
        return self.statistics(None)


class QueueStatisticsApi(StatisticsApi):
    @extend_schema(
        operation_id="routing_task_queues_statistics",
        tags=["routing: statistics"],
        summary="Statistics of one task queue",
        description=f"{SUPERVISORS} Real-time figures count the queue's tasks and members. "
        f"{WINDOW}",
        parameters=[s.StatisticsQuery],
        responses={200: s.StatisticsOutput, **errors(400, 404)},
    )
    @access(supervise)
    def get(self, request: Request, workspace_sid: str, queue_sid: str) -> Response:
        queue = lookup(
            TaskQueue.objects.filter(workspace=self.workspace),
            queue_sid,
            label="task queue",
            prefix="WQ",
        )
        return self.statistics(queue)


class EventListApi(RoutingApi):
    @extend_schema(
        operation_id="routing_events_list",
        tags=["routing: events"],
        summary="List events, newest first",
        description=f"{SUPERVISORS} Filter by event_type (repeatable), resource_sid and a "
        "start/end window. Keyset-paged: pass next_page_token as page_token until it is null.",
        parameters=[s.EventListQuery],
        responses={200: s.EventPageOutput, **errors(400, 404)},
    )
    @access(supervise)
    def get(self, request: Request, workspace_sid: str) -> Response:
        workspace = self.workspace
        query = self.query(s.EventListQuery)
        before = query.get("page_token")
        page_size = query["page_size"]
        rows = events_list(
            workspace,
            event_types=query.get("event_type", []),
            resource_sid=query.get("resource_sid"),
            start=query.get("start"),
            end=query.get("end"),
            before_id=int(before[len(s.PAGE_TOKEN_PREFIX) :]) if before else None,
            limit=page_size + 1,
        )
        items = rows[:page_size]
        token = f"{s.PAGE_TOKEN_PREFIX}{items[-1].id}" if len(rows) > page_size else None
        return Response(s.EventPageOutput({"results": items, "next_page_token": token}).data)
