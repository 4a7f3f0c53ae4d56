"""What messaging tells the flows (registered in FlowsConfig.ready)."""

from messaging.statuses import Status


def inbound_message_arrived(message_id: int) -> None:
    """Run in a Celery task: a flow may call an API for seconds; the inbound path must not
    wait for it. A message of a conversation the desk holds is the agents' (one indexed
    query here saves a task per message of every live chat; the task checks again)."""
    from contactcenter.desk.models import Handoff
    from contactcenter.desk.services import LIVE_TASK_STATES
    from contactcenter.flows.tasks import flow_inbound

    held = Handoff.objects.filter(
        conversation__messages__id=message_id, task__assignment_status__in=LIVE_TASK_STATES
    ).exists()
    if not held:
        flow_inbound.delay(message_id)


def message_status_changed(message_id: int, status: str) -> None:
    # Called for every status change, often inside the delivery pump: stay cheap, and leave
    # the (rare) failure to a task so the pump never runs a flow.
    if status in (Status.FAILED, Status.UNDELIVERED):
        from contactcenter.flows.tasks import flow_message_failed

        flow_message_failed.delay(message_id, status)
