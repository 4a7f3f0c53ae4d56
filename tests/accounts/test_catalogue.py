"""The Spanish catalogue is complete and its compiled .mo matches the .po."""

import ast
import gettext
import re
from pathlib import Path

from django.conf import settings

LOCALE = Path(settings.LOCALE_PATHS[0]) / "es" / "LC_MESSAGES"


def po_entries(path: Path) -> dict[str, str]:
    """msgid → msgstr from a .po file (singular entries, no contexts: all we use)."""
    entries: dict[str, str] = {}
    text = path.read_text(encoding="utf-8")
    for block in text.split("\n\n"):
        if "#, fuzzy" in block:
            entries.setdefault("__fuzzy__", block)
        match = re.search(r'^msgid ((?:".*"\n)+)msgstr ((?:".*"\n?)+)', block + "\n", re.M)
        if match:
            msgid = "".join(ast.literal_eval(s) for s in match.group(1).split("\n") if s)
            msgstr = "".join(ast.literal_eval(s) for s in match.group(2).split("\n") if s)
            if msgid:
                entries[msgid] = msgstr
    return entries


def test_every_message_has_a_spanish_translation():
    entries = po_entries(LOCALE / "django.po")
    assert "__fuzzy__" not in entries
    assert len(entries) >= 25
    assert [msgid for msgid, msgstr in entries.items() if not msgstr] == []


def test_the_compiled_catalogue_matches_the_source():
    entries = po_entries(LOCALE / "django.po")
    with (LOCALE / "django.mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    stale = {m: s for m, s in entries.items() if compiled.gettext(m) != s}
    assert stale == {}, "run: DEBUG=1 python manage.py compilemessages"
