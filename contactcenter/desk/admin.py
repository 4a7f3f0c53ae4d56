from django.contrib import admin

from contactcenter.desk.models import Handoff


@admin.register(Handoff)
class HandoffAdmin(admin.ModelAdmin):
    list_display = ["conversation", "task", "execution_sid", "date_created"]
    search_fields = ["execution_sid", "conversation__sid", "task__sid"]
    list_select_related = ["conversation", "task"]
    readonly_fields = ["conversation", "task", "execution_sid", "date_created"]

    def has_add_permission(self, request):
        return False
