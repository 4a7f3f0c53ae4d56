"""Reads for the flow engine: which flow answers a sender, which revision a contact runs,
the allow-list and the functions' settings."""

import json
import logging

from django.conf import settings

from contactcenter.flows.models import (
    Execution,
    ExecutionStatus,
    Flow,
    FlowAttachment,
    FlowFunctionConfig,
    FlowRevision,
    HttpAllowedHost,
)
from messaging import crypto
from messaging.caching import TtlCache
from messaging.models import Sender

log = logging.getLogger(__name__)

# The inbound path asks this for every message; attachments change rarely.
_attachments = TtlCache(seconds=5, max_size=10_000)
_revisions = TtlCache(seconds=3600, max_size=1_000)


def flow_for_sender(sender: Sender | None) -> Flow | None:
    """The flow that answers a new conversation on `sender`: its own, else its service's."""
    if sender is None:
        return None
    return _attachments.get(("sender", sender.pk, sender.service_id), lambda: _attached(sender))


def _attached(sender: Sender) -> Flow | None:
    attachment = FlowAttachment.objects.select_related("flow", "flow__account").filter(
        sender=sender
    ).first() or (
        sender.service_id
        and FlowAttachment.objects.select_related("flow", "flow__account")
        .filter(service_id=sender.service_id)
        .first()
    )
    return attachment.flow if attachment else None


def attachments_cache_clear() -> None:
    _attachments.clear()
    _revisions.clear()


def revision_for(flow: Flow, contact_address: str) -> tuple[FlowRevision | None, bool]:
    """(revision, runs_draft). Test addresses run the draft; others the latest published
    revision, or nothing when the flow was never published."""
    if contact_address in (flow.test_addresses or []):
        return None, True
    if not flow.published_revision:
        return None, False
    # Revisions never change: keyed by the flow's sid (unique, never reused) and number.
    revision = _revisions.get(
        (flow.sid, flow.published_revision),
        lambda: FlowRevision.objects.filter(flow=flow, revision=flow.published_revision).first(),
    )
    return revision, False


def active_executions(contact_address: str, business_address: str) -> list[Execution]:
    return list(
        Execution.objects.filter(
            status=ExecutionStatus.ACTIVE,
            contact_address=contact_address,
            business_address=business_address,
        ).order_by("-date_created")
    )


def allowed_hosts() -> list[str]:
    hosts = list(HttpAllowedHost.objects.values_list("host", flat=True))
    return hosts + list(getattr(settings, "FLOWS_HTTP_ALLOWED_HOSTS", []))


class FunctionUnavailable(Exception):
    """The function may not run: not enabled, or its secrets cannot be read."""


def function_environment(name: str) -> dict[str, str]:
    """The function's variables and secrets; FunctionUnavailable saying why it may not run."""
    config = FlowFunctionConfig.objects.filter(name=name, enabled=True).first()
    if config is None:
        raise FunctionUnavailable(
            f"The function {name!r} is not enabled in the admin (Flow functions)."
        )
    try:
        secrets = _decrypted(config)
    except (ValueError, TypeError, crypto.SecretUnreadable) as error:
        raise FunctionUnavailable(
            f"The secrets of the function {name!r} cannot be read (the encryption key "
            "changed?): set them again in the admin."
        ) from error
    return {**config.environment, **secrets}


def _decrypted(config: FlowFunctionConfig) -> dict[str, str]:
    if not config.secrets_encrypted:
        return {}
    secrets = json.loads(crypto.decrypt(config.secrets_encrypted))
    if not isinstance(secrets, dict):
        raise ValueError("secrets are not an object")
    return secrets


def function_secrets(config: FlowFunctionConfig) -> dict[str, str]:
    try:
        return _decrypted(config)
    except (ValueError, TypeError, crypto.SecretUnreadable):
        # A changed encryption key: the function runs without them (and says so when it
        # reads one); an admin sets them again.
        log.warning("flow function %s: its secrets cannot be read", config.name)
        return {}


def draft_is_published(flow: Flow) -> bool | None:
    """Whether the draft is what the latest revision publishes; None: never published."""
    latest = flow.revisions.filter(revision=flow.published_revision).first()
    return None if latest is None else latest.definition == flow.definition
