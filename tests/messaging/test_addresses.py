"""Addresses are parsed into one canonical form per channel, or refused with a message."""

import pytest

from messaging.addresses import (
    Address,
    AddressError,
    Channel,
    area_code_of,
    country_of,
    parse_address,
    parse_phone_number,
)

GOOD = [
    ("+14155550100", Address(Channel.SMS, "+14155550100", "+14155550100", "US", "415")),
    ("  +1 (415) 555-0100  ", Address(Channel.SMS, "+14155550100", "+14155550100", "US", "415")),
    ("+1.415.555.0199", Address(Channel.SMS, "+14155550199", "+14155550199", "US", "415")),
    ("+16475550123", Address(Channel.SMS, "+16475550123", "+16475550123", "CA", "647")),
    ("+447400123456", Address(Channel.SMS, "+447400123456", "+447400123456", "GB", None)),
    (
        "whatsapp:+34 612 34 56 78",
        Address(Channel.WHATSAPP, "whatsapp:+34612345678", "+34612345678", "ES", None),
    ),
    (
        "WhatsApp: +1 415-555-0100",
        Address(Channel.WHATSAPP, "whatsapp:+14155550100", "+14155550100", "US", "415"),
    ),
    ("messenger:123", Address(Channel.MESSENGER, "messenger:123", None, None, None)),
    (
        " MESSENGER:1234567890 ",
        Address(Channel.MESSENGER, "messenger:1234567890", None, None, None),
    ),
    # NANP fiction range, refused by the metadata (555 is no area code) but kept for demos.
    ("+15555550100", Address(Channel.SMS, "+15555550100", "+15555550100", "US", "555")),
    # Non-geographic (+800 international freephone): valid, but no ISO country.
    ("+800 1234 5678", Address(Channel.SMS, "+80012345678", "+80012345678", None, None)),
]

BAD = [
    "+1415",  # too short
    "4155550100",  # no "+": not E.164
    "+999123",  # unknown country code
    "messenger:abc",
    "messenger:",
    "messenger:" + "1" * 33,  # PSIDs are at most 32 digits
    "messenger:12 34",
    "whatsapp:4155550100",
    "whatsapp:",
    "",
    "   ",
    "+1-800-FLOWERS",  # letters are never guessed into digits
    "+1 415 555 0100 ext 5",
    "+15555551234",  # 555 outside 01XX is not the fiction range
    "+447700900123",  # UK drama range: possible, not valid, and no exception for it
    "+1 415 555 0100 0000 0000",  # too long
    "sms:+14155550100",
    "+\u0661\u0664\u0661\u0665\u0665\u0665\u0665\u0660\u0661\u0660\u0660",  # Arabic-Indic digits
]


@pytest.mark.parametrize(("raw", "expected"), GOOD)
def test_parse_address_normalises(raw, expected):
    assert parse_address(raw) == expected


@pytest.mark.parametrize("raw", BAD)
def test_parse_address_refuses_with_a_message_naming_the_input(raw):
    with pytest.raises(AddressError) as caught:
        parse_address(raw)
    assert repr(raw) in str(caught.value)


def test_error_messages_say_what_is_wrong():
    with pytest.raises(AddressError, match=r"'\+1415' is not a valid phone number in E\.164"):
        parse_address("+1415")
    with pytest.raises(AddressError, match="must start with '\\+'"):
        parse_address("4155550100")
    with pytest.raises(AddressError, match="Messenger address"):
        parse_address("messenger:abc")


def test_address_error_is_a_value_error():
    assert issubclass(AddressError, ValueError)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+1 (415) 555-0100", "+14155550100"),
        (" +34 612 34 56 78 ", "+34612345678"),
        ("+15555550142", "+15555550142"),
    ],
)
def test_parse_phone_number_returns_e164(raw, e164):
    assert parse_phone_number(raw) == e164


@pytest.mark.parametrize("raw", ["whatsapp:+14155550100", "messenger:123", "+1415", "ACME"])
def test_parse_phone_number_refuses_anything_but_a_phone_number(raw):
    with pytest.raises(AddressError):
        parse_phone_number(raw)


@pytest.mark.parametrize(
    ("raw", "country"),
    [
        ("+14155550100", "US"),
        ("+16475550123", "CA"),
        ("+34612345678", "ES"),
        ("+80012345678", None),
        ("ACME", None),  # an alphanumeric sender id is not an error here
        ("+1415", None),
    ],
)
def test_country_of(raw, country):
    assert country_of(raw) == country


@pytest.mark.parametrize(
    ("raw", "area_code"),
    [("+14155550100", "415"), ("+16475550123", "647"), ("+34612345678", None), ("12345", None)],
)
def test_area_code_of(raw, area_code):
    assert area_code_of(raw) == area_code
