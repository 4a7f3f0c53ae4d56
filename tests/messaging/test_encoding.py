# ruff: noqa: RUF001  (look-alike characters are what is under test)
"""SMS encoding and segments (REFERENCE.md 2 and 3).

The vectors come from REFERENCE.md; the packing tests are built so that a counter that
splits escape pairs, surrogate pairs or graphemes across parts would get different parts;
the property tests compare `analyze` with a slow, obviously correct reference packer.
"""

import codecs

import pytest
import regex
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from messaging.encoding import (
    GSM7,
    MAX_BODY_CHARS,
    SMART_ENCODING_MAP,
    UCS2,
    EncodingResult,
    analyze,
    count_segments,
    is_gsm7,
    is_gsm7_character,
    smart_encode,
    transliterate,
)

# REFERENCE.md 3, typed independently of the codec on purpose.
REFERENCE_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
REFERENCE_EXTENSION = "^{}\\[~]|€\f"

FAMILY = "👨\u200d👩\u200d👧\u200d👦"  # 4 emoji + 3 ZWJ = 11 UTF-16 units, one grapheme


def graphemes(text: str) -> list[str]:
    return regex.findall(r"\X", text)


# --- REFERENCE.md 3 vectors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("char", "count", "encoding", "segments"),
    [
        ("😀", 35, UCS2, 1),
        ("😀", 36, UCS2, 2),
        ("a", 160, GSM7, 1),
        ("a", 161, GSM7, 2),
        ("a", 306, GSM7, 2),
        ("a", 307, GSM7, 3),
        ("€", 80, GSM7, 1),
        ("€", 81, GSM7, 2),
        ("ç", 70, UCS2, 1),
        ("ç", 71, UCS2, 2),
    ],
)
def test_reference_vectors(char: str, count: int, encoding: str, segments: int) -> None:
    text = char * count
    result = analyze(text)
    assert (result.encoding, result.segments) == (encoding, segments)
    assert count_segments(text) == segments


def test_units_and_capacity_single_and_multi() -> None:
    assert analyze("😀" * 35).units == 70
    assert analyze("€" * 80).units == 160
    single = analyze("a" * 160)
    assert (single.units_per_segment, single.segment_units) == (160, (160,))
    multi = analyze("a" * 161)
    assert (multi.units_per_segment, multi.segment_units) == (153, (153, 8))
    ucs2 = analyze("ç" * 71)
    assert (ucs2.units_per_segment, ucs2.segment_units) == (67, (67, 4))


def test_empty_text_is_zero_segments() -> None:
    assert analyze("") == EncodingResult("", GSM7, 0, 0, 160, (), (), False)
    assert count_segments("") == 0
    assert count_segments("", smart_encoding=True) == 0


def test_max_body_chars_is_twilios_limit() -> None:
    assert MAX_BODY_CHARS == 1600


# --- the character set agrees with REFERENCE.md and with the codec --------------------------


def test_character_set_matches_reference() -> None:
    for char in REFERENCE_BASIC:
        assert is_gsm7_character(char), repr(char)
        assert analyze(char).units == 1, repr(char)
    for char in REFERENCE_EXTENSION:
        assert is_gsm7_character(char), repr(char)
        assert analyze(char).units == 2, repr(char)
    known = set(REFERENCE_BASIC) | set(REFERENCE_EXTENSION)
    others = [chr(c) for c in range(0x10000) if c < 0xD800 or c > 0xDFFF]
    assert [c for c in others if is_gsm7_character(c) and c not in known] == []


def test_every_gsm_character_encodes_with_the_codec_at_our_cost() -> None:
    codec = codecs.lookup("gsm03.38")
    for char in REFERENCE_BASIC + REFERENCE_EXTENSION:
        encoded, _ = codec.encode(char)
        assert len(encoded) == analyze(char).units, repr(char)


def test_codec_and_reference_agree_on_cedilla_and_backtick() -> None:
    assert "Ç".encode("gsm03.38") == b"\x09"
    with pytest.raises(UnicodeEncodeError):
        "ç".encode("gsm03.38")
    with pytest.raises(UnicodeEncodeError):
        "`".encode("gsm03.38")


def test_lone_escape_is_not_gsm_although_the_codec_encodes_it() -> None:
    # The documented override: the codec maps U+001B to the bare escape code.
    assert "\x1b".encode("gsm03.38") == b"\x1b"
    assert not is_gsm7("\x1b")
    assert analyze("a\x1b").encoding == UCS2


def test_backtick_forces_ucs2() -> None:
    result = analyze("run `make test`")
    assert result.encoding == UCS2
    assert result.ucs2_characters == ("`",)


def test_capital_c_cedilla_is_gsm_small_is_not() -> None:
    assert analyze("ÇA VA").encoding == GSM7
    result = analyze("ça va")
    assert (result.encoding, result.ucs2_characters) == (UCS2, ("ç",))


def test_cr_lf_and_form_feed_are_gsm() -> None:
    assert is_gsm7_character("\r\n")
    result = analyze("line 1\r\nline 2\nline 3\rend\f")
    assert (result.encoding, result.units) == (GSM7, 27)


def test_spanish_letters() -> None:
    assert analyze("¿Mañana? ¡Sí!").encoding == UCS2  # í is not GSM
    assert analyze("¿Mañana? ¡Ñoño!").encoding == GSM7
    assert analyze("canción árbol útil").ucs2_characters == ("ó", "á", "ú")


# --- grapheme rules ---------------------------------------------------------------------------


def test_base_letter_with_combining_mark_is_not_gsm() -> None:
    decomposed = "e\u0301"  # looks like é, which is GSM, but the mark is not
    assert not is_gsm7_character(decomposed)
    result = analyze("caf" + decomposed)
    assert (result.encoding, result.units, result.ucs2_characters) == (UCS2, 5, (decomposed,))


def test_zwj_family_counts_all_its_units() -> None:
    result = analyze(FAMILY)
    assert (result.encoding, result.units, result.segments) == (UCS2, 11, 1)
    assert result.ucs2_characters == (FAMILY,)


def test_ucs2_characters_lists_distinct_offenders_in_order() -> None:
    result = analyze("Hola 😀 ç 😀 ñ ¿ 👍🏽 ç")
    assert result.ucs2_characters == ("😀", "ç", "👍🏽")
    assert analyze("plain GSM €").ucs2_characters == ()


# --- packing: nothing indivisible straddles a part boundary ---------------------------------


def test_escape_pair_is_never_split() -> None:
    # 152 septets, then € (2 septets) would straddle the 153 boundary: it opens part 2.
    result = analyze("a" * 152 + "€" + "a" * 10)
    assert result.encoding == GSM7
    assert result.units == 164
    assert result.segment_units == (152, 12)


def test_escape_pair_that_fits_exactly_stays() -> None:
    result = analyze("a" * 151 + "€" + "a" * 10)
    assert result.segment_units == (153, 10)


def test_cr_lf_is_never_split() -> None:
    result = analyze("a" * 152 + "\r\n" + "a" * 10)
    assert result.segment_units == (152, 12)
    assert count_segments("a" * 152 + "\r\n" + "a" * 10) == 2


def test_emoji_is_never_split_across_ucs2_parts() -> None:
    # 66 units, then a 2-unit emoji would straddle the 67 boundary.
    result = analyze("ç" * 66 + "😀" + "a" * 10)
    assert result.units == 78
    assert result.segment_units == (66, 12)


def test_zwj_family_is_never_split_across_ucs2_parts() -> None:
    result = analyze("ç" * 60 + FAMILY + "a" * 10)
    assert result.units == 81
    assert result.segment_units == (60, 21)


def test_combining_sequence_is_never_split() -> None:
    result = analyze("a" * 66 + "e\u0301" + "a" * 10)
    assert result.segment_units == (66, 12)


def test_grapheme_longer_than_a_part_is_cut_between_code_points() -> None:
    # Degenerate: 1 + 100 combining marks = 101 units cannot fit in a 67-unit part. It opens
    # a new part like any grapheme that does not fit, then is cut where that part is full.
    zalgo = "e" + "\u0301" * 100
    result = analyze("a" * 10 + zalgo)
    assert result.segment_units == (10, 67, 34)
    # A surrogate pair inside such a grapheme stays whole: 30 emoji joined by ZWJ are one
    # 89-unit grapheme; after 22 emoji + 22 joiners (66 units) the next emoji would
    # straddle 67, so the cut comes before it.
    chain = "\u200d".join(["😀"] * 30)
    assert len(graphemes(chain)) == 1
    assert analyze(chain).segment_units == (66, 23)


# --- smart encoding -------------------------------------------------------------------------


def test_smart_encoding_turns_typographic_text_into_gsm() -> None:
    text = "“Hello” – ‘world’…"
    result = analyze(text, smart_encoding=True)
    assert result.text == "\"Hello\" - 'world'..."
    assert (result.encoding, result.transliterated, result.units) == (GSM7, True, 20)
    assert analyze(text).encoding == UCS2


def test_smart_encoding_leaves_text_that_stays_ucs2_unchanged() -> None:
    text = "“Hello” 😀"
    result = analyze(text, smart_encoding=True)
    assert result.text == text
    assert (result.encoding, result.transliterated) == (UCS2, False)
    assert smart_encode(text) == text
    assert transliterate(text) == '"Hello" 😀'  # the mapping itself is unconditional


def test_smart_encoding_removes_zero_width_characters() -> None:
    text = "\ufeffHi\u200bthere\u2060"
    result = analyze(text, smart_encoding=True)
    assert (result.text, result.encoding, result.units) == ("Hithere", GSM7, 7)


def test_smart_encoding_maps_full_width_ascii() -> None:
    assert smart_encode("ＨＥＬＬＯ！ ａｔ ７：３０｛ｏｋ｝") == "HELLO! at 7:30{ok}"
    # Full-width backtick goes to ' because plain ` is not GSM either.
    assert smart_encode("｀ｘ｀") == "'x'"
    assert is_gsm7(transliterate("".join(chr(c) for c in range(0xFF01, 0xFF5F))))


def test_smart_encoding_spaces_dashes_fractions_slashes() -> None:
    text = "a\u00a0b\u2003c\u202fd\u205fe\u3000f — ½ cup ¼ ¾ 1⁄2 3∕4 • item ‐ ‑ ‒ ― ⁃ ﹣ －"
    assert smart_encode(text) == "a b c d e f - 1/2 cup 1/4 3/4 1/2 3/4 - item - - - - - - -"


def test_smart_encoding_quotes_and_primes() -> None:
    doubles = "“”„‟«»❝❞〝〞＂ʺˮ"
    singles = "‘’‛ʻʼʽˈ´`❛❜＇′"
    assert smart_encode(doubles) == '"' * len(doubles)
    assert smart_encode(singles) == "'" * len(singles)


def test_smart_encoding_does_not_strip_accents() -> None:
    text = "“Canción” para ti"
    assert smart_encode(text) == text
    result = analyze(text, smart_encoding=True)
    assert (result.encoding, result.transliterated) == (UCS2, False)


def test_smart_encoding_of_gsm_text_is_identity() -> None:
    result = analyze("Hi {name}, 10€", smart_encoding=True)
    assert (result.text, result.transliterated) == ("Hi {name}, 10€", False)


def test_mapping_only_maps_non_gsm_to_gsm() -> None:
    for code, target in SMART_ENCODING_MAP.items():
        assert not is_gsm7(chr(code)), hex(code)
        assert target is None or is_gsm7(target), hex(code)


def test_smart_encoding_counts_the_expanded_text() -> None:
    # … becomes three septets: 54 ellipses = 162 septets, two GSM-7 segments, while the
    # original is one UCS-2 segment, so it is kept; 20 ellipses = 60 septets, one segment.
    result = analyze("…" * 54, smart_encoding=True)
    assert (result.encoding, result.units, result.segments) == (UCS2, 54, 1)
    assert count_segments("…" * 54, smart_encoding=True) == 1
    short = analyze("…" * 20, smart_encoding=True)
    assert (short.encoding, short.units, short.segments) == (GSM7, 60, 1)


# --- robustness and internal shortcuts ------------------------------------------------------


def test_lone_surrogate_counts_one_unit_and_does_not_raise() -> None:
    result = analyze("a\ud800b")
    assert (result.encoding, result.units, result.ucs2_characters) == (UCS2, 3, ("\ud800",))


def test_gsm_and_code_points_below_u0300_never_cluster() -> None:
    # analyze skips \X for such text; this is the Unicode fact that makes that safe.
    simple = regex.compile(r"[\p{GCB=Other}\p{GCB=Control}\p{GCB=CR}\p{GCB=LF}]")
    assert [hex(c) for c in range(0x300) if not simple.match(chr(c))] == []
    # Likewise GSM-7 text is packed without \X: no GSM character (Greek capitals and €
    # included) can join a cluster.
    gsm = REFERENCE_BASIC + REFERENCE_EXTENSION
    assert [c for c in gsm if not simple.match(c)] == []


def test_long_spanish_text_with_crlf_keeps_crlf_together() -> None:
    text = "ó" * 66 + "\r\n" + "a" * 10  # UCS-2 (ó), CR LF would straddle 67
    assert analyze(text).segment_units == (66, 12)


# --- properties -----------------------------------------------------------------------------

PIECES = [
    *"abcxyzABC 019.,!?'\"-_@$\n\r",
    *"^{}\\[]~|€\f",  # GSM extension
    *"áéíóúñÑçÇàèüÜ¿¡",  # accented, some GSM, some not
    "😀",
    "👍🏽",
    "🇪🇸",
    FAMILY,
    "e\u0301",
    "\u0301",
    "\u200d",
    "\r\n",
    "`",
    "“",
    "…",
    "\u200b",
    "中",
]


def near_boundary(
    runs: dict[str, list[int]], first: list[str], pieces: list[str]
) -> st.SearchStrategy[str]:
    """A run of one filler character ending 0-3 units before a part boundary, then an
    indivisible piece (escape pair, CR LF, emoji, cluster), then random pieces.

    Hypothesis favours short, simple text, which would almost never put such a piece
    across a boundary; `runs` maps each filler to the run lengths that end on a boundary.
    """
    run = st.sampled_from(sorted(runs)).flatmap(
        lambda filler: st.tuples(st.just(filler), st.sampled_from(runs[filler]))
    )
    return st.builds(
        lambda filler_run, short, head, tail: (
            filler_run[0] * max(0, filler_run[1] - short) + head + "".join(tail)
        ),
        run,
        st.integers(0, 3),
        st.sampled_from(first),
        st.lists(st.sampled_from(pieces), max_size=40),
    )


# GSM-7 (153 septets per part; € costs 2), UCS-2 below U+0300 (the path that skips \X;
# 67 units per part) and UCS-2 with clusters (😀 costs 2).
gsm_text = near_boundary(
    {"a": [153, 306], "€": [77, 153]},
    ["€", "\r\n", "{", "a"],
    [*"abc xyz.,", *"€{}[]", "\r\n", "\r", "\n", "ñ"],
)
latin_text = near_boundary(
    {"a": [67, 134], "ó": [67, 134]},
    ["\r\n", "ó", "€"],
    [*"abc ,.", *"áéíóúçñ¿¡", "\r\n", "€"],
)
mixed_text = near_boundary(
    {"ç": [67, 134], "😀": [34, 67], "a": [67, 153]},
    [FAMILY, "😀", "e\u0301", "👍🏽", "🇪🇸", "\r\n"],
    PIECES,
)
packing_text = st.one_of(mixed_text, gsm_text, latin_text)
any_text = st.one_of(packing_text, st.text(max_size=300))

LOOK_ALIKES = [chr(code) for code in SMART_ENCODING_MAP]
transliterable_text = st.lists(
    st.sampled_from(sorted(set(REFERENCE_BASIC + REFERENCE_EXTENSION)) + LOOK_ALIKES),
    max_size=300,
).map("".join)


def reference_parts(text: str) -> tuple[str, int, tuple[int, ...]]:
    """Slow, obvious greedy packing over \\X graphemes (the degenerate case excluded)."""
    clusters = graphemes(text)
    if all(is_gsm7_character(g) for g in clusters):
        encoding, single, multi = GSM7, 160, 153
        sizes = [len(g.encode("gsm03.38")) for g in clusters]
    else:
        encoding, single, multi = UCS2, 70, 67
        sizes = [len(g.encode("utf-16-le", "surrogatepass")) // 2 for g in clusters]
    total = sum(sizes)
    if total <= single:
        return encoding, single, (total,) if total else ()
    parts = [0]
    for size in sizes:
        if parts[-1] + size > multi:
            parts.append(0)
        parts[-1] += size
    return encoding, multi, tuple(parts)


@pytest.mark.parametrize(
    "strategy", [gsm_text, latin_text, mixed_text], ids=["gsm", "latin", "mixed"]
)
@settings(max_examples=300)  # the CR LF-on-the-boundary cases are a few % of draws
@given(data=st.data())
def test_packing_matches_the_reference_packer(strategy: st.SearchStrategy[str], data) -> None:
    text = data.draw(strategy)
    assume(all(len(g.encode("utf-16-le")) // 2 <= 67 for g in graphemes(text)))
    result = analyze(text)
    expected = reference_parts(text)
    assert (result.encoding, result.units_per_segment, result.segment_units) == expected


@given(any_text, st.booleans())
def test_parts_add_up_and_fit(text: str, smart: bool) -> None:
    result = analyze(text, smart_encoding=smart)
    assert sum(result.segment_units) == result.units
    assert len(result.segment_units) == result.segments
    assert all(0 < part <= result.units_per_segment for part in result.segment_units)
    assert result.units_per_segment in ((160, 153) if result.encoding == GSM7 else (70, 67))
    assert count_segments(text, smart_encoding=smart) == result.segments


@given(packing_text, st.sampled_from(PIECES))
def test_appending_never_decreases_segments(text: str, piece: str) -> None:
    assert count_segments(text + piece) >= count_segments(text)


@given(transliterable_text)
def test_smart_encoding_reaches_gsm_when_everything_has_a_mapping(text: str) -> None:
    result = analyze(text, smart_encoding=True)
    assert result.encoding == GSM7
    assert is_gsm7(smart_encode(text))
    assert result.transliterated == (text != result.text)


@given(any_text)
def test_gsm_decision_is_per_grapheme(text: str) -> None:
    expected = all(is_gsm7_character(g) for g in graphemes(text))
    assert is_gsm7(text) == expected
    assert (analyze(text).encoding == GSM7) == expected
    offenders = [g for g in graphemes(text) if not is_gsm7_character(g)]
    assert analyze(text).ucs2_characters == tuple(dict.fromkeys(offenders))


def test_smart_encoding_never_costs_more_segments():
    text = "…" * 160  # 160 UTF-16 units (3 parts) as UCS-2; "..." x 160 = 480 septets (4 parts)
    result = analyze(text, smart_encoding=True)
    assert (result.encoding, result.segments, result.transliterated) == (UCS2, 3, False)
    assert result.text == text
    short = analyze("Wait…", smart_encoding=True)
    assert (short.encoding, short.text, short.transliterated) == (GSM7, "Wait...", True)
