"""Input and output shapes of the native JSON API (`/api/v1/`).

Input serializers only check types and shapes; the domain rules (addresses, codes, sender
validation) live in the services and the models. Output serializers are read-only views of
the models, with ISO 8601 dates in UTC and snake_case names.
"""

from datetime import UTC

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from messaging.models import (
    DEFAULT_VALIDITY_PERIOD,
    HttpMethod,
    Media,
    Message,
    MessagingService,
    SenderKind,
)
from messaging.selectors import PAGE_TOKEN_PREFIX
from messaging.statuses import Status

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
USECASES = [choice for choice, _label in MessagingService._meta.get_field("usecase").choices]


class UtcDateTimeField(serializers.DateTimeField):
    """ISO 8601, rendered in UTC; an input without an offset is read as UTC (as Twilio does)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(default_timezone=UTC, **kwargs)


class BlankAsNullCharField(serializers.CharField):
    """Output: an empty string in the database is `null` on the wire."""

    def to_representation(self, value: str) -> str | None:
        return value or None


# One named component: drf-spectacular would otherwise name the enum after each field and
# warn that inbound_method and fallback_method give one choice set two names.
@extend_schema_field(
    {"type": "string", "enum": list(HttpMethod.values)}, component_name="HttpMethodEnum"
)
class HttpMethodField(serializers.ChoiceField):
    """GET or POST."""

    def __init__(self, **kwargs) -> None:
        super().__init__(choices=HttpMethod.choices, **kwargs)


class StringMapField(serializers.DictField):
    """A JSON object of strings; numbers are read as strings, nested values refused."""

    default_error_messages = {"nul_key": "Keys may not contain NUL characters."}

    def __init__(self, **kwargs) -> None:
        super().__init__(
            child=serializers.CharField(allow_blank=True, trim_whitespace=False), **kwargs
        )

    def to_internal_value(self, data) -> dict[str, str]:
        value = super().to_internal_value(data)
        if any("\x00" in key for key in value):  # PostgreSQL cannot store it
            self.fail("nul_key")
        return value


class ErrorOutput(serializers.Serializer):
    code = serializers.IntegerField(help_text="Stable error code (Twilio's where one exists).")
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True, help_text="The input field at fault, if any.")
    status = serializers.IntegerField(help_text="The HTTP status.")


# ---------------------------------------------------------------- messages


class MessageCreateInput(serializers.Serializer):
    to = serializers.CharField(
        allow_blank=True,
        allow_null=True,
        trim_whitespace=False,
        help_text="+E164, whatsapp:+E164 or messenger:<PSID>.",
    )
    # `from` is a Python keyword: declared through the class namespace.
    locals()["from"] = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="A sender address of the account; or give messaging_service_sid.",
    )
    messaging_service_sid = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    body = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, trim_whitespace=False
    )
    media_urls = serializers.ListField(
        child=serializers.CharField(max_length=1000), required=False, default=list
    )
    content_sid = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    content_variables = StringMapField(required=False, allow_null=True)
    status_callback = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=500
    )
    validity_period = serializers.IntegerField(
        required=False, allow_null=True, help_text=f"Seconds, 1 to {DEFAULT_VALIDITY_PERIOD}."
    )
    smart_encoded = serializers.BooleanField(required=False, allow_null=True)
    schedule_type = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, help_text='"fixed" to schedule.'
    )
    send_at = UtcDateTimeField(required=False, allow_null=True)
    tags = StringMapField(required=False, default=dict, help_text="Your own metadata.")

    # (field, DRF error code) → domain code, so the native API says what Twilio's says.
    error_codes = {
        ("to", "required"): 21604,
        ("to", "null"): 21604,
        ("content_variables", "not_a_dict"): 21656,
        ("content_variables", "invalid"): 21656,
        ("content_variables", "nul_key"): 21656,
        ("validity_period", "invalid"): 21624,
        ("status_callback", "max_length"): 21609,
        ("media_urls", "max_length"): 21620,
    }


class MessageListQuery(serializers.Serializer):
    to = serializers.CharField(required=False)
    locals()["from"] = serializers.CharField(required=False)
    status = serializers.ChoiceField(choices=[s.value for s in Status], required=False)
    date_sent_after = UtcDateTimeField(required=False, help_text="date_sent ≥ this instant.")
    date_sent_before = UtcDateTimeField(required=False, help_text="date_sent < this instant.")
    page_size = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE
    )
    page_token = serializers.RegexField(
        rf"^{PAGE_TOKEN_PREFIX}[0-9]{{1,18}}$",
        required=False,
        error_messages={"invalid": "Not a page token from this API."},
        help_text="next_page_token of the previous page.",
    )


class MessageHistoryOutput(serializers.Serializer):
    status = serializers.CharField()
    error_code = serializers.IntegerField(allow_null=True)
    source = serializers.CharField()
    at = UtcDateTimeField()


class MediaOutput(serializers.Serializer):
    sid = serializers.CharField()
    url = serializers.SerializerMethodField()
    content_type = BlankAsNullCharField(allow_null=True)

    def get_url(self, media: Media) -> str | None:
        if media.url:
            return media.url
        return media.file.url if media.file else None


class MessageOutput(serializers.Serializer):
    sid = serializers.CharField()
    account_sid = serializers.SerializerMethodField()
    messaging_service_sid = serializers.CharField(source="service.sid", allow_null=True)
    locals()["from"] = BlankAsNullCharField(source="from_address", allow_null=True)
    to = serializers.CharField(source="to_address")
    channel = serializers.CharField()
    direction = serializers.CharField()
    body = serializers.CharField()
    redacted = serializers.BooleanField()
    status = serializers.CharField()
    encoding = BlankAsNullCharField(allow_null=True)
    num_segments = serializers.IntegerField()
    num_media = serializers.IntegerField()
    error_code = serializers.IntegerField(allow_null=True)
    error_message = BlankAsNullCharField(allow_null=True)
    sender_rule = BlankAsNullCharField(
        allow_null=True, help_text="Which sender-choice rule picked from."
    )
    validity_period = serializers.IntegerField()
    send_at = UtcDateTimeField(allow_null=True)
    date_created = UtcDateTimeField()
    date_updated = UtcDateTimeField()
    date_sent = UtcDateTimeField(allow_null=True)
    tags = serializers.DictField()
    history = MessageHistoryOutput(many=True)
    media = serializers.SerializerMethodField()

    @extend_schema_field(MediaOutput(many=True))
    def get_media(self, message: Message) -> list:
        # Sorted here so a prefetched page and a single message agree on the order.
        return MediaOutput(sorted(message.media.all(), key=lambda m: m.id), many=True).data

    def get_account_sid(self, message: Message) -> str:
        # Every message of a response belongs to the caller's account: no query per row.
        account = self.context.get("account")
        return account.sid if account is not None else message.account.sid


class MessagePageOutput(serializers.Serializer):
    results = MessageOutput(many=True)
    next_page_token = serializers.CharField(allow_null=True)
    next = serializers.CharField(allow_null=True, help_text="The URL of the next page.")


# ---------------------------------------------------------------- senders


class SenderInput(serializers.Serializer):
    """Create: kind, address and provider are required. Update (PATCH): any subset."""

    kind = serializers.ChoiceField(choices=SenderKind.choices)
    address = serializers.CharField(
        help_text="+E164, short code digits, alphanumeric id (≤ 11), whatsapp:+E164 or "
        "messenger:<page id>; normalised on save."
    )
    friendly_name = serializers.CharField(required=False, allow_blank=True)
    country = serializers.CharField(required=False, allow_blank=True)
    sms_capable = serializers.BooleanField(required=False)
    mms_capable = serializers.BooleanField(required=False)
    throughput = serializers.DecimalField(
        max_digits=8,
        decimal_places=2,
        required=False,
        allow_null=True,
        coerce_to_string=False,
        help_text="Segments per second; null for the default of the kind.",
    )
    inbound_request_url = serializers.CharField(required=False, allow_blank=True)
    inbound_method = HttpMethodField(required=False)
    fallback_url = serializers.CharField(required=False, allow_blank=True)
    status_callback_url = serializers.CharField(required=False, allow_blank=True)
    active = serializers.BooleanField(required=False)
    provider = serializers.CharField(source="provider_sid", help_text="A provider account sid.")
    messaging_service_sid = serializers.CharField(
        required=False, allow_null=True, help_text="The service whose pool holds it; or null."
    )


class SenderOutput(serializers.Serializer):
    sid = serializers.CharField()
    kind = serializers.ChoiceField(choices=SenderKind.choices)
    channel = serializers.CharField()
    address = serializers.CharField()
    friendly_name = serializers.CharField()
    country = serializers.CharField()
    sms_capable = serializers.BooleanField()
    mms_capable = serializers.BooleanField()
    throughput = serializers.FloatField(allow_null=True, help_text="null: the kind's default.")
    segments_per_second = serializers.FloatField(help_text="The throughput in effect.")
    inbound_request_url = serializers.CharField()
    inbound_method = serializers.CharField()
    fallback_url = serializers.CharField()
    status_callback_url = serializers.CharField()
    active = serializers.BooleanField()
    provider = serializers.CharField(source="provider.sid")
    messaging_service_sid = serializers.CharField(source="service.sid", allow_null=True)
    date_created = UtcDateTimeField()
    date_updated = UtcDateTimeField()


class SenderListOutput(serializers.Serializer):
    results = SenderOutput(many=True)


# ---------------------------------------------------------------- messaging services


class ServiceInput(serializers.Serializer):
    """Create: friendly_name is required. Update (PATCH): any subset."""

    friendly_name = serializers.CharField()
    usecase = serializers.ChoiceField(choices=USECASES, required=False)
    sticky_sender = serializers.BooleanField(required=False)
    smart_encoding = serializers.BooleanField(required=False)
    area_code_geomatch = serializers.BooleanField(required=False)
    country_geomatch = serializers.BooleanField(required=False)
    fallback_to_long_code = serializers.BooleanField(required=False)
    validity_period = serializers.IntegerField(
        required=False, help_text=f"Seconds, 1 to {DEFAULT_VALIDITY_PERIOD}."
    )
    inbound_request_url = serializers.CharField(required=False, allow_blank=True)
    inbound_method = HttpMethodField(required=False)
    fallback_url = serializers.CharField(required=False, allow_blank=True)
    fallback_method = HttpMethodField(required=False)
    status_callback = serializers.CharField(required=False, allow_blank=True)
    use_inbound_webhook_on_number = serializers.BooleanField(required=False)


class ServiceOutput(serializers.Serializer):
    sid = serializers.CharField()
    account_sid = serializers.CharField(source="account.sid")
    friendly_name = serializers.CharField()
    usecase = serializers.CharField()
    sticky_sender = serializers.BooleanField()
    smart_encoding = serializers.BooleanField()
    area_code_geomatch = serializers.BooleanField()
    country_geomatch = serializers.BooleanField()
    fallback_to_long_code = serializers.BooleanField()
    validity_period = serializers.IntegerField()
    inbound_request_url = serializers.CharField()
    inbound_method = serializers.CharField()
    fallback_url = serializers.CharField()
    fallback_method = serializers.CharField()
    status_callback = serializers.CharField()
    use_inbound_webhook_on_number = serializers.BooleanField()
    senders = serializers.SerializerMethodField()
    date_created = UtcDateTimeField()
    date_updated = UtcDateTimeField()

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_senders(self, service: MessagingService) -> list[str]:
        """The sids of the senders in the pool, oldest first."""
        return [sender.sid for sender in sorted(service.senders.all(), key=lambda s: s.id)]


class ServiceListOutput(serializers.Serializer):
    results = ServiceOutput(many=True)


class ServiceSenderInput(serializers.Serializer):
    sender_sid = serializers.CharField()


# ---------------------------------------------------------------- delivery queues


class QueueFiguresMixin(serializers.Serializer):
    queued_messages = serializers.IntegerField(help_text="Messages in status `queued`.")
    queued_segments = serializers.IntegerField(help_text="Their segments (what pacing counts).")
    sending = serializers.IntegerField(help_text="Messages being handed to the provider now.")
    oldest_queued_age_seconds = serializers.FloatField(
        allow_null=True,
        help_text="Seconds the oldest queued message has waited, from its send_at if it was "
        "scheduled, else from its creation; null when nothing is queued.",
    )
    drain_seconds_estimate = serializers.FloatField(
        allow_null=True,
        help_text="Seconds until the queue should be empty at the current throughput; null when "
        "a sender holding it is inactive.",
    )


class QueueSenderOutput(QueueFiguresMixin):
    sid = serializers.CharField()
    address = serializers.CharField()
    kind = serializers.ChoiceField(choices=SenderKind.choices)
    channel = serializers.CharField()
    friendly_name = serializers.CharField()
    active = serializers.BooleanField()
    messaging_service_sid = serializers.CharField(source="service_sid", allow_null=True)
    throughput = serializers.FloatField(help_text="Segments per second in effect.")


class QueueServiceOutput(QueueFiguresMixin):
    sid = serializers.CharField()
    friendly_name = serializers.CharField()
    senders = serializers.IntegerField(help_text="Active senders in the pool.")
    accepted = serializers.IntegerField(help_text="Waiting for the service to choose a sender.")
    scheduled = serializers.IntegerField(help_text="Waiting for their send_at.")
    oldest_accepted_age_seconds = serializers.FloatField(
        allow_null=True, help_text="Seconds the oldest accepted message has waited for a sender."
    )
    throughput = serializers.FloatField(
        help_text="Segments per second of the active senders in the pool, together."
    )


class QueuesOutput(serializers.Serializer):
    senders = QueueSenderOutput(
        many=True, help_text="Senders with something queued or sending, fullest first."
    )
    services = QueueServiceOutput(many=True, help_text="Every messaging service, by name.")
    generated_at = UtcDateTimeField()


__all__ = [
    "ErrorOutput",
    "MessageCreateInput",
    "MessageListQuery",
    "MessageOutput",
    "MessagePageOutput",
    "QueueSenderOutput",
    "QueueServiceOutput",
    "QueuesOutput",
    "SenderInput",
    "SenderListOutput",
    "SenderOutput",
    "ServiceInput",
    "ServiceListOutput",
    "ServiceOutput",
    "ServiceSenderInput",
]
