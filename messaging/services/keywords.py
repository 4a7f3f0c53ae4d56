"""Advanced opt-out keywords (REFERENCE.md 2): a customer answers STOP, START or HELP (or a
configured word of the same kind, in English or Spanish) and the block list follows.

Where the keywords come from: the `KeywordConfig` of the sender's messaging service, or of
the sender itself when it is in no service; without one, `DEFAULT_RULES` (REFERENCE.md 2's
English table and our Spanish sets). A new configuration starts as a copy of the defaults.

Matching rules (`keyword_match`, pure):

- the whole message is the keyword: surrounding whitespace is ignored, anything else counts
  ("STOP please" and "STOP!" do not match);
- case-insensitive (`str.casefold`) and accent-insensitive in every language: Spanish
  speakers type "BAJA", "baja" or "bája" alike, and phones add or drop accents. The text is
  NFKD-folded with its combining marks removed, so "DETÉN" = "deten", "ñ" = "n" and
  full-width letters are plain ones. Keywords are compared in that folded form everywhere,
  uniqueness included;
- a set with a country replaces the general set of the same kind and language for customers
  whose number is in that country (`phonenumbers`; `whatsapp:+E164` has one, a Messenger
  PSID has none);
- one word may appear in sets of one kind only within a configuration (it cannot both opt
  out and opt in); the same word in two languages of one kind (INFO) picks, in this order, a
  country set, then the language spoken in the customer's country, then English, then
  Spanish;
- STOP, START and HELP are always honoured, whatever the data says, and a *disabled*
  configuration keeps only them, answered with the built-in English replies: carriers
  (and Twilio) do not let a business ignore STOP.

Applying (`optout_inbound_apply`): opt-out blocks the customer for the whole service (or the
lone sender), opt-in unblocks, help changes nothing; the inbound message gets Twilio's
`OptOutType` and the set's reply is queued after commit from the same sender with
`keyword_reply` set, the one kind of message that still reaches a blocked recipient.
"""

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext

from messaging.addresses import AddressError, parse_address
from messaging.errors import MessagingError
from messaging.models import (
    Account,
    Direction,
    KeywordConfig,
    KeywordKind,
    KeywordLanguage,
    KeywordSet,
    Message,
    MessagingService,
    Sender,
)
from messaging.services.messages import MessageRequest, message_create
from messaging.services.optout import optout_block, optout_is_blocked, optout_unblock

log = logging.getLogger(__name__)

MAX_KEYWORD_LENGTH = 32  # OptOut.keyword holds the matched word
# Twilio's OptOutType of an inbound message, by kind.
OPT_OUT_TYPE = {KeywordKind.OPT_OUT: "STOP", KeywordKind.OPT_IN: "START", KeywordKind.HELP: "HELP"}
# The English words no configuration can remove, and the kind each one always has.
MANDATORY = {"STOP": KeywordKind.OPT_OUT, "START": KeywordKind.OPT_IN, "HELP": KeywordKind.HELP}
# Where INFO (a help word in both languages) should answer in Spanish.
SPANISH_SPEAKING = frozenset(
    {"AR", "BO", "CL", "CO", "CR", "CU", "DO", "EC", "ES", "GQ", "GT"}
    | {"HN", "MX", "NI", "PA", "PE", "PR", "PY", "SV", "UY", "VE"}
)
LANGUAGE_ORDER = (KeywordLanguage.EN, KeywordLanguage.ES)

_SEPARATORS = re.compile(r"[\s,;]+")


# ---------------------------------------------------------------- pure data


@dataclass(frozen=True)
class KeywordSetRule:
    """One keyword set as matching sees it: no database row needed."""

    kind: str
    language: str
    keywords: tuple[str, ...]
    reply: str
    country: str = ""


@dataclass(frozen=True)
class KeywordRules:
    enabled: bool
    sets: tuple[KeywordSetRule, ...]


@dataclass(frozen=True)
class KeywordMatch:
    kind: str  # a KeywordKind value
    keyword: str  # as configured, e.g. "BAJA"
    language: str
    reply: str
    country: str = ""  # the country of the set that matched, "" for a general set

    @property
    def opt_out_type(self) -> str:
        return OPT_OUT_TYPE[self.kind]


DEFAULT_SETS = (
    KeywordSetRule(
        KeywordKind.OPT_OUT,
        KeywordLanguage.EN,
        ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"),
        "You are unsubscribed and will get no more messages from us. Reply START to resubscribe.",
    ),
    KeywordSetRule(
        KeywordKind.OPT_IN,
        KeywordLanguage.EN,
        ("START", "YES", "UNSTOP"),
        "You are resubscribed and will get our messages again. "
        "Reply HELP for help, STOP to unsubscribe.",
    ),
    KeywordSetRule(
        KeywordKind.HELP,
        KeywordLanguage.EN,
        ("HELP", "INFO"),
        "Reply STOP to unsubscribe or START to resubscribe. Msg & data rates may apply.",
    ),
    KeywordSetRule(
        KeywordKind.OPT_OUT,
        KeywordLanguage.ES,
        ("BAJA", "PARAR", "CANCELAR", "DETENER", "ALTO", "FIN", "SALIR", "DESUSCRIBIR"),
        "Baja confirmada: no recibirás más mensajes. Responde ALTA para volver.",
    ),
    KeywordSetRule(
        KeywordKind.OPT_IN,
        KeywordLanguage.ES,
        ("ALTA", "INICIAR", "REANUDAR", "SUSCRIBIR"),
        "Alta confirmada: vuelves a recibir mensajes. Responde AYUDA para ayuda o BAJA para salir.",
    ),
    KeywordSetRule(
        KeywordKind.HELP,
        KeywordLanguage.ES,
        ("AYUDA", "INFO"),
        "Responde BAJA para darte de baja o ALTA para volver a suscribirte. "
        "Pueden aplicarse tarifas de mensajes y datos.",
    ),
)
DEFAULT_RULES = KeywordRules(enabled=True, sets=DEFAULT_SETS)


# ---------------------------------------------------------------- keyword text


def keyword_key(text: str) -> str:
    """The form keywords and messages are compared in: trimmed, casefolded, accents gone."""
    decomposed = unicodedata.normalize("NFKD", (text or "").strip())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", bare.casefold())


def keywords_split(text: str) -> list[str]:
    """The words of a set as typed (commas, semicolons or spaces between them), upper-cased,
    each once. Lenient: for reading saved sets."""
    words: dict[str, str] = {}
    for word in _SEPARATORS.split(text or ""):
        if word:
            words.setdefault(keyword_key(word), word.upper())
    return list(words.values())


def keywords_parse(text: str) -> list[str]:
    """`keywords_split`, refusing what a set cannot hold (ValueError with the reason)."""
    words = keywords_split(text)
    if not words:
        raise ValueError(gettext("Enter at least one keyword."))
    too_long = [w for w in words if len(w) > MAX_KEYWORD_LENGTH]
    if too_long:
        raise ValueError(
            gettext("%(word)s is longer than %(max)d characters.")
            % {"word": too_long[0], "max": MAX_KEYWORD_LENGTH}
        )
    return words


def keywords_format(words: Iterable[str]) -> str:
    return ", ".join(words)


def mandatory_missing(kind: str, language: str, words: Iterable[str]) -> str | None:
    """The mandatory word an English set of `kind` lacks (STOP, START or HELP), if any."""
    if language != KeywordLanguage.EN:
        return None
    keys = {keyword_key(w) for w in words}
    for word, word_kind in MANDATORY.items():
        if word_kind == kind and keyword_key(word) not in keys:
            return word
    return None


def keyword_conflicts(sets: Iterable[tuple[str, Iterable[str]]]) -> list[str]:
    """Messages for the words found in sets of more than one kind (`(kind, words)` pairs)."""
    kinds_of: dict[str, dict[str, str]] = {}  # key → kind → the word as written
    for kind, words in sets:
        for word in words:
            kinds_of.setdefault(keyword_key(word), {}).setdefault(kind, word)
    conflicts = []
    for found in kinds_of.values():
        if len(found) > 1:
            labels = [str(KeywordKind(kind).label) for kind in KeywordKind if kind in found]
            conflicts.append(
                gettext(
                    "%(word)s is in both the %(first)s and %(second)s sets: a word can do "
                    "one thing only."
                )
                % {"word": next(iter(found.values())), "first": labels[0], "second": labels[1]}
            )
    return conflicts


# ---------------------------------------------------------------- matching (pure)


def customer_country(address: str) -> str | None:
    """ISO country of a customer address; None for Messenger or an unparsable address."""
    try:
        return parse_address(address).country
    except AddressError:
        return None


def keyword_match(
    rules: KeywordRules | KeywordConfig | None, body: str, country: str | None
) -> KeywordMatch | None:
    """The keyword `body` is, for a customer of `country`, or None. `rules` may be a
    configuration (its sets are read, prefetch them) or None for the defaults."""
    rules = _as_rules(rules)
    key = keyword_key(body)
    if not key:
        return None
    sets = _effective_sets(rules.sets if rules.enabled else DEFAULT_SETS, country)
    mandatory_kind = next((k for w, k in MANDATORY.items() if keyword_key(w) == key), None)
    if not rules.enabled and mandatory_kind is None:
        return None
    matches = [
        (rule, word)
        for rule in _by_preference(sets, country)
        for word in rule.keywords
        if keyword_key(word) == key
    ]
    if mandatory_kind is not None:
        # STOP is always an opt-out (START opt-in, HELP help), even if the data lost it.
        matches = [(rule, word) for rule, word in matches if rule.kind == mandatory_kind]
        if not matches:
            return _mandatory_fallback(mandatory_kind, key, sets)
    if not matches:
        return None
    rule, word = matches[0]
    return KeywordMatch(rule.kind, word, rule.language, rule.reply, rule.country)


def _as_rules(rules: KeywordRules | KeywordConfig | None) -> KeywordRules:
    if rules is None:
        return DEFAULT_RULES
    if isinstance(rules, KeywordConfig):
        return keyword_rules_of(rules)
    return rules


def _effective_sets(sets: Iterable[KeywordSetRule], country: str | None) -> list[KeywordSetRule]:
    """Per kind and language, the customer's country set if there is one, else the general."""
    chosen: dict[tuple[str, str], KeywordSetRule] = {}
    for rule in sets:
        if rule.country and rule.country != (country or ""):
            continue
        slot = (rule.kind, rule.language)
        if slot not in chosen or (rule.country and not chosen[slot].country):
            chosen[slot] = rule
    return list(chosen.values())


def _by_preference(sets: list[KeywordSetRule], country: str | None) -> list[KeywordSetRule]:
    spoken = KeywordLanguage.ES if country in SPANISH_SPEAKING else KeywordLanguage.EN

    def rank(rule: KeywordSetRule) -> tuple:
        order = LANGUAGE_ORDER.index(rule.language) if rule.language in LANGUAGE_ORDER else 99
        return (not rule.country, rule.language != spoken, order)

    return sorted(sets, key=rank)


def _mandatory_fallback(kind: str, key: str, sets: list[KeywordSetRule]) -> KeywordMatch:
    """STOP/START/HELP with no set of theirs listing them: the English set's reply of that
    kind (a country one first), else the built-in one."""
    english = [r for r in sets if r.kind == kind and r.language == KeywordLanguage.EN]
    english.sort(key=lambda r: not r.country)
    default = next(r for r in DEFAULT_SETS if r.kind == kind and r.language == KeywordLanguage.EN)
    rule = english[0] if english else default
    return KeywordMatch(kind, key.upper(), KeywordLanguage.EN, rule.reply, rule.country)


# ---------------------------------------------------------------- configurations


def keyword_rules_of(config: KeywordConfig) -> KeywordRules:
    sets = tuple(
        KeywordSetRule(
            kind=s.kind,
            language=s.language,
            keywords=tuple(keywords_split(s.keywords)),
            reply=s.reply,
            country=s.country,
        )
        for s in config.keyword_sets.all()
    )
    return KeywordRules(enabled=config.enabled, sets=sets)


def keyword_config_for(sender: Sender) -> KeywordConfig | None:
    """The configuration that applies to `sender`: its service's, else its own."""
    configs = KeywordConfig.objects.prefetch_related("keyword_sets")
    if sender.service_id is not None:
        return configs.filter(service_id=sender.service_id).first()
    return configs.filter(sender=sender).first()


def keyword_rules_for(sender: Sender) -> KeywordRules:
    config = keyword_config_for(sender)
    return DEFAULT_RULES if config is None else keyword_rules_of(config)


def keyword_config_create(
    *, service: MessagingService | None = None, sender: Sender | None = None, enabled: bool = True
) -> KeywordConfig:
    """A configuration for a service or a lone sender, seeded with the default sets."""
    config = KeywordConfig(service=service, sender=sender, enabled=enabled)
    config.full_clean()
    with transaction.atomic():
        config.save()
        _seed_defaults(config)
    return config


def keyword_config_reset(config: KeywordConfig) -> None:
    """Replace a configuration's sets by the default ones (its enabled flag stays)."""
    with transaction.atomic():
        config.keyword_sets.all().delete()
        _seed_defaults(config)


def _seed_defaults(config: KeywordConfig) -> None:
    KeywordSet.objects.bulk_create(
        KeywordSet(
            config=config,
            kind=rule.kind,
            language=rule.language,
            country=rule.country,
            keywords=keywords_format(rule.keywords),
            reply=rule.reply,
        )
        for rule in DEFAULT_SETS
    )


# ---------------------------------------------------------------- applying


def optout_inbound_apply(message: Message) -> str:
    """Act on an inbound message that is a keyword: block, unblock or just answer.

    Returns Twilio's OptOutType ("STOP", "START", "HELP"), or "" when the message is no
    keyword. Call it inside the transaction that stored the message; the reply is created
    after commit, so a refused reply never undoes the inbound message. Idempotent: a message
    already marked (applied before, or reprocessed) is not acted on again.
    """
    if message.opt_out_type:
        return message.opt_out_type
    sender = message.sender
    if sender is None or message.direction != Direction.INBOUND:
        return ""
    customer = message.from_address
    match = keyword_match(keyword_rules_for(sender), message.body, customer_country(customer))
    if match is None:
        return ""
    _block_list_apply(match, sender=sender, address=customer)
    message.opt_out_type = match.opt_out_type
    Message.objects.filter(id=message.id).update(opt_out_type=match.opt_out_type)
    if match.reply:
        reply = _Reply(
            account_id=message.account_id,
            from_=sender.address,
            to=customer,
            body=match.reply,
            tags={"in_reply_to": message.sid, "opt_out_type": match.opt_out_type},
        )
        transaction.on_commit(reply.send, robust=True)
    return match.opt_out_type


def _block_list_apply(match: KeywordMatch, *, sender: Sender, address: str) -> None:
    # optout.py scopes a pooled sender to its whole service, a lone one to itself.
    if match.kind == KeywordKind.OPT_OUT:
        # Blocking again would fail a STOP confirmation still waiting to be sent.
        if not optout_is_blocked(address=address, service=None, sender=sender):
            optout_block(
                address=address,
                sender=sender,
                keyword=match.keyword[:MAX_KEYWORD_LENGTH],
                source="keyword",
            )
    elif match.kind == KeywordKind.OPT_IN:
        optout_unblock(address=address, sender=sender)


@dataclass(frozen=True)
class _Reply:
    """The answer to a keyword, sent through the normal pipeline after commit."""

    account_id: int
    from_: str
    to: str
    body: str
    tags: dict

    def send(self) -> Message | None:
        request = MessageRequest(
            to=self.to,
            from_=self.from_,
            body=self.body,
            direction=Direction.OUTBOUND_REPLY,
            keyword_reply=True,
            tags=self.tags,
        )
        try:
            account = Account.objects.get(id=self.account_id)
            return message_create(account=account, request=request, source="system")
        except MessagingError as error:
            log.warning(
                "keyword reply from %s to %s refused: %s %s",
                self.from_,
                self.to,
                error.code,
                error.message,
            )
            return None
