"""What a claimed message sends, in the adapters' neutral form (`OutboundContent`).

The pump loads what the sends need (media URLs, content templates) while it plans, a query
each for the whole batch, so the dispatcher thread never touches the database.

A message created with a ContentSid already holds the rendered template as its body: SMS
and Messenger send that text. WhatsApp sends the template itself (`TemplateRef`: Meta's
name, language and values in Meta's order), with the text beside it for adapters that cannot
send a template (the simulator shows it, Twilio sends it as a body). A WhatsApp template
that is gone or no longer approved by the time it is sent fails with 63027, before any
provider call.
"""

from collections import defaultdict

from messaging import content_templates, encoding, windows
from messaging.models import (
    Channel,
    ContentTemplateTranslation,
    Media,
    Message,
    TemplateStatus,
)
from messaging.providers import OutboundContent, ProviderError

TEMPLATE_UNAVAILABLE = 63027


def media_attach(messages: list[Message]) -> None:
    """Give each message its media `(url, content_type)` list and its template translation,
    in a query each: what the pump calls while it plans."""
    ids = [m.id for m in messages if m.num_media]
    found: dict[int, list[tuple[str, str]]] = defaultdict(list)
    if ids:
        rows = Media.objects.filter(message_id__in=ids).order_by("id")
        for message_id, url, content_type in rows.values_list("message_id", "url", "content_type"):
            found[message_id].append((url, content_type))
    for message in messages:
        message.outbound_media = found.get(message.id, [])
    template_attach(messages)


def template_attach(messages: list[Message]) -> None:
    """Give each message with a ContentSid its translation (`outbound_translation`, with its
    template), or None when it no longer exists; one query."""
    wanted = [m for m in messages if m.content_sid]
    translations = {}
    if wanted:
        rows = ContentTemplateTranslation.objects.select_related("template").filter(
            template__sid__in={m.content_sid for m in wanted},
            template__account_id__in={m.account_id for m in wanted},
        )
        translations = {(t.template.account_id, t.template.sid, t.language): t for t in rows}
    for message in wanted:
        key = (message.account_id, message.content_sid, message.content_language)
        message.outbound_translation = translations.get(key)


def _template(message: Message):
    if not hasattr(message, "outbound_translation"):  # not planned by the pump
        template_attach([message])
    translation = message.outbound_translation
    if translation is None or translation.status != TemplateStatus.APPROVED:
        state = "no longer exists" if translation is None else f"is {translation.status}"
        raise ProviderError(
            TEMPLATE_UNAVAILABLE,
            f"The {message.content_language} translation of template {message.content_sid} "
            f"{state}; WhatsApp sends approved templates only.",
            permanent=True,
        )
    try:
        return content_templates.template_ref(
            translation.template, translation, message.content_variables or {}
        )
    except content_templates.VariablesError as exc:  # the template changed since the create
        raise ProviderError(21656, str(exc), permanent=True) from exc


def content_for(message: Message) -> OutboundContent:
    text = encoding.analyze(message.body, smart_encoding=message.smart_encoded).text
    media = getattr(message, "outbound_media", None)
    if media is None:  # a message that did not come through the pump's plan
        media_attach([message])
        media = message.outbound_media
    template = None
    if message.content_sid and message.channel == Channel.WHATSAPP:
        template = _template(message)
    return OutboundContent(
        text=text,
        media_urls=tuple(url for url, _ in media if url),
        media_types=tuple(content_type for url, content_type in media if url),
        template=template,
        tag=(message.tags or {}).get(windows.TAG_KEY, ""),
    )
