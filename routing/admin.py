"""Admin for the routing engine.

Configuration (workspaces, activities, channels, workers, queues, workflows) is edited here;
writes with side effects go through `routing.services` (defaults of a new workspace, queue
membership, worker activity and capacity, deletes the engine refuses). Tasks, reservations and
events are shown read-only: tasks change only through the actions, which call the services.
The expression page evaluates a target or filter expression against a workspace's workers or
tasks, so that an admin can try an expression before putting it in a queue or a workflow.
"""

import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.widgets import AdminRadioSelect
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from routing.errors import RoutingError
from routing.events import EVENT_TYPES, RESOURCE_TYPES
from routing.expressions import (
    MAX_LENGTH,
    Expression,
    ExpressionError,
    compile_expression,
    validate_expression,
)
from routing.models import (
    ACTIVE_TASK,
    Activity,
    Event,
    Reservation,
    Task,
    TaskChannel,
    TaskQueue,
    Worker,
    WorkerChannel,
    Workflow,
    Workspace,
)
from routing.services import config as config_services
from routing.services import tasks as task_services
from routing.services import workers as worker_services
from routing.services.assignment import task_context, worker_context
from routing.workflows import TARGET_ROOTS

# A URL typed without a scheme means https (Django 6's default, chosen now).
URL_FIELDS = {models.URLField: {"assume_scheme": "https"}}

# The expression page evaluates at most this many tasks (newest first) and lists this many
# matches; workers are all evaluated (a queue's membership does the same).
TASK_SCAN_LIMIT = 5000
MATCHES_SHOWN = 200
# Members listed on a queue's page.
MEMBERS_SHOWN = 100


def _actor(request: HttpRequest) -> str:
    """Who caused an event, as the services record it."""
    return request.user.get_username()[:64] or "admin"


def _code_textarea(rows: int) -> forms.Textarea:
    return forms.Textarea(
        attrs={"rows": rows, "class": "vLargeTextField routing-code", "spellcheck": "false"}
    )


def _attributes_text(value: Any) -> str:
    """One key per line with its value compact: readable in a table cell and a detail page."""
    if not isinstance(value, dict) or not value:
        return json.dumps(value, ensure_ascii=False)
    lines = [
        f"  {json.dumps(key, ensure_ascii=False)}: {json.dumps(item, ensure_ascii=False)}"
        for key, item in sorted(value.items())
    ]
    return "{\n" + ",\n".join(lines) + "\n}"


def _json_block(value: Any) -> str:
    return format_html('<pre class="routing-json">{}</pre>', _attributes_text(value))


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"


def _change_url(obj: models.Model) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


class PrettyJSONField(forms.JSONField):
    """JSON shown indented, so that a workflow configuration can be read and edited."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        if value is None and not self.required:
            return ""
        return self.dumps(value)

    def dumps(self, value: Any) -> str:
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)


class AttributesJSONField(PrettyJSONField):
    """Attributes: one key per line, each value on one line."""

    def dumps(self, value: Any) -> str:
        return _attributes_text(value)


JSON_FIELDS = {models.JSONField: {"form_class": AttributesJSONField, "widget": _code_textarea(6)}}


class ServiceDeleteMixin:
    """Deletes go through a service that may refuse (RoutingError): the refusal is shown on
    the object's page instead of a crash. Bulk delete is off: one refusal would be reported
    as a success of the whole batch."""

    delete_service = None  # a function of the object

    def delete_model(self, request, obj):
        type(self).delete_service(obj)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except RoutingError as error:
            messages.error(request, error.message)
            return HttpResponseRedirect(
                reverse(
                    f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                    args=[object_id],
                )
            )

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class ReadOnlyAdmin(admin.ModelAdmin):
    """Engine state: shown, never edited here (the services own every transition)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def name_filter(title: str, parameter: str, lookup: str, names) -> type[admin.SimpleListFilter]:
    """A list filter by name across workspaces (every workspace has the same default
    activities and channels): one choice per distinct name of `names()`."""

    class NameFilter(admin.SimpleListFilter):
        parameter_name = parameter

        def lookups(self, request, model_admin):
            return [(name, name) for name in dict.fromkeys(names())]

        def queryset(self, request, queryset):
            value = self.value()
            return queryset.filter(**{lookup: value}) if value else queryset

    NameFilter.title = title
    return NameFilter


ActivityFilter = name_filter(
    _("activity"),
    "activity",
    "activity__friendly_name",
    lambda: (
        Activity.objects.order_by("friendly_name")
        .values_list("friendly_name", flat=True)
        .distinct()
    ),
)
TaskChannelFilter = name_filter(
    _("task channel"),
    "channel",
    "task_channel__unique_name",
    lambda: (
        TaskChannel.objects.order_by("unique_name").values_list("unique_name", flat=True).distinct()
    ),
)


# ---------------------------------------------------------------- workspaces


WORKSPACE_WIDGETS = {
    "events_filter": _code_textarea(2),
    "event_callback_secret": forms.TextInput(attrs={"class": "routing-code", "size": 50}),
}


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    formfield_overrides = {**URL_FIELDS, **JSON_FIELDS}
    list_display = (
        "friendly_name",
        "sid",
        "default_activity",
        "timeout_activity",
        "multitask_enabled",
        "worker_count",
        "date_created",
    )
    list_select_related = ("default_activity", "timeout_activity")
    search_fields = ("friendly_name", "sid")
    readonly_fields = ("sid", "evaluate_link", "date_created", "date_updated")

    def get_fieldsets(self, request, obj=None):
        main = ["friendly_name", "sid", "multitask_enabled"]
        if obj is not None:
            # A new workspace gets the activities Offline, Available, Unavailable and Break;
            # both of these start as Offline.
            main[2:2] = ["default_activity", "timeout_activity"]
        fieldsets = [
            (None, {"fields": main}),
            (
                _("Event callback"),
                {"fields": ("event_callback_url", "event_callback_secret", "events_filter")},
            ),
        ]
        if obj is not None:
            fieldsets.append((_("Tools"), {"fields": ("evaluate_link",)}))
            fieldsets.append((_("Dates"), {"fields": ("date_created", "date_updated")}))
        return fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs.setdefault("widgets", WORKSPACE_WIDGETS)
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None:
            for name in ("default_activity", "timeout_activity"):
                if name in form.base_fields:
                    form.base_fields[name].queryset = Activity.objects.filter(workspace=obj)
        return form

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(worker_total=Count("workers"))

    @admin.display(description=_("workers"), ordering="worker_total")
    def worker_count(self, obj):
        return obj.worker_total

    @admin.display(description=_("expressions"))
    def evaluate_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:routing_workspace_evaluate", args=[obj.pk]),
            gettext("Evaluate an expression against this workspace's workers or tasks"),
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # Default activities and channels, Offline as default/timeout activity, a callback
        # secret when left empty (idempotent, so harmless on change).
        config_services.workspace_defaults_ensure(obj)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/evaluate/",
                self.admin_site.admin_view(self.evaluate_view),
                name="routing_workspace_evaluate",
            ),
            *super().get_urls(),
        ]

    def evaluate_view(self, request, object_id):
        workspace = self.get_object(request, object_id)
        if workspace is None:
            raise Http404(gettext("No such workspace."))
        if not self.has_view_permission(request, workspace):
            raise PermissionDenied
        form = EvaluateForm(request.GET or None, workspace=workspace)
        result = None
        error = None
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            try:
                result = evaluate(workspace, data["expression"], data["mode"], data["task"])
            except ExpressionError as exc:
                error = ExpressionProblem.of(data["expression"], exc)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Evaluate an expression"),
            "subtitle": str(workspace),
            "workspace": workspace,
            "form": form,
            "result": result,
            "error": error,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/routing/evaluate.html", context)


# ---------------------------------------------------------------- expression page


MODES = (
    ("workers", _("Workers, as a queue's target workers (worker attributes as bare keys)")),
    ("target", _("Workers, as a workflow target (task.* and worker.* keys, with a sample task)")),
    ("tasks", _("Waiting and active tasks, as a workflow filter (task attributes as bare keys)")),
)


class EvaluateForm(forms.Form):
    expression = forms.CharField(
        label=_("Expression"),
        max_length=MAX_LENGTH,
        strip=False,
        widget=_code_textarea(3),
        help_text=_("e.g. languages HAS 'es' AND level >= 2"),
    )
    mode = forms.ChoiceField(
        label=_("Evaluate against"),
        choices=MODES,
        initial="workers",
        widget=AdminRadioSelect(attrs={"class": "radiolist"}),
    )
    task_sid = forms.CharField(
        label=_("Sample task"),
        required=False,
        max_length=34,
        widget=forms.TextInput(attrs={"class": "routing-code", "size": 38}),
        help_text=_(
            "Target mode: the sid of a task of this workspace, whose attributes are task.*; "
            "or leave it empty and type the attributes below."
        ),
    )
    task_attributes = AttributesJSONField(
        label=_("Sample task attributes"),
        required=False,
        widget=_code_textarea(3),
        help_text=_('Target mode: a JSON object, e.g. {"language": "es", "channel": "sms"}.'),
    )

    def __init__(self, *args, workspace: Workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspace = workspace

    def clean(self):
        data = super().clean()
        data["task"] = {}
        if data.get("mode") != "target":
            return data
        sid = (data.get("task_sid") or "").strip()
        if sid:
            task = Task.objects.filter(workspace=self.workspace, sid=sid).first()
            if task is None:
                self.add_error("task_sid", _("No task with this sid in the workspace."))
            else:
                data["task"] = task_context(task)
            return data
        attributes = data.get("task_attributes")
        if attributes in (None, ""):
            attributes = {}
        if not isinstance(attributes, dict):
            self.add_error("task_attributes", _("Enter a JSON object."))
        else:
            data["task"] = attributes
        return data


@dataclass
class ExpressionProblem:
    """A parse error, with the line of the text it is on and a caret under the character."""

    message: str
    position: int
    line: str
    pad: str

    @classmethod
    def of(cls, text: str, error: ExpressionError) -> "ExpressionProblem":
        position = max(0, min(error.position, len(text)))
        start = text.rfind("\n", 0, position) + 1
        end = text.find("\n", position)
        line = text[start : end if end != -1 else len(text)].rstrip("\r")
        # Keep tabs so that the caret lines up under a tab-indented expression.
        pad = "".join("\t" if char == "\t" else " " for char in text[start:position])
        return cls(error.message, error.position, line, pad)


@dataclass
class Match:
    obj: models.Model
    sid: str
    name: str
    detail: str
    attributes: dict

    @property
    def url(self) -> str:
        return _change_url(self.obj)

    @property
    def attributes_json(self) -> str:
        return _attributes_text(self.attributes)


@dataclass
class Evaluation:
    mode: str
    expression: Expression
    matches: list[Match]
    total_matches: int
    evaluated: int
    truncated: bool  # only the newest TASK_SCAN_LIMIT tasks were evaluated

    @property
    def shown(self) -> int:
        return len(self.matches)

    @property
    def keys(self) -> list[str]:
        return sorted(self.expression.keys)


def evaluate(workspace: Workspace, text: str, mode: str, task: dict) -> Evaluation:
    """Evaluate `text` as the engine would: raises ExpressionError when it does not parse."""
    if mode == "target":
        expression = validate_expression(text, allowed_roots=TARGET_ROOTS)
    else:
        expression = compile_expression(text)
    matches: list[Match] = []
    total = evaluated = 0
    truncated = False
    if mode == "tasks":
        rows = (
            Task.objects.filter(workspace=workspace, assignment_status__in=ACTIVE_TASK)
            .select_related("queue", "task_channel")
            .order_by("-date_created", "-id")[: TASK_SCAN_LIMIT + 1]
        )
        tasks = list(rows)
        truncated = len(tasks) > TASK_SCAN_LIMIT
        for found in tasks[:TASK_SCAN_LIMIT]:
            evaluated += 1
            # Like a workflow filter: the task's attributes as bare keys.
            if expression.evaluate(found.attributes or {}):
                total += 1
                if len(matches) < MATCHES_SHOWN:
                    queue = found.queue.friendly_name if found.queue_id else "—"
                    matches.append(
                        Match(
                            found,
                            found.sid,
                            found.task_channel.unique_name,
                            f"{found.get_assignment_status_display()} · {queue}",
                            found.attributes,
                        )
                    )
    else:
        workers = Worker.objects.filter(workspace=workspace).select_related("activity")
        needs_channels = mode == "target" and any(
            key.startswith("worker.channel") for key in expression.keys
        )
        if needs_channels:
            workers = workers.prefetch_related("channels__task_channel")
        for worker in workers.order_by("friendly_name", "id").iterator(chunk_size=2000):
            evaluated += 1
            if mode == "target":
                channels = list(worker.channels.all()) if needs_channels else None
                context = {"task": task, "worker": worker_context(worker, channels)}
            else:
                # Like a queue's target_workers: the worker's attributes as bare keys.
                context = worker.attributes or {}
            if expression.evaluate(context):
                total += 1
                if len(matches) < MATCHES_SHOWN:
                    matches.append(
                        Match(
                            worker,
                            worker.sid,
                            worker.friendly_name,
                            worker.activity.friendly_name,
                            worker.attributes,
                        )
                    )
    return Evaluation(mode, expression, matches, total, evaluated, truncated)


# ---------------------------------------------------------------- activities, channels


@admin.register(Activity)
class ActivityAdmin(ServiceDeleteMixin, admin.ModelAdmin):
    delete_service = config_services.activity_delete
    list_display = ("friendly_name", "workspace", "available", "worker_count", "sid")
    list_filter = ("workspace", "available")
    search_fields = ("friendly_name", "sid")

    def get_readonly_fields(self, request, obj=None):
        fields = ["sid", "date_created", "date_updated"]
        if obj is not None:
            fields.append("workspace")
            # Workers keep a copy of their activity's availability (the assignment query
            # needs no join): while workers are in it, availability cannot flip here.
            if obj.workers.exists():
                fields.append("available")
        return fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(worker_total=Count("workers"))

    @admin.display(description=_("workers"), ordering="worker_total")
    def worker_count(self, obj):
        return obj.worker_total


@admin.register(TaskChannel)
class TaskChannelAdmin(admin.ModelAdmin):
    list_display = ("unique_name", "friendly_name", "workspace", "sid")
    list_filter = ("workspace",)
    search_fields = ("unique_name", "friendly_name", "sid")

    def get_readonly_fields(self, request, obj=None):
        fields = ["sid", "date_created", "date_updated"]
        if obj is not None:
            # Tasks name their channel by unique_name.
            fields += ["workspace", "unique_name"]
        return fields


# ---------------------------------------------------------------- workers


class WorkerChannelForm(forms.ModelForm):
    class Meta:
        model = WorkerChannel
        fields = ("task_channel", "capacity", "available")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # Reservations hold capacity on this row: it never moves to another channel.
            self.fields["task_channel"].disabled = True


class WorkerChannelFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        seen: set[int] = set()
        workspace_id = self.instance.workspace_id
        for form in self.forms:
            channel = getattr(form, "cleaned_data", {}).get("task_channel")
            if channel is None:
                continue
            if workspace_id and channel.workspace_id != workspace_id:
                form.add_error("task_channel", _("Choose a task channel of this workspace."))
            elif channel.pk in seen:
                form.add_error("task_channel", _("This channel is listed twice."))
            seen.add(channel.pk)


class WorkerChannelInline(admin.TabularInline):
    model = WorkerChannel
    form = WorkerChannelForm
    formset = WorkerChannelFormSet
    fields = ("task_channel", "capacity", "available", "assigned_tasks")
    readonly_fields = ("assigned_tasks",)
    extra = 0
    # Deleting a row would delete the reservations that hold its capacity: turn it off.
    can_delete = False
    verbose_name_plural = _("Channels and capacity")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "task_channel":
            return db_field.formfield(**kwargs)  # a plain select, without add/edit links
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        field = formset.form.base_fields["task_channel"]
        channels = TaskChannel.objects.select_related("workspace")
        field.queryset = channels.filter(workspace=obj.workspace) if obj else channels
        return formset


class WorkerForm(forms.ModelForm):
    class Meta:
        model = Worker
        fields = ("workspace", "friendly_name", "user", "activity", "attributes")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        activity = self.fields.get("activity")
        if activity is None:
            return
        if self.instance.pk:
            activity.queryset = Activity.objects.filter(workspace_id=self.instance.workspace_id)
        else:
            activity.required = False
            activity.help_text = _("Empty: the workspace's default activity.")
            activity.queryset = Activity.objects.select_related("workspace").order_by(
                "workspace__friendly_name", "friendly_name"
            )
            activity.label_from_instance = lambda a: f"{a.workspace} · {a.friendly_name}"

    def clean(self):
        data = super().clean()
        workspace = data.get("workspace")
        if (
            not self.instance.pk
            and workspace is not None
            and not data.get("activity")
            and workspace.default_activity_id is None
        ):
            self.add_error("activity", _("The workspace has no default activity; choose one."))
        return data


@admin.register(Worker)
class WorkerAdmin(ServiceDeleteMixin, admin.ModelAdmin):
    delete_service = worker_services.worker_delete
    form = WorkerForm
    formfield_overrides = JSON_FIELDS
    inlines = (WorkerChannelInline,)
    list_display = (
        "friendly_name",
        "workspace",
        "activity",
        "available",
        "user",
        "idle_since",
        "sid",
    )
    list_filter = ("workspace", "available", ActivityFilter)
    list_select_related = ("workspace", "activity", "user")
    search_fields = ("friendly_name", "sid", "user__username")
    actions = ("set_activity",)

    def get_readonly_fields(self, request, obj=None):
        fields = ["sid", "available", "activity_changed_at", "idle_since", "queue_list"]
        fields += ["date_created", "date_updated"]
        if obj is not None:
            fields.append("workspace")
        return fields

    def get_fieldsets(self, request, obj=None):
        main = {"fields": ("workspace", "friendly_name", "sid", "user", "attributes")}
        if obj is None:
            main["description"] = gettext(
                "Without channel rows below, the new worker gets every task channel of its "
                "workspace with capacity 1."
            )
        fieldsets = [
            (None, main),
            (
                _("Activity"),
                {"fields": ("activity", "available", "activity_changed_at", "idle_since")},
            ),
        ]
        if obj is not None:
            fieldsets.append((_("Queues"), {"fields": ("queue_list",)}))
            fieldsets.append((_("Dates"), {"fields": ("date_created", "date_updated")}))
        return fieldsets

    def lookup_allowed(self, lookup, value, request=None):
        # The "all members" link of a queue's page.
        return lookup == "queues__id__exact" or super().lookup_allowed(lookup, value, request)

    @admin.display(description=_("member of"))
    def queue_list(self, obj):
        queues = obj.queues.order_by("friendly_name")
        if not queues:
            return "—"
        return format_html_join(", ", '<a href="{}">{}</a>', ((_change_url(q), q) for q in queues))

    def save_model(self, request, obj, form, change):
        actor = _actor(request)
        if not change:
            # One channel per task channel (capacity 1), queue memberships, worker.created.
            worker = worker_services.worker_create(
                workspace=obj.workspace,
                friendly_name=obj.friendly_name,
                attributes=obj.attributes,
                activity=obj.activity if obj.activity_id else None,
                user=obj.user,
                actor=actor,
            )
            for name in ("id", "sid", "activity_id", "available", "activity_changed_at"):
                setattr(obj, name, getattr(worker, name))
            obj.idle_since, obj.date_created = worker.idle_since, worker.date_created
            obj._state.adding, obj._state.db = False, worker._state.db
            return
        # Through the services, on freshly locked rows: the engine changes `available`,
        # `idle_since` and the channel counters concurrently.
        worker_services.worker_update(
            obj,
            friendly_name=obj.friendly_name,
            attributes=obj.attributes,
            user=obj.user,
            actor=actor,
        )
        if "activity" in form.changed_data:
            worker_services.worker_activity_set(obj, activity=obj.activity, actor=actor)

    def save_formset(self, request, form, formset, change):
        if formset.model is not WorkerChannel:
            return super().save_formset(request, form, formset, change)
        worker = form.instance
        # What the change message of the admin's history reports.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline in formset.forms:
            if not inline.has_changed() or not getattr(inline, "cleaned_data", None):
                continue
            channel = inline.cleaned_data["task_channel"]
            # A new worker already has a row per channel (worker_create); a new channel of
            # the workspace may not have one yet.
            WorkerChannel.objects.get_or_create(worker=worker, task_channel=channel)
            row = worker_services.worker_channel_update(
                worker,
                task_channel=channel.unique_name,
                capacity=inline.cleaned_data["capacity"],
                available=inline.cleaned_data["available"],
                actor=_actor(request),
            )
            if inline.instance.pk:
                formset.changed_objects.append((row, inline.changed_data))
            else:
                formset.new_objects.append(row)

    @admin.action(description=_("Set activity…"))
    def set_activity(self, request, queryset):
        workspaces = set(queryset.values_list("workspace_id", flat=True))
        if len(workspaces) != 1:
            messages.error(request, _("Choose workers of one workspace."))
            return None
        workspace = Workspace.objects.get(pk=workspaces.pop())
        form = SetActivityForm(
            request.POST if "apply" in request.POST else None, workspace=workspace
        )
        if form.is_bound and form.is_valid():
            activity = form.cleaned_data["activity"]
            done = 0
            for worker in queryset:
                try:
                    worker_services.worker_activity_set(
                        worker, activity=activity, actor=_actor(request)
                    )
                    done += 1
                except RoutingError as error:
                    messages.error(request, f"{worker.friendly_name}: {error.message}")
            messages.success(
                request,
                ngettext(
                    "%(count)d worker is now %(activity)s.",
                    "%(count)d workers are now %(activity)s.",
                    done,
                )
                % {"count": done, "activity": activity.friendly_name},
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Set the activity of workers"),
            "form": form,
            "workers": queryset,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/routing/set_activity.html", context)


class SetActivityForm(forms.Form):
    activity = forms.ModelChoiceField(queryset=Activity.objects.none(), label=_("Activity"))

    def __init__(self, *args, workspace: Workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["activity"].queryset = Activity.objects.filter(workspace=workspace)


# ---------------------------------------------------------------- queues


class TaskQueueForm(forms.ModelForm):
    class Meta:
        model = TaskQueue
        fields = ("workspace", "friendly_name", "target_workers", "task_order")
        fields += ("max_reserved_workers",)
        widgets = {"target_workers": _code_textarea(3)}


@admin.register(TaskQueue)
class TaskQueueAdmin(ServiceDeleteMixin, admin.ModelAdmin):
    delete_service = config_services.queue_delete
    form = TaskQueueForm
    list_display = (
        "friendly_name",
        "target",
        "member_count",
        "waiting_count",
        "task_order",
        "max_reserved_workers",
        "sid",
        "workspace",
    )
    list_filter = ("workspace", "task_order")
    list_select_related = ("workspace",)
    search_fields = ("friendly_name", "sid", "target_workers")

    def get_readonly_fields(self, request, obj=None):
        fields = ["sid", "current_members", "date_created", "date_updated"]
        if obj is not None:
            fields.append("workspace")
        return fields

    def get_fieldsets(self, request, obj=None):
        main = (
            "workspace",
            "friendly_name",
            "sid",
            "target_workers",
            "task_order",
            "max_reserved_workers",
        )
        fieldsets = [(None, {"fields": main})]
        if obj is not None:
            fieldsets.append((_("Members"), {"fields": ("current_members",)}))
            fieldsets.append((_("Dates"), {"fields": ("date_created", "date_updated")}))
        return fieldsets

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_total=Count("members", distinct=True),
                waiting_total=Count(
                    "tasks",
                    filter=Q(tasks__assignment_status__in=["pending", "reserved"]),
                    distinct=True,
                ),
            )
        )

    @admin.display(description=_("target workers"), ordering="target_workers")
    def target(self, obj):
        return format_html('<code class="routing-inline-code">{}</code>', obj.target_workers)

    @admin.display(description=_("members"), ordering="member_total")
    def member_count(self, obj):
        return obj.member_total

    @admin.display(description=_("waiting tasks"), ordering="waiting_total")
    def waiting_count(self, obj):
        return obj.waiting_total

    @admin.display(description=_("current members"))
    def current_members(self, obj):
        members = list(
            Worker.objects.filter(queuemembership__queue=obj)
            .select_related("activity")
            .order_by("friendly_name")[: MEMBERS_SHOWN + 1]
        )
        if not members:
            return gettext("No worker matches the target workers expression.")
        rows = format_html_join(
            "",
            '<li><a href="{}">{}</a> <span class="routing-muted">{} · {}</span></li>',
            (
                (_change_url(w), w.friendly_name, w.activity.friendly_name, w.sid)
                for w in members[:MEMBERS_SHOWN]
            ),
        )
        more = ""
        if len(members) > MEMBERS_SHOWN:
            url = (
                reverse("admin:routing_worker_changelist")
                + "?"
                + urlencode({"queues__id__exact": obj.pk})
            )
            more = format_html('<li><a href="{}">{}</a></li>', url, gettext("All members…"))
        return format_html('<ul class="routing-members">{}{}</ul>', rows, more)

    def save_model(self, request, obj, form, change):
        # Through the services: membership is recomputed and waiting tasks and new members
        # get an assignment attempt after commit.
        if change:
            fields = ("friendly_name", "target_workers", "task_order", "max_reserved_workers")
            config_services.queue_update(
                obj, **{name: getattr(obj, name) for name in fields if name in form.changed_data}
            )
            return
        queue = config_services.queue_create(
            workspace=obj.workspace,
            friendly_name=obj.friendly_name,
            target_workers=obj.target_workers,
            task_order=obj.task_order,
            max_reserved_workers=obj.max_reserved_workers,
        )
        obj.id, obj.sid, obj.date_created = queue.id, queue.sid, queue.date_created
        obj._state.adding, obj._state.db = False, queue._state.db


# ---------------------------------------------------------------- workflows


EMPTY_CONFIGURATION = {"task_routing": {"filters": [], "default_filter": {"queue": "WQ…"}}}


class WorkflowForm(forms.ModelForm):
    configuration = PrettyJSONField(
        label=_("Configuration"),
        widget=_code_textarea(24),
        help_text=Workflow._meta.get_field("configuration").help_text,
    )

    class Meta:
        model = Workflow
        fields = ("workspace", "friendly_name", "configuration", "task_reservation_timeout")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk and not self.is_bound:
            self.initial.setdefault("configuration", EMPTY_CONFIGURATION)


@admin.register(Workflow)
class WorkflowAdmin(ServiceDeleteMixin, admin.ModelAdmin):
    delete_service = config_services.workflow_delete
    form = WorkflowForm
    list_display = ("friendly_name", "workspace", "task_reservation_timeout", "sid", "date_updated")
    list_filter = ("workspace",)
    list_select_related = ("workspace",)
    search_fields = ("friendly_name", "sid")

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Tasks protect their workflow, but workflow_delete removes the finished ones first
        # (and refuses while any is active).
        tasks = Task.objects.filter(workflow__in=[obj.pk for obj in objs])
        if protected and not tasks.filter(assignment_status__in=ACTIVE_TASK).exists():
            protected = []
            perms_needed.discard(Task._meta.verbose_name)
            counts[Task._meta.verbose_name_plural] = tasks.count()
        return deleted, counts, perms_needed, protected

    def get_readonly_fields(self, request, obj=None):
        fields = ["sid", "queue_sids", "date_created", "date_updated"]
        if obj is not None:
            fields.append("workspace")
        return fields

    def get_fieldsets(self, request, obj=None):
        main = ("workspace", "friendly_name", "sid", "task_reservation_timeout")
        fieldsets = [
            (None, {"fields": main}),
            (_("Task routing"), {"fields": ("configuration", "queue_sids")}),
        ]
        if obj is not None:
            fieldsets.append((_("Dates"), {"fields": ("date_created", "date_updated")}))
        return fieldsets

    @admin.display(description=_("queues to route to"))
    def queue_sids(self, obj):
        queues = TaskQueue.objects.select_related("workspace").order_by(
            "workspace__friendly_name", "friendly_name"
        )
        if obj is not None and obj.pk:
            queues = queues.filter(workspace_id=obj.workspace_id)
        rows = [
            (q.workspace.friendly_name, q.friendly_name, q.sid, q.target_workers)
            for q in queues[:100]
        ]
        if not rows:
            return gettext("No task queue yet.")
        return format_html(
            '<table class="routing-table"><tbody>{}</tbody></table>',
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td>"
                '<td><code class="routing-inline-code">{}</code></td></tr>',
                rows,
            ),
        )


# ---------------------------------------------------------------- tasks, reservations


class ReservationInline(admin.TabularInline):
    model = Reservation
    fk_name = "task"
    fields = ("link", "worker", "status", "queue", "timeout_at", "accepted_at", "ended_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("date_created",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("reservation"))
    def link(self, obj):
        return format_html('<a href="{}">{}</a>', _change_url(obj), obj.sid)


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = (
        "sid",
        "assignment_status",
        "task_channel",
        "queue",
        "priority",
        "age",
        "date_created",
    )
    list_filter = ("assignment_status", "workspace", TaskChannelFilter, "queue")
    list_select_related = ("workspace", "task_channel", "queue")
    search_fields = ("sid", "reason")
    date_hierarchy = "date_created"
    show_full_result_count = False
    inlines = (ReservationInline,)
    actions = ("cancel_tasks", "complete_tasks")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "sid",
                    "workspace",
                    "workflow",
                    "task_channel",
                    "assignment_status",
                    "reason",
                    "priority",
                    "timeout",
                    "pretty_attributes",
                )
            },
        ),
        (
            _("Routing"),
            {
                "fields": (
                    "queue",
                    "filter_index",
                    "target_index",
                    "routing_step",
                    "filter_entered_at",
                    "step_deadline",
                    "queue_entered_at",
                    "events_link",
                )
            },
        ),
        (
            _("Dates"),
            {"fields": ("date_created", "assigned_at", "ended_at", "expires_at", "date_updated")},
        ),
    )
    readonly_fields = ("pretty_attributes", "events_link")

    def has_service_permission(self, request):
        return request.user.has_perm("routing.change_task")

    @admin.display(description=_("attributes"))
    def pretty_attributes(self, obj):
        return _json_block(obj.attributes)

    @admin.display(description=_("age"))
    def age(self, obj):
        end = obj.ended_at or timezone.now()
        return _duration((end - obj.date_created).total_seconds())

    @admin.display(description=_("events"))
    def events_link(self, obj):
        url = reverse("admin:routing_event_changelist") + "?" + urlencode({"resource_sid": obj.sid})
        return format_html('<a href="{}">{}</a>', url, gettext("Events of this task"))

    def _apply(self, request, queryset, service, verb: str, done_message) -> None:
        """Run `service` on each task; a refusal is reported for that row, the rest go on."""
        actor = _actor(request)
        # Stored data, not interface text: not translated.
        reason = f"{verb} in the admin by {actor}"
        done = 0
        for task in queryset.order_by("id"):
            try:
                service(task, reason=reason, actor=actor)
                done += 1
            except RoutingError as error:
                messages.error(request, f"{task.sid}: {error.message}")
        if done:
            messages.success(request, done_message(done) % {"count": done})

    @admin.action(description=_("Cancel selected tasks"), permissions=("service",))
    def cancel_tasks(self, request, queryset):
        self._apply(
            request,
            queryset,
            task_services.task_cancel,
            "Canceled",
            lambda n: ngettext("%(count)d task canceled.", "%(count)d tasks canceled.", n),
        )

    @admin.action(description=_("Complete selected tasks"), permissions=("service",))
    def complete_tasks(self, request, queryset):
        self._apply(
            request,
            queryset,
            task_services.task_complete,
            "Completed",
            lambda n: ngettext("%(count)d task completed.", "%(count)d tasks completed.", n),
        )


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = (
        "sid",
        "task",
        "worker",
        "status",
        "queue",
        "timeout_at",
        "accepted_at",
        "ended_at",
        "date_created",
    )
    list_filter = ("status", "workspace")
    list_select_related = ("task", "worker", "queue")
    search_fields = ("sid", "task__sid", "worker__sid", "worker__friendly_name")
    date_hierarchy = "date_created"
    show_full_result_count = False


# ---------------------------------------------------------------- events


class EventTypeFilter(admin.SimpleListFilter):
    """The declared event types (no DISTINCT over an ever-growing table)."""

    title = _("event type")
    parameter_name = "event_type"

    def lookups(self, request, model_admin):
        return [(event_type, event_type) for event_type in EVENT_TYPES]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(event_type=value) if value else queryset


class ResourceTypeFilter(admin.SimpleListFilter):
    title = _("resource type")
    parameter_name = "resource_type"

    def lookups(self, request, model_admin):
        return [(name, name) for name in sorted(set(RESOURCE_TYPES.values()))]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(resource_type=value) if value else queryset


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """Append-only: the log of what the engine did. Filter one resource's history with
    ?resource_sid=WT… (the sid column links there)."""

    list_display = (
        "when",
        "event_type",
        "description",
        "resource",
        "actor",
        "callback_state",
    )
    list_filter = (
        EventTypeFilter,
        ResourceTypeFilter,
        "workspace",
        "callback_state",
        "date_created",
    )
    search_fields = ("=resource_sid", "=sid", "description")
    date_hierarchy = "date_created"
    ordering = ("-id",)
    show_full_result_count = False
    fields = (
        "sid",
        "workspace",
        "event_type",
        "resource_type",
        "resource_sid",
        "description",
        "actor",
        "pretty_data",
        "callback_state",
        "callback_attempts",
        "date_created",
    )
    readonly_fields = ("pretty_data",)

    def lookup_allowed(self, lookup, value, request=None):
        return lookup == "resource_sid" or super().lookup_allowed(lookup, value, request)

    @admin.display(description=_("date"), ordering="id")
    def when(self, obj):
        return timezone.localtime(obj.date_created).strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description=_("resource"), ordering="resource_sid")
    def resource(self, obj):
        url = "?" + urlencode({"resource_sid": obj.resource_sid})
        return format_html(
            '<a class="routing-inline-code" href="{}" title="{}">{}</a>',
            url,
            obj.resource_type,
            obj.resource_sid,
        )

    @admin.display(description=_("data"))
    def pretty_data(self, obj):
        return _json_block(obj.data)
