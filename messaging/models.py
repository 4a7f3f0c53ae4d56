"""Messaging data: accounts and keys, providers, senders, services, contacts, conversations,
messages with their status history and media, the opt-out block list and status callbacks.

Validation of admin input lives in `clean()` (field rules) and in `validators.py`; domain
writes go through `services.py`.
"""

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from messaging import validators
from messaging.sids import sid_default
from messaging.statuses import Status

DEFAULT_VALIDITY_PERIOD = 36_000
API_VERSION = "2010-04-01"


class Channel(models.TextChoices):
    SMS = "sms", "SMS / MMS"
    WHATSAPP = "whatsapp", "WhatsApp"
    MESSENGER = "messenger", "Messenger"


class SenderKind(models.TextChoices):
    LONG_CODE = "long_code", _("Long code")
    TOLL_FREE = "toll_free", _("Toll-free")
    SHORT_CODE = "short_code", _("Short code")
    ALPHANUMERIC = "alphanumeric", _("Alphanumeric sender ID")
    WHATSAPP = "whatsapp", _("WhatsApp sender")
    MESSENGER_PAGE = "messenger_page", _("Messenger page")


KIND_CHANNEL = {
    SenderKind.LONG_CODE: Channel.SMS,
    SenderKind.TOLL_FREE: Channel.SMS,
    SenderKind.SHORT_CODE: Channel.SMS,
    SenderKind.ALPHANUMERIC: Channel.SMS,
    SenderKind.WHATSAPP: Channel.WHATSAPP,
    SenderKind.MESSENGER_PAGE: Channel.MESSENGER,
}

# Segments per second (REFERENCE.md 1). US/CA long codes are 1; elsewhere 10 (approx.).
DEFAULT_THROUGHPUT = {
    SenderKind.LONG_CODE: 1,
    SenderKind.TOLL_FREE: 3,
    SenderKind.SHORT_CODE: 100,
    SenderKind.ALPHANUMERIC: 10,
    SenderKind.WHATSAPP: 80,
    SenderKind.MESSENGER_PAGE: 80,
}


class HttpMethod(models.TextChoices):
    GET = "GET", "GET"
    POST = "POST", "POST"


class Direction(models.TextChoices):
    INBOUND = "inbound", "inbound"
    OUTBOUND_API = "outbound-api", "outbound-api"
    OUTBOUND_REPLY = "outbound-reply", "outbound-reply"
    OUTBOUND_CALL = "outbound-call", "outbound-call"


class Account(models.Model):
    """The Twilio-compatible account (`AC...`). One per deployment is enough."""

    sid = models.CharField(max_length=34, unique=True, default=sid_default("AC"), editable=False)
    friendly_name = models.CharField(max_length=64)
    auth_token_encrypted = models.TextField(editable=False)
    active = models.BooleanField(default=True)
    date_created = models.DateTimeField(auto_now_add=True)
    date_updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")

    def __str__(self) -> str:
        return f"{self.friendly_name} ({self.sid})"

    @property
    def auth_token(self) -> str:
        from messaging.crypto import decrypt

        return decrypt(self.auth_token_encrypted)


class ApiKey(models.Model):
    """`SK...` sid + secret; the secret is shown once and only its hash is kept."""

    sid = models.CharField(max_length=34, unique=True, default=sid_default("SK"), editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    friendly_name = models.CharField(max_length=64)
    secret_hash = models.CharField(max_length=64, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    date_created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.friendly_name} ({self.sid})"


class ProviderKind(models.TextChoices):
    SIMULATOR = "simulator", _("Simulator (built in)")
    TWILIO = "twilio", "Twilio"
    WHATSAPP_CLOUD = "whatsapp_cloud", "WhatsApp Cloud API"
    MESSENGER = "messenger", "Messenger Platform"


class ProviderAccount(models.Model):
    """Credentials for one provider account. Secrets are either encrypted in the database or
    read from environment variables named by `credentials_env_prefix` (nothing stored)."""

    sid = models.CharField(max_length=34, unique=True, default=sid_default("PA"), editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="providers")
    name = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=20, choices=ProviderKind.choices)
    credentials_encrypted = models.TextField(blank=True, default="", editable=False)
    credentials_env_prefix = models.CharField(
        max_length=40,
        blank=True,
        validators=[validators.validate_env_prefix],
        help_text=_("Read credentials from environment variables PREFIX_<NAME> instead."),
    )
    settings = models.JSONField(
        default=dict,
        blank=True,
        help_text=_("Non-secret options, e.g. the simulator's receipt delay and failure rules."),
    )
    active = models.BooleanField(default=True)
    date_created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("provider account")
        verbose_name_plural = _("provider accounts")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class MessagingService(models.Model):
    sid = models.CharField(max_length=34, unique=True, default=sid_default("MG"), editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="services")
    friendly_name = models.CharField(max_length=64)
    usecase = models.CharField(
        max_length=20,
        default="undeclared",
        choices=[
            (u, u)
            for u in (
                "notifications",
                "marketing",
                "verification",
                "discussion",
                "poll",
                "undeclared",
                "mixed",
            )
        ],
    )
    sticky_sender = models.BooleanField(default=True)
    smart_encoding = models.BooleanField(default=True)
    area_code_geomatch = models.BooleanField(default=True)
    country_geomatch = models.BooleanField(default=True)
    fallback_to_long_code = models.BooleanField(
        default=True, help_text=_("Short-code reroute: resend from a long code when needed.")
    )
    validity_period = models.PositiveIntegerField(
        default=DEFAULT_VALIDITY_PERIOD,
        validators=[MinValueValidator(1), MaxValueValidator(DEFAULT_VALIDITY_PERIOD)],
        help_text=_("Seconds a message may wait in the queue before it fails with 30036."),
    )
    inbound_request_url = models.URLField(
        blank=True, validators=[validators.validate_webhook_url], max_length=500
    )
    inbound_method = models.CharField(max_length=4, choices=HttpMethod.choices, default="POST")
    fallback_url = models.URLField(
        blank=True, validators=[validators.validate_webhook_url], max_length=500
    )
    fallback_method = models.CharField(max_length=4, choices=HttpMethod.choices, default="POST")
    status_callback = models.URLField(
        blank=True, validators=[validators.validate_webhook_url], max_length=500
    )
    use_inbound_webhook_on_number = models.BooleanField(default=False)
    date_created = models.DateTimeField(auto_now_add=True)
    date_updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("messaging service")
        verbose_name_plural = _("messaging services")

    def __str__(self) -> str:
        return f"{self.friendly_name} ({self.sid})"


class Sender(models.Model):
    """A business address: phone number, short code, alphanumeric id, WhatsApp number or
    Messenger page. A sender belongs to at most one messaging service, as in Twilio."""

    sid = models.CharField(max_length=34, unique=True, default=sid_default("PN"), editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="senders")
    provider = models.ForeignKey(ProviderAccount, on_delete=models.PROTECT, related_name="senders")
    service = models.ForeignKey(
        MessagingService,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="senders",
        help_text=_("The service whose pool holds this sender."),
    )
    channel = models.CharField(max_length=12, choices=Channel.choices, editable=False)
    kind = models.CharField(max_length=20, choices=SenderKind.choices)
    address = models.CharField(
        max_length=64,
        help_text=_(
            "E.164 number (+14155550100), short code digits, alphanumeric id (up to 11 "
            "characters), whatsapp:+E164 or messenger:<page id>."
        ),
    )
    friendly_name = models.CharField(max_length=64, blank=True)
    provider_ref = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,
        help_text=_(
            "The provider's own id for this sender, when it has one: the WhatsApp Cloud API "
            "phone number id."
        ),
    )
    country = models.CharField(
        max_length=2,
        blank=True,
        help_text=_("ISO country. For an alphanumeric id: the country it is registered for."),
    )
    sms_capable = models.BooleanField(default=True)
    mms_capable = models.BooleanField(default=False)
    throughput = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0.01)],
        help_text=_("Segments per second. Empty: the default for the kind."),
    )
    inbound_request_url = models.URLField(
        blank=True, validators=[validators.validate_webhook_url], max_length=500
    )
    inbound_method = models.CharField(max_length=4, choices=HttpMethod.choices, default="POST")
    fallback_url = models.URLField(
        blank=True, validators=[validators.validate_webhook_url], max_length=500
    )
    status_callback_url = models.URLField(
        blank=True, validators=[validators.validate_webhook_url], max_length=500
    )
    active = models.BooleanField(default=True)
    date_created = models.DateTimeField(auto_now_add=True)
    date_updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("sender")
        verbose_name_plural = _("senders")
        constraints = [
            models.UniqueConstraint(fields=["channel", "address"], name="sender_unique_address")
        ]

    def __str__(self) -> str:
        label = self.friendly_name or self.get_kind_display()
        return f"{self.address} ({label})"

    def save(self, *args, **kwargs):
        # Channel follows kind; kept as a column so queries and constraints can use it.
        self.channel = KIND_CHANNEL[SenderKind(self.kind)]
        super().save(*args, **kwargs)

    @property
    def segments_per_second(self) -> float:
        if self.throughput is not None:
            return float(self.throughput)
        return float(DEFAULT_THROUGHPUT[SenderKind(self.kind)])

    def clean(self) -> None:
        try:
            normalized = validators.normalize_sender_address(self.kind, self.address)
        except ValidationError as exc:
            raise ValidationError({"address": exc.messages}) from exc
        self.address = normalized.address
        self.channel = KIND_CHANNEL[SenderKind(self.kind)]
        if normalized.country and not self.country:
            self.country = normalized.country
        if self.country:
            self.country = self.country.upper()
            validators.validate_country(self.country)
        if self.kind == SenderKind.ALPHANUMERIC and self.mms_capable:
            raise ValidationError({"mms_capable": _("Alphanumeric sender ids cannot send MMS.")})
        if self.channel != Channel.SMS:
            self.sms_capable = False
            self.mms_capable = False


class StickySender(models.Model):
    """A service's `To → From` memory, so a customer keeps seeing the same number."""

    service = models.ForeignKey(MessagingService, on_delete=models.CASCADE, related_name="sticky")
    contact_address = models.CharField(max_length=64)
    sender = models.ForeignKey(Sender, on_delete=models.CASCADE, related_name="+")
    last_used_at = models.DateTimeField()

    class Meta:
        verbose_name = _("sticky sender mapping")
        verbose_name_plural = _("sticky sender mappings")
        constraints = [
            models.UniqueConstraint(
                fields=["service", "contact_address"], name="sticky_unique_contact"
            )
        ]

    def __str__(self) -> str:
        return f"{self.contact_address} → {self.sender_id}"


class Contact(models.Model):
    """A customer address on one channel (`+E164`, `whatsapp:+E164`, `messenger:PSID`)."""

    sid = models.CharField(max_length=34, unique=True, default=sid_default("CO"), editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    channel = models.CharField(max_length=12, choices=Channel.choices)
    address = models.CharField(max_length=64)
    name = models.CharField(max_length=128, blank=True)
    country = models.CharField(max_length=2, blank=True)
    area_code = models.CharField(max_length=3, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    date_created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        constraints = [
            models.UniqueConstraint(fields=["account", "address"], name="contact_unique_address")
        ]

    def __str__(self) -> str:
        return self.name or self.address


class Conversation(models.Model):
    """The thread between one contact and one business address; at most one open at a time."""

    class State(models.TextChoices):
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    sid = models.CharField(max_length=34, unique=True, default=sid_default("CH"), editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="conversations")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="conversations")
    channel = models.CharField(max_length=12, choices=Channel.choices)
    business_address = models.CharField(max_length=64)
    service = models.ForeignKey(
        MessagingService, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    date_created = models.DateTimeField(auto_now_add=True)
    date_closed = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "business_address"],
                condition=Q(state="open"),
                name="conversation_one_open_per_pair",
            )
        ]

    def __str__(self) -> str:
        return f"{self.contact} ↔ {self.business_address}"

    @property
    def window_ends_at(self):
        """When free-form WhatsApp/Messenger messages stop being allowed (None: never opened,
        or SMS, which has no window). Messenger's HUMAN_AGENT tag extends it to 7 days."""
        from messaging.windows import window_end

        return window_end(self.channel, self.last_inbound_at)

    @property
    def human_agent_window_ends_at(self):
        from messaging.windows import HUMAN_AGENT, window_end

        return window_end(self.channel, self.last_inbound_at, tag=HUMAN_AGENT)


class Message(models.Model):
    """The Twilio Message resource plus what we need to send it and to explain it later."""

    sid = models.CharField(max_length=34, unique=True, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="messages")
    service = models.ForeignKey(
        MessagingService, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    sender = models.ForeignKey(
        Sender, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    conversation = models.ForeignKey(
        Conversation, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    channel = models.CharField(max_length=12, choices=Channel.choices)
    direction = models.CharField(max_length=16, choices=Direction.choices)
    from_address = models.CharField(max_length=64, blank=True)
    to_address = models.CharField(max_length=64)
    body = models.TextField(blank=True)
    redacted = models.BooleanField(default=False)
    status = models.CharField(
        max_length=12, choices=[(s.value, s.value) for s in Status], db_index=True
    )
    encoding = models.CharField(max_length=8, blank=True)
    num_segments = models.PositiveIntegerField(default=0)
    num_media = models.PositiveIntegerField(default=0)
    error_code = models.PositiveIntegerField(null=True, blank=True)
    error_message = models.CharField(max_length=255, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=5, null=True, blank=True)
    price_unit = models.CharField(max_length=3, default="USD")
    api_version = models.CharField(max_length=10, default=API_VERSION)
    status_callback = models.URLField(blank=True, max_length=500)
    validity_period = models.PositiveIntegerField(default=DEFAULT_VALIDITY_PERIOD)
    smart_encoded = models.BooleanField(default=False)
    schedule_type = models.CharField(max_length=8, blank=True)
    send_at = models.DateTimeField(null=True, blank=True, db_index=True)
    content_sid = models.CharField(max_length=34, blank=True)
    content_variables = models.JSONField(null=True, blank=True)
    # The template translation chosen when the message was created (e.g. es_MX).
    content_language = models.CharField(max_length=15, blank=True)
    sender_rule = models.CharField(
        max_length=24, blank=True, help_text=_("Which sender-choice rule picked From.")
    )
    provider_message_id = models.CharField(max_length=128, blank=True, db_index=True)
    tags = models.JSONField(default=dict, blank=True, help_text=_("Our own metadata."))
    # Delivery engine: when an undispatched message fails with 30036, how many provider
    # attempts it has had, the earliest time of its next attempt (back-off) and how long
    # the worker that claimed it ("sending") may hold it before the sweeper takes it back.
    expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # Inbound: when the message was forwarded to the integrator's webhook, and how it went.
    forwarded_at = models.DateTimeField(null=True, blank=True)
    forward_result = models.CharField(max_length=255, blank=True)
    # Advanced opt-out (services/keywords.py): the keyword an inbound message was (Twilio's
    # OptOutType), and on an outbound message that it answers one, which is the only kind
    # of message that may still reach a recipient who just opted out (the STOP confirmation).
    opt_out_type = models.CharField(
        _("opt-out type"),
        max_length=5,
        blank=True,
        choices=[(t, t) for t in ("STOP", "START", "HELP")],
    )
    keyword_reply = models.BooleanField(
        _("keyword reply"),
        default=False,
        editable=False,
        help_text=_("The automatic answer to STOP, START or HELP; sent even to a blocked address."),
    )
    date_created = models.DateTimeField(auto_now_add=True, db_index=True)
    date_updated = models.DateTimeField(auto_now=True)
    date_sent = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["-date_created", "-id"]
        indexes = [
            models.Index(fields=["account", "-date_created", "-id"], name="message_account_recent"),
            models.Index(fields=["to_address", "-date_created"], name="message_to_recent"),
            models.Index(fields=["from_address", "-date_created"], name="message_from_recent"),
            # Each sender's queue in FIFO order; only queued rows, so it stays small.
            models.Index(
                fields=["sender", "id"],
                name="message_sender_queue",
                condition=models.Q(status="queued"),
            ),
            models.Index(
                fields=["expires_at"],
                name="message_queued_expiry",
                condition=models.Q(status__in=["queued", "accepted"]),
            ),
            models.Index(
                fields=["lease_until"],
                name="message_sending_lease",
                condition=models.Q(status="sending"),
            ),
        ]
        constraints = [
            # A provider retrying a webhook must not store the message twice: the database
            # says so, whichever web process gets each retry.
            models.UniqueConstraint(
                fields=["sender", "provider_message_id"],
                condition=Q(direction="inbound") & ~Q(provider_message_id=""),
                name="message_unique_inbound_provider_id",
            )
        ]

    def __str__(self) -> str:
        return self.sid


class MessageStatusChange(models.Model):
    """Every status a message has had, with when and why."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="history")
    status = models.CharField(max_length=12)
    error_code = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(max_length=16, help_text=_("api, system, provider, simulator"))
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("status change")
        verbose_name_plural = _("status changes")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.status} at {self.at:%Y-%m-%d %H:%M:%S}"


class Media(models.Model):
    """A media item of a message. Inbound items are downloaded into `file` (served only to
    signed-in staff); `url` is where the provider offered it."""

    class State(models.TextChoices):
        REMOTE = "remote", _("Remote (not downloaded)")
        STORED = "stored", _("Stored")
        FAILED = "failed", _("Download failed")

    sid = models.CharField(max_length=34, unique=True, default=sid_default("ME"), editable=False)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="media")
    url = models.URLField(max_length=1000, blank=True)
    provider_media_id = models.CharField(
        max_length=128, blank=True, help_text=_("The provider's id, when it gives no URL.")
    )
    file = models.FileField(upload_to="media/%Y/%m/", blank=True)
    content_type = models.CharField(max_length=128, blank=True)
    size = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.REMOTE)
    error = models.CharField(max_length=255, blank=True)
    date_created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("media file")
        verbose_name_plural = _("media")

    def __str__(self) -> str:
        return self.sid


class OptOut(models.Model):
    """The block list: a recipient who opted out of a whole service or of one sender."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    service = models.ForeignKey(
        MessagingService, on_delete=models.CASCADE, null=True, blank=True, related_name="optouts"
    )
    sender = models.ForeignKey(
        Sender, on_delete=models.CASCADE, null=True, blank=True, related_name="optouts"
    )
    address = models.CharField(max_length=64, help_text=_("The customer's address."))
    keyword = models.CharField(max_length=32, blank=True)
    source = models.CharField(max_length=16, default="admin")
    date_created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("opt-out")
        verbose_name_plural = _("opt-outs")
        constraints = [
            models.CheckConstraint(
                condition=(Q(service__isnull=False) & Q(sender__isnull=True))
                | (Q(service__isnull=True) & Q(sender__isnull=False)),
                name="optout_service_xor_sender",
            ),
            models.UniqueConstraint(
                fields=["service", "address"],
                condition=Q(service__isnull=False),
                name="optout_unique_service",
            ),
            models.UniqueConstraint(
                fields=["sender", "address"],
                condition=Q(sender__isnull=False),
                name="optout_unique_sender",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.address} ✕ {self.service or self.sender}"


class StatusCallback(models.Model):
    """One status-callback POST to deliver; retried with back-off, visible in the admin."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="callbacks")
    url = models.URLField(max_length=500)
    status = models.CharField(max_length=12)
    params = models.JSONField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    date_created = models.DateTimeField(auto_now_add=True)
    date_done = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("status callback")
        verbose_name_plural = _("status callbacks")
        ordering = ["-date_created"]

    def __str__(self) -> str:
        return f"{self.status} → {self.url}"


class WebhookLog(models.Model):
    """Every signed provider webhook as it arrived, kept for inspection and reprocessing.

    Requests with a bad signature are not stored (only logged): anyone can send those.
    """

    class State(models.TextChoices):
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected (malformed)")

    provider = models.ForeignKey(
        ProviderAccount, on_delete=models.SET_NULL, null=True, related_name="webhook_logs"
    )
    method = models.CharField(max_length=8)
    url = models.CharField(max_length=1000)
    headers = models.JSONField(default=dict)
    body = models.TextField(blank=True)
    state = models.CharField(max_length=10, choices=State.choices)
    error = models.CharField(max_length=500, blank=True)
    messages = models.PositiveIntegerField(default=0, help_text=_("Inbound messages in it."))
    new_messages = models.PositiveIntegerField(
        default=0, help_text=_("Of those, not seen before (the rest were provider retries).")
    )
    statuses = models.PositiveIntegerField(default=0, help_text=_("Delivery receipts in it."))
    # The parsed receipts, applied by the Celery task (the raw body stays as it came).
    receipts = models.JSONField(default=list, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("webhook request")
        verbose_name_plural = _("webhook requests")
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.method} {self.url} ({self.state})"


class KeywordKind(models.TextChoices):
    """What an advanced opt-out keyword does (REFERENCE.md 2)."""

    OPT_OUT = "opt_out", _("Opt-out")
    OPT_IN = "opt_in", _("Opt-in")
    HELP = "help", _("Help")


class KeywordLanguage(models.TextChoices):
    EN = "en", _("English")
    ES = "es", _("Spanish")


class KeywordConfig(models.Model):
    """Advanced opt-out of one messaging service (its whole pool) or of one lone sender: the
    keyword sets a customer can answer with. Matching and applying: services/keywords.py."""

    account = models.ForeignKey(
        Account,
        verbose_name=_("account"),
        on_delete=models.CASCADE,
        related_name="+",
        editable=False,
    )
    service = models.OneToOneField(
        MessagingService,
        verbose_name=_("messaging service"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="keyword_config",
    )
    sender = models.OneToOneField(
        Sender,
        verbose_name=_("sender"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="keyword_config",
        help_text=_("Only for a sender outside any messaging service."),
    )
    enabled = models.BooleanField(
        _("enabled"),
        default=True,
        help_text=_(
            "Off: these sets are ignored, but STOP, START and HELP still block, unblock and "
            "answer with the built-in English replies (carriers require it)."
        ),
    )
    date_created = models.DateTimeField(_("created"), auto_now_add=True)
    date_updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("opt-out keyword configuration")
        verbose_name_plural = _("opt-out keyword configurations")
        constraints = [
            models.CheckConstraint(
                condition=(Q(service__isnull=False) & Q(sender__isnull=True))
                | (Q(service__isnull=True) & Q(sender__isnull=False)),
                name="keywordconfig_service_xor_sender",
            ),
        ]

    def __str__(self) -> str:
        return str(self.service or self.sender)

    def save(self, *args, **kwargs):
        # The account follows the owner (the admin form does not ask for it).
        if self.account_id is None and (self.service_id or self.sender_id):
            self.account_id = (self.service or self.sender).account_id
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if bool(self.service_id) == bool(self.sender_id):
            raise ValidationError(_("Choose a messaging service or a sender, not both."))
        if self.sender_id and self.sender.service_id:
            raise ValidationError(
                {
                    "sender": _(
                        "This sender is in the pool of %(service)s: configure the service's "
                        "keywords instead."
                    )
                    % {"service": self.sender.service}
                }
            )
        self.account_id = (self.service or self.sender).account_id


class KeywordSet(models.Model):
    """The keywords of one kind in one language, with the reply they get. A set with a
    country replaces the general set of its kind and language for customers of that
    country."""

    config = models.ForeignKey(
        KeywordConfig,
        verbose_name=_("configuration"),
        on_delete=models.CASCADE,
        related_name="keyword_sets",
    )
    kind = models.CharField(_("kind"), max_length=8, choices=KeywordKind.choices)
    language = models.CharField(_("language"), max_length=2, choices=KeywordLanguage.choices)
    country = models.CharField(
        _("country"),
        max_length=2,
        blank=True,
        help_text=_("ISO country code. Empty: every customer without a set of their country."),
    )
    keywords = models.TextField(
        _("keywords"),
        help_text=_(
            "Separated by commas or spaces. A message matches when it is exactly one of them, "
            "ignoring case, accents and surrounding spaces."
        ),
    )
    reply = models.TextField(
        _("reply"),
        max_length=1600,
        blank=True,
        help_text=_("Sent back from the same sender. Empty: no reply."),
    )

    # The admin's inline formset compares every set of a configuration as submitted (words
    # may move between sets in one save) and turns this comparison with the saved sets off.
    compare_with_saved_sets = True

    class Meta:
        verbose_name = _("keyword set")
        verbose_name_plural = _("keyword sets")
        ordering = ["kind", "language", "country", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["config", "kind", "language", "country"], name="keywordset_unique_kind"
            )
        ]

    def __str__(self) -> str:
        where = f" ({self.country})" if self.country else ""
        return f"{self.get_kind_display()} [{self.language}]{where}"

    def clean(self) -> None:
        from messaging.services import keywords

        self.country = (self.country or "").strip().upper()
        if self.country:
            try:
                validators.validate_country(self.country)
            except ValidationError as exc:
                raise ValidationError({"country": exc.messages}) from exc
        try:
            words = keywords.keywords_parse(self.keywords)
        except ValueError as exc:
            raise ValidationError({"keywords": str(exc)}) from exc
        self.keywords = keywords.keywords_format(words)
        missing = keywords.mandatory_missing(self.kind, self.language, words)
        if missing:
            raise ValidationError(
                {
                    "keywords": _(
                        "%(word)s cannot be removed from the English %(kind)s set: carriers "
                        "require it."
                    )
                    % {"word": missing, "kind": self.get_kind_display()}
                }
            )
        if self.compare_with_saved_sets and self.config_id:
            others = KeywordSet.objects.filter(config_id=self.config_id).exclude(pk=self.pk)
            sets = [(s.kind, keywords.keywords_split(s.keywords)) for s in others]
            conflicts = keywords.keyword_conflicts([*sets, (self.kind, words)])
            if conflicts:
                raise ValidationError({"keywords": conflicts})


class InboundEvent(models.Model):
    """One inbound message as the provider sent it, parsed, waiting to become a `Message`.

    Written in the webhook's request with the raw request; the Celery task turns it into
    the message. Its unique (provider, provider message id) is where provider retries stop:
    a retried webhook inserts nothing new.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        STORED = "stored", _("Stored as a message")
        FAILED = "failed", _("Failed")

    provider = models.ForeignKey(ProviderAccount, on_delete=models.CASCADE, related_name="+")
    provider_message_id = models.CharField(max_length=128)
    webhook = models.ForeignKey(
        WebhookLog, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    payload = models.JSONField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    error = models.CharField(max_length=255, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("inbound event")
        verbose_name_plural = _("inbound events")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_message_id"], name="inbound_event_unique_id"
            )
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                name="inbound_event_pending",
                condition=Q(state="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider_message_id} ({self.state})"


class TemplateCategory(models.TextChoices):
    """Meta's template categories (REFERENCE.md 4); Meta prices and reviews them apart."""

    MARKETING = "MARKETING", _("Marketing")
    UTILITY = "UTILITY", _("Utility")
    AUTHENTICATION = "AUTHENTICATION", _("Authentication")


class TemplateStatus(models.TextChoices):
    """Meta's review status of one translation, plus ours for one never submitted."""

    DRAFT = "DRAFT", _("Not submitted")
    PENDING = "PENDING", _("Pending review")
    APPROVED = "APPROVED", _("Approved")
    REJECTED = "REJECTED", _("Rejected")
    PAUSED = "PAUSED", _("Paused")
    DISABLED = "DISABLED", _("Disabled")


class TemplateHeader(models.TextChoices):
    NONE = "none", _("No header")
    TEXT = "text", _("Text")
    IMAGE = "image", _("Image")
    VIDEO = "video", _("Video")
    DOCUMENT = "document", _("Document")


class ContentTemplate(models.Model):
    """A content template (`HX...`, Twilio's ContentSid): a WhatsApp message template with
    one translation per language. Sent with ContentSid + ContentVariables; the rendered text
    also serves SMS and Messenger. Rules and rendering: content_templates.py."""

    sid = models.CharField(max_length=34, unique=True, default=sid_default("HX"), editable=False)
    account = models.ForeignKey(
        Account,
        verbose_name=_("account"),
        on_delete=models.CASCADE,
        related_name="content_templates",
    )
    friendly_name = models.CharField(_("friendly name"), max_length=64)
    name = models.CharField(
        _("WhatsApp name"),
        max_length=512,
        help_text=_("Lower-case letters, digits and underscores, as Meta requires."),
    )
    category = models.CharField(
        _("category"),
        max_length=16,
        choices=TemplateCategory.choices,
        default=TemplateCategory.UTILITY,
    )
    provider = models.ForeignKey(
        ProviderAccount,
        verbose_name=_("WhatsApp provider account"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="content_templates",
        limit_choices_to={"kind": ProviderKind.WHATSAPP_CLOUD},
        help_text=_(
            "The WhatsApp Cloud API account it is submitted to and synced with. Empty: a "
            "template of ours only (SMS, Messenger, the simulator)."
        ),
    )
    default_language = models.CharField(
        _("default language"),
        max_length=15,
        default="en_US",
        help_text=_("Used when the message asks for no language and the contact has none."),
    )
    date_created = models.DateTimeField(_("created"), auto_now_add=True)
    date_updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("content template")
        verbose_name_plural = _("content templates")
        ordering = ["friendly_name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="contenttemplate_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.friendly_name} ({self.name})"

    def clean(self) -> None:
        from messaging import content_templates

        self.default_language = content_templates.language_normalize(self.default_language)
        errors = {}
        if content_templates.name_problems(self.name):
            errors["name"] = content_templates.name_problems(self.name)
        if content_templates.language_problems(self.default_language):
            errors["default_language"] = content_templates.language_problems(self.default_language)
        if self.provider_id and self.account_id and self.provider.account_id != self.account_id:
            errors["provider"] = [_("This provider account belongs to another account.")]
        if errors:
            raise ValidationError(errors)


class ContentTemplateTranslation(models.Model):
    """One language of a template: header, body, footer, buttons and Meta's review of it."""

    template = models.ForeignKey(
        ContentTemplate,
        verbose_name=_("content template"),
        on_delete=models.CASCADE,
        related_name="translations",
    )
    language = models.CharField(
        _("language"), max_length=15, help_text=_("Meta's code: en, en_US, es_MX, pt_BR…")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=TemplateStatus.choices, default=TemplateStatus.DRAFT
    )
    rejection_reason = models.CharField(_("rejection reason"), max_length=500, blank=True)
    provider_template_id = models.CharField(
        _("provider's template id"), max_length=64, blank=True, editable=False
    )
    header_type = models.CharField(
        _("header"), max_length=10, choices=TemplateHeader.choices, default=TemplateHeader.NONE
    )
    header_text = models.CharField(
        _("header text"), max_length=255, blank=True, help_text=_("At most 60 characters.")
    )
    header_media_url = models.URLField(_("header media URL"), max_length=2000, blank=True)
    body = models.TextField(
        _("body"),
        blank=True,  # required, said by clean() in the words of the template rules
        help_text=_(
            "Up to 1,024 characters. Placeholders {{1}}, {{2}}… or named ones like "
            "{{first_name}}; not at the very start or end."
        ),
    )
    footer = models.CharField(
        _("footer"), max_length=255, blank=True, help_text=_("At most 60 characters.")
    )
    buttons = models.JSONField(
        _("buttons"),
        default=list,
        blank=True,
        help_text=_(
            'A JSON list: {"type": "QUICK_REPLY", "text": "Yes"} or {"type": "URL", "text": '
            '"Track", "url": "https://example.com/t/{{1}}"}.'
        ),
    )
    samples = models.JSONField(
        _("sample values"),
        default=dict,
        blank=True,
        help_text=_(
            'A value for each placeholder, e.g. {"1": "Ana"}: shown in the preview and sent '
            "to Meta as examples for its review."
        ),
    )
    date_updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("translation")
        verbose_name_plural = _("translations")
        ordering = ["language", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["template", "language"], name="contenttemplate_unique_language"
            )
        ]

    def __str__(self) -> str:
        return f"{self.template.name} [{self.language}]" if self.template_id else self.language

    def clean(self) -> None:
        from messaging import content_templates

        self.language = content_templates.language_normalize(self.language)
        if isinstance(self.samples, dict):
            # A sample outlives its placeholder when the text changes: drop it quietly.
            keys = set(content_templates.placeholders(self))
            self.samples = {str(k): v for k, v in self.samples.items() if str(k) in keys}
        problems = content_templates.translation_problems(self)
        if problems:
            raise ValidationError(dict(problems))
