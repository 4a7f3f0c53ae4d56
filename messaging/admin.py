"""Admin for the messaging engine. Writes with side effects (keys, opt-outs, retries) go
through services; everything else is plain model validation (`full_clean`)."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from messaging import crypto, windows
from messaging.addresses import AddressError, parse_address
from messaging.models import (
    Account,
    ApiKey,
    Contact,
    ContentTemplate,
    ContentTemplateTranslation,
    Conversation,
    InboundEvent,
    KeywordConfig,
    KeywordKind,
    KeywordSet,
    Media,
    Message,
    MessageStatusChange,
    MessagingService,
    OptOut,
    ProviderAccount,
    ProviderKind,
    Sender,
    StatusCallback,
    TemplateStatus,
    WebhookLog,
)
from messaging.providers import ProviderError
from messaging.selectors import delivery_queue_depths, with_queue_figures
from messaging.services import accounts as account_services
from messaging.services import content_templates as template_services
from messaging.services import keywords as keyword_services
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
    actions = ("sync_whatsapp_templates",)

    @admin.action(description=_("Sync the WhatsApp templates"))
    def sync_whatsapp_templates(self, request, queryset):
        templates_sync_report(request, queryset.filter(kind=ProviderKind.WHATSAPP_CLOUD))

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
                    "provider_ref",
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
    fields = ("sid", "url", "provider_media_id", "content_type", "size", "state", "error", "link")
    readonly_fields = fields

    @admin.display(description=_("file"))
    def link(self, obj):
        # Served by /media/<sid> to signed-in staff only, never from a public path.
        if obj.state != Media.State.STORED:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("media-file", args=[obj.sid]), obj.sid)


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
    list_filter = ("status", "direction", "channel", "opt_out_type", "service")
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


# Who put an address on the block list (`OptOut.source`).
OPTOUT_SOURCES = {"admin": _("admin"), "keyword": _("customer keyword"), "api": _("API")}


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    form = OptOutForm
    list_display = ("address", "service", "sender", "keyword_shown", "source_shown", "date_created")
    list_filter = ("source", "service")
    search_fields = ("address", "keyword")

    @admin.display(description=_("keyword"), ordering="keyword")
    def keyword_shown(self, obj):
        return obj.keyword or "—"

    @admin.display(description=_("source"), ordering="source")
    def source_shown(self, obj):
        return OPTOUT_SOURCES.get(obj.source, obj.source)

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
    list_display = (
        "sid",
        "contact",
        "business_address",
        "channel",
        "state",
        "last_message_at",
        "window_ends",
    )
    list_filter = ("state", "channel")
    search_fields = ("sid", "contact__address", "business_address")
    readonly_fields = ("sid", "date_created", "window_ends")

    @admin.display(description=_("service window ends"))
    def window_ends(self, obj):
        if not windows.has_window(obj.channel):
            return _("no window (SMS)")
        return obj.window_ends_at or _("closed: the customer never wrote")


# ---------------------------------------------------------------- inbound webhooks


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookLog)
class WebhookLogAdmin(ReadOnlyAdmin):
    list_display = (
        "received_at",
        "provider",
        "method",
        "state",
        "messages",
        "new_messages",
        "statuses",
        "processed_at",
        "error",
    )
    list_filter = ("state", "provider")
    list_select_related = ("provider",)
    search_fields = ("url", "error")
    date_hierarchy = "received_at"


@admin.register(InboundEvent)
class InboundEventAdmin(ReadOnlyAdmin):
    list_display = ("provider_message_id", "provider", "state", "message", "received_at", "error")
    list_filter = ("state", "provider")
    list_select_related = ("provider", "message")
    search_fields = ("provider_message_id",)
    actions = ("process_again",)

    def has_change_permission(self, request, obj=None):
        return request.method == "GET"  # read-only, but the action must be allowed

    @admin.action(description=_("Process the selected events again"))
    def process_again(self, request, queryset):
        from messaging.services.webhooks import inbound_events_process

        queryset.filter(state=InboundEvent.State.FAILED).update(
            state=InboundEvent.State.PENDING, error=""
        )
        pending = queryset.filter(state=InboundEvent.State.PENDING).select_related("provider")
        _, new = inbound_events_process(list(pending))
        self.message_user(
            request,
            ngettext("%(n)d message stored.", "%(n)d messages stored.", new) % {"n": new},
        )


# ---------------------------------------------------------------- advanced opt-out


class KeywordSetFormSet(forms.BaseInlineFormSet):
    """Compares the sets as submitted, not as saved: a word may move from one set to another
    in one save, and must not end up in sets of two kinds."""

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        form.instance.compare_with_saved_sets = False  # clean() below does it
        return form

    def clean(self):
        super().clean()
        sets = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if self._should_delete_form(form) or not {"kind", "keywords"} <= data.keys():
                continue
            sets.append((data["kind"], keyword_services.keywords_split(data["keywords"])))
        conflicts = keyword_services.keyword_conflicts(sets)
        if conflicts:
            raise forms.ValidationError(conflicts)


class KeywordSetForm(forms.ModelForm):
    class Meta:
        model = KeywordSet
        fields = ("kind", "language", "country", "keywords", "reply")
        widgets = {
            "country": forms.TextInput(attrs={"size": 3}),
            "keywords": forms.Textarea(attrs={"rows": 3, "cols": 36}),
            "reply": forms.Textarea(attrs={"rows": 3, "cols": 44}),
        }


class KeywordSetInline(admin.TabularInline):
    model = KeywordSet
    form = KeywordSetForm
    formset = KeywordSetFormSet
    fields = ("kind", "language", "country", "keywords", "reply")
    extra = 0

    def get_queryset(self, request):
        # In the order a person reads them: opt-out, opt-in, help; general sets first.
        kind_order = models.Case(
            *(models.When(kind=kind, then=i) for i, kind in enumerate(KeywordKind.values)),
            default=len(KeywordKind.values),
        )
        return super().get_queryset(request).order_by(kind_order, "language", "country", "id")


class KeywordScopeFilter(admin.SimpleListFilter):
    title = _("scope")
    parameter_name = "scope"

    def lookups(self, request, model_admin):
        return (("service", _("Messaging service")), ("sender", _("Lone sender")))

    def queryset(self, request, queryset):
        if self.value() == "service":
            return queryset.filter(service__isnull=False)
        if self.value() == "sender":
            return queryset.filter(sender__isnull=False)
        return queryset


@admin.register(KeywordConfig)
class KeywordConfigAdmin(admin.ModelAdmin):
    list_display = ("__str__", "scope", "enabled", "languages", "date_updated")
    list_filter = ("enabled", KeywordScopeFilter, "keyword_sets__language", "keyword_sets__kind")
    list_select_related = ("service", "sender")
    search_fields = ("service__friendly_name", "service__sid", "sender__address")
    fields = ("service", "sender", "enabled", "account", "date_created", "date_updated")
    readonly_fields = ("account", "date_created", "date_updated")
    inlines = (KeywordSetInline,)
    actions = ("reset_to_defaults",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("keyword_sets")

    def get_inlines(self, request, obj):
        # A new configuration starts with the default sets (save_model): edited once saved.
        return self.inlines if obj is not None else ()

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return ("service", "sender", *self.readonly_fields)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "sender":  # a pooled sender follows its service's configuration
            kwargs["queryset"] = Sender.objects.filter(service__isnull=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            keyword_services.keyword_config_reset(obj)
        messages.info(
            request, _("Started with the default English and Spanish keyword sets: edit them here.")
        )

    def response_add(self, request, obj, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        if "_popup" in request.POST or "_addanother" in request.POST:
            return response
        return HttpResponseRedirect(reverse("admin:messaging_keywordconfig_change", args=[obj.pk]))

    @admin.display(description=_("scope"))
    def scope(self, obj):
        return _("Messaging service") if obj.service_id else _("Lone sender")

    @admin.display(description=_("languages"))
    def languages(self, obj):
        """`en, es, es-MX`: each language, and each country with its own sets."""
        names = {
            s.language + (f"-{s.country}" if s.country else "") for s in obj.keyword_sets.all()
        }
        return ", ".join(sorted(names)) or "—"

    @admin.action(description=_("Reset the keyword sets to the defaults"))
    def reset_to_defaults(self, request, queryset):
        for config in queryset:
            keyword_services.keyword_config_reset(config)
        count = queryset.count()
        messages.success(
            request,
            ngettext(
                "%d configuration now has the default keyword sets.",
                "%d configurations now have the default keyword sets.",
                count,
            )
            % count,
        )


# ---------------------------------------------------------------- content templates


def templates_sync_report(request, providers) -> None:
    """Sync each WhatsApp provider's templates and say what happened."""
    providers = list(providers)
    if not providers:
        messages.warning(request, _("None of these is a WhatsApp Cloud API provider account."))
    for provider in providers:
        try:
            result = template_services.templates_sync(provider)
        except ProviderError as exc:
            messages.error(
                request,
                _("%(provider)s: WhatsApp could not be asked: %(error)s")
                % {"provider": provider, "error": exc.message},
            )
            continue
        messages.success(
            request,
            _("%(provider)s: %(created)d new and %(updated)d updated translations.")
            % {"provider": provider, "created": result.created, "updated": result.updated},
        )
        for skipped in result.skipped:
            messages.warning(request, _("Skipped %(what)s") % {"what": skipped})


# Fields whose change means Meta has to review the translation again.
TRANSLATION_CONTENT = frozenset(
    {"language", "header_type", "header_text", "header_media_url", "body", "footer", "buttons"}
)


TRANSLATION_WIDGETS = {
    "language": forms.TextInput(attrs={"size": 8, "placeholder": "es_MX"}),
    "header_text": forms.TextInput(attrs={"class": "vTextField"}),
    "body": forms.Textarea(attrs={"rows": 6, "class": "vLargeTextField"}),
    "footer": forms.TextInput(attrs={"class": "vTextField"}),
    "buttons": forms.Textarea(attrs={"rows": 4, "class": "vLargeTextField"}),
    "samples": forms.Textarea(attrs={"rows": 2, "class": "vLargeTextField"}),
}


class TranslationInline(admin.StackedInline):
    """One block per language; the change page's script draws a WhatsApp preview beside each
    (static/js/template_preview.js)."""

    model = ContentTemplateTranslation
    formfield_overrides = URL_FIELDS
    extra = 0
    fieldsets = (
        (None, {"fields": (("language", "status"), "rejection_reason", "provider_template_id")}),
        (
            _("Content"),
            {
                "fields": (
                    "header_type",
                    "header_text",
                    "header_media_url",
                    "body",
                    "footer",
                    "buttons",
                    "samples",
                )
            },
        ),
    )

    def get_formset(self, request, obj=None, **kwargs):
        kwargs.setdefault("widgets", TRANSLATION_WIDGETS)
        return super().get_formset(request, obj, **kwargs)

    def get_extra(self, request, obj=None, **kwargs):
        return 1 if obj is None else 0  # a new template starts with its first translation

    def get_readonly_fields(self, request, obj=None):
        # A synced template's statuses are Meta's; a template of ours is approved by hand.
        if obj is not None and obj.provider_id:
            return ("status", "rejection_reason", "provider_template_id")
        return ("rejection_reason", "provider_template_id")


@admin.register(ContentTemplate)
class ContentTemplateAdmin(admin.ModelAdmin):
    list_display = ("friendly_name", "name", "sid", "category", "provider", "languages")
    list_filter = ("category", "provider", "translations__status")
    list_select_related = ("provider",)
    search_fields = ("friendly_name", "name", "sid")
    readonly_fields = ("sid", "date_created", "date_updated")
    fields = (
        "account",
        "friendly_name",
        "name",
        "category",
        "provider",
        "default_language",
        "sid",
        "date_updated",
    )
    inlines = (TranslationInline,)
    actions = ("submit_for_approval", "sync_with_whatsapp")
    change_form_template = "admin/messaging/contenttemplate/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("translations")

    def get_fields(self, request, obj=None):
        # A new template has no sid yet: the one a blank form would show is not the one saved.
        if obj is None:
            return [f for f in self.fields if f not in ("sid", "date_updated")]
        return self.fields

    @admin.display(description=_("translations"))
    def languages(self, obj):
        """`en_US (Approved), es_MX (Pending review)`."""
        items = [f"{t.language} ({t.get_status_display()})" for t in obj.translations.all()]
        return ", ".join(items) or "—"

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "preview_i18n": preview_strings()}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_formset(self, request, form, formset, change):
        if formset.model is ContentTemplateTranslation and form.instance.provider_id:
            edited = [
                f.instance
                for f in formset.forms
                if f.instance.pk
                and TRANSLATION_CONTENT & set(f.changed_data)
                and not f.cleaned_data.get("DELETE")
            ]
            for translation in edited:
                translation.status = TemplateStatus.DRAFT
            if edited:
                messages.info(
                    request,
                    _("Edited translations need Meta's review again: submit %(languages)s.")
                    % {"languages": ", ".join(t.language for t in edited)},
                )
        super().save_formset(request, form, formset, change)

    @admin.action(description=_("Submit for WhatsApp approval"))
    def submit_for_approval(self, request, queryset):
        wanted = (TemplateStatus.DRAFT, TemplateStatus.REJECTED)
        translations = ContentTemplateTranslation.objects.filter(
            template__in=queryset, status__in=wanted
        ).select_related("template__provider")
        if not translations:
            messages.warning(request, _("No translation is waiting to be submitted."))
        for translation in translations:
            try:
                template_services.translation_submit(translation)
            except template_services.TemplateSubmitError as exc:
                messages.error(request, str(exc))
            except ProviderError as exc:
                messages.error(
                    request,
                    _("WhatsApp refused %(translation)s: %(error)s")
                    % {"translation": translation, "error": exc.message},
                )
            else:
                messages.success(
                    request,
                    _("%(translation)s submitted: %(status)s.")
                    % {"translation": translation, "status": translation.get_status_display()},
                )

    @admin.action(description=_("Sync with WhatsApp"))
    def sync_with_whatsapp(self, request, queryset):
        ids = queryset.exclude(provider=None).values_list("provider_id", flat=True)
        templates_sync_report(request, ProviderAccount.objects.filter(id__in=ids))


def preview_strings() -> dict[str, str]:
    """The preview script's words, in the admin's language."""
    return {
        "title": gettext("WhatsApp preview"),
        "empty": gettext("Type a body to see the message."),
        "characters": gettext("characters"),
        "header": gettext("Header"),
        "body": gettext("Body"),
        "footer": gettext("Footer"),
        "badButtons": gettext("The buttons are not valid JSON yet."),
        "badSamples": gettext("The sample values are not valid JSON yet."),
        "noSample": gettext("No sample for %s: it shows as a placeholder."),
        "image": gettext("Image"),
        "video": gettext("Video"),
        "document": gettext("Document"),
    }
