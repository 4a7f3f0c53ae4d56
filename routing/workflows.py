"""Workflow configuration (REFERENCE.md 7): parsed and checked once, then cached.

```json
{"task_routing": {
  "filters": [{"filter_friendly_name": "Spanish WhatsApp",
               "expression": "channel == 'whatsapp' AND language == 'es'",
               "targets": [{"queue": "WQ...", "priority": 10, "timeout": 60,
                            "expression": "task.language IN worker.languages",
                            "order_by": "worker.level DESC",
                            "skip_if": "workers.available == 0"}]}],
  "default_filter": {"queue": "WQ..."}}}
```

Every error names where it is, e.g. `task_routing.filters[0].targets[1].expression: expected a
value at position 12, found 'AND'`.
"""

from dataclasses import dataclass
from typing import Any

from routing.expressions import (
    Expression,
    ExpressionError,
    OrderKey,
    compile_expression,
    parse_order_by,
    validate_expression,
)

TARGET_ROOTS = frozenset({"task", "worker"})
SKIP_IF_ROOTS = frozenset({"workers", "task"})
FILTER_KEYS = {"filter_friendly_name", "expression", "targets"}
TARGET_KEYS = {
    "queue",
    "priority",
    "timeout",
    "expression",
    "order_by",
    "skip_if",
    "known_worker_sid",
    "known_worker_friendly_name",
}


class WorkflowError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


@dataclass(frozen=True)
class Target:
    queue_id: int
    queue_sid: str
    priority: int | None = None
    timeout: int | None = None
    expression: Expression | None = None
    order_by: tuple[OrderKey, ...] = ()
    skip_if: Expression | None = None
    # The task attribute that names the one worker to offer the task to.
    known_worker_attribute: str | None = None
    known_worker_by: str = "sid"  # or "friendly_name"


@dataclass(frozen=True)
class Filter:
    name: str
    expression: Expression | None  # None: the default filter, which matches everything
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Routing:
    filters: tuple[Filter, ...]
    default_filter: Filter | None

    def filter_at(self, index: int) -> Filter | None:
        if index == -1:
            return self.default_filter
        return self.filters[index] if 0 <= index < len(self.filters) else None

    def first_match(self, attributes: dict, *, after: int = -1) -> int | None:
        """The index of the first filter after `after` whose expression matches, else the
        default filter (-1) when starting from the top, else None."""
        for index in range(after + 1, len(self.filters)):
            expression = self.filters[index].expression
            if expression is not None and expression.evaluate(attributes):
                return index
        if after == -1 and self.default_filter is not None:
            return -1
        return None


def parse_workflow(configuration: Any, *, workspace_id: int) -> Routing:
    """Check a workflow configuration and resolve its queue sids; raise WorkflowError."""
    from routing.models import TaskQueue

    if not isinstance(configuration, dict) or not isinstance(
        configuration.get("task_routing"), dict
    ):
        raise WorkflowError("", 'The configuration must be {"task_routing": {...}}.')
    routing = configuration["task_routing"]
    unknown = set(routing) - {"filters", "default_filter"}
    if unknown:
        raise WorkflowError("task_routing", f"unknown key {sorted(unknown)[0]!r}")
    filters_raw = routing.get("filters", [])
    if not isinstance(filters_raw, list):
        raise WorkflowError("task_routing.filters", "must be a list")
    default_raw = routing.get("default_filter")
    if not filters_raw and default_raw is None:
        raise WorkflowError("task_routing", "needs at least one filter or a default_filter")

    queue_sids = _queue_sids(filters_raw, default_raw)
    queues = dict(
        TaskQueue.objects.filter(workspace_id=workspace_id, sid__in=queue_sids).values_list(
            "sid", "id"
        )
    )
    filters = tuple(
        _filter(raw, f"task_routing.filters[{i}]", queues) for i, raw in enumerate(filters_raw)
    )
    default_filter = None
    if default_raw is not None:
        path = "task_routing.default_filter"
        if not isinstance(default_raw, dict):
            raise WorkflowError(path, 'must be an object like {"queue": "WQ..."}')
        default_filter = Filter("default", None, (_target(default_raw, path, queues),))
    return Routing(filters, default_filter)


def _queue_sids(filters_raw: list, default_raw: Any) -> set[str]:
    sids = set()
    for raw in filters_raw:
        if isinstance(raw, dict) and isinstance(raw.get("targets"), list):
            sids.update(t.get("queue") for t in raw["targets"] if isinstance(t, dict))
    if isinstance(default_raw, dict):
        sids.add(default_raw.get("queue"))
    return {sid for sid in sids if isinstance(sid, str)}


def _filter(raw: Any, path: str, queues: dict[str, int]) -> Filter:
    if not isinstance(raw, dict):
        raise WorkflowError(path, "must be an object")
    unknown = set(raw) - FILTER_KEYS
    if unknown:
        raise WorkflowError(path, f"unknown key {sorted(unknown)[0]!r}")
    name = raw.get("filter_friendly_name", "")
    if not isinstance(name, str):
        raise WorkflowError(f"{path}.filter_friendly_name", "must be a string")
    if "expression" not in raw:
        raise WorkflowError(path, "needs an expression")
    expression = _expression(raw["expression"], f"{path}.expression")
    targets_raw = raw.get("targets")
    if not isinstance(targets_raw, list) or not targets_raw:
        raise WorkflowError(f"{path}.targets", "must be a non-empty list")
    targets = tuple(_target(t, f"{path}.targets[{i}]", queues) for i, t in enumerate(targets_raw))
    return Filter(name, expression, targets)


def _target(raw: Any, path: str, queues: dict[str, int]) -> Target:
    if not isinstance(raw, dict):
        raise WorkflowError(path, "must be an object")
    unknown = set(raw) - TARGET_KEYS
    if unknown:
        raise WorkflowError(path, f"unknown key {sorted(unknown)[0]!r}")
    queue_sid = raw.get("queue")
    if not isinstance(queue_sid, str) or not queue_sid:
        raise WorkflowError(f"{path}.queue", "is required (a task queue sid, WQ...)")
    if queue_sid not in queues:
        raise WorkflowError(f"{path}.queue", f"no task queue {queue_sid!r} in this workspace")
    known = [k for k in ("known_worker_sid", "known_worker_friendly_name") if k in raw]
    if len(known) > 1:
        raise WorkflowError(path, "use known_worker_sid or known_worker_friendly_name, not both")
    known_attribute = None
    if known:
        value = raw[known[0]]
        if not isinstance(value, str) or not value.strip():
            raise WorkflowError(f"{path}.{known[0]}", "must name a task attribute")
        known_attribute = value.strip().removeprefix("task.")
    return Target(
        queue_id=queues[queue_sid],
        queue_sid=queue_sid,
        priority=_non_negative_int(raw, "priority", path),
        timeout=_non_negative_int(raw, "timeout", path, minimum=1),
        expression=_expression(raw.get("expression"), f"{path}.expression", TARGET_ROOTS),
        order_by=_order_by(raw.get("order_by"), f"{path}.order_by"),
        skip_if=_expression(raw.get("skip_if"), f"{path}.skip_if", SKIP_IF_ROOTS),
        known_worker_attribute=known_attribute,
        known_worker_by="sid" if known == ["known_worker_sid"] else "friendly_name",
    )


def _non_negative_int(raw: dict, key: str, path: str, minimum: int = 0) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise WorkflowError(f"{path}.{key}", f"must be an integer ≥ {minimum}")
    return value


def _expression(text: Any, path: str, roots: frozenset[str] | None = None) -> Expression | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise WorkflowError(path, "must be a string")
    try:
        if roots is None:
            return compile_expression(text)
        return validate_expression(text, allowed_roots=roots)
    except ExpressionError as error:
        raise WorkflowError(path, str(error)) from error


def _order_by(text: Any, path: str) -> tuple[OrderKey, ...]:
    if text is None:
        return ()
    if not isinstance(text, str):
        raise WorkflowError(path, "must be a string like 'worker.level DESC'")
    try:
        order = parse_order_by(text)
    except ExpressionError as error:
        raise WorkflowError(path, str(error)) from error
    for key in order:
        if not key.key.startswith("worker."):
            raise WorkflowError(path, f"{key.key!r}: order by worker.<attribute> only")
    return order


# Parsed configurations by (workflow id, last change): a worker process parses each once.
_cache: dict[tuple[int, float], Routing] = {}


def workflow_routing(workflow) -> Routing:
    key = (workflow.pk, workflow.date_updated.timestamp())
    routing = _cache.get(key)
    if routing is None:
        if len(_cache) > 1024:
            _cache.clear()
        routing = _cache[key] = parse_workflow(
            workflow.configuration, workspace_id=workflow.workspace_id
        )
    return routing
