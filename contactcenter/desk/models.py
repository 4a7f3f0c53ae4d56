"""The desk's own records: which routing task carries which conversation."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from messaging.models import Conversation
from routing.models import Task


class Handoff(models.Model):
    """A conversation handed to the people: the routing task that carries it. While the task
    is not completed or canceled, the conversation belongs to the desk, not to a bot flow."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="handoffs"
    )
    task = models.OneToOneField(Task, on_delete=models.CASCADE, related_name="handoff")
    execution_sid = models.CharField(_("flow execution"), max_length=34, blank=True)
    date_created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("hand-off")
        verbose_name_plural = _("hand-offs")
        indexes = [models.Index(fields=["conversation", "-date_created"], name="handoff_recent")]

    def __str__(self) -> str:
        return f"{self.conversation} → {self.task}"
