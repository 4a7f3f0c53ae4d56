"""What messaging tells the flows (registered in FlowsConfig.ready)."""

from messaging.statuses import Status


def inbound_message_arrived(message_id: int) -> None:
    """Run in a Celery task: a flow may call an API for seconds; the inbound path must not
    wait for it."""
    from contactcenter.flows.tasks import flow_inbound

    flow_inbound.delay(message_id)


def message_status_changed(message_id: int, status: str) -> None:
    # Almost every change is not a failure: stay cheap, touch nothing.
    if status in (Status.FAILED, Status.UNDELIVERED):
        from contactcenter.flows.services import flow_status_handle

        flow_status_handle(message_id, status)
