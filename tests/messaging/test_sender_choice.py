"""Sender choice follows REFERENCE.md 2 in order.

Each rule's test uses a pool that also holds senders a *later* rule would pick, so the test
fails if the order is wrong.
"""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.addresses import Channel, parse_address
from messaging.sender_choice import (
    ALPHA_UNSUPPORTED_COUNTRIES,
    NANP_OVERLAYS,
    RULE_ORDER,
    Candidate,
    NoSenderError,
    Rule,
    SenderKind,
    choose_sender,
    overlay_codes,
)

K = SenderKind

TO_SF = parse_address("+14155550101")  # US, area code 415 (overlaid by 628)
TO_ES = parse_address("+34612345670")
TO_WA_ES = parse_address("whatsapp:+34612345670")
TO_MESSENGER = parse_address("messenger:4242")

_ids = itertools.count(1)


def sms(address, country, kind=K.LONG_CODE, *, id=None, mms=False, active=True):
    return Candidate(
        id=id if id is not None else next(_ids),
        channel=Channel.SMS,
        kind=kind,
        address=address,
        country=country,
        mms=mms,
        active=active,
    )


def alpha(name, country, **kwargs):
    return sms(name, country, K.ALPHANUMERIC, **kwargs)


def whatsapp(number, country, *, id=None):
    return Candidate(
        id=id or next(_ids),
        channel=Channel.WHATSAPP,
        kind=K.WHATSAPP,
        address=f"whatsapp:{number}",
        country=country,
    )


def page(page_id, *, id=None):
    return Candidate(
        id=id or next(_ids),
        channel=Channel.MESSENGER,
        kind=K.MESSENGER_PAGE,
        address=f"messenger:{page_id}",
        country=None,
    )


# A US-recipient pool with one sender for every rule from short code on.
US_SHORT = sms("12345", "US", K.SHORT_CODE, id=10)
CA_SHORT = sms("54321", "CA", K.SHORT_CODE, id=11)
SF_LONG = sms("+14155550100", "US", id=12)  # same area code
SF_OVERLAY = sms("+16285550100", "US", id=13)  # 628 overlays 415
NY_LONG = sms("+12125550100", "US", id=14)  # NANP, another region
TOLL_FREE = sms("+18005550100", "US", K.TOLL_FREE, id=15)
ES_LONG = sms("+34612345678", "ES", id=16)
GB_LONG = sms("+447400123456", "GB", id=17)
TORONTO_LONG = sms("+14165550100", "CA", id=18)
DEFAULT_ALPHA = alpha("ACME", None, id=19)
ES_ALPHA = alpha("ACMEES", "ES", id=20)
GB_ALPHA = alpha("ACMEUK", "GB", id=21)

US_POOL = [DEFAULT_ALPHA, US_SHORT, CA_SHORT, SF_LONG, SF_OVERLAY, NY_LONG, TOLL_FREE, ES_LONG]


def choose(to, pool, **kwargs):
    return choose_sender(to=to, candidates=pool, **kwargs)


def without(pool, *gone):
    return [c for c in pool if c not in gone]


def test_rule_order_is_the_reference_order():
    assert [rule for rule, _ in RULE_ORDER] == list(Rule)


# -- 1. channel --------------------------------------------------------------------------


def test_no_sender_of_the_channel_is_21606_naming_the_channel():
    with pytest.raises(NoSenderError) as caught:
        choose(TO_WA_ES, [ES_LONG, page(1)])
    assert caught.value.code == 21606
    assert "WhatsApp" in caught.value.message
    assert str(caught.value) == caught.value.message


def test_inactive_senders_do_not_count():
    with pytest.raises(NoSenderError) as caught:
        choose(TO_ES, [sms("+34612345678", "ES", active=False)])
    assert caught.value.code == 21606


def test_mms_filters_out_non_mms_senders_and_alphanumeric_ids():
    es_alpha_mms = alpha("ACMEES", "ES", mms=True)
    es_long = sms("+34612345678", "ES", mms=False)
    us_long_mms = sms("+12125550100", "US", mms=True)
    pool = [es_alpha_mms, es_long, us_long_mms]

    assert choose(TO_ES, pool).sender_id == es_alpha_mms.id
    choice = choose(TO_ES, pool, needs_mms=True)
    assert (choice.sender_id, choice.rule, choice.considered) == (us_long_mms.id, Rule.US, 1)


def test_no_mms_sender_is_21606_naming_mms():
    with pytest.raises(NoSenderError) as caught:
        choose(TO_SF, [SF_LONG, alpha("ACME", None, mms=True)], needs_mms=True)
    assert caught.value.code == 21606
    assert "MMS" in caught.value.message


def test_mms_does_not_constrain_whatsapp():
    sender = whatsapp("+34612345678", "ES")
    assert choose(TO_WA_ES, [sender], needs_mms=True).sender_id == sender.id


def test_considered_counts_the_pool_after_the_channel_filter():
    pool = [*US_POOL, sms("+14155550102", "US", active=False), whatsapp("+14155550103", "US")]
    assert choose(TO_SF, pool).considered == len(US_POOL)


# -- 2. alphanumeric ---------------------------------------------------------------------


def test_alphanumeric_of_the_destination_country_comes_first():
    pool = [GB_ALPHA, DEFAULT_ALPHA, ES_ALPHA, ES_LONG]
    choice = choose(TO_ES, pool, sticky_sender_id=ES_LONG.id)
    assert (choice.sender_id, choice.rule) == (ES_ALPHA.id, Rule.ALPHANUMERIC_COUNTRY)


def test_default_alphanumeric_beats_sticky_and_numbers():
    pool = [GB_ALPHA, DEFAULT_ALPHA, ES_LONG]
    choice = choose(TO_ES, pool, sticky_sender_id=ES_LONG.id)
    assert (choice.sender_id, choice.rule) == (DEFAULT_ALPHA.id, Rule.ALPHANUMERIC_DEFAULT)


def test_alphanumeric_of_another_country_is_never_used():
    choice = choose(TO_ES, [GB_ALPHA, GB_LONG], sticky_sender_id=GB_ALPHA.id)
    assert (choice.sender_id, choice.rule) == (GB_LONG.id, Rule.ANY)
    with pytest.raises(NoSenderError) as caught:
        choose(TO_ES, [GB_ALPHA])
    assert caught.value.code == 21408


def test_alphanumeric_is_not_used_for_the_us():
    assert "US" in ALPHA_UNSUPPORTED_COUNTRIES
    us_alpha = alpha("ACMEUS", "US")
    choice = choose(TO_SF, [us_alpha, DEFAULT_ALPHA, NY_LONG], sticky_sender_id=DEFAULT_ALPHA.id)
    assert (choice.sender_id, choice.rule) == (NY_LONG.id, Rule.NANP)
    with pytest.raises(NoSenderError) as caught:
        choose(TO_SF, [DEFAULT_ALPHA, us_alpha])
    assert caught.value.code == 21408
    assert "+14155550101" in caught.value.message


# -- 3. sticky ---------------------------------------------------------------------------


def test_sticky_sender_beats_short_code_and_geomatch():
    choice = choose(TO_SF, US_POOL, sticky_sender_id=NY_LONG.id)
    assert (choice.sender_id, choice.rule) == (NY_LONG.id, Rule.STICKY)


def test_sticky_disabled_is_ignored():
    choice = choose(TO_SF, US_POOL, sticky_sender_id=NY_LONG.id, sticky_enabled=False)
    assert choice.rule == Rule.SHORT_CODE


@pytest.mark.parametrize("mapped", [999, NY_LONG.id])
def test_sticky_skipped_when_the_mapped_sender_left_the_pool(mapped):
    gone = sms(NY_LONG.address, "US", id=NY_LONG.id, active=False)
    pool = [gone if c is NY_LONG else c for c in US_POOL]
    choice = choose(TO_SF, pool, sticky_sender_id=mapped)
    assert (choice.sender_id, choice.rule) == (US_SHORT.id, Rule.SHORT_CODE)


def test_sticky_skipped_when_it_cannot_do_mms():
    pool = [SF_LONG, sms("+12125550199", "US", id=77, mms=True)]
    choice = choose(TO_SF, pool, needs_mms=True, sticky_sender_id=SF_LONG.id)
    assert (choice.sender_id, choice.rule) == (77, Rule.NANP)


def test_international_sticky_yields_to_a_new_in_country_number():
    us_long = sms("+12125550101", "US")
    choice = choose(TO_ES, [us_long, ES_LONG], sticky_sender_id=us_long.id)
    assert (choice.sender_id, choice.rule) == (ES_LONG.id, Rule.COUNTRY)


def test_international_sticky_holds_without_an_in_country_number():
    us_long = sms("+12125550101", "US")
    choice = choose(TO_ES, [us_long, NY_LONG, GB_LONG], sticky_sender_id=GB_LONG.id)
    assert (choice.sender_id, choice.rule) == (GB_LONG.id, Rule.STICKY)


# -- 4. short code -----------------------------------------------------------------------


def test_short_code_of_the_destination_beats_area_code():
    choice = choose(TO_SF, US_POOL)
    assert (choice.sender_id, choice.rule) == (US_SHORT.id, Rule.SHORT_CODE)


def test_short_code_of_another_country_is_never_used():
    choice = choose(TO_SF, [CA_SHORT, NY_LONG], sticky_sender_id=CA_SHORT.id)
    assert (choice.sender_id, choice.rule) == (NY_LONG.id, Rule.NANP)
    with pytest.raises(NoSenderError) as caught:
        choose(TO_SF, [CA_SHORT])
    assert caught.value.code == 21408


# -- 5. area code ------------------------------------------------------------------------


def test_same_area_code_beats_overlay():
    choice = choose(TO_SF, without(US_POOL, US_SHORT))
    assert (choice.sender_id, choice.rule) == (SF_LONG.id, Rule.AREA_CODE)


def test_overlay_area_code_beats_any_nanp_number():
    choice = choose(TO_SF, without(US_POOL, US_SHORT, SF_LONG))
    assert (choice.sender_id, choice.rule) == (SF_OVERLAY.id, Rule.AREA_CODE_OVERLAY)


def test_any_nanp_long_code_beats_country_geomatch():
    choice = choose(TO_SF, without(US_POOL, US_SHORT, SF_LONG, SF_OVERLAY))
    assert (choice.sender_id, choice.rule) == (NY_LONG.id, Rule.NANP)
    # A Canadian long code is NANP too, and wins over a US toll-free number.
    choice = choose(TO_SF, [TORONTO_LONG, TOLL_FREE])
    assert (choice.sender_id, choice.rule) == (TORONTO_LONG.id, Rule.NANP)


def test_toll_free_numbers_have_no_area_code():
    choice = choose(TO_SF, [TOLL_FREE, ES_LONG])
    assert (choice.sender_id, choice.rule) == (TOLL_FREE.id, Rule.COUNTRY)


def test_area_code_geomatch_off_goes_to_country():
    choice = choose(TO_SF, [SF_LONG, TORONTO_LONG], area_code_geomatch=False)
    assert (choice.sender_id, choice.rule) == (SF_LONG.id, Rule.COUNTRY)
    choice = choose(TO_SF, [TORONTO_LONG, TOLL_FREE], area_code_geomatch=False)
    assert (choice.sender_id, choice.rule) == (TOLL_FREE.id, Rule.COUNTRY)


# -- 6. country --------------------------------------------------------------------------


def test_number_of_the_destination_country_beats_us():
    choice = choose(TO_ES, [NY_LONG, GB_LONG, ES_LONG])
    assert (choice.sender_id, choice.rule) == (ES_LONG.id, Rule.COUNTRY)


def test_us_number_beats_any():
    choice = choose(TO_ES, [GB_LONG, NY_LONG])
    assert (choice.sender_id, choice.rule) == (NY_LONG.id, Rule.US)


def test_country_geomatch_off_spreads_over_any():
    choice = choose(TO_ES, [ES_LONG], country_geomatch=False)
    assert choice.rule == Rule.ANY


# -- 7. any, tiebreaks -------------------------------------------------------------------


def test_any_takes_what_is_left():
    choice = choose(TO_ES, [GB_LONG])
    assert (choice.sender_id, choice.rule) == (GB_LONG.id, Rule.ANY)


def test_least_queued_sender_wins_within_a_rule():
    es_a, es_b = sms("+34612345678", "ES"), sms("+34612345679", "ES")
    assert choose(TO_ES, [es_a, es_b], queued_segments={es_a.id: 10}).sender_id == es_b.id
    assert choose(TO_ES, [es_a, es_b], queued_segments={es_b.id: 10}).sender_id == es_a.id
    # Load only breaks ties inside a rule: a busy in-country number still beats a US one.
    assert choose(TO_ES, [es_a, NY_LONG], queued_segments={es_a.id: 10**6}).sender_id == es_a.id


def test_same_recipient_gets_the_same_sender_whatever_the_order():
    pool = [sms(f"+1212555{n:04d}", "US") for n in range(100, 110)]
    first = choose(TO_SF, pool)
    assert first.rule == Rule.NANP
    for shuffled in (list(reversed(pool)), pool[3:] + pool[:3]):
        assert choose(TO_SF, shuffled) == first


def test_recipients_are_spread_over_the_pool():
    pool = [sms(f"+1212555{n:04d}", "US") for n in range(100, 105)]
    chosen = {choose(parse_address(f"+1415555{n:04d}"), pool).sender_id for n in range(100, 160)}
    assert len(chosen) == len(pool)


# -- whatsapp, messenger ------------------------------------------------------------------


def test_whatsapp_uses_sticky_country_us_any():
    wa_es, wa_us, wa_gb = (
        whatsapp("+34612345678", "ES"),
        whatsapp("+12125550100", "US"),
        whatsapp("+447400123456", "GB"),
    )
    sms_es = ES_LONG  # another channel: never a WhatsApp sender
    assert choose(TO_WA_ES, [sms_es, wa_gb, wa_us, wa_es]).rule == Rule.COUNTRY
    assert choose(TO_WA_ES, [sms_es, wa_gb, wa_us, wa_es]).sender_id == wa_es.id
    assert choose(TO_WA_ES, [wa_gb, wa_us, wa_es], sticky_sender_id=wa_us.id).rule == Rule.COUNTRY
    choice = choose(TO_WA_ES, [wa_gb, wa_us], sticky_sender_id=wa_gb.id)
    assert (choice.sender_id, choice.rule) == (wa_gb.id, Rule.STICKY)
    assert choose(TO_WA_ES, [sms_es, wa_gb, wa_us]).rule == Rule.US
    assert choose(TO_WA_ES, [wa_gb]).rule == Rule.ANY


def test_whatsapp_to_us_skips_area_code_rules():
    wa_sf, wa_ny = whatsapp("+14155550100", "US"), whatsapp("+12125550100", "US")
    choice = choose(parse_address("whatsapp:+14155550101"), [wa_ny, wa_sf])
    assert choice.rule == Rule.COUNTRY


def test_messenger_uses_sticky_then_any():
    page_a, page_b = page("111"), page("222")
    pool = [ES_LONG, whatsapp("+34612345678", "ES"), page_a, page_b]
    choice = choose(TO_MESSENGER, pool)
    assert choice.rule == Rule.ANY
    assert choice.sender_id in {page_a.id, page_b.id}
    assert choice.considered == 2
    for mapped in (page_a, page_b):
        choice = choose(TO_MESSENGER, pool, sticky_sender_id=mapped.id)
        assert (choice.sender_id, choice.rule) == (mapped.id, Rule.STICKY)


def test_no_messenger_page_is_21606():
    with pytest.raises(NoSenderError) as caught:
        choose(TO_MESSENGER, [ES_LONG])
    assert caught.value.code == 21606
    assert "Messenger" in caught.value.message


# -- data --------------------------------------------------------------------------------


def test_overlay_codes():
    assert overlay_codes("415") == {"628"}
    assert overlay_codes("628") == {"415"}
    assert {"212", "646", "332", "718", "347", "929"} <= overlay_codes("917")
    assert overlay_codes("564") == {"206", "253", "360", "425"}
    assert overlay_codes("206") == {"564"}  # 253 is a neighbour, not an overlay
    assert overlay_codes("999") == frozenset()


def test_overlay_table_holds_area_codes():
    for group in NANP_OVERLAYS:
        assert len(group) >= 2
        assert all(len(code) == 3 and code.isdigit() and code[0] in "23456789" for code in group)


# -- property ----------------------------------------------------------------------------

RECIPIENTS = [
    TO_SF,
    TO_ES,
    parse_address("+16475550123"),
    parse_address("+447400123456"),
    TO_WA_ES,
    parse_address("whatsapp:+14155550101"),
    TO_MESSENGER,
]

TEMPLATES = [
    (Channel.SMS, K.LONG_CODE, "+14155550100", "US"),
    (Channel.SMS, K.LONG_CODE, "+16285550100", "US"),
    (Channel.SMS, K.LONG_CODE, "+12125550100", "US"),
    (Channel.SMS, K.LONG_CODE, "+14165550100", "CA"),
    (Channel.SMS, K.LONG_CODE, "+34612345678", "ES"),
    (Channel.SMS, K.LONG_CODE, "+447400123456", "GB"),
    (Channel.SMS, K.TOLL_FREE, "+18005550100", "US"),
    (Channel.SMS, K.SHORT_CODE, "12345", "US"),
    (Channel.SMS, K.SHORT_CODE, "54321", "CA"),
    (Channel.SMS, K.ALPHANUMERIC, "ACME", None),
    (Channel.SMS, K.ALPHANUMERIC, "ACMEES", "ES"),
    (Channel.SMS, K.ALPHANUMERIC, "ACMEUK", "GB"),
    (Channel.WHATSAPP, K.WHATSAPP, "whatsapp:+34612345678", "ES"),
    (Channel.WHATSAPP, K.WHATSAPP, "whatsapp:+14155550100", "US"),
    (Channel.WHATSAPP, K.WHATSAPP, "whatsapp:+447400123456", "GB"),
    (Channel.MESSENGER, K.MESSENGER_PAGE, "messenger:111", None),
]


@st.composite
def pools(draw):
    rows = draw(
        st.lists(st.tuples(st.sampled_from(TEMPLATES), st.booleans(), st.booleans()), max_size=12)
    )
    return [
        Candidate(id=i, channel=ch, kind=kind, address=addr, country=cc, mms=mms, active=active)
        for i, ((ch, kind, addr, cc), mms, active) in enumerate(rows, start=1)
    ]


@given(
    to=st.sampled_from(RECIPIENTS),
    pool=pools(),
    needs_mms=st.booleans(),
    sticky=st.one_of(st.none(), st.integers(min_value=1, max_value=14)),
    sticky_enabled=st.booleans(),
    area=st.booleans(),
    country=st.booleans(),
    queued=st.dictionaries(st.integers(1, 12), st.integers(0, 50), max_size=6),
)
def test_choice_is_a_qualifying_sender_and_deterministic(
    to, pool, needs_mms, sticky, sticky_enabled, area, country, queued
):
    kwargs = dict(
        to=to,
        needs_mms=needs_mms,
        sticky_sender_id=sticky,
        sticky_enabled=sticky_enabled,
        area_code_geomatch=area,
        country_geomatch=country,
        queued_segments=queued,
    )
    mms_only = needs_mms and to.channel is Channel.SMS
    qualifying = [
        c
        for c in pool
        if c.active
        and c.channel == to.channel
        and (not mms_only or (c.mms and c.kind is not K.ALPHANUMERIC))
    ]
    try:
        choice = choose_sender(candidates=pool, **kwargs)
    except NoSenderError as error:
        assert error.code in (21606, 21408)
        assert (error.code == 21606) == (not qualifying)
        return
    chosen = next(c for c in qualifying if c.id == choice.sender_id)
    assert choice.considered == len(qualifying)
    if chosen.kind is K.ALPHANUMERIC:
        assert to.country not in ALPHA_UNSUPPORTED_COUNTRIES
        assert chosen.country in (None, to.country)
    assert choose_sender(candidates=pool, **kwargs) == choice
    assert choose_sender(candidates=list(reversed(pool)), **kwargs) == choice
