"""The desk's own records: which routing task carries which conversation."""

from django.conf import settings
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
    # Inbound messages up to this id have been seen by the agent holding the conversation.
    last_read_message_id = models.BigIntegerField(default=0)
    disposition = models.ForeignKey(
        "Disposition", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    wrapup_notes = models.TextField(_("wrap-up notes"), blank=True, max_length=4000)
    wrapped_up_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    wrapped_up_at = models.DateTimeField(null=True, blank=True)
    transferred_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="transfers"
    )
    date_created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("hand-off")
        verbose_name_plural = _("hand-offs")
        indexes = [models.Index(fields=["conversation", "-date_created"], name="handoff_recent")]

    def __str__(self) -> str:
        return f"{self.conversation} → {self.task}"


class Disposition(models.Model):
    """How a conversation ended, chosen by the agent at wrap-up (admin-managed list)."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    label = models.CharField(_("label"), max_length=80)
    requires_notes = models.BooleanField(
        _("requires notes"), default=False, help_text=_("The agent must write wrap-up notes.")
    )
    active = models.BooleanField(_("active"), default=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("disposition code")
        verbose_name_plural = _("disposition codes")
        ordering = ["position", "label"]

    def __str__(self) -> str:
        return f"{self.label} ({self.code})"


class CannedResponse(models.Model):
    """A prepared reply. `{{customer.name}}`-style variables are filled in the composer from
    the conversation (customer, agent and the attributes the flow collected)."""

    title = models.CharField(_("title"), max_length=80)
    shortcut = models.SlugField(
        _("shortcut"),
        max_length=32,
        unique=True,
        help_text=_("Typed as /shortcut in the composer."),
    )
    body = models.TextField(_("body"), max_length=1600)
    language = models.CharField(
        _("language"), max_length=8, blank=True, help_text=_("Empty: any language.")
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("canned response")
        verbose_name_plural = _("canned responses")
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Note(models.Model):
    """A private note on a conversation: staff see it, the customer never does."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    body = models.TextField(_("note"), max_length=4000)
    # System notes record what happened (a transfer, a wrap-up); authors write the others.
    system = models.BooleanField(default=False)
    date_created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("private note")
        verbose_name_plural = _("private notes")
        ordering = ["date_created", "id"]

    def __str__(self) -> str:
        return self.body[:60]
