"""Celery interfaces of the flow engine: they take ids and are safe to run twice."""

from celery import shared_task


@shared_task(ignore_result=True, acks_late=True)
def flow_inbound(message_id: int) -> str:
    from contactcenter.flows.services import flow_inbound_handle

    return flow_inbound_handle(message_id)


@shared_task(ignore_result=True, acks_late=True)
def flow_message_failed(message_id: int, status: str) -> None:
    """A send-and-wait's message failed: its execution takes deliveryFailure."""
    from contactcenter.flows.services import flow_status_handle

    flow_status_handle(message_id, status)


@shared_task(ignore_result=True)
def flows_tick() -> dict:
    from contactcenter.flows.services import flows_tick as tick

    return tick()
