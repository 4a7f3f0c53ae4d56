"""Which sender of a messaging service's pool sends a message (pure; no Django, no DB).

Implements REFERENCE.md 2, "Sender choice, in order". The order lives in one place,
``RULE_ORDER``: an ordered tuple of small rule functions, each returning the candidates it
accepts. The first rule that accepts anyone decides; among several, the least-loaded sender
wins and ties are broken by a stable hash of (recipient, sender), so one recipient keeps
getting the same number while the pool stays the same, and nothing is random.

Before the rules run, the pool is filtered twice:

1. channel (the rule 1 of the reference): active senders of the recipient's channel, MMS
   capable when the message needs MMS — nobody left is ``NoSenderError(21606)``;
2. reach: senders that can never deliver to this destination are dropped, so no later
   rule (sticky included) can pick them — alphanumeric ids where the destination country
   does not allow them or registered for another country, and short codes of another
   country (a short code only reaches subscribers of its own country). Nobody left is
   ``NoSenderError(21408)``, "destination region not enabled" for this pool.

``ANY`` then spreads load over everything the reach filter kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from messaging.addresses import Address, Channel, area_code_of

__all__ = [
    "ALPHA_UNSUPPORTED_COUNTRIES",
    "NANP_OVERLAYS",
    "RULE_ORDER",
    "Candidate",
    "Choice",
    "NoSenderError",
    "Rule",
    "SenderKind",
    "choose_sender",
    "overlay_codes",
]

ERROR_NO_SENDER = 21606
ERROR_REGION_NOT_REACHABLE = 21408


class SenderKind(StrEnum):
    LONG_CODE = "long_code"
    TOLL_FREE = "toll_free"
    SHORT_CODE = "short_code"
    ALPHANUMERIC = "alphanumeric"
    WHATSAPP = "whatsapp"
    MESSENGER_PAGE = "messenger_page"


class Rule(StrEnum):
    """The rule that decided, in the order the rules are tried."""

    ALPHANUMERIC_COUNTRY = "alphanumeric_country"
    ALPHANUMERIC_DEFAULT = "alphanumeric_default"
    STICKY = "sticky"
    SHORT_CODE = "short_code"
    AREA_CODE = "area_code"
    AREA_CODE_OVERLAY = "area_code_overlay"
    NANP = "nanp"
    COUNTRY = "country"
    US = "us"
    ANY = "any"


# Which sender kinds carry each channel.
CHANNEL_KINDS: Mapping[Channel, frozenset[SenderKind]] = {
    Channel.SMS: frozenset(
        {SenderKind.LONG_CODE, SenderKind.TOLL_FREE, SenderKind.SHORT_CODE, SenderKind.ALPHANUMERIC}
    ),
    Channel.WHATSAPP: frozenset({SenderKind.WHATSAPP}),
    Channel.MESSENGER: frozenset({SenderKind.MESSENGER_PAGE}),
}

# Kinds that are "a number of a country" for country geomatch. Short codes have their own
# rule; alphanumeric ids and Messenger pages are not numbers.
_COUNTRY_NUMBER_KINDS = frozenset({SenderKind.LONG_CODE, SenderKind.TOLL_FREE, SenderKind.WHATSAPP})

# Destinations where alphanumeric sender ids are refused or overwritten by carriers
# (approx.: compiled from providers' public country guides; regulations change, so this is
# a starting point to override per deployment, not a legal reference).
ALPHA_UNSUPPORTED_COUNTRIES: frozenset[str] = frozenset(
    {
        # NANP: the US, Canada and the US territories require 10DLC, toll-free or short codes.
        "US",
        "CA",
        "PR",
        "VI",
        "GU",
        "AS",
        "MP",
        # Latin America: sender ids overwritten with local short or long codes.
        "AR",
        "BR",
        "CL",
        "CO",
        "CR",
        "EC",
        "MX",
        "UY",
        "VE",
        # Asia-Pacific.
        "CN",
        "KR",
        "NZ",
    }
)

# NANP overlay complexes: each group is area codes that share (part of) a geographic region,
# so a number from any of them looks local to the others. Hand-curated and approximate —
# the well-known metro overlays only, not NANPA's full table. A code may sit in several
# groups when one overlay spans several older codes (917 over 212 and 718, 564 over
# western Washington, 672 over British Columbia).
NANP_OVERLAYS: tuple[frozenset[str], ...] = tuple(
    frozenset(group.split("/"))
    for group in (
        # New York
        "212/646/332/917",  # Manhattan
        "718/347/929/917",  # outer boroughs
        "516/363",  # Nassau
        "631/934",  # Suffolk
        # New Jersey, Pennsylvania
        "201/551",
        "973/862",
        "732/848",
        "609/640",
        "215/267/445",  # Philadelphia
        "610/484/835",
        "412/878",  # Pittsburgh
        # New England
        "617/857",  # Boston
        "781/339",
        "508/774",
        "978/351",
        # Mid-Atlantic
        "202/771",  # Washington DC
        "301/240/227",
        "410/443/667",
        "703/571",
        # South-east
        "404/470/678/770/943",  # Atlanta
        "305/786/645",  # Miami
        "954/754",
        "407/689",
        "813/656",
        "704/980",
        "919/984",
        "615/629",
        # Midwest
        "312/872",  # Chicago (872 overlays 312 and 773)
        "773/872",
        "847/224",
        "630/331",
        "614/380",
        "330/234",
        "419/567",
        "248/947",
        "317/463",
        "314/557",
        "405/572",
        "918/539",
        # Texas
        "214/469/972/945",  # Dallas
        "713/281/832/346",  # Houston
        "512/737",  # Austin
        "210/726",  # San Antonio
        "817/682",
        # Mountain, West
        "303/720/983",  # Denver
        "702/725",  # Las Vegas
        "801/385",
        "503/971",  # Portland
        "541/458",
        "206/564",  # western Washington: 564 overlays 206, 253, 360 and 425
        "253/564",
        "360/564",
        "425/564",
        # California
        "213/323",  # Los Angeles central
        "310/424",
        "818/747",
        "714/657",
        "909/840",
        "760/442",
        "805/820",
        "619/935",  # San Diego
        "415/628",  # San Francisco
        "408/669",  # San José
        "510/341",
        "916/279",
        # Canada
        "416/647/437/942",  # Toronto
        "905/289/365/742",
        "613/343/753",
        "519/226/548/382",
        "514/438/263",  # Montréal
        "450/579/354",
        "604/778/236/672",  # Vancouver
        "250/778/236/672",
        "403/587/825/368",  # Alberta
        "780/587/825/368",
    )
)


def overlay_codes(area_code: str) -> frozenset[str]:
    """Other area codes that overlay the region of ``area_code`` (never itself)."""
    related: set[str] = set()
    for group in NANP_OVERLAYS:
        if area_code in group:
            related |= group
    related.discard(area_code)
    return frozenset(related)


@dataclass(frozen=True)
class Candidate:
    id: int
    channel: Channel
    kind: SenderKind
    # E.164 for phone kinds, the alphanumeric id, "whatsapp:+E164", "messenger:<page id>".
    address: str
    # ISO alpha-2. Alphanumeric senders: the country the id is registered for, None for the
    # default alphanumeric sender used wherever alphanumeric ids are allowed.
    country: str | None
    mms: bool = False
    active: bool = True


@dataclass(frozen=True)
class Choice:
    sender_id: int
    rule: Rule
    considered: int  # qualifying candidates after the channel filter


class NoSenderError(Exception):
    """No sender of the pool can send this message; ``code`` is a Twilio error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Context:
    to: Address
    pool: tuple[Candidate, ...]  # after the channel and reach filters
    sticky_sender_id: int | None
    sticky_enabled: bool
    area_code_geomatch: bool
    country_geomatch: bool


RuleFn = Callable[[_Context], Sequence[Candidate]]


def choose_sender(
    *,
    to: Address,
    candidates: Sequence[Candidate],
    needs_mms: bool = False,
    sticky_sender_id: int | None = None,
    sticky_enabled: bool = True,
    area_code_geomatch: bool = True,
    country_geomatch: bool = True,
    queued_segments: Mapping[int, int] | None = None,
) -> Choice:
    """Pick the sender for a message to ``to`` from ``candidates``; raise NoSenderError.

    ``sticky_sender_id`` is the service's current To → From mapping for this recipient;
    ``queued_segments`` maps sender id → segments waiting in its queue (missing = 0).
    """
    capable = _channel_filter(to, candidates, needs_mms=needs_mms)
    context = _Context(
        to=to,
        pool=_reach_filter(to, capable),
        sticky_sender_id=sticky_sender_id,
        sticky_enabled=sticky_enabled,
        area_code_geomatch=area_code_geomatch,
        country_geomatch=country_geomatch,
    )
    queued = queued_segments or {}
    for rule, accepts in RULE_ORDER:
        matches = accepts(context)
        if matches:
            best = min(matches, key=lambda c: _preference(c, to=to, queued=queued))
            return Choice(sender_id=best.id, rule=rule, considered=len(capable))
    # Unreachable: _reach_filter guarantees a non-empty pool and ANY accepts all of it.
    raise AssertionError("sender choice: no rule accepted a non-empty pool")


# -- filters ------------------------------------------------------------------------------


def _channel_filter(
    to: Address, candidates: Sequence[Candidate], *, needs_mms: bool
) -> tuple[Candidate, ...]:
    """Rule 1: active senders of the recipient's channel (and able to send MMS if needed).

    MMS only constrains SMS: WhatsApp and Messenger carry media natively, and an
    alphanumeric id can never send MMS whatever its flag says.
    """
    kinds = CHANNEL_KINDS[to.channel]
    mms_only = needs_mms and to.channel == Channel.SMS
    capable = tuple(
        c
        for c in candidates
        if c.active
        and c.channel == to.channel
        and c.kind in kinds
        and (not mms_only or (c.mms and c.kind != SenderKind.ALPHANUMERIC))
    )
    if not capable:
        what = "MMS-capable SMS" if mms_only else _channel_label(to.channel)
        raise NoSenderError(
            ERROR_NO_SENDER, f"No active {what} sender in the pool can send to {to.value}."
        )
    return capable


def _reach_filter(to: Address, capable: tuple[Candidate, ...]) -> tuple[Candidate, ...]:
    """Drop senders that can never deliver to this destination, whatever the rules say."""
    reachable = tuple(c for c in capable if _can_reach(c, to))
    if not reachable:
        raise NoSenderError(
            ERROR_REGION_NOT_REACHABLE,
            f"No sender in the pool can reach {to.value} ({to.country or 'unknown country'}): "
            "its alphanumeric ids or short codes are not allowed for that destination.",
        )
    return reachable


def _can_reach(candidate: Candidate, to: Address) -> bool:
    if candidate.kind == SenderKind.ALPHANUMERIC:
        return _alpha_allowed(to) and candidate.country in (None, to.country)
    if candidate.kind == SenderKind.SHORT_CODE:
        return candidate.country is not None and candidate.country == to.country
    return True


def _alpha_allowed(to: Address) -> bool:
    # An unknown country cannot be checked against the list, so no alphanumeric id.
    return (
        to.channel == Channel.SMS
        and to.country is not None
        and to.country not in ALPHA_UNSUPPORTED_COUNTRIES
    )


# -- rules, in order ----------------------------------------------------------------------


def _alphanumeric_country(ctx: _Context) -> list[Candidate]:
    """2a. An alphanumeric id registered for the destination country."""
    return [
        c for c in ctx.pool if c.kind == SenderKind.ALPHANUMERIC and c.country == ctx.to.country
    ]


def _alphanumeric_default(ctx: _Context) -> list[Candidate]:
    """2b. The default alphanumeric id (registered for no country).

    No fallback from alphanumeric to numbers happens here or later: once an id qualifies
    it is the sender, as in the reference.
    """
    return [c for c in ctx.pool if c.kind == SenderKind.ALPHANUMERIC and c.country is None]


def _sticky(ctx: _Context) -> list[Candidate]:
    """3. The sender this recipient is mapped to, if sticky sender is on and it is still
    in the pool — unless the mapping is held by an international number while an
    in-country one now exists (a new local number beats an old foreign mapping)."""
    if not ctx.sticky_enabled or ctx.sticky_sender_id is None:
        return []
    mapped = next((c for c in ctx.pool if c.id == ctx.sticky_sender_id), None)
    if mapped is None:
        return []
    country = ctx.to.country
    international = country is not None and mapped.country != country
    if international and any(
        c.kind != SenderKind.ALPHANUMERIC and c.country == country for c in ctx.pool
    ):
        return []
    return [mapped]


def _short_code(ctx: _Context) -> list[Candidate]:
    """4. A short code of the destination country."""
    return [
        c
        for c in ctx.pool
        if c.kind == SenderKind.SHORT_CODE and c.country is not None and c.country == ctx.to.country
    ]


def _area_code(ctx: _Context) -> list[Candidate]:
    """5a. A long code with the recipient's area code (toll-free numbers have no geography)."""
    if not (ctx.area_code_geomatch and ctx.to.area_code):
        return []
    return [c for c in _long_codes(ctx) if area_code_of(c.address) == ctx.to.area_code]


def _area_code_overlay(ctx: _Context) -> list[Candidate]:
    """5b. A long code whose area code overlays the recipient's region."""
    if not (ctx.area_code_geomatch and ctx.to.area_code):
        return []
    overlays = overlay_codes(ctx.to.area_code)
    return [c for c in _long_codes(ctx) if area_code_of(c.address) in overlays]


def _nanp(ctx: _Context) -> list[Candidate]:
    """5c. Any US/CA (NANP, country code 1) long code for a NANP recipient."""
    if not (ctx.area_code_geomatch and ctx.to.area_code):
        return []
    return [c for c in _long_codes(ctx) if area_code_of(c.address) is not None]


def _country(ctx: _Context) -> list[Candidate]:
    """6a. A number (long code, toll-free, WhatsApp number) of the destination country."""
    if not (ctx.country_geomatch and ctx.to.country):
        return []
    return _numbers_of(ctx, ctx.to.country)


def _us(ctx: _Context) -> list[Candidate]:
    """6b. A US number: the usual home of a pool's general-purpose numbers."""
    if not ctx.country_geomatch:
        return []
    return _numbers_of(ctx, "US")


def _any(ctx: _Context) -> list[Candidate]:
    """7. Spread load over every sender left: the reach filter already removed those that
    cannot deliver here, and an eligible alphanumeric id would have been chosen at 2."""
    return list(ctx.pool)


RULE_ORDER: tuple[tuple[Rule, RuleFn], ...] = (
    (Rule.ALPHANUMERIC_COUNTRY, _alphanumeric_country),
    (Rule.ALPHANUMERIC_DEFAULT, _alphanumeric_default),
    (Rule.STICKY, _sticky),
    (Rule.SHORT_CODE, _short_code),
    (Rule.AREA_CODE, _area_code),
    (Rule.AREA_CODE_OVERLAY, _area_code_overlay),
    (Rule.NANP, _nanp),
    (Rule.COUNTRY, _country),
    (Rule.US, _us),
    (Rule.ANY, _any),
)


# -- helpers ------------------------------------------------------------------------------


def _long_codes(ctx: _Context) -> list[Candidate]:
    return [c for c in ctx.pool if c.kind == SenderKind.LONG_CODE]


def _numbers_of(ctx: _Context, country: str) -> list[Candidate]:
    return [c for c in ctx.pool if c.kind in _COUNTRY_NUMBER_KINDS and c.country == country]


def _preference(
    candidate: Candidate, *, to: Address, queued: Mapping[int, int]
) -> tuple[int, int, int]:
    """Sort key, lowest wins: fewest queued segments, then rendezvous hash, then id.

    The hash of (recipient, sender) gives each recipient its own stable ranking of the
    pool (rendezvous hashing): a recipient keeps its number across sends and processes, and
    when a sender leaves only its recipients move. Python's hash() is salted per process,
    hence sha256.
    """
    digest = hashlib.sha256(f"{to.value}\x00{candidate.id}".encode()).digest()
    return (queued.get(candidate.id, 0), int.from_bytes(digest[:8], "big"), candidate.id)


_CHANNEL_LABELS = {Channel.SMS: "SMS", Channel.WHATSAPP: "WhatsApp", Channel.MESSENGER: "Messenger"}


def _channel_label(channel: Channel) -> str:
    return _CHANNEL_LABELS[channel]
