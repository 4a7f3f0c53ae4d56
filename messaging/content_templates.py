"""Content templates (`HX…`), pure: placeholders, validation, rendering. No database.

What it follows (REFERENCE.md 1 and 4, Meta's template guidelines, Twilio's Content API):

- Placeholders are `{{1}}`, `{{2}}`… numbered from 1 without gaps, or all named
  (`{{first_name}}`: lower-case letters, digits and underscores, starting with a letter),
  never both in one translation.
- One ContentVariables object fills the whole translation, as in Twilio's Content API:
  `{{1}}` is the same value in the header, the body and a URL button. Meta numbers each
  component from 1 instead, so `meta_text` renumbers a component for Meta (its distinct
  placeholders in number order, or named ones in order of appearance), and the values sent
  (`template_ref`) follow that order.
- Body 1 to 1,024 characters, not starting or ending with a placeholder and without two
  placeholders side by side (Meta rejects those). Header text at most 60 characters, one
  line, at most one placeholder. Footer at most 60 characters, no placeholder. At most 10
  buttons: quick replies (text ≤ 25) and at most 2 URL buttons (text ≤ 25, an http(s) URL
  ≤ 2,000 characters that may end in one placeholder), quick replies kept together.
- Variable values may not be empty, hold new lines or tabs, or more than 4 consecutive
  spaces (Meta refuses those when sending).

Messages for people (the admin) are translated; `VariablesError` speaks English because the
API answers in English (the wire format).
"""

import re
from collections.abc import Mapping

from django.utils.translation import gettext as _

from messaging.providers.base import TemplateRef
from messaging.validators import WEBHOOK_SCHEMES

PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
POSITIONAL = re.compile(r"[1-9][0-9]*")
NAMED = re.compile(r"[a-z][a-z0-9_]*")
TEMPLATE_NAME = re.compile(r"[a-z0-9_]+")
LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
ADJACENT = re.compile(r"\{\{[^{}]*\}\}\s*\{\{[^{}]*\}\}")
TOO_MANY_SPACES = re.compile(r" {5,}")

MAX_NAME = 512
MAX_BODY = 1024
MAX_HEADER_TEXT = 60
MAX_FOOTER = 60
MAX_BUTTONS = 10
MAX_URL_BUTTONS = 2
MAX_BUTTON_TEXT = 25
MAX_URL = 2000

HEADER_NONE, HEADER_TEXT = "none", "text"
MEDIA_HEADERS = ("image", "video", "document")
HEADER_TYPES = (HEADER_NONE, HEADER_TEXT, *MEDIA_HEADERS)
QUICK_REPLY, URL = "QUICK_REPLY", "URL"


class VariablesError(ValueError):
    """ContentVariables do not fit the template (what the API answers with 21656)."""


# ---------------------------------------------------------------- placeholders


def is_placeholder(key: str) -> bool:
    return bool(POSITIONAL.fullmatch(key) or NAMED.fullmatch(key))


def placeholders_in(text: str) -> list[str]:
    """The valid placeholders of `text`, each once, in order of appearance."""
    found: list[str] = []
    for match in PLACEHOLDER.finditer(text or ""):
        key = match.group(1)
        if is_placeholder(key) and key not in found:
            found.append(key)
    return found


def malformed_in(text: str) -> list[str]:
    """What looks like a placeholder but is not one: `{{ 1 }}`, `{{Name}}`, a lone `{{`."""
    text = text or ""
    bad = [m.group(0) for m in PLACEHOLDER.finditer(text) if not is_placeholder(m.group(1))]
    rest = PLACEHOLDER.sub("", text)
    if "{{" in rest or "}}" in rest:
        bad.append("{{" if "{{" in rest else "}}")
    return bad


def component_keys(text: str) -> list[str]:
    """One component's distinct placeholders in Meta's order: by number, or by appearance
    for named ones. Meta's `{{k}}` in this component is `component_keys(text)[k - 1]`."""
    keys = placeholders_in(text)
    if all(POSITIONAL.fullmatch(k) for k in keys):
        return sorted(keys, key=int)
    return keys


def meta_text(text: str) -> tuple[str, list[str]]:
    """`text` with its placeholders renumbered from `{{1}}` as Meta wants each component,
    and the keys in that order."""
    keys = component_keys(text)
    local = {key: str(i) for i, key in enumerate(keys, start=1)}

    def renumber(match: re.Match) -> str:
        key = match.group(1)
        return "{{" + local[key] + "}}" if key in local else match.group(0)

    return PLACEHOLDER.sub(renumber, text or ""), keys


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Each placeholder of `text` replaced by its value (left as it is when it has none)."""

    def value(match: re.Match) -> str:
        key = match.group(1)
        return str(values[key]) if key in values else match.group(0)

    return PLACEHOLDER.sub(value, text or "")


def _header_text(translation) -> str:
    return (translation.header_text or "") if translation.header_type == HEADER_TEXT else ""


def _buttons(translation) -> list:
    buttons = translation.buttons
    return buttons if isinstance(buttons, list) else []


def _url_buttons(translation) -> list[tuple[int, dict]]:
    return [
        (index, button)
        for index, button in enumerate(_buttons(translation))
        if isinstance(button, dict) and button.get("type") == URL
    ]


def placeholders(translation) -> list[str]:
    """Every placeholder of a translation (header, body, URL buttons), each once: by number,
    or named ones in order of appearance."""
    found: list[str] = []
    texts = [_header_text(translation), translation.body or ""]
    texts += [str(button.get("url") or "") for _i, button in _url_buttons(translation)]
    for text in texts:
        found += [key for key in placeholders_in(text) if key not in found]
    if all(POSITIONAL.fullmatch(key) for key in found):
        return sorted(found, key=int)
    return found


def _label(keys) -> str:
    return ", ".join("{{" + key + "}}" for key in keys)


# ---------------------------------------------------------------- validation


def language_normalize(code: str) -> str:
    """`es-mx` → `es_MX`, Meta's spelling of a language and locale."""
    code = (code or "").strip().replace("-", "_")
    language, _sep, region = code.partition("_")
    return f"{language.lower()}_{region.upper()}" if region else language.lower()


def name_problems(name: str) -> list[str]:
    if not name:
        return [_("The WhatsApp name is required.")]
    problems = []
    if len(name) > MAX_NAME:
        problems.append(
            _("The WhatsApp name has %(n)d characters; at most %(max)d.")
            % {"n": len(name), "max": MAX_NAME}
        )
    if not TEMPLATE_NAME.fullmatch(name):
        problems.append(
            _(
                "Use lower-case letters, digits and underscores only in the WhatsApp name "
                "(like appointment_reminder)."
            )
        )
    return problems


def language_problems(code: str) -> list[str]:
    if LANGUAGE.fullmatch(code or ""):
        return []
    return [_("Use a language code like en, en_US or es_MX, not %(code)r.") % {"code": code}]


def value_problem(value) -> str | None:
    """Why Meta would refuse a variable value: "empty", "line" or "spaces"; None if fine."""
    text = "" if value is None else str(value)
    if not text.strip():
        return "empty"
    if "\n" in text or "\r" in text or "\t" in text:
        return "line"
    if TOO_MANY_SPACES.search(text):
        return "spaces"
    return None


class Problems(dict):
    """field → messages, in the shape `ValidationError` takes."""

    def add(self, field: str, message: str) -> None:
        self.setdefault(field, []).append(message)


def _malformed_problems(problems: Problems, field: str, text: str) -> None:
    bad = malformed_in(text)
    if bad:
        problems.add(
            field,
            _(
                "%(bad)s is not a placeholder: use {{1}}, {{2}}… or lower-case names like "
                "{{first_name}}, without spaces."
            )
            % {"bad": ", ".join(bad)},
        )


def _scheme_problems(problems: Problems, translation) -> None:
    keys = placeholders(translation)
    numbered = [k for k in keys if POSITIONAL.fullmatch(k)]
    named = [k for k in keys if not POSITIONAL.fullmatch(k)]
    if numbered and named:
        problems.add(
            "body",
            _(
                "Use numbered placeholders ({{1}}, {{2}}…) or named ones ({{first_name}}), "
                "not both: found %(numbered)s and %(named)s."
            )
            % {"numbered": _label(numbered), "named": _label(named)},
        )
        return
    if numbered:
        present = {int(k) for k in numbered}
        gaps = [str(n) for n in range(1, max(present) + 1) if n not in present]
        if gaps:
            problems.add(
                "body",
                _(
                    "Placeholders must run from {{1}} to {{%(last)d}} without gaps: "
                    "%(gaps)s missing."
                )
                % {"last": max(present), "gaps": _label(gaps)},
            )


def _body_problems(problems: Problems, body: str) -> None:
    body = body or ""
    if not body.strip():
        problems.add("body", _("The body is required."))
        return
    if len(body) > MAX_BODY:
        problems.add(
            "body",
            _("The body has %(n)d characters; WhatsApp allows at most %(max)d.")
            % {"n": len(body), "max": MAX_BODY},
        )
    _malformed_problems(problems, "body", body)
    text = body.strip()
    first = PLACEHOLDER.match(text)
    if first and is_placeholder(first.group(1)):
        problems.add(
            "body",
            _(
                "The body may not start with a placeholder (%(p)s): WhatsApp rejects such "
                "templates. Put words before it."
            )
            % {"p": first.group(0)},
        )
    last = list(PLACEHOLDER.finditer(text))
    if last and last[-1].end() == len(text) and is_placeholder(last[-1].group(1)):
        problems.add(
            "body",
            _(
                "The body may not end with a placeholder (%(p)s): WhatsApp rejects such "
                "templates. Put words or a full stop after it."
            )
            % {"p": last[-1].group(0)},
        )
    adjacent = ADJACENT.search(text)
    if adjacent:
        problems.add(
            "body",
            _("Placeholders side by side (%(pair)s): put words between them.")
            % {"pair": adjacent.group(0)},
        )


def _header_problems(problems: Problems, translation) -> None:
    kind = translation.header_type or HEADER_NONE
    text = translation.header_text or ""
    url = translation.header_media_url or ""
    if kind not in HEADER_TYPES:
        problems.add("header_type", _("Unknown header type %(kind)r.") % {"kind": kind})
        return
    if kind != HEADER_TEXT and text:
        problems.add("header_text", _("Header text needs the header type Text."))
    if kind not in MEDIA_HEADERS and url:
        problems.add(
            "header_media_url", _("Only image, video and document headers have a media URL.")
        )
    if kind == HEADER_TEXT:
        if not text.strip():
            problems.add("header_text", _("Write the header text, or choose no header."))
        if len(text) > MAX_HEADER_TEXT:
            problems.add(
                "header_text",
                _("The header text has %(n)d characters; at most %(max)d.")
                % {"n": len(text), "max": MAX_HEADER_TEXT},
            )
        if "\n" in text or "\r" in text:
            problems.add("header_text", _("The header text must be one line."))
        _malformed_problems(problems, "header_text", text)
        keys = placeholders_in(text)
        if len(keys) > 1:
            problems.add(
                "header_text",
                _("The header text may hold one placeholder; it has %(keys)s.")
                % {"keys": _label(keys)},
            )
    if kind in MEDIA_HEADERS:
        if not url:
            problems.add("header_media_url", _("A media header needs the URL of the media."))
        elif not _http_url(url):
            problems.add(
                "header_media_url", _("%(url)s is not an http:// or https:// URL.") % {"url": url}
            )


def _footer_problems(problems: Problems, footer: str) -> None:
    footer = footer or ""
    if len(footer) > MAX_FOOTER:
        problems.add(
            "footer",
            _("The footer has %(n)d characters; at most %(max)d.")
            % {"n": len(footer), "max": MAX_FOOTER},
        )
    if placeholders_in(footer) or malformed_in(footer):
        problems.add("footer", _("The footer may not hold placeholders."))


def _http_url(url: str) -> bool:
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0]
    return bool(sep) and scheme.lower() in WEBHOOK_SCHEMES and bool(host) and " " not in url


def _button_text_problems(problems: Problems, where: str, button: dict) -> None:
    text = button.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.add("buttons", _("%(where)s.text is missing.") % {"where": where})
        return
    if len(text) > MAX_BUTTON_TEXT:
        problems.add(
            "buttons",
            _("%(where)s.text has %(n)d characters; at most %(max)d.")
            % {"where": where, "n": len(text), "max": MAX_BUTTON_TEXT},
        )
    if placeholders_in(text) or malformed_in(text):
        problems.add("buttons", _("%(where)s.text may not hold placeholders.") % {"where": where})


def _button_url_problems(problems: Problems, where: str, button: dict) -> None:
    url = button.get("url")
    if not isinstance(url, str) or not url.strip():
        problems.add("buttons", _("%(where)s.url is missing.") % {"where": where})
        return
    if len(url) > MAX_URL:
        problems.add(
            "buttons",
            _("%(where)s.url has %(n)d characters; at most %(max)d.")
            % {"where": where, "n": len(url), "max": MAX_URL},
        )
    matches = list(PLACEHOLDER.finditer(url))
    at_end = len(matches) == 1 and matches[0].end() == len(url)
    if malformed_in(url) or (matches and not at_end):
        problems.add(
            "buttons",
            _("%(where)s.url may end in one placeholder ({{1}}) and hold no other.")
            % {"where": where},
        )
    base = PLACEHOLDER.sub("x", url)
    if not _http_url(base):
        problems.add(
            "buttons",
            _("%(where)s.url %(url)s is not an http:// or https:// URL.")
            % {"where": where, "url": url},
        )


def _buttons_problems(problems: Problems, buttons) -> None:
    if buttons in (None, ""):
        return
    if not isinstance(buttons, list):
        problems.add("buttons", _("Buttons must be a JSON list of objects."))
        return
    if len(buttons) > MAX_BUTTONS:
        problems.add(
            "buttons",
            _("At most %(max)d buttons; there are %(n)d.")
            % {"max": MAX_BUTTONS, "n": len(buttons)},
        )
    kinds = []
    for index, button in enumerate(buttons):
        where = f"buttons[{index}]"
        if not isinstance(button, dict):
            problems.add(
                "buttons",
                _('%(where)s must be an object like {"type": "QUICK_REPLY", "text": "Yes"}.')
                % {"where": where},
            )
            continue
        kind = button.get("type")
        if kind not in (QUICK_REPLY, URL):
            problems.add(
                "buttons",
                _("%(where)s.type must be QUICK_REPLY or URL, not %(kind)r.")
                % {"where": where, "kind": kind},
            )
            continue
        kinds.append(kind)
        _button_text_problems(problems, where, button)
        if kind == URL:
            _button_url_problems(problems, where, button)
    urls = kinds.count(URL)
    if urls > MAX_URL_BUTTONS:
        problems.add(
            "buttons",
            _("At most %(max)d URL buttons; there are %(n)d.")
            % {"max": MAX_URL_BUTTONS, "n": urls},
        )
    runs = [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]
    if runs.count(QUICK_REPLY) > 1:
        problems.add(
            "buttons",
            _(
                "Keep the quick replies together, all before or all after the URL buttons: "
                "WhatsApp requires it."
            ),
        )


def _samples_problems(problems: Problems, samples) -> None:
    if samples in (None, ""):
        return
    if not isinstance(samples, dict):
        problems.add(
            "samples", _('Samples must be a JSON object like {"1": "Ana", "2": "Tuesday"}.')
        )
        return
    for key, value in samples.items():
        problem = value_problem(value)
        if problem is not None:
            problems.add("samples", sample_problem_text(key, problem))


def sample_problem_text(key: str, problem: str) -> str:
    placeholder = "{{" + str(key) + "}}"
    if problem == "empty":
        return _("The sample for %(p)s is empty.") % {"p": placeholder}
    if problem == "line":
        return _("The sample for %(p)s holds a new line or a tab: WhatsApp refuses those.") % {
            "p": placeholder
        }
    return _("The sample for %(p)s holds more than 4 spaces in a row: WhatsApp refuses those.") % {
        "p": placeholder
    }


def translation_problems(translation) -> Problems:
    """Everything wrong with a translation, by field (empty when it is valid)."""
    problems = Problems()
    for message in language_problems(translation.language):
        problems.add("language", message)
    _header_problems(problems, translation)
    _body_problems(problems, translation.body)
    _footer_problems(problems, translation.footer)
    _buttons_problems(problems, translation.buttons)
    _samples_problems(problems, translation.samples)
    if not problems.get("body"):
        _scheme_problems(problems, translation)
    return problems


# ---------------------------------------------------------------- variables and rendering


def variables_check(translation, variables: Mapping[str, str] | None) -> dict[str, str]:
    """The variables as strings, or `VariablesError` naming every missing, unknown or
    refused value."""
    given = {str(k): "" if v is None else str(v) for k, v in (variables or {}).items()}
    keys = placeholders(translation)
    problems = []
    missing = [key for key in keys if key not in given]
    if missing:
        problems.append(f"no value for {_label(missing)}")
    unknown = [key for key in given if key not in keys]
    if unknown:
        problems.append(f"the template has no placeholder {_label(unknown)}")
    for key in keys:
        if key not in given:
            continue
        problem = value_problem(given[key])
        if problem == "empty":
            problems.append(f"{{{{{key}}}}} is empty")
        elif problem == "line":
            problems.append(f"{{{{{key}}}}} holds a new line or a tab (WhatsApp refuses those)")
        elif problem == "spaces":
            problems.append(
                f"{{{{{key}}}}} holds more than 4 spaces in a row (WhatsApp refuses those)"
            )
    if problems:
        raise VariablesError(f"ContentVariables do not fit the template: {'; '.join(problems)}.")
    return given


def _button_lines(translation, values: Mapping[str, str]) -> list[str]:
    lines = []
    for button in _buttons(translation):
        if not isinstance(button, dict):
            continue
        text = str(button.get("text") or "")
        if button.get("type") == URL:
            lines.append(f"- {text}: {substitute(str(button.get('url') or ''), values)}")
        else:
            lines.append(f"- {text}")
    return lines


def render_text(translation, variables: Mapping[str, str] | None) -> str:
    """The translation as plain text: header, body, footer and the buttons as a list. What a
    message stores as its body (history, the desk) and what SMS or Messenger receive."""
    values = variables_check(translation, variables)
    sections = [
        substitute(_header_text(translation), values).strip(),
        substitute(translation.body, values).strip(),
        (translation.footer or "").strip(),
        "\n".join(_button_lines(translation, values)),
    ]
    return "\n\n".join(section for section in sections if section)


def template_ref(template, translation, variables: Mapping[str, str] | None) -> TemplateRef:
    """What the WhatsApp adapter sends: name, language and the values in Meta's order."""
    values = variables_check(translation, variables)
    header_params: tuple[str, ...] = ()
    media_url = media_type = ""
    if translation.header_type == HEADER_TEXT:
        header_params = tuple(values[k] for k in component_keys(translation.header_text))
    elif translation.header_type in MEDIA_HEADERS:
        media_url, media_type = translation.header_media_url, translation.header_type
    url_params = {}
    for index, button in _url_buttons(translation):
        keys = component_keys(str(button.get("url") or ""))
        if keys:
            url_params[index] = values[keys[0]]
    return TemplateRef(
        name=template.name,
        language=translation.language,
        body_params=tuple(values[k] for k in component_keys(translation.body)),
        header_params=header_params,
        header_media_url=media_url,
        header_media_type=media_type,
        button_url_params=url_params,
    )


# ---------------------------------------------------------------- languages


def language_pick(available: list[str], wanted: str) -> str | None:
    """The translation for `wanted`: the same code, else one of the same language
    (`es` → `es_MX`, `es_AR` → `es`, then any `es_*`); None when there is none."""
    wanted = language_normalize(wanted)
    if not wanted:
        return None
    if wanted in available:
        return wanted
    primary = wanted.split("_")[0]
    if primary in available:
        return primary
    return next((code for code in sorted(available) if code.split("_")[0] == primary), None)
