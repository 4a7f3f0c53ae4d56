"""Content templates (`HX…`) in use: which translation a message gets, and keeping the
templates in step with the WhatsApp Business Account they belong to.

- `content_resolve`: the message API's ContentSid + ContentVariables. The template must be
  the account's (else 21655); the translation is the one asked for, else the contact's
  language (`Contact.attributes["language"]`) when it has one, else the template's default
  language; on WhatsApp it must be APPROVED (else 63027, Twilio's "template does not exist
  for this language", which is what Meta answers for one it would not send). Variables that
  do not fit are 21656. The rendered text becomes the message body.
- `templates_sync`: Meta's template list (`GET {waba}/message_templates`: name, language,
  status, category, id, rejected_reason, components[{type HEADER | BODY | FOOTER | BUTTONS,
  format, text, example, buttons[]}]) upserted into templates and translations. Meta numbers
  each component's placeholders from 1; ours share one numbering across the translation (a
  single ContentVariables object fills it), so a header's `{{1}}` becomes the number after
  the body's last, and a URL button's the next. Templates we cannot represent (phone,
  copy-code, OTP or flow buttons, carousels, location headers, and named parameters, which
  Meta wants sent by name while `TemplateRef` carries values by position) are skipped and
  named. Named placeholders of ours are submitted as positional ones.
- `translation_submit`: Meta's create shape (`POST {waba}/message_templates` with name,
  language, category, components and the examples Meta's review needs, from the sample
  values), or an edit (`POST {template id}`) when Meta already has the translation; the
  translation becomes PENDING with Meta's id.
"""

from dataclasses import dataclass, field

from django.db import transaction
from django.utils.translation import gettext as _

from messaging import content_templates as rules
from messaging.errors import MessagingError
from messaging.models import (
    Account,
    Channel,
    Contact,
    ContentTemplate,
    ContentTemplateTranslation,
    ProviderAccount,
    ProviderKind,
    Sender,
    TemplateCategory,
    TemplateHeader,
    TemplateStatus,
)

INVALID_CONTENT_SID = 21655
INVALID_VARIABLES = 21656
TEMPLATE_UNAVAILABLE = 63027
MAX_BODY_CHARS = 1600

# Meta's statuses → ours; the ones on their way out cannot be sent any more.
META_STATUSES = {
    "APPROVED": TemplateStatus.APPROVED,
    "PENDING": TemplateStatus.PENDING,
    "IN_APPEAL": TemplateStatus.PENDING,
    "REJECTED": TemplateStatus.REJECTED,
    "PAUSED": TemplateStatus.PAUSED,
    "DISABLED": TemplateStatus.DISABLED,
    "PENDING_DELETION": TemplateStatus.DISABLED,
    "DELETED": TemplateStatus.DISABLED,
    "ARCHIVED": TemplateStatus.DISABLED,
    "LIMIT_EXCEEDED": TemplateStatus.DISABLED,
}


# ---------------------------------------------------------------- sending


@dataclass(frozen=True)
class ResolvedContent:
    template: ContentTemplate
    translation: ContentTemplateTranslation
    variables: dict[str, str]
    text: str  # the rendered translation: the message's body


def content_resolve(
    *,
    account: Account,
    content_sid: str,
    variables: dict | None,
    channel: str,
    to_address: str,
    language: str | None = None,
    sender: Sender | None = None,
) -> ResolvedContent:
    """The translation a message with ContentSid sends and its text, or the MessagingError
    that refuses it."""
    template = (
        ContentTemplate.objects.filter(account=account, sid=content_sid)
        .prefetch_related("translations")
        .first()
    )
    if template is None:
        raise MessagingError(
            INVALID_CONTENT_SID,
            f"The ContentSid {content_sid} is not a content template of this account.",
            "ContentSid",
        )
    _refuse_other_whatsapp_account(template, sender)
    translation = _translation_for(
        template, channel, language, _contact_language(account, to_address)
    )
    try:
        values = rules.variables_check(translation, variables)
    except rules.VariablesError as exc:
        raise MessagingError(INVALID_VARIABLES, str(exc), "ContentVariables") from exc
    text = rules.render_text(translation, values)
    _refuse_too_long(translation, values, text, channel)
    return ResolvedContent(template=template, translation=translation, variables=values, text=text)


def _contact_language(account: Account, address: str) -> str:
    attributes = (
        Contact.objects.filter(account=account, address=address)
        .values_list("attributes", flat=True)
        .first()
    )
    if not isinstance(attributes, dict):
        return ""
    return str(attributes.get("language") or "")


def _sendable(translation: ContentTemplateTranslation, channel: str) -> bool:
    # Only WhatsApp reviews templates; SMS and Messenger send the rendered text.
    return channel != Channel.WHATSAPP or translation.status == TemplateStatus.APPROVED


def _translation_for(
    template: ContentTemplate, channel: str, language: str | None, contact_language: str
) -> ContentTemplateTranslation:
    translations = {t.language: t for t in template.translations.all()}
    if not translations:
        raise MessagingError(
            TEMPLATE_UNAVAILABLE, f"The template {template.sid} has no translations.", "ContentSid"
        )
    if language:
        code = rules.language_pick(list(translations), language)
        if code is None:
            raise MessagingError(
                TEMPLATE_UNAVAILABLE,
                f"The template {template.sid} has no {language} translation "
                f"(it has {', '.join(sorted(translations))}).",
                "ContentSid",
            )
        return _refuse_unapproved(template, translations[code], channel)
    if contact_language:
        usable = [code for code, t in translations.items() if _sendable(t, channel)]
        code = rules.language_pick(usable, contact_language)
        if code is not None:
            return translations[code]
    default = translations.get(template.default_language)
    if default is None:
        raise MessagingError(
            TEMPLATE_UNAVAILABLE,
            f"The template {template.sid} has no translation in its default language "
            f"{template.default_language} (it has {', '.join(sorted(translations))}).",
            "ContentSid",
        )
    return _refuse_unapproved(template, default, channel)


def _refuse_unapproved(
    template: ContentTemplate, translation: ContentTemplateTranslation, channel: str
) -> ContentTemplateTranslation:
    if _sendable(translation, channel):
        return translation
    reason = f": {translation.rejection_reason}" if translation.rejection_reason else ""
    raise MessagingError(
        TEMPLATE_UNAVAILABLE,
        f"The {translation.language} translation of template {template.sid} is "
        f"{translation.status}{reason}; WhatsApp sends approved templates only.",
        "ContentSid",
    )


def _refuse_other_whatsapp_account(template: ContentTemplate, sender: Sender | None) -> None:
    """Meta knows a template only in the WhatsApp Business Account it was made in."""
    if sender is None or not template.provider_id:
        return
    if sender.provider.kind == ProviderKind.WHATSAPP_CLOUD and sender.provider_id != (
        template.provider_id
    ):
        raise MessagingError(
            TEMPLATE_UNAVAILABLE,
            f"The template {template.sid} belongs to another WhatsApp account than "
            f"{sender.address}'s.",
            "ContentSid",
        )


def _refuse_too_long(translation, values: dict, text: str, channel: str) -> None:
    if channel == Channel.WHATSAPP:
        body = rules.substitute(translation.body, values)
        if len(body) > rules.MAX_BODY:
            raise MessagingError(
                INVALID_VARIABLES,
                f"With these ContentVariables the body has {len(body)} characters; WhatsApp "
                f"allows {rules.MAX_BODY}.",
                "ContentVariables",
            )
    if len(text) > MAX_BODY_CHARS:
        raise MessagingError(
            21617,
            f"With these ContentVariables the message has {len(text)} characters; the limit "
            f"is {MAX_BODY_CHARS}.",
            "ContentVariables",
        )


# ---------------------------------------------------------------- sync from Meta


class UnsupportedTemplate(Exception):
    """A listed template this engine cannot send or show (said why, and skipped)."""


@dataclass
class SyncResult:
    created: int = 0
    updated: int = 0
    skipped: list[str] = field(default_factory=list)  # "name [language]: why"


def _required(node: dict, key: str, path: str):
    value = node.get(key) if isinstance(node, dict) else None
    if value is None or value == "":
        raise UnsupportedTemplate(f"{path}.{key} is missing")
    return value


def _first(values, default=""):
    return values[0] if isinstance(values, list) and values else default


def _next_number(keys: list[str]) -> int:
    numbers = [int(k) for k in keys if rules.POSITIONAL.fullmatch(k)]
    return max(numbers, default=0) + 1


def _shift(text: str, start: int) -> tuple[str, dict[str, str]]:
    """Meta's per-component `{{1}}`… from `start` on, in our shared numbering."""
    mapping = {}
    for key in rules.component_keys(text):
        if rules.POSITIONAL.fullmatch(key):
            mapping[key] = str(start + int(key) - 1)
    if not mapping:
        return text, {}
    renumbered = rules.PLACEHOLDER.sub(
        lambda m: "{{" + mapping[m.group(1)] + "}}" if m.group(1) in mapping else m.group(0), text
    )
    return renumbered, mapping


def _body_samples(component: dict) -> dict[str, str]:
    example = component.get("example") if isinstance(component.get("example"), dict) else {}
    values = _first(example.get("body_text"), [])
    keys = rules.component_keys(str(component.get("text") or ""))
    return {key: str(value) for key, value in zip(keys, values or [], strict=False) if value}


def _header_fields(component: dict, path: str, fields: dict, samples: dict) -> None:
    kind = str(_required(component, "format", path)).lower()
    example = component.get("example") if isinstance(component.get("example"), dict) else {}
    if kind in rules.MEDIA_HEADERS:
        fields["header_type"] = kind
        fields["header_media_url"] = str(_first(example.get("header_handle")))
        return
    if kind != "text":
        raise UnsupportedTemplate(f"{path}.format {kind.upper()} is not supported")
    start = _next_number(rules.placeholders_in(fields["body"]))
    text, mapping = _shift(str(_required(component, "text", path)), start)
    fields.update(header_type=TemplateHeader.TEXT, header_text=text)
    if mapping and _first(example.get("header_text")):
        samples[next(iter(mapping.values()))] = str(_first(example.get("header_text")))


def _button_fields(buttons: list, path: str, fields: dict, samples: dict) -> None:
    ours = []
    for i, button in enumerate(buttons):
        where = f"{path}.buttons[{i}]"
        kind = str(_required(button, "type", where))
        text = str(_required(button, "text", where))
        if kind == rules.QUICK_REPLY:
            ours.append({"type": rules.QUICK_REPLY, "text": text})
            continue
        if kind != rules.URL:
            raise UnsupportedTemplate(f"{where}.type {kind} is not supported")
        url = str(_required(button, "url", where))
        used = [
            *rules.placeholders_in(fields["body"]),
            *rules.placeholders_in(fields["header_text"]),
            *_placeholders_of(ours),
        ]
        url, mapping = _shift(url, _next_number(used))
        example = str(_first(button.get("example")))
        if mapping and example:
            # Meta's example is the whole URL; our sample is the part the placeholder fills.
            prefix = url.split("{{", 1)[0]
            key = next(iter(mapping.values()))
            samples[key] = example.removeprefix(prefix) if example.startswith(prefix) else example
        ours.append({"type": rules.URL, "text": text, "url": url})
    fields["buttons"] = ours


def _placeholders_of(buttons: list[dict]) -> list[str]:
    return [k for b in buttons for k in rules.placeholders_in(str(b.get("url") or ""))]


def meta_template_fields(entry: dict, path: str = "data[0]") -> dict:
    """One entry of Meta's template list as our template and translation fields
    (`UnsupportedTemplate` when it cannot be represented)."""
    if not isinstance(entry, dict):
        raise UnsupportedTemplate(f"{path} is not an object")
    if str(entry.get("parameter_format") or "").upper() == "NAMED":
        # Meta wants such values sent by name; TemplateRef carries them by position.
        raise UnsupportedTemplate(f"{path}.parameter_format NAMED is not supported yet")
    fields = {
        "name": str(_required(entry, "name", path)),
        "language": rules.language_normalize(str(_required(entry, "language", path))),
        "category": str(entry.get("category") or "").upper(),
        "status": META_STATUSES.get(str(entry.get("status") or "").upper(), TemplateStatus.PENDING),
        "rejection_reason": _rejection(entry),
        "provider_template_id": str(entry.get("id") or ""),
        "header_type": TemplateHeader.NONE,
        "header_text": "",
        "header_media_url": "",
        "body": "",
        "footer": "",
        "buttons": [],
    }
    components = entry.get("components")
    if not isinstance(components, list):
        raise UnsupportedTemplate(f"{path}.components is missing")
    by_type = {}
    for i, component in enumerate(components):
        where = f"{path}.components[{i}]"
        by_type[str(_required(component, "type", where)).upper()] = (component, where)
    unknown = sorted(set(by_type) - {"HEADER", "BODY", "FOOTER", "BUTTONS"})
    if unknown:
        raise UnsupportedTemplate(f"{path}: {', '.join(unknown)} components are not supported")
    if "BODY" not in by_type:
        raise UnsupportedTemplate(f"{path} has no BODY component")
    body, where = by_type["BODY"]
    fields["body"] = str(_required(body, "text", where))
    samples = _body_samples(body)
    if "HEADER" in by_type:
        _header_fields(*by_type["HEADER"], fields, samples)
    if "FOOTER" in by_type:
        fields["footer"] = str(by_type["FOOTER"][0].get("text") or "")
    if "BUTTONS" in by_type:
        component, where = by_type["BUTTONS"]
        buttons = component.get("buttons")
        if not isinstance(buttons, list):
            raise UnsupportedTemplate(f"{where}.buttons is missing")
        _button_fields(buttons, where, fields, samples)
    fields["samples"] = samples
    return fields


def _rejection(entry: dict) -> str:
    reason = str(entry.get("rejected_reason") or "")
    return "" if reason.upper() == "NONE" else reason[:500]


TEMPLATE_FIELDS = ("name", "category")


def _template_for(provider: ProviderAccount, fields: dict, result: SyncResult):
    template = ContentTemplate.objects.filter(account=provider.account, name=fields["name"]).first()
    category = fields["category"] if fields["category"] in TemplateCategory.values else None
    if template is None:
        return ContentTemplate.objects.create(
            account=provider.account,
            name=fields["name"],
            friendly_name=fields["name"][:64],
            category=category or TemplateCategory.UTILITY,
            provider=provider,
            default_language=fields["language"],
        )
    if template.provider_id not in (None, provider.id):
        result.skipped.append(
            f"{fields['name']} [{fields['language']}]: the template of that name is synced "
            "with another provider account"
        )
        return None
    template.provider = provider
    template.category = category or template.category
    template.save(update_fields=["provider", "category", "date_updated"])
    return template


def templates_sync(provider: ProviderAccount) -> SyncResult:
    """Upsert every template of the provider's WhatsApp Business Account (ProviderError when
    Meta cannot be asked)."""
    from messaging.providers import whatsapp_cloud

    entries = whatsapp_cloud.templates_list(provider)
    result = SyncResult()
    with transaction.atomic():
        for i, entry in enumerate(entries):
            try:
                fields = meta_template_fields(entry, f"data[{i}]")
            except UnsupportedTemplate as exc:
                label = _entry_label(entry)
                result.skipped.append(f"{label}: {exc}" if label else str(exc))
                continue
            template = _template_for(provider, fields, result)
            if template is None:
                continue
            values = {k: v for k, v in fields.items() if k not in (*TEMPLATE_FIELDS, "language")}
            _translation, created = ContentTemplateTranslation.objects.update_or_create(
                template=template, language=fields["language"], defaults=values
            )
            if created:
                result.created += 1
            else:
                result.updated += 1
    return result


def _entry_label(entry) -> str:
    if not isinstance(entry, dict) or not entry.get("name"):
        return ""
    return f"{entry['name']} [{entry.get('language', '?')}]"


# ---------------------------------------------------------------- submit to Meta


class TemplateSubmitError(Exception):
    """Why a translation cannot be submitted (before Meta is asked)."""


def _with_example(component: dict, key: str, value) -> dict:
    return {**component, "example": {key: value}}


def translation_payload(translation: ContentTemplateTranslation) -> dict:
    """Meta's create shape for a translation: each component renumbered from `{{1}}`, with
    the sample values as the examples Meta's review asks for."""
    samples = {str(k): str(v) for k, v in (translation.samples or {}).items()}
    components = []
    if translation.header_type == TemplateHeader.TEXT:
        text, keys = rules.meta_text(translation.header_text)
        header = {"type": "HEADER", "format": "TEXT", "text": text}
        components.append(
            _with_example(header, "header_text", [samples[k] for k in keys]) if keys else header
        )
    body, keys = rules.meta_text(translation.body)
    body_component = {"type": "BODY", "text": body}
    if keys:
        body_component = _with_example(body_component, "body_text", [[samples[k] for k in keys]])
    components.append(body_component)
    if translation.footer:
        components.append({"type": "FOOTER", "text": translation.footer})
    buttons = [_meta_button(button, samples) for button in translation.buttons or []]
    if buttons:
        components.append({"type": "BUTTONS", "buttons": buttons})
    return {
        "name": translation.template.name,
        "language": translation.language,
        "category": translation.template.category,
        "components": components,
    }


def _meta_button(button: dict, samples: dict) -> dict:
    if button["type"] != rules.URL:
        return {"type": "QUICK_REPLY", "text": button["text"]}
    url, keys = rules.meta_text(button["url"])
    meta_button = {"type": "URL", "text": button["text"], "url": url}
    if keys:
        meta_button["example"] = [rules.substitute(button["url"], samples)]
    return meta_button


def _refuse_unsubmittable(translation: ContentTemplateTranslation) -> None:
    template = translation.template
    if template.provider_id is None:
        raise TemplateSubmitError(
            _("%(template)s has no WhatsApp provider account to submit it to.")
            % {"template": template}
        )
    problems = rules.translation_problems(translation)
    if problems:
        first = "; ".join(message for messages in problems.values() for message in messages)
        raise TemplateSubmitError(
            _("%(translation)s is not valid: %(problems)s")
            % {"translation": translation, "problems": first}
        )
    if translation.header_type in rules.MEDIA_HEADERS:
        raise TemplateSubmitError(
            _(
                "%(translation)s has a media header: Meta wants its sample uploaded first. "
                "Create it in WhatsApp Manager, then sync."
            )
            % {"translation": translation}
        )
    samples = translation.samples or {}
    missing = [key for key in rules.placeholders(translation) if not samples.get(key)]
    if missing:
        raise TemplateSubmitError(
            _(
                "%(translation)s needs a sample value for %(keys)s: Meta reviews templates "
                "with them."
            )
            % {"translation": translation, "keys": ", ".join("{{" + k + "}}" for k in missing)}
        )


def translation_submit(translation: ContentTemplateTranslation) -> ContentTemplateTranslation:
    """Submit one translation for Meta's review: created, or edited when Meta has it
    already. `TemplateSubmitError` before any call, `ProviderError` when Meta refuses."""
    from messaging.providers import meta, whatsapp_cloud

    _refuse_unsubmittable(translation)
    template = translation.template
    provider = template.provider
    payload = translation_payload(translation)
    if translation.provider_template_id:
        edit = {"category": payload["category"], "components": payload["components"]}
        url = meta.graph_url(provider, translation.provider_template_id)
        answer = whatsapp_cloud.graph_call(provider, "POST", url, json=edit)
    else:
        answer = whatsapp_cloud.template_submit(provider, payload)
    answer = answer if isinstance(answer, dict) else {}
    translation.status = META_STATUSES.get(str(answer.get("status") or ""), TemplateStatus.PENDING)
    translation.provider_template_id = str(answer.get("id") or translation.provider_template_id)
    translation.rejection_reason = ""
    translation.save(
        update_fields=["status", "provider_template_id", "rejection_reason", "date_updated"]
    )
    category = str(answer.get("category") or "").upper()
    if category in TemplateCategory.values and category != template.category:
        # Meta may file a template under another category than asked.
        template.category = category
        template.save(update_fields=["category", "date_updated"])
    return translation
