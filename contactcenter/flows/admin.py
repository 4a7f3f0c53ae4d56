"""Admin for bot flows: edit the draft (validated with precise messages), publish it, import
a Studio export and export either, attach flows to senders and services, read executions
with their path drawn on the flow's diagram, enable functions and allow HTTP hosts."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import content_disposition_header
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from contactcenter.flows import engine
from contactcenter.flows.diagram import flow_diagram_svg
from contactcenter.flows.functions import registered_functions
from contactcenter.flows.models import (
    DemoAppointment,
    Execution,
    ExecutionStatus,
    Flow,
    FlowAttachment,
    FlowFunctionConfig,
    FlowRevision,
    HttpAllowedHost,
    Step,
    default_definition,
)
from contactcenter.flows.selectors import draft_is_published, function_secrets
from contactcenter.flows.services import FlowError, definition_errors, flow_publish
from contactcenter.flows.studio import studio_export, studio_import
from messaging import crypto
from messaging.models import Account

WIDGET_LABELS = {
    "trigger": _("Trigger"),
    "send-message": _("Send message"),
    "send-and-wait-for-reply": _("Send & wait for reply"),
    "split-based-on": _("Split based on…"),
    "set-variables": _("Set variables"),
    "run-subflow": _("Run subflow"),
    "run-function": _("Run function"),
    "make-http-request": _("Make HTTP request"),
    "send-to-agent": _("Send to agent"),
}


def diagram(definition: dict, path_steps: list[dict] | None = None) -> str:
    labels = {k: str(v) for k, v in WIDGET_LABELS.items()}
    return mark_safe(flow_diagram_svg(definition, path=path_steps, labels=labels))


# ---------------------------------------------------------------- flows


class PrettyJSONField(forms.JSONField):
    """The definition indented, so that an admin can read and edit it."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class FlowForm(forms.ModelForm):
    definition = PrettyJSONField(
        label=_("draft definition"),
        initial=default_definition,
        widget=forms.Textarea(
            attrs={"rows": 24, "class": "vLargeTextField", "spellcheck": "false"}
        ),
        help_text=_("Studio's flow JSON. Edits stay a draft until the flow is published."),
    )

    class Meta:
        model = Flow
        fields = [
            "account",
            "friendly_name",
            "description",
            "time_zone",
            "test_addresses",
            "definition",
        ]

    def clean_definition(self):
        definition = self.cleaned_data["definition"]
        flow = self.instance
        account = self.cleaned_data.get("account") or getattr(flow, "account", None)
        probe = Flow(pk=flow.pk, account=account) if account else flow
        errors = definition_errors(probe, definition) if account else []
        if errors:
            raise ValidationError([str(e) for e in errors])
        return definition


class AttachmentInline(admin.TabularInline):
    model = FlowAttachment
    extra = 0
    verbose_name = _("answers new conversations on")
    verbose_name_plural = _("answers new conversations on (senders or messaging services)")


class RevisionInline(admin.TabularInline):
    model = FlowRevision
    extra = 0
    can_delete = False
    fields = ["revision", "published_by", "date_created", "export"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("export"))
    def export(self, revision: FlowRevision) -> str:
        url = reverse("admin:flows_flow_export", args=[revision.flow_id])
        return format_html(
            '<a href="{}?revision={}">{}</a>', url, revision.revision, gettext("Studio JSON")
        )


class StudioImportForm(forms.Form):
    account = forms.ModelChoiceField(Account.objects.all(), label=_("account"))
    friendly_name = forms.CharField(label=_("name"), max_length=64)
    studio_file = forms.FileField(label=_("Studio export (.json)"), required=False)
    studio_json = forms.CharField(
        label=_("or paste the JSON"), required=False, widget=forms.Textarea(attrs={"rows": 12})
    )

    def clean(self):
        cleaned = super().clean()
        text = cleaned.get("studio_json") or ""
        upload = cleaned.get("studio_file")
        if upload:
            if upload.size > 1024 * 1024:
                raise ValidationError(gettext("The file is larger than 1 MB."))
            text = upload.read().decode("utf-8", errors="replace")
        if not text.strip():
            raise ValidationError(gettext("Choose a Studio export file or paste its JSON."))
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ValidationError(
                gettext("The file is not JSON: %(error)s") % {"error": error}
            ) from error
        result = studio_import(data)
        problems = [gettext("Not supported: %(what)s") % {"what": u} for u in result.unsupported]
        problems += [
            str(e)
            for e in result.errors
            if not any(u.split(" ")[0] in str(e) for u in result.unsupported)
        ]
        if problems:
            raise ValidationError(problems)
        cleaned["result"] = result
        return cleaned


@admin.register(Flow)
class FlowAdmin(admin.ModelAdmin):
    form = FlowForm
    list_display = [
        "friendly_name",
        "sid",
        "published_revision",
        "draft_state",
        "answers_on",
        "active_executions",
    ]
    search_fields = ["friendly_name", "sid"]
    readonly_fields = ["sid", "published_revision", "flow_diagram"]
    fieldsets = [
        (
            None,
            {"fields": ["account", "friendly_name", "description", "sid", "published_revision"]},
        ),
        (_("Diagram"), {"fields": ["flow_diagram"]}),
        (_("Definition"), {"fields": ["definition", "time_zone", "test_addresses"]}),
    ]
    inlines = [AttachmentInline, RevisionInline]
    actions = ["publish"]
    change_form_template = "admin/flows/flow/change_form.html"
    change_list_template = "admin/flows/flow/change_list.html"

    def get_urls(self):
        own = [
            path("import/", self.admin_site.admin_view(self.import_view), name="flows_flow_import"),
            path(
                "<int:flow_id>/export/",
                self.admin_site.admin_view(self.export_view),
                name="flows_flow_export",
            ),
        ]
        return own + super().get_urls()

    @admin.display(description=_("draft"))
    def draft_state(self, flow: Flow) -> str:
        published = draft_is_published(flow)
        if published is None:
            return gettext("never published")
        return gettext("same as published") if published else gettext("unpublished changes")

    @admin.display(description=_("answers on"))
    def answers_on(self, flow: Flow) -> str:
        return ", ".join(str(a.sender or a.service) for a in flow.attachments.all()) or "—"

    @admin.display(description=_("active executions"))
    def active_executions(self, flow: Flow) -> int:
        return flow.active_count

    def get_queryset(self, request):
        # The list's columns, without a query per row for them.
        active = Count("executions", filter=Q(executions__status=ExecutionStatus.ACTIVE))
        return (
            super()
            .get_queryset(request)
            .annotate(active_count=active)
            .prefetch_related("attachments__sender", "attachments__service")
        )

    @admin.display(description=_("diagram"))
    def flow_diagram(self, flow: Flow) -> str:
        return diagram(flow.definition) if flow.pk else "—"

    @admin.action(description=_("Publish the draft of the selected flows"))
    def publish(self, request, queryset):
        for flow in queryset:
            self._publish(request, flow)

    def _publish(self, request, flow: Flow) -> None:
        try:
            revision = flow_publish(flow, by=request.user.get_username())
        except FlowError as error:
            self.message_user(request, f"{flow}: {error.message}", messages.ERROR)
        else:
            self.message_user(
                request,
                gettext("%(flow)s: revision %(n)s is published.")
                % {"flow": flow, "n": revision.revision},
                messages.SUCCESS,
            )

    def response_change(self, request, obj):
        if "_publish" in request.POST:
            self._publish(request, obj)
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def export_view(self, request, flow_id: int):
        flow = get_object_or_404(Flow, pk=flow_id)
        definition = flow.definition
        name = f"{flow.friendly_name}-draft"
        if "revision" in request.GET:
            wanted = request.GET["revision"]
            if not wanted.isdigit():
                raise Http404("No such revision.")
            revision = get_object_or_404(FlowRevision, flow=flow, revision=int(wanted))
            definition, name = revision.definition, f"{flow.friendly_name}-r{revision.revision}"
        body = json.dumps(studio_export(definition), indent=2, ensure_ascii=False)
        response = HttpResponse(body, content_type="application/json")
        response["Content-Disposition"] = content_disposition_header(True, f"{name}.json")
        return response

    def import_view(self, request):
        form = StudioImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            result = form.cleaned_data["result"]
            flow, created = Flow.objects.get_or_create(
                account=form.cleaned_data["account"],
                friendly_name=form.cleaned_data["friendly_name"],
                defaults={
                    "definition": result.definition,
                    "description": result.definition.get("description", "")[:255],
                },
            )
            if not created:
                flow.definition = result.definition
                flow.save(update_fields=["definition", "date_updated"])
            for warning in result.warnings:
                self.message_user(request, warning, messages.WARNING)
            self.message_user(
                request,
                gettext("Imported into the draft of %(flow)s. Check it, then publish.")
                % {"flow": flow},
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:flows_flow_change", args=[flow.pk]))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": gettext("Import a Studio flow"),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/flows/flow/import.html", context)


# ---------------------------------------------------------------- executions


class StepInline(admin.TabularInline):
    model = Step
    extra = 0
    can_delete = False
    fields = [
        "index",
        "name",
        "widget_type",
        "event",
        "next_state",
        "step_data",
        "error",
        "duration_ms",
        "date_created",
    ]
    readonly_fields = fields
    ordering = ["index", "id"]

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("data"))
    def step_data(self, step: Step) -> str:
        text = json.dumps(step.data, ensure_ascii=False)
        return format_html("<code>{}</code>", text if len(text) <= 160 else text[:159] + "…")

    @admin.display(description=_("took"))
    def took(self, step: Step) -> str:
        return f"{step.duration_ms:.2f} ms"


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    list_display = [
        "sid",
        "flow",
        "contact_address",
        "business_address",
        "status",
        "current_state",
        "waiting",
        "step_count",
        "date_created",
    ]
    list_filter = ["status", "waiting", "flow"]
    search_fields = ["sid", "contact_address", "business_address"]
    list_select_related = ["flow"]
    inlines = [StepInline]
    actions = ["end_executions"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "sid",
                    "flow",
                    "revision_label",
                    "contact_address",
                    "business_address",
                    "conversation",
                    "parent",
                    "trigger",
                ]
            },
        ),
        (
            _("State"),
            {
                "fields": [
                    "status",
                    "ended_reason",
                    "current_state",
                    "waiting",
                    "wait_until",
                    "step_count",
                    "expires_at",
                    "date_created",
                    "date_ended",
                ]
            },
        ),
        (_("Path"), {"fields": ["path_diagram"]}),
        (_("Context"), {"fields": ["context_json"], "classes": ["collapse"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [f for fs in self.fieldsets for f in fs[1]["fields"]]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # executions change only by running (or the "end" action)

    @admin.display(description=_("revision"))
    def revision_label(self, execution: Execution) -> str:
        return (
            gettext("draft")
            if execution.draft_definition is not None
            else str(execution.revision.revision if execution.revision else "—")
        )

    @admin.display(description=_("path through the flow"))
    def path_diagram(self, execution: Execution) -> str:
        definition = execution.draft_definition or (
            execution.revision.definition if execution.revision else {}
        )
        steps = [
            {"name": s.name, "event": s.event, "index": s.index}
            for s in execution.steps.exclude(widget_type="").order_by("index", "id")
        ]
        waits_here = execution.status == ExecutionStatus.ACTIVE and execution.current_state
        if waits_here and (not steps or steps[-1]["name"] != execution.current_state):
            steps.append(
                {"name": execution.current_state, "event": "", "index": execution.step_count}
            )
        return diagram(definition, steps)

    @admin.display(description=_("context"))
    def context_json(self, execution: Execution) -> str:
        return format_html(
            "<pre style='white-space:pre-wrap'>{}</pre>",
            json.dumps(execution.context, indent=2, ensure_ascii=False),
        )

    @admin.action(description=_("End the selected executions"))
    def end_executions(self, request, queryset):
        ended = sum(
            engine.execution_end(
                e.pk, reason=f"Ended by {request.user.get_username()} in the admin."
            )
            for e in queryset
        )
        self.message_user(
            request,
            ngettext("%(n)d execution ended.", "%(n)d executions ended.", ended) % {"n": ended},
        )


# ---------------------------------------------------------------- functions and hosts


class FunctionConfigForm(forms.ModelForm):
    secrets = forms.CharField(
        label=_("secrets"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text=_(
            "NAME=value, one per line. Stored encrypted and never shown again; leave empty "
            "to keep the current ones, write NAME= to remove one."
        ),
    )

    class Meta:
        model = FlowFunctionConfig
        fields = ["name", "enabled", "environment"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = sorted(registered_functions())
        if self.instance.pk and self.instance.name not in names:
            names.append(self.instance.name)
        self.fields["name"] = forms.ChoiceField(
            label=_("function"), choices=[(n, n) for n in names]
        )

    def clean_secrets(self):
        updates = {}
        for number, line in enumerate(self.cleaned_data["secrets"].splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise ValidationError(gettext("Line %(n)s is not NAME=value.") % {"n": number})
            updates[key.strip()] = value.strip()
        return updates

    def save(self, commit=True):
        config = super().save(commit=False)
        current = function_secrets(config) if config.pk else {}
        for key, value in self.cleaned_data["secrets"].items():
            if value:
                current[key] = value
            else:
                current.pop(key, None)
        config.secrets_encrypted = crypto.encrypt(json.dumps(current)) if current else ""
        if commit:
            config.save()
        return config


@admin.register(FlowFunctionConfig)
class FlowFunctionConfigAdmin(admin.ModelAdmin):
    form = FunctionConfigForm
    list_display = ["name", "enabled", "description", "secret_names", "date_updated"]
    readonly_fields = ["description", "parameters", "secret_names"]

    @admin.display(description=_("what it does"))
    def description(self, config: FlowFunctionConfig) -> str:
        registered = registered_functions().get(config.name)
        return registered.description if registered else gettext("Not registered in this version.")

    @admin.display(description=_("parameters"))
    def parameters(self, config: FlowFunctionConfig) -> str:
        registered = registered_functions().get(config.name)
        return ", ".join(registered.parameters) if registered else "—"

    @admin.display(description=_("secrets set"))
    def secret_names(self, config: FlowFunctionConfig) -> str:
        return ", ".join(sorted(function_secrets(config))) or "—"


@admin.register(HttpAllowedHost)
class HttpAllowedHostAdmin(admin.ModelAdmin):
    list_display = ["host", "note", "date_created"]
    search_fields = ["host"]


@admin.register(DemoAppointment)
class DemoAppointmentAdmin(admin.ModelAdmin):
    list_display = ["document", "patient", "starts_at", "state"]
    list_filter = ["state"]
    search_fields = ["document", "patient"]
