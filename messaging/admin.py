"""Admin for the messaging engine. Writes with side effects (keys, opt-outs, retries) go
through services; everything else is plain model validation (`full_clean`)."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models.functions import Coalesce
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from messaging import crypto
from messaging.addresses import AddressError, parse_address
from messaging.models import (
    Account,
    ApiKey,
    Contact,
    Conversation,
    Media,
    Message,
    MessageStatusChange,
    MessagingService,
    OptOut,
    ProviderAccount,
    Sender,
    StatusCallback,
)
from messaging.selectors import delivery_queue_depths, with_queue_figures
from messaging.services import accounts as account_services
from messaging.services import optout as optout_services

# A URL typed without a scheme means https (Django 6's default, chosen now).
URL_FIELDS = {models.URLField: {"assume_scheme": "https"}}


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("friendly_name", "sid", "active", "date_created")
    readonly_fields = ("sid", "date_created", "date_updated")
    actions = ("rotate_auth_token",)

    def save_model(self, request, obj, form, change):
        if not obj.auth_token_encrypted:
            token = crypto.new_token()
            obj.auth_token_encrypted = crypto.encrypt(token)
            messages.warning(request, _("Auth token (shown once): %s") % token)
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Rotate the auth token (shown once)"))
    def rotate_auth_token(self, request, queryset):
        for account in queryset:
            token = account_services.account_rotate_auth_token(account=account)
            messages.warning(
                request,
                _("%(sid)s new auth token: %(token)s")
                % {
                    "sid": account.sid,
                    "token": token,
                },
            )


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("friendly_name", "sid", "account", "date_created", "revoked_at")
    list_filter = ("revoked_at",)
    fields = ("friendly_name", "account", "sid", "date_created", "revoked_at")
    readonly_fields = ("sid", "date_created", "revoked_at")
    actions = ("revoke",)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = account_services.api_key_create(
            account=obj.account, friendly_name=obj.friendly_name
        )
        obj.pk, obj.sid = issued.key.pk, issued.key.sid
        messages.warning(
            request,
            _("API key %(sid)s secret (shown once, store it now): %(secret)s")
            % {"sid": issued.key.sid, "secret": issued.secret},
        )

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request, queryset):
        for key in queryset:
            account_services.api_key_revoke(key=key)


class ProviderAccountForm(forms.ModelForm):
    credentials = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": '{"auth_token": "…"}'}),
        help_text=_(
            "JSON object of secrets, stored encrypted. Leave empty to keep the current ones."
        ),
    )

    class Meta:
        model = ProviderAccount
        fields = ("account", "name", "kind", "credentials_env_prefix", "settings", "active")

    def clean_credentials(self):
        raw = self.cleaned_data["credentials"].strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(_("Not valid JSON: %s") % exc) from exc
        if not isinstance(value, dict):
            raise forms.ValidationError(_("Enter a JSON object."))
        return value

    def save(self, commit=True):
        credentials = self.cleaned_data.get("credentials")
        if credentials is not None:
            self.instance.credentials_encrypted = crypto.encrypt(json.dumps(credentials))
        return super().save(commit)


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    form = ProviderAccountForm
    list_display = ("name", "kind", "sid", "has_credentials", "active")
    list_filter = ("kind", "active")

    @admin.display(boolean=True, description=_("credentials stored"))
    def has_credentials(self, obj):
        return bool(obj.credentials_encrypted or obj.credentials_env_prefix)


class SenderInline(admin.TabularInline):
    model = Sender
    formfield_overrides = URL_FIELDS
    fields = ("kind", "address", "provider", "country", "mms_capable", "throughput", "active")
    extra = 0
    show_change_link = True


@admin.register(Sender)
class SenderAdmin(admin.ModelAdmin):
    formfield_overrides = URL_FIELDS
    list_display = (
        "address",
        "kind",
        "channel",
        "service",
        "country",
        "rate",
        "queued",
        "oldest_queued",
        "mms_capable",
        "active",
    )
    list_filter = ("channel", "kind", "active", "service")
    list_select_related = ("service",)
    search_fields = ("address", "friendly_name")
    readonly_fields = ("sid", "channel", "date_created", "date_updated")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "account",
                    "provider",
                    "service",
                    "kind",
                    "address",
                    "friendly_name",
                    "country",
                    "sid",
                    "channel",
                    "active",
                )
            },
        ),
        (_("Capabilities and pacing"), {"fields": ("sms_capable", "mms_capable", "throughput")}),
        (
            _("Webhooks"),
            {
                "fields": (
                    "inbound_request_url",
                    "inbound_method",
                    "fallback_url",
                    "status_callback_url",
                )
            },
        ),
    )

    @admin.display(description=_("segments/s"))
    def rate(self, obj):
        return obj.segments_per_second

    def get_queryset(self, request):
        return with_queue_figures(super().get_queryset(request), owner="sender")

    @admin.display(description=_("Queued (segments)"), ordering="queued_segments")
    def queued(self, obj):
        return queued_cell(obj)

    @admin.display(description=_("Oldest queued"), ordering="oldest_queued_since")
    def oldest_queued(self, obj):
        return oldest_queued_cell(obj)


@admin.register(MessagingService)
class MessagingServiceAdmin(admin.ModelAdmin):
    formfield_overrides = URL_FIELDS
    list_display = (
        "friendly_name",
        "sid",
        "usecase",
        "sender_count",
        "queued",
        "oldest_queued",
        "sticky_sender",
        "smart_encoding",
    )
    readonly_fields = ("sid", "date_created", "date_updated")
    inlines = (SenderInline,)
    fieldsets = (
        (None, {"fields": ("account", "friendly_name", "sid", "usecase")}),
        (
            _("Sender pool"),
            {
                "fields": (
                    "sticky_sender",
                    "area_code_geomatch",
                    "country_geomatch",
                    "fallback_to_long_code",
                )
            },
        ),
        (_("Content and delivery"), {"fields": ("smart_encoding", "validity_period")}),
        (
            _("Integration"),
            {
                "fields": (
                    "inbound_request_url",
                    "inbound_method",
                    "fallback_url",
                    "fallback_method",
                    "status_callback",
                    "use_inbound_webhook_on_number",
                )
            },
        ),
    )

    def get_queryset(self, request):
        # Subqueries, not a join + GROUP BY: one query for the page, whatever its size.
        pool_size = (
            Sender.objects.filter(service=models.OuterRef("pk"))
            .order_by()
            .values("service")
            .annotate(n=models.Count("id"))
            .values("n")[:1]
        )
        queryset = (
            super()
            .get_queryset(request)
            .annotate(pool_size=Coalesce(models.Subquery(pool_size), 0))
        )
        return with_queue_figures(queryset, owner="service")

    @admin.display(description=_("senders"), ordering="pool_size")
    def sender_count(self, obj):
        return obj.pool_size

    @admin.display(description=_("Queued (segments)"), ordering="queued_segments")
    def queued(self, obj):
        return queued_cell(obj)

    @admin.display(description=_("Oldest queued"), ordering="oldest_queued_since")
    def oldest_queued(self, obj):
        return oldest_queued_cell(obj)

    def get_urls(self):
        return [
            path(
                "queues/",
                self.admin_site.admin_view(self.queues_view),
                name="messaging_delivery_queues",
            ),
            *super().get_urls(),
        ]

    def queues_view(self, request):
        """Read-only: the figures of `GET /api/v1/queues`, for every account."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        depths = delivery_queue_depths()
        for entry in depths["senders"]:
            entry["url"] = reverse("admin:messaging_sender_change", args=[entry["id"]])
        for entry in depths["services"]:
            entry["url"] = reverse("admin:messaging_messagingservice_change", args=[entry["id"]])
        for entry in (*depths["senders"], *depths["services"]):
            entry["oldest_label"] = duration_label(entry["oldest_queued_age_seconds"])
            entry["drain_label"] = duration_label(entry["drain_seconds_estimate"])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Delivery queues"),
            "depths": depths,
            "several_accounts": Account.objects.count() > 1,
        }
        return TemplateResponse(request, "admin/messaging/delivery_queues.html", context)


def duration_label(seconds: float | None) -> str:
    """A short, translated duration for the queue page: `45 s`, `3 min 20 s`, `2 h 5 min`."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    if whole < 60:
        return gettext("%(s)d s") % {"s": whole}
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return gettext("%(m)d min %(s)d s") % {"m": minutes, "s": secs}
    hours, minutes = divmod(minutes, 60)
    return gettext("%(h)d h %(m)d min") % {"h": hours, "m": minutes}


def queued_cell(obj) -> str:
    """Queued messages and, in brackets, their segments: `3 (5)`."""
    return f"{obj.queued_messages} ({obj.queued_segments})"


def oldest_queued_cell(obj) -> str:
    if obj.oldest_queued_since is None:
        return "—"
    return duration_label(max(0.0, (timezone.now() - obj.oldest_queued_since).total_seconds()))


class ReadOnlyInline(admin.TabularInline):
    """What happened to a message: shown, never edited."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False


class HistoryInline(ReadOnlyInline):
    model = MessageStatusChange
    fields = ("status", "error_code", "source", "at")


class MediaInline(ReadOnlyInline):
    model = Media
    fields = ("sid", "url", "file", "content_type", "size")


class CallbackInline(ReadOnlyInline):
    model = StatusCallback
    fields = ("status", "url", "state", "attempts", "last_status_code", "last_error")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = (
        "sid",
        "direction",
        "from_address",
        "to_address",
        "status",
        "error_code",
        "num_segments",
        "date_created",
    )
    list_filter = ("status", "direction", "channel", "service")
    search_fields = ("sid", "to_address", "from_address", "provider_message_id")
    date_hierarchy = "date_created"
    inlines = (HistoryInline, MediaInline, CallbackInline)
    list_select_related = ("service",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Message._meta.fields]

    def has_add_permission(self, request):
        return False  # messages are sent through the API, which validates and dispatches


class OptOutForm(forms.ModelForm):
    class Meta:
        model = OptOut
        fields = ("service", "sender", "address", "keyword")

    def clean_address(self):
        try:
            return parse_address(self.cleaned_data["address"]).value
        except AddressError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean(self):
        data = super().clean()
        if bool(data.get("service")) == bool(data.get("sender")):
            raise forms.ValidationError(_("Choose a messaging service or a sender, not both."))
        return data


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    form = OptOutForm
    list_display = ("address", "service", "sender", "keyword", "source", "date_created")
    list_filter = ("source", "service")
    search_fields = ("address",)

    def save_model(self, request, obj, form, change):
        # Through the service: blocking also fails the messages still waiting for this address.
        saved = optout_services.optout_block(
            address=obj.address,
            service=obj.service,
            sender=obj.sender,
            keyword=obj.keyword,
            source="admin",
        )
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        optout_services.optout_unblock(address=obj.address, service=obj.service, sender=obj.sender)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(StatusCallback)
class StatusCallbackAdmin(admin.ModelAdmin):
    list_display = (
        "message",
        "status",
        "short_url",
        "state",
        "attempts",
        "last_status_code",
        "last_error",
        "date_created",
    )
    list_filter = ("state", "status")
    search_fields = ("message__sid", "url")
    readonly_fields = (
        "message",
        "url",
        "status",
        "params",
        "state",
        "attempts",
        "last_status_code",
        "last_error",
        "date_created",
        "date_done",
    )
    actions = ("retry",)

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("URL"))
    def short_url(self, obj):
        return format_html('<span title="{}">{}</span>', obj.url, obj.url[:60])

    @admin.action(description=_("Retry the selected callbacks"))
    def retry(self, request, queryset):
        from messaging import tasks

        retried = queryset.exclude(state=StatusCallback.State.DELIVERED)
        ids = list(retried.values_list("id", flat=True))
        retried.update(state=StatusCallback.State.PENDING, attempts=0)
        for callback_id in ids:
            tasks.status_callback_deliver.delay(callback_id)
        messages.info(request, _("%d callbacks queued again.") % len(ids))


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("address", "name", "channel", "country", "date_created")
    list_filter = ("channel", "country")
    search_fields = ("address", "name")
    readonly_fields = ("sid", "date_created")


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("sid", "contact", "business_address", "channel", "state", "last_message_at")
    list_filter = ("state", "channel")
    search_fields = ("sid", "contact__address", "business_address")
    readonly_fields = ("sid", "date_created")
