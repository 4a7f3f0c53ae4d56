"""The periodic safety net (Celery beat, every ROUTING_TICK_INTERVAL seconds): reservation
timeouts, workflow target timeouts, TTL expiry, and an assignment sweep for anything an
event-driven attempt missed (a skipped lock, a crash between commit and attempt)."""

from dataclasses import dataclass

from django.db.models import F
from django.utils import timezone

from routing.models import WAITING, Reservation, ReservationStatus, Task, TaskStatus, WorkerChannel
from routing.services.assignment import task_assign, worker_assign
from routing.services.reservations import reservation_timeout
from routing.services.tasks import task_expire, task_step_timeout

BATCH = 500
KNOWN_WORKER_BATCH = 100


@dataclass
class TickReport:
    reservations_timed_out: int = 0
    targets_timed_out: int = 0
    tasks_expired: int = 0
    reservations_made: int = 0


def routing_tick() -> TickReport:
    report = TickReport()
    now = timezone.now()
    for reservation_id in Reservation.objects.filter(
        status=ReservationStatus.PENDING, timeout_at__lte=now
    ).values_list("id", flat=True)[:BATCH]:
        report.reservations_timed_out += reservation_timeout(reservation_id)
    for task_id in Task.objects.filter(
        assignment_status__in=WAITING, expires_at__lte=now
    ).values_list("id", flat=True)[:BATCH]:
        report.tasks_expired += task_expire(task_id)
    for task_id in Task.objects.filter(
        assignment_status__in=WAITING, step_deadline__lte=now
    ).values_list("id", flat=True)[:BATCH]:
        report.targets_timed_out += task_step_timeout(task_id)
    report.reservations_made += routing_sweep()
    return report


def routing_sweep() -> int:
    """Offer waiting tasks to available workers with room, whatever was missed."""
    made = 0
    if not Task.objects.filter(assignment_status=TaskStatus.PENDING).exists():
        return 0
    workers = (
        WorkerChannel.objects.filter(
            available=True, assigned_tasks__lt=F("capacity"), worker__available=True
        )
        .order_by("worker__idle_since")
        .values_list("worker_id", flat=True)[:BATCH]
    )
    worker_ids = list(dict.fromkeys(workers))
    for worker_id in worker_ids:
        made += worker_assign(worker_id)
    if worker_ids and not made:
        # Tasks routed to one known worker need not be in that worker's queues.
        for task_id in (
            Task.objects.filter(assignment_status=TaskStatus.PENDING)
            .order_by("date_created")
            .values_list("id", flat=True)[:KNOWN_WORKER_BATCH]
        ):
            made += task_assign(task_id)
    return made
