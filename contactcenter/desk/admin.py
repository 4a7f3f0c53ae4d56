from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from contactcenter.desk.models import CannedResponse, Disposition, Handoff, Note


@admin.register(Handoff)
class HandoffAdmin(admin.ModelAdmin):
    list_display = ["conversation", "task", "disposition", "wrapped_up_by", "date_created"]
    list_filter = ["disposition"]
    search_fields = ["execution_sid", "conversation__sid", "task__sid"]
    list_select_related = ["conversation", "task", "disposition", "wrapped_up_by"]
    readonly_fields = [
        "conversation",
        "task",
        "execution_sid",
        "disposition",
        "wrapup_notes",
        "wrapped_up_by",
        "wrapped_up_at",
        "transferred_from",
        "last_read_message_id",
        "date_created",
    ]

    def has_add_permission(self, request):
        return False


@admin.register(Disposition)
class DispositionAdmin(admin.ModelAdmin):
    list_display = ["label", "code", "requires_notes", "active", "position"]
    list_editable = ["active", "position"]
    list_filter = ["active"]
    search_fields = ["label", "code"]
    prepopulated_fields = {"code": ["label"]}

    def has_delete_permission(self, request, obj=None):
        # Wrap-ups keep their code: retire one by unticking "active" instead.
        return obj is None or not Handoff.objects.filter(disposition=obj).exists()


@admin.register(CannedResponse)
class CannedResponseAdmin(admin.ModelAdmin):
    list_display = ["title", "shortcut", "language", "active"]
    list_filter = ["active", "language"]
    search_fields = ["title", "shortcut", "body"]
    prepopulated_fields = {"shortcut": ["title"]}
    fieldsets = [
        (None, {"fields": ["title", "shortcut", "language", "active"]}),
        (
            _("Text"),
            {
                "fields": ["body"],
                "description": _(
                    "Variables: {{customer.name}}, {{customer.address}}, {{agent.name}}, "
                    "{{agent.first_name}} and the attributes the flow collected, e.g. "
                    "{{language}}."
                ),
            },
        ),
    ]


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["conversation", "author", "system", "date_created"]
    list_filter = ["system"]
    search_fields = ["conversation__sid", "body"]
    list_select_related = ["conversation", "author"]
    readonly_fields = ["conversation", "author", "body", "system", "date_created"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
