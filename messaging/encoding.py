# ruff: noqa: RUF001, RUF002  (look-alike characters are this module's subject)
"""SMS encoding choice, smart encoding and segment counting (REFERENCE.md 2 and 3).

Pure functions, no Django: the composer counts segments as the agent types, the outbound
pipeline decides what is actually sent, and both must agree, so they share this module.

The character set comes from the `gsm0338` codec (decoded byte by byte at import), not from a
table typed here, so the encoding decision always agrees with what the codec can encode. The
one place where we overrule the codec (the bare escape code) is documented at `_ESCAPE`.

Counting is by grapheme (what a reader sees as one character):

- GSM-7 when every grapheme is a single GSM character (CR LF, one grapheme of two GSM
  characters, also counts). No GSM character is a combining mark, joiner or variation
  selector, so this is the same as "every code point is in the GSM set", which lets the
  common case skip grapheme segmentation entirely.
- Otherwise UCS-2, where every UTF-16 code unit counts (an emoji is 2, a ZWJ family counts all
  of its units).

Parts are packed greedily by grapheme: an escape pair or a grapheme that does not fit in the
room left in a part starts the next part, because handsets that render parts before
reassembly would otherwise show broken characters. The one degenerate exception is a grapheme
longer than a whole part (e.g. a letter carrying dozens of combining marks, > 67 UTF-16
units): it starts a new part as usual and, since it cannot fit in any part, is cut between
code points where that part is full (a surrogate pair is still never split).
"""

import contextlib
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace
from itertools import accumulate

import gsm0338  # noqa: F401  (importing registers the "gsm03.38" codec)
import regex

__all__ = [
    "GSM7",
    "MAX_BODY_CHARS",
    "UCS2",
    "EncodingResult",
    "analyze",
    "count_segments",
    "is_gsm7",
    "is_gsm7_character",
    "smart_encode",
    "transliterate",
]

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# Twilio refuses a Body longer than this (error 21617); validation lives in the services.
MAX_BODY_CHARS = 1600

# Capacity per segment. A multi-part message loses room to the 6-octet concatenation header.
GSM7_SINGLE = 160
GSM7_MULTI = 153
UCS2_SINGLE = 70
UCS2_MULTI = 67

_CODEC = "gsm03.38"
# Where we overrule the codec: 0x1B is the escape prefix, not a character. The codec's
# decoder agrees (a lone 0x1B decodes to nothing) but its encoder maps U+001B to the bare
# escape code, so "\x1b".encode("gsm03.38") succeeds; a handset would read it as the start
# of an extension character. We skip it, as REFERENCE.md 3 does. Everything else matches
# REFERENCE.md: the codec has capital Ç only (ç is rejected) and no backtick; tests pin both.
_ESCAPE = 0x1B


def _load_charset() -> tuple[frozenset[str], frozenset[str]]:
    """Read the basic and extension sets out of the codec itself, then cross-check them.

    Decoding every byte (and every escape + byte) gives exactly the characters the codec
    knows; encoding each back proves the septet cost we assign (1 or 2) is what it produces.
    """
    basic: set[str] = set()
    extension: set[str] = set()
    for byte in range(0x80):
        if byte != _ESCAPE:
            basic.add(bytes([byte]).decode(_CODEC))
        with contextlib.suppress(UnicodeDecodeError):  # not every byte has an extension
            extension.add(bytes([_ESCAPE, byte]).decode(_CODEC))
    for char in basic | extension:
        expected = 1 if char in basic else 2
        if len(char) != 1 or len(char.encode(_CODEC)) != expected:
            raise RuntimeError(f"gsm0338 codec disagrees with its own table on {char!r}")
    return frozenset(basic), frozenset(extension)


GSM7_BASIC, GSM7_EXTENSION = _load_charset()
GSM7_CHARACTERS = GSM7_BASIC | GSM7_EXTENSION

# Graphemes that are sendable as GSM-7, with their cost in septets. CR LF is one grapheme.
_GRAPHEME_SEPTETS: dict[str, int] = {c: 1 for c in GSM7_BASIC}
_GRAPHEME_SEPTETS.update({c: 2 for c in GSM7_EXTENSION})
_GRAPHEME_SEPTETS["\r\n"] = 2


def _char_class(chars: frozenset[str]) -> str:
    return "".join(sorted(re.escape(c) for c in chars))


# Character-class scans use the stdlib `re`, about ten times faster than `regex` at this;
# `regex` is only needed for grapheme clusters (\X).
_NOT_BASIC_RE = re.compile(f"[^{_char_class(GSM7_BASIC)}]")
_NOT_GSM_RE = re.compile(f"[^{_char_class(GSM7_CHARACTERS)}]")
_EXTENSION_RE = re.compile(f"[{_char_class(GSM7_EXTENSION)}]")
_ASTRAL_RE = re.compile("[\U00010000-\U0010ffff]")
_GRAPHEME_RE = regex.compile(r"\X")
# Below U+0300 every code point has Grapheme_Cluster_Break Other, Control, CR or LF (a test
# checks this against `regex`), so such text has one grapheme per code point except CR LF,
# which covers Spanish, French, German, ... without the slow \X.
_MAY_CLUSTER_RE = re.compile("[^\x00-\u02ff]")
_SIMPLE_GRAPHEME_RE = re.compile(r"\r\n|.", re.DOTALL)


def _build_smart_map() -> dict[int, str | None]:
    """The look-alike table of REFERENCE.md 2, as a `str.translate` table.

    Only punctuation and spacing look-alikes: like Twilio we never strip accents from letters
    (á, í, ó, ú, ç stay and force UCS-2), because that changes the words, not just the glyphs.
    Additions beyond REFERENCE.md, all unambiguous: the prime family (′ ‵ ʹ ˊ → ', ″ ‶ → "),
    non-breaking hyphen and minus sign (‑ − → -), single low quote ‚ → , and single
    angle quotes ‹ › → < >.
    """
    table: dict[int, str | None] = {}
    groups = {
        '"': "“”„‟«»❝❞〝〞＂ʺˮ″‶",
        "'": "‘’‛ʻʼʽˈ´`❛❜＇′‵ʹˊ",
        "-": "–—―‐‑‒⁃﹣－•−",
        "/": "⁄∕",
        ",": "‚",
        "<": "‹",
        ">": "›",
    }
    for target, sources in groups.items():
        for char in sources:
            table[ord(char)] = target
    table[ord("…")] = "..."
    table.update({ord("¼"): "1/4", ord("½"): "1/2", ord("¾"): "3/4"})
    for code in (0x00A0, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000):
        table[code] = " "
    for code in (0x200B, 0x2060, 0xFEFF):
        table[code] = None
    # Full-width ASCII maps to ASCII, then through the table again so that full-width
    # backtick ends as ' (plain ` is not GSM) rather than as another non-GSM character.
    for code in range(0xFF01, 0xFF5F):
        ascii_char = chr(code - 0xFEE0)
        table.setdefault(code, table.get(ord(ascii_char), ascii_char))
    return table


SMART_ENCODING_MAP: dict[int, str | None] = _build_smart_map()


@dataclass(frozen=True)
class EncodingResult:
    """What sending `text` costs: the encoding, the segments and where each part ends.

    `units` are septets for GSM-7 (an escape pair counts 2) and UTF-16 code units for UCS-2,
    so `sum(segment_units) == units` and every part fits in `units_per_segment`.
    """

    text: str
    encoding: str
    segments: int
    units: int
    units_per_segment: int
    segment_units: tuple[int, ...]
    ucs2_characters: tuple[str, ...]
    transliterated: bool


def is_gsm7_character(grapheme: str) -> bool:
    """Whether one grapheme can be sent as GSM-7.

    True for a single GSM character and for CR LF (one grapheme, two GSM characters); False
    for a GSM base letter carrying a combining mark, since the mark itself is not GSM.
    """
    return grapheme in _GRAPHEME_SEPTETS


def is_gsm7(text: str) -> bool:
    """Whether the whole text can be sent as GSM-7 (every grapheme is GSM)."""
    return _NOT_GSM_RE.search(text) is None


def transliterate(text: str) -> str:
    """Replace every look-alike of REFERENCE.md 2 unconditionally (see `smart_encode`)."""
    return text.translate(SMART_ENCODING_MAP)


def smart_encode(text: str) -> str:
    """Apply the look-alike mapping only when that makes the whole message GSM-7.

    A message that stays UCS-2 anyway (an emoji, a ç) costs the same with or without the
    substitutions, so it is sent exactly as written.
    """
    if is_gsm7(text):
        return text
    candidate = transliterate(text)
    return candidate if is_gsm7(candidate) else text


def _grapheme_starts(graphemes: list[str]) -> list[int]:
    return [0, *accumulate(map(len, graphemes))]


def _pack(length: int, double: list[int], capacity: int, starts: list[int] | None) -> list[int]:
    """Split `length` code points into greedy parts of at most `capacity` units.

    Every code point costs one unit except those at the sorted indexes `double` (escape
    pairs in GSM-7, surrogate pairs in UCS-2), which cost two; so the units before index j
    are `j + bisect_left(double, j)`. Each part's end is found by bisection on that count,
    then moved back to the start of the grapheme it would cut (`starts`: sorted grapheme
    start offsets, None when every code point is its own grapheme). The cost is
    O(parts * log^2 n) in Python rather than a Python loop over every character.
    """
    if not double and starts is None:
        full, rest = divmod(length, capacity)
        return [capacity] * full + ([rest] if rest else [])
    parts: list[int] = []
    start = used = 0
    while start < length:
        limit = used + capacity
        # The first code point always fits (it costs at most 2 units).
        low, high = start + 1, min(length, start + capacity)
        while low < high:
            middle = (low + high + 1) >> 1
            if middle + bisect_left(double, middle) <= limit:
                low = middle
            else:
                high = middle - 1
        end = low
        if starts is not None and end < length:
            grapheme_start = starts[bisect_right(starts, end) - 1]
            # Equal to `start` only for a grapheme longer than a whole part (degenerate):
            # then it is cut here, between code points.
            if grapheme_start > start:
                end = grapheme_start
        reached = end + bisect_left(double, end)
        parts.append(reached - used)
        start, used = end, reached
    return parts


def _result(
    text: str,
    encoding: str,
    double: list[int],
    starts: list[int] | None,
    offending: tuple[str, ...],
    transliterated: bool,
) -> EncodingResult:
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if encoding == GSM7 else (UCS2_SINGLE, UCS2_MULTI)
    units = len(text) + len(double)
    if units <= single:
        parts: tuple[int, ...] = (units,) if units else ()
        capacity = single
    else:
        parts = tuple(_pack(len(text), double, multi, starts))
        capacity = multi
    return EncodingResult(
        text, encoding, len(parts), units, capacity, parts, offending, transliterated
    )


def _gsm7_result(text: str, escapes: list[int], transliterated: bool) -> EncodingResult:
    starts = None
    if "\r\n" in text and len(text) + len(escapes) > GSM7_SINGLE:
        starts = _grapheme_starts(_SIMPLE_GRAPHEME_RE.findall(text))
    return _result(text, GSM7, escapes, starts, (), transliterated)


def analyze(text: str, *, smart_encoding: bool = False) -> EncodingResult:
    """Decide the encoding of `text` and how it splits into segments.

    With `smart_encoding`, the result describes the text that would actually be sent (see
    `smart_encode`), and `transliterated` says whether it differs from the input. The
    transliterated text is used only when it does not need more segments than the original.
    """
    transliterated = False
    if smart_encoding:
        sent = smart_encode(text)
        if sent != text:
            # Transliteration can lengthen text ("…" → "..."): never let it cost segments.
            smart, plain = analyze(sent), analyze(text)
            if smart.segments <= plain.segments:
                return replace(smart, transliterated=True)
            return plain

    if _NOT_BASIC_RE.search(text) is None:
        return _gsm7_result(text, [], transliterated)  # the common case: no escape pairs
    if _NOT_GSM_RE.search(text) is None:
        escapes = [m.start() for m in _EXTENSION_RE.finditer(text)]
        return _gsm7_result(text, escapes, transliterated)

    double = [m.start() for m in _ASTRAL_RE.finditer(text)]
    multi_part = len(text) + len(double) > UCS2_SINGLE
    if _MAY_CLUSTER_RE.search(text) is None:
        # One grapheme per code point (but CR LF), and CR LF is GSM: no \X needed.
        offending = tuple(dict.fromkeys(_NOT_GSM_RE.findall(text)))
        starts = None
        if "\r\n" in text and multi_part:
            starts = _grapheme_starts(_SIMPLE_GRAPHEME_RE.findall(text))
    else:
        graphemes = _GRAPHEME_RE.findall(text)
        offending = tuple(dict.fromkeys(g for g in graphemes if g not in _GRAPHEME_SEPTETS))
        starts = None
        if multi_part and len(graphemes) != len(text):
            starts = _grapheme_starts(graphemes)
    return _result(text, UCS2, double, starts, offending, transliterated)


def count_segments(text: str, *, smart_encoding: bool = False) -> int:
    """How many segments sending `text` costs (0 for empty text)."""
    if _NOT_BASIC_RE.search(text) is None:
        # The composer calls this on every keystroke; skip building a result when the text
        # is plain basic-set GSM without CR LF, where parts are simple arithmetic. Smart
        # encoding never changes such text, so the shortcut holds with it on too.
        septets = len(text)
        if septets <= GSM7_SINGLE:
            return 1 if septets else 0
        if "\r\n" not in text:
            return -(-septets // GSM7_MULTI)
    return analyze(text, smart_encoding=smart_encoding).segments
