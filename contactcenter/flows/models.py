"""Bot flows (Studio-style): flows and their revisions, where they answer, executions and
their steps, the functions admins may enable and the hosts HTTP widgets may call."""

import zoneinfo

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from messaging.addresses import AddressError, parse_address
from messaging.models import Account, Conversation, Message, MessagingService, Sender
from messaging.sids import sid_default

EXECUTION_LIFETIME_DAYS = 30


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise ValidationError(_("%(zone)s is not a time zone.") % {"zone": value}) from error


def default_definition() -> dict:
    return {
        "description": "",
        "initial_state": "Trigger",
        "flags": {"allow_concurrent_calls": True},
        "states": [
            {
                "name": "Trigger",
                "type": "trigger",
                "properties": {"offset": {"x": 0, "y": 0}},
                "transitions": [
                    {"event": "incomingMessage"},
                    {"event": "incomingRequest"},
                    {"event": "incomingParent"},
                ],
            }
        ],
    }


class Flow(models.Model):
    """A bot flow. `definition` is the draft; publishing copies it into a FlowRevision.
    Test addresses run the draft, everyone else the latest published revision."""

    sid = models.CharField(max_length=34, unique=True, default=sid_default("FW"), editable=False)
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="flows", verbose_name=_("account")
    )
    friendly_name = models.CharField(_("name"), max_length=64)
    description = models.CharField(_("description"), max_length=255, blank=True)
    definition = models.JSONField(
        _("draft definition"),
        default=default_definition,
        help_text=_("Studio's flow JSON. Edits stay a draft until the flow is published."),
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text=_("Split conditions on times and dates are evaluated in this time zone."),
    )
    test_addresses = models.JSONField(
        _("test addresses"),
        default=list,
        blank=True,
        help_text=_(
            "Customer addresses (+14155550123, whatsapp:+…, messenger:…) that run the draft "
            "instead of the published revision."
        ),
    )
    published_revision = models.PositiveIntegerField(_("published revision"), default=0)
    date_created = models.DateTimeField(auto_now_add=True)
    date_updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("flow")
        verbose_name_plural = _("flows")
        constraints = [
            models.UniqueConstraint(fields=["account", "friendly_name"], name="flow_unique_name")
        ]

    def __str__(self) -> str:
        return self.friendly_name

    def clean(self) -> None:
        if not isinstance(self.test_addresses, list) or not all(
            isinstance(a, str) for a in self.test_addresses
        ):
            raise ValidationError({"test_addresses": _("A list of addresses (strings).")})
        # Stored canonical, as inbound messages carry them (+14155550123, whatsapp:+…).
        normalized = []
        for raw in self.test_addresses:
            try:
                normalized.append(parse_address(raw).value)
            except AddressError as error:
                raise ValidationError({"test_addresses": str(error)}) from error
        self.test_addresses = normalized


class FlowRevision(models.Model):
    """A published, immutable copy of a flow's definition."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="revisions")
    revision = models.PositiveIntegerField(_("revision"))
    definition = models.JSONField(_("definition"))
    published_by = models.CharField(_("published by"), max_length=150, blank=True)
    date_created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("flow revision")
        verbose_name_plural = _("flow revisions")
        ordering = ["flow", "-revision"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "revision"], name="flow_revision_unique")
        ]

    def __str__(self) -> str:
        return f"{self.flow} r{self.revision}"


class FlowAttachment(models.Model):
    """Which flow answers a new inbound conversation on a sender, or on every sender of a
    messaging service (a sender's own attachment wins over its service's)."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="attachments")
    sender = models.OneToOneField(
        Sender,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="flow_attachment",
        verbose_name=_("sender"),
    )
    service = models.OneToOneField(
        MessagingService,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="flow_attachment",
        verbose_name=_("messaging service"),
    )

    class Meta:
        verbose_name = _("flow attachment")
        verbose_name_plural = _("flow attachments")
        constraints = [
            models.CheckConstraint(
                condition=Q(sender__isnull=False, service__isnull=True)
                | Q(sender__isnull=True, service__isnull=False),
                name="flow_attachment_sender_or_service",
            )
        ]

    def __str__(self) -> str:
        return f"{self.flow} ← {self.sender or self.service}"

    def clean(self) -> None:
        if (self.sender_id is None) == (self.service_id is None):
            raise ValidationError(_("Attach the flow to a sender or to a messaging service."))
        if self.flow_id and self.flow.account_id != (self.sender or self.service).account_id:
            raise ValidationError(_("The flow and the sender belong to different accounts."))


class ExecutionStatus(models.TextChoices):
    ACTIVE = "active", _("active")
    ENDED = "ended", _("ended")
    FAILED = "failed", _("failed")


class Waiting(models.TextChoices):
    NOTHING = "", _("running")
    REPLY = "reply", _("a reply")
    IO = "io", _("an HTTP request or function")
    SUBFLOW = "subflow", _("a subflow")


class Execution(models.Model):
    """One run of a flow for one (contact address, business address) pair."""

    sid = models.CharField(max_length=34, unique=True, default=sid_default("FN"), editable=False)
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="executions")
    revision = models.ForeignKey(
        FlowRevision, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # Set when a test address runs the draft: the draft as it was when the execution began.
    draft_definition = models.JSONField(null=True, blank=True)
    contact_address = models.CharField(_("contact address"), max_length=64)
    business_address = models.CharField(_("business address"), max_length=64)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    trigger = models.CharField(_("trigger"), max_length=20)
    status = models.CharField(
        _("status"), max_length=8, choices=ExecutionStatus.choices, default=ExecutionStatus.ACTIVE
    )
    ended_reason = models.CharField(_("why it ended"), max_length=255, blank=True)
    current_state = models.CharField(_("current widget"), max_length=64, blank=True)
    waiting = models.CharField(
        _("waiting for"), max_length=8, choices=Waiting.choices, default="", blank=True
    )
    wait_until = models.DateTimeField(null=True, blank=True)
    wait_message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    context = models.JSONField(default=dict)
    step_count = models.PositiveIntegerField(default=0)
    repeat_count = models.PositiveSmallIntegerField(default=0)
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    expires_at = models.DateTimeField()
    date_created = models.DateTimeField(auto_now_add=True, db_index=True)
    date_updated = models.DateTimeField(auto_now=True)
    date_ended = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("execution")
        verbose_name_plural = _("executions")
        constraints = [
            models.UniqueConstraint(
                fields=["flow", "contact_address", "business_address"],
                condition=Q(status="active"),
                name="execution_one_active_per_pair",
            )
        ]
        indexes = [
            models.Index(
                fields=["contact_address", "business_address"],
                condition=Q(status="active"),
                name="execution_active_pair",
            ),
            models.Index(
                fields=["wait_until"], condition=Q(status="active"), name="execution_wait_due"
            ),
            models.Index(
                fields=["expires_at"], condition=Q(status="active"), name="execution_expiry"
            ),
        ]

    def __str__(self) -> str:
        return self.sid

    def save(self, *args, **kwargs):
        if self.expires_at is None:
            self.expires_at = timezone.now() + timezone.timedelta(days=EXECUTION_LIFETIME_DAYS)
        super().save(*args, **kwargs)


class Step(models.Model):
    """One widget run, or one inbound message the execution did not take."""

    sid = models.CharField(max_length=34, unique=True, default=sid_default("FT"), editable=False)
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveIntegerField()
    name = models.CharField(_("widget"), max_length=64)
    widget_type = models.CharField(_("type"), max_length=32)
    event = models.CharField(_("transition"), max_length=32, blank=True)
    next_state = models.CharField(_("next widget"), max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    # The inbound message this step consumed: a redelivered message finds its step and stops.
    inbound_message = models.OneToOneField(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="flow_step"
    )
    duration_ms = models.FloatField(default=0)
    date_created = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("step")
        verbose_name_plural = _("steps")
        ordering = ["execution", "index"]

    def __str__(self) -> str:
        return f"{self.name} → {self.event or '·'}"


class FlowFunctionConfig(models.Model):
    """An admin's switch and settings for a function registered in code."""

    name = models.CharField(_("function"), max_length=64, unique=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    environment = models.JSONField(
        _("environment variables"),
        default=dict,
        blank=True,
        help_text=_('Names and values the function reads, e.g. {"API_BASE_URL": "https://…"}.'),
    )
    secrets_encrypted = models.TextField(blank=True, editable=False)
    date_updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("flow function")
        verbose_name_plural = _("flow functions")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not isinstance(self.environment, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.environment.items()
        ):
            raise ValidationError({"environment": _("An object of names to text values.")})


class HttpAllowedHost(models.Model):
    """A host the make-http-request widget may call (nothing else is reachable)."""

    host = models.CharField(
        _("host"),
        max_length=255,
        unique=True,
        help_text=_("api.example.com, api.example.com:8443 or *.example.com for subdomains."),
    )
    note = models.CharField(_("note"), max_length=255, blank=True)
    date_created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("allowed HTTP host")
        verbose_name_plural = _("allowed HTTP hosts")

    def __str__(self) -> str:
        return self.host

    def clean(self) -> None:
        self.host = self.host.strip().lower()
        if not self.host or "/" in self.host or " " in self.host or "@" in self.host:
            raise ValidationError({"host": _("A host name, optionally with :port, no path.")})


class DemoAppointment(models.Model):
    """The demo's appointments, behind a small HTTP API (flows/demo_api.py) that the demo
    flow's registered function calls to cancel one by the patient's document number."""

    class State(models.TextChoices):
        BOOKED = "booked", _("booked")
        CANCELED = "canceled", _("canceled")

    document = models.CharField(_("document number"), max_length=32, unique=True)
    patient = models.CharField(_("patient"), max_length=128)
    starts_at = models.DateTimeField(_("starts at"))
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default="booked")
    date_updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("demo appointment")
        verbose_name_plural = _("demo appointments")

    def __str__(self) -> str:
        return f"{self.document} {self.patient}"
