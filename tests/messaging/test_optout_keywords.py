"""Advanced opt-out keywords: matching (whole message, case, accents, languages, country
sets, the words no one can remove), validation of the sets, and applying a keyword to the
block list with its reply, which reaches the customer although STOP has just blocked them."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from messaging.errors import MessagingError
from messaging.models import (
    Direction,
    KeywordConfig,
    KeywordKind,
    KeywordSet,
    Message,
    OptOut,
    ProviderAccount,
    Sender,
)
from messaging.providers import simulator
from messaging.services import keywords
from messaging.services.inbound import inbound_message_receive
from messaging.services.keywords import (
    DEFAULT_RULES,
    KeywordRules,
    KeywordSetRule,
    customer_country,
    keyword_config_create,
    keyword_config_reset,
    keyword_match,
    optout_inbound_apply,
)
from messaging.services.messages import MessageRequest, message_create
from messaging.services.providers import provider_credentials_set
from messaging.webhooks import simulator_inbound_handle
from tests.support.delivery import deliver_now

CUSTOMER = "+14155550142"  # US
SPANISH_CUSTOMER = "+34612345678"  # ES
LONG_CODE = "+14155550100"
TOLL_FREE = "+18885550100"
SECRET = "keyword-webhook-secret"


def default_reply(kind: str, language: str) -> str:
    return next(r.reply for r in keywords.DEFAULT_SETS if (r.kind, r.language) == (kind, language))


EN_STOP_REPLY = default_reply("opt_out", "en")
ES_STOP_REPLY = default_reply("opt_out", "es")


@pytest.fixture(autouse=True)
def english():
    """Messages are asserted in English; a request in Spanish must not leave it active."""
    with translation.override("en"):
        yield


def rule(kind, language, words, reply="", country=""):
    return KeywordSetRule(kind, language, tuple(words), reply or f"{kind}-{language}", country)


def kind_of(body, rules=None, country="US"):
    match = keyword_match(rules, body, country)
    return None if match is None else match.kind


# ---------------------------------------------------------------- matching (pure)


@pytest.mark.parametrize(
    "body", ["STOP", "stop", "Stop", "  sToP \n", "\tSTOP\t", "\uff33\uff34\uff2f\uff30"]
)
def test_the_whole_message_matches_whatever_its_case_and_surrounding_spaces(body):
    match = keyword_match(None, body, "US")
    assert match is not None
    assert (match.kind, match.keyword, match.language, match.opt_out_type) == (
        "opt_out",
        "STOP",
        "en",
        "STOP",
    )
    assert match.reply == EN_STOP_REPLY


@pytest.mark.parametrize(
    "body", ["STOP please", "please stop", "STOP!", "S TOP", "STOP STOP", "stopp", "", "   "]
)
def test_a_keyword_inside_other_text_or_nothing_at_all_does_not_match(body):
    assert keyword_match(None, body, "US") is None


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        (
            "opt_out",
            ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"],
        ),
        ("opt_in", ["START", "YES", "UNSTOP"]),
        ("help", ["HELP", "INFO"]),
        ("opt_out", ["BAJA", "PARAR", "CANCELAR", "DETENER"]),
        ("opt_in", ["ALTA", "INICIAR"]),
        ("help", ["AYUDA"]),
    ],
)
def test_every_default_keyword_has_its_kind(kind, words):
    assert [kind_of(word.lower()) for word in words] == [kind] * len(words)


def test_spanish_keywords_answer_in_spanish():
    match = keyword_match(None, "baja", "ES")
    assert (match.kind, match.keyword, match.language) == ("opt_out", "BAJA", "es")
    assert match.reply == ES_STOP_REPLY
    assert "ALTA" in match.reply
    help_reply = keyword_match(None, "Ayuda", "MX").reply
    assert "BAJA" in help_reply and "tarifas" in help_reply  # how to stop; rates may apply
    assert "rates may apply" in keyword_match(None, "help", "US").reply


@pytest.mark.parametrize("body", ["bája", "BÁJA", "Baja", "ayúda"])
def test_accents_are_ignored(body):
    assert keyword_match(None, body, "ES").language == "es"


def test_an_accented_keyword_matches_with_or_without_its_accent():
    rules = KeywordRules(True, (rule("opt_out", "es", ["DETÉN"]),))
    assert keyword_match(rules, "deten", "ES").keyword == "DETÉN"
    assert keyword_match(rules, "Detén", "ES").keyword == "DETÉN"
    assert keyword_match(rules, "detener", "ES") is None


def test_a_word_of_both_languages_answers_in_the_customers_language():
    assert keyword_match(None, "INFO", "US").language == "en"
    assert keyword_match(None, "INFO", "MX").language == "es"
    assert keyword_match(None, "INFO", None).language == "en"  # Messenger: no country


def test_a_country_set_replaces_the_general_set_of_its_kind_and_language():
    rules = KeywordRules(
        True,
        (
            rule("opt_out", "en", ["STOP", "END"], "general"),
            rule("opt_out", "en", ["STOP", "ARRET"], "for Canada", country="CA"),
            rule("help", "en", ["HELP"], "help everywhere"),
        ),
    )
    assert keyword_match(rules, "STOP", "CA").reply == "for Canada"
    assert keyword_match(rules, "ARRET", "CA").country == "CA"
    assert keyword_match(rules, "END", "CA") is None  # the general set does not apply there
    assert keyword_match(rules, "STOP", "US").reply == "general"
    assert keyword_match(rules, "ARRET", "US") is None
    assert keyword_match(rules, "END", "US").kind == "opt_out"
    assert keyword_match(rules, "HELP", "CA").reply == "help everywhere"  # no CA help set


def test_the_customer_country_comes_from_the_number_not_from_messenger():
    assert customer_country("+14155550142") == "US"
    assert customer_country("whatsapp:+447400123456") == "GB"
    assert customer_country("whatsapp:+525512345678") == "MX"
    assert customer_country("messenger:1234567890") is None
    assert customer_country("not an address") is None


def test_stop_start_and_help_are_honoured_whatever_the_data_says():
    # Sets written around validation (a raw UPDATE): STOP gone, START put among help words.
    rules = KeywordRules(
        True,
        (
            rule("opt_out", "en", ["END"], "custom stop reply"),
            rule("help", "en", ["HELP", "START"], "custom help"),
        ),
    )
    stop = keyword_match(rules, "stop", "US")
    assert (stop.kind, stop.keyword, stop.reply) == ("opt_out", "STOP", "custom stop reply")
    start = keyword_match(rules, "START", "US")
    assert (start.kind, start.reply) == ("opt_in", default_reply("opt_in", "en"))
    assert keyword_match(KeywordRules(True, ()), "HELP", "US").kind == "help"


def test_a_disabled_configuration_keeps_only_stop_start_and_help_with_default_replies():
    rules = KeywordRules(False, (rule("opt_out", "en", ["STOP", "PAUSE"], "custom"),))
    assert keyword_match(rules, "PAUSE", "US") is None
    assert keyword_match(rules, "BAJA", "ES") is None
    assert keyword_match(rules, "END", "US") is None
    assert keyword_match(rules, "stop", "US").reply == EN_STOP_REPLY
    assert keyword_match(rules, "start", "US").kind == "opt_in"
    assert keyword_match(rules, "help", "US").kind == "help"


def test_keyword_text_is_split_and_written_back_in_one_form():
    assert keywords.keywords_split("stop, Quit;end\n  fin ,stop, STOP") == [
        "STOP",
        "QUIT",
        "END",
        "FIN",
    ]
    with pytest.raises(ValueError, match="at least one"):
        keywords.keywords_parse(" , ")
    with pytest.raises(ValueError, match="longer than 32"):
        keywords.keywords_parse("X" * 33)


# ---------------------------------------------------------------- configurations


@pytest.fixture
def config(world):
    return keyword_config_create(service=world.service)


def make_set(config, kind, language, words, country="", reply="r") -> KeywordSet:
    return KeywordSet(
        config=config, kind=kind, language=language, country=country, keywords=words, reply=reply
    )


def test_a_new_configuration_starts_with_the_default_sets(config, world):
    assert config.account_id == world.account.id
    sets = {(s.kind, s.language): s for s in config.keyword_sets.all()}
    assert set(sets) == {(k, lang) for k in ("opt_out", "opt_in", "help") for lang in ("en", "es")}
    assert sets["opt_out", "en"].keywords == (
        "STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT"
    )
    assert sets["help", "es"].keywords == "AYUDA, INFO"
    assert set(keywords.keyword_rules_of(config).sets) == set(DEFAULT_RULES.sets)


@pytest.mark.parametrize(
    ("kind", "words", "missing"),
    [("opt_out", "STOPALL, END", "STOP"), ("opt_in", "YES", "START"), ("help", "INFO", "HELP")],
)
def test_stop_start_and_help_cannot_be_removed_from_the_english_sets(config, kind, words, missing):
    english = config.keyword_sets.get(kind=kind, language="en")
    english.keywords = words
    with pytest.raises(ValidationError) as raised:
        english.full_clean()
    assert raised.value.message_dict["keywords"] == [
        f"{missing} cannot be removed from the English "
        f"{KeywordKind(kind).label} set: carriers require it."
    ]
    # A country's English set needs it too; a Spanish set does not.
    with pytest.raises(ValidationError):
        make_set(config, kind, "en", words, country="CA").full_clean()
    make_set(config, kind, "es", f"{kind.upper()}X", country="MX").full_clean()


def test_a_word_cannot_be_in_sets_of_two_kinds(config):
    clash = make_set(config, "help", "en", "HELP, baja", country="GB")
    with pytest.raises(ValidationError) as raised:
        clash.full_clean()
    assert raised.value.message_dict["keywords"] == [
        "BAJA is in both the Opt-out and Help sets: a word can do one thing only."
    ]
    # The same word in two languages of one kind is fine (INFO), so is an accent variant...
    make_set(config, "help", "en", "HELP, AYUDA", country="GB").full_clean()
    # ...unless it is another kind's word with an accent added.
    with pytest.raises(ValidationError, match="ALTA"):
        make_set(config, "opt_out", "es", "BAJA, ÁLTA", country="MX").full_clean()


def test_a_set_is_normalised_and_its_country_checked(config):
    spanish = make_set(config, "opt_out", "es", "baja  parar,Baja", country="mx")
    spanish.full_clean()
    assert (spanish.keywords, spanish.country) == ("BAJA, PARAR", "MX")
    with pytest.raises(ValidationError) as raised:
        make_set(config, "opt_out", "es", "BAJA", country="XX").full_clean()
    assert "country" in raised.value.message_dict
    spanish.save()
    with pytest.raises(ValidationError):  # one set per kind, language and country
        make_set(config, "opt_out", "es", "FIN", country="MX").full_clean()


def test_a_configuration_belongs_to_a_service_or_a_lone_sender(world, config):
    pooled = world.senders["long_code"]
    with pytest.raises(ValidationError) as raised:
        KeywordConfig(sender=pooled).full_clean()
    assert "configure the service" in raised.value.message_dict["sender"][0]
    with pytest.raises(ValidationError):
        KeywordConfig().full_clean()
    with pytest.raises(ValidationError):
        KeywordConfig(service=world.service, sender=pooled).full_clean()
    lone = lone_sender(world)
    assert keyword_config_create(sender=lone).sender == lone


def test_reset_puts_the_default_sets_back(config):
    config.keyword_sets.filter(language="es").delete()
    KeywordSet.objects.filter(config=config, kind="help").update(keywords="HELP", reply="")
    keyword_config_reset(config)
    config = KeywordConfig.objects.prefetch_related("keyword_sets").get(id=config.id)
    assert set(keywords.keyword_rules_of(config).sets) == set(DEFAULT_RULES.sets)


# ---------------------------------------------------------------- applying


def lone_sender(world, address="+14155550177") -> Sender:
    sender = Sender(
        account=world.account, provider=world.provider, kind="long_code", address=address
    )
    sender.full_clean()
    sender.save()
    return sender


def receive(world, body, *, to=LONG_CODE, customer=CUSTOMER, provider_id="SSk1"):
    message, created = inbound_message_receive(
        provider=world.provider,
        provider_message_id=provider_id,
        from_address=customer,
        to_address=to,
        body=body,
    )
    assert created
    return message


def receive_and_apply(world, body, **kwargs) -> tuple[Message, str]:
    """inbound.py applies the keyword as it stores the message; applying again is a no-op
    that answers the stored OptOutType (test_applying_twice_acts_once)."""
    message = receive(world, body, **kwargs)
    return message, optout_inbound_apply(message)


def stored_inbound(world, body, *, sender=None, customer=CUSTOMER) -> Message:
    """An inbound row written directly, as if inbound.py had not looked at it yet."""
    sender = sender or world.senders["long_code"]
    return Message.objects.create(
        sid=f"SM{'0' * 31}{Message.objects.count() + 1}",
        account=world.account,
        service=sender.service,
        sender=sender,
        channel=sender.channel,
        direction=Direction.INBOUND,
        from_address=customer,
        to_address=sender.address,
        body=body,
        status="received",
    )


def send(world, *, from_=None, service=None, to=CUSTOMER, body="Promo") -> Message:
    request = MessageRequest(
        to=to,
        from_=from_,
        messaging_service_sid=service.sid if service else None,
        body=body,
    )
    return message_create(account=world.account, request=request)


def replies(to=CUSTOMER):
    return list(Message.objects.filter(direction=Direction.OUTBOUND_REPLY, to_address=to))


def test_stop_blocks_the_whole_service(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        inbound, opt_out_type = receive_and_apply(world, " stop ")
    assert opt_out_type == "STOP"
    assert inbound.opt_out_type == "STOP"
    assert Message.objects.get(id=inbound.id).opt_out_type == "STOP"
    optout = OptOut.objects.get()
    assert (optout.service, optout.sender, optout.address) == (world.service, None, CUSTOMER)
    assert (optout.keyword, optout.source, optout.account) == ("STOP", "keyword", world.account)
    for attempt in (
        lambda: send(world, from_=TOLL_FREE),  # another sender of the pool
        lambda: send(world, from_=LONG_CODE),
        lambda: send(world, service=world.service),
    ):
        with pytest.raises(MessagingError) as refused:
            attempt()
        assert refused.value.code == 21610


def test_applying_twice_acts_once(world, django_capture_on_commit_callbacks):
    message = stored_inbound(world, "Cancel")
    with django_capture_on_commit_callbacks(execute=True):
        assert optout_inbound_apply(message) == "STOP"
        assert optout_inbound_apply(message) == "STOP"
        assert optout_inbound_apply(Message.objects.get(id=message.id)) == "STOP"
    assert OptOut.objects.get().keyword == "CANCEL"
    assert [m.body for m in replies()] == [EN_STOP_REPLY]


def test_stop_fails_the_messages_still_waiting_for_the_customer(world):
    waiting = send(world, from_=TOLL_FREE)
    assert waiting.status == "queued"
    receive_and_apply(world, "STOP")
    waiting.refresh_from_db()
    assert (waiting.status, waiting.error_code) == ("failed", 21610)


def test_start_unblocks_and_help_changes_nothing(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        receive_and_apply(world, "STOP", provider_id="SS1")
        _, helped = receive_and_apply(world, "help", provider_id="SS2")
        assert helped == "HELP"
        assert OptOut.objects.filter(address=CUSTOMER).count() == 1
        _, started = receive_and_apply(world, "Yes", provider_id="SS3")
    assert started == "START"
    assert not OptOut.objects.exists()
    assert send(world, from_=TOLL_FREE).status == "queued"
    # Each keyword was answered, in order, by its own set's reply.
    assert [m.body for m in sorted(replies(), key=lambda m: m.id)] == [
        EN_STOP_REPLY,
        default_reply("help", "en"),
        default_reply("opt_in", "en"),
    ]


def test_help_while_opted_in_blocks_nobody(world):
    _, helped = receive_and_apply(world, "INFO")
    assert helped == "HELP"
    assert not OptOut.objects.exists()


def test_a_lone_sender_blocks_only_itself(world, django_capture_on_commit_callbacks):
    lone = lone_sender(world)
    with django_capture_on_commit_callbacks(execute=True):
        _, opt_out_type = receive_and_apply(world, "QUIT", to=lone.address)
    assert opt_out_type == "STOP"
    optout = OptOut.objects.get()
    assert (optout.service, optout.sender, optout.keyword) == (None, lone, "QUIT")
    with pytest.raises(MessagingError) as refused:
        send(world, from_=lone.address)
    assert refused.value.code == 21610
    assert send(world, from_=LONG_CODE).status == "queued"  # the service never heard STOP
    assert [m.from_address for m in replies()] == [lone.address]


def test_a_lone_sender_uses_its_own_configuration(world):
    lone = lone_sender(world)
    config = keyword_config_create(sender=lone)
    KeywordSet.objects.filter(config=config, kind="opt_out", language="en").update(
        keywords="STOP, PAUSE"
    )
    _, paused = receive_and_apply(world, "pause", to=lone.address)
    assert paused == "STOP"
    _, pooled = receive_and_apply(world, "pause", to=LONG_CODE, provider_id="SSk2")
    assert pooled == ""  # the service has the defaults, where PAUSE is nothing


def test_the_reply_goes_from_the_same_sender_and_is_sent_although_blocked(
    world, django_capture_on_commit_callbacks
):
    ProviderAccount.objects.filter(id=world.provider.id).update(
        settings={"receipt_delay_seconds": None, "record_sends": True}
    )
    with django_capture_on_commit_callbacks(execute=True):
        inbound, _ = receive_and_apply(world, "STOP", to=TOLL_FREE)
    (reply,) = replies()
    assert reply.direction == "outbound-reply"
    assert (reply.from_address, reply.to_address) == (TOLL_FREE, CUSTOMER)
    assert reply.sender == world.senders["toll_free"]
    assert reply.body == EN_STOP_REPLY
    assert reply.keyword_reply is True
    assert reply.status == "queued"
    assert reply.tags == {"in_reply_to": inbound.sid, "opt_out_type": "STOP"}
    assert reply.conversation_id == inbound.conversation_id

    stats = deliver_now()

    reply.refresh_from_db()
    assert (reply.status, reply.error_code) == ("sent", None)
    assert stats.opted_out == 0
    sent = simulator.recorded_sends(world.provider.id)
    assert [(s["from"], s["to"]) for s in sent] == [(TOLL_FREE, CUSTOMER)]
    assert OptOut.objects.filter(address=CUSTOMER).exists()  # still blocked afterwards


def test_the_engine_still_fails_an_ordinary_message_queued_beside_the_reply(
    world, django_capture_on_commit_callbacks
):
    ordinary = send(world, from_=LONG_CODE)
    with django_capture_on_commit_callbacks(execute=True):
        receive_and_apply(world, "STOP")
    # An ordinary message that slipped into the queue after the block (e.g. its row predates
    # the block's sweep) must still be refused at send time.
    Message.objects.filter(id=ordinary.id).update(status="queued", error_code=None)
    deliver_now()
    ordinary.refresh_from_db()
    (reply,) = replies()
    reply.refresh_from_db()
    assert (ordinary.status, ordinary.error_code) == ("failed", 21610)
    assert reply.status == "sent"


def test_a_second_stop_does_not_fail_the_first_confirmation(
    world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        receive_and_apply(world, "STOP", provider_id="SS1")
        receive_and_apply(world, "STOP", provider_id="SS2")
    assert sorted(m.status for m in replies()) == ["queued", "queued"]


def test_spanish_stop_blocks_and_answers_in_spanish(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _, opt_out_type = receive_and_apply(world, "Bája", customer=SPANISH_CUSTOMER)
    assert opt_out_type == "STOP"
    assert OptOut.objects.get().keyword == "BAJA"
    assert [m.body for m in replies(SPANISH_CUSTOMER)] == [ES_STOP_REPLY]


def test_a_country_set_answers_its_customers(world, django_capture_on_commit_callbacks):
    config = keyword_config_create(service=world.service)
    canada = make_set(config, "opt_out", "en", "STOP, ARRET", country="CA", reply="Bye, Canada")
    canada.full_clean()
    canada.save()
    with django_capture_on_commit_callbacks(execute=True):
        _, canadian = receive_and_apply(world, "arret", customer="+16135550123")
        _, american = receive_and_apply(world, "arret", provider_id="SSk2")
    assert (canadian, american) == ("STOP", "")
    assert [m.body for m in replies("+16135550123")] == ["Bye, Canada"]


def test_no_reply_when_the_sets_reply_is_empty(world, django_capture_on_commit_callbacks):
    config = keyword_config_create(service=world.service)
    KeywordSet.objects.filter(config=config, kind="opt_out", language="en").update(reply="")
    with django_capture_on_commit_callbacks(execute=True):
        _, opt_out_type = receive_and_apply(world, "STOP")
    assert opt_out_type == "STOP"
    assert OptOut.objects.filter(address=CUSTOMER).exists()
    assert not Message.objects.exclude(direction="inbound").exists()


def test_a_disabled_configuration_ignores_its_words_but_not_stop(
    world, django_capture_on_commit_callbacks
):
    config = keyword_config_create(service=world.service, enabled=False)
    KeywordSet.objects.filter(config=config, kind="opt_out", language="en").update(
        keywords="STOP, PAUSE", reply="custom"
    )
    with django_capture_on_commit_callbacks(execute=True):
        _, paused = receive_and_apply(world, "PAUSE", provider_id="SS1")
        _, baja = receive_and_apply(world, "BAJA", provider_id="SS2")
        _, stopped = receive_and_apply(world, "STOP", provider_id="SS3")
    assert (paused, baja, stopped) == ("", "", "STOP")
    assert [m.body for m in replies()] == [EN_STOP_REPLY]


@pytest.mark.parametrize("body", ["STOP please", "Hello", ""])
def test_a_message_that_is_no_keyword_changes_nothing(world, body):
    inbound, opt_out_type = receive_and_apply(world, body)
    assert opt_out_type == ""
    assert Message.objects.get(id=inbound.id).opt_out_type == ""
    assert not OptOut.objects.exists()
    assert replies() == []


def test_outbound_messages_are_never_read_as_keywords(world):
    outbound = send(world, from_=LONG_CODE, body="STOP")
    assert optout_inbound_apply(outbound) == ""
    assert not OptOut.objects.exists()


def test_a_refused_reply_is_logged_and_the_block_stays(
    world, django_capture_on_commit_callbacks, caplog
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        receive_and_apply(world, "STOP")
    Sender.objects.filter(id=world.senders["long_code"].id).update(active=False)
    for callback in callbacks:
        callback()
    assert replies() == []
    assert OptOut.objects.filter(address=CUSTOMER).exists()
    assert "keyword reply from +14155550100 to +14155550142 refused: 21606" in caplog.text


def test_only_a_keyword_reply_skips_the_opt_out_check(world):
    OptOut.objects.create(account=world.account, service=world.service, address=CUSTOMER)
    with pytest.raises(MessagingError):
        send(world, from_=LONG_CODE)
    request = MessageRequest(to=CUSTOMER, from_=LONG_CODE, body="ok", keyword_reply=True)
    assert message_create(account=world.account, request=request).keyword_reply


# ---------------------------------------------------------------- end to end


def test_stop_through_the_simulator_webhook_blocks_the_service_and_confirms(
    world, django_capture_on_commit_callbacks
):
    """The whole path: a signed simulator webhook, inbound.py storing the message and
    calling `optout_inbound_apply`, the confirmation sent by the delivery engine."""
    provider_credentials_set(world.provider, {"webhook_secret": SECRET})
    ProviderAccount.objects.filter(id=world.provider.id).update(
        settings={"receipt_delay_seconds": None, "record_sends": True}
    )
    body = json.dumps({"id": "SSwire", "from": CUSTOMER, "to": LONG_CODE, "body": "Stop"}).encode()
    with django_capture_on_commit_callbacks(execute=True):
        outcome = simulator_inbound_handle(
            provider_sid=world.provider.sid, body=body, signature=simulator.signature(SECRET, body)
        )
    assert outcome.status == 200, outcome.body
    inbound = Message.objects.get(direction="inbound")
    assert inbound.opt_out_type == "STOP"
    assert OptOut.objects.filter(service=world.service, address=CUSTOMER).exists()
    (reply,) = replies()
    deliver_now()
    reply.refresh_from_db()
    assert (reply.from_address, reply.body, reply.status) == (LONG_CODE, EN_STOP_REPLY, "sent")


# ---------------------------------------------------------------- admin

ADMIN = "/admin/messaging/keywordconfig/"


def change_data(config, edit=None, *, extra=(), delete=()) -> dict:
    """The change form as a browser posts it: every saved set, `edit` applied to some."""
    edit = edit or {}
    sets = list(config.keyword_sets.order_by("id"))
    data = {
        "enabled": "on" if config.enabled else "",
        "keyword_sets-TOTAL_FORMS": str(len(sets) + len(extra)),
        "keyword_sets-INITIAL_FORMS": str(len(sets)),
        "keyword_sets-MIN_NUM_FORMS": "0",
        "keyword_sets-MAX_NUM_FORMS": "1000",
    }
    rows = [
        {
            "id": s.id,
            "config": config.id,
            "kind": s.kind,
            "language": s.language,
            "country": s.country,
            "keywords": s.keywords,
            "reply": s.reply,
            **edit.get((s.kind, s.language, s.country), {}),
            **({"DELETE": "on"} if (s.kind, s.language, s.country) in delete else {}),
        }
        for s in sets
    ]
    rows += [{"config": config.id, **row} for row in extra]
    for i, row in enumerate(rows):
        data.update({f"keyword_sets-{i}-{name}": value for name, value in row.items()})
    return data


def set_words(config, kind, language, country="") -> str:
    return config.keyword_sets.get(kind=kind, language=language, country=country).keywords


def test_the_admin_adds_a_configuration_with_the_default_sets(admin_user, client_for, world):
    client = client_for(admin_user)
    assert client.get(f"{ADMIN}add/").status_code == 200
    response = client.post(f"{ADMIN}add/", {"service": world.service.id, "enabled": "on"})
    config = KeywordConfig.objects.get()
    assert response.status_code == 302
    assert response.url == f"{ADMIN}{config.id}/change/"  # straight to the sets
    assert config.keyword_sets.count() == len(keywords.DEFAULT_SETS)
    page = client.get(response.url).content.decode()
    assert "STOP, STOPALL, UNSUBSCRIBE" in page and "BAJA, PARAR" in page


def test_the_admin_offers_only_lone_senders(admin_user, client_for, world):
    lone = lone_sender(world)
    form = client_for(admin_user).get(f"{ADMIN}add/").context["adminform"].form
    assert list(form.fields["sender"].queryset) == [lone]


def test_the_admin_lets_a_word_move_between_kinds_in_one_save(
    admin_user, client_for, world, config
):
    edit = {
        ("opt_out", "en", ""): {"keywords": "STOP, STOPALL, UNSUBSCRIBE, CANCEL, QUIT"},
        ("help", "en", ""): {"keywords": "HELP, INFO, END"},
    }
    response = client_for(admin_user).post(f"{ADMIN}{config.id}/change/", change_data(config, edit))
    assert response.status_code == 302, response.context["inline_admin_formsets"][0].formset.errors
    assert set_words(config, "help", "en") == "HELP, INFO, END"
    assert keyword_match(config, "END", "US").kind == "help"


def test_the_admin_refuses_a_word_in_two_kinds_and_saves_nothing(
    admin_user, client_for, world, config
):
    edit = {("help", "en", ""): {"keywords": "HELP, INFO, QUIT"}}
    response = client_for(admin_user).post(f"{ADMIN}{config.id}/change/", change_data(config, edit))
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.non_form_errors() == [
        "QUIT is in both the Opt-out and Help sets: a word can do one thing only."
    ]
    assert set_words(config, "help", "en") == "HELP, INFO"


def test_the_admin_refuses_removing_stop(admin_user, client_for, world, config):
    edit = {("opt_out", "en", ""): {"keywords": "STOPALL, END"}}
    response = client_for(admin_user).post(f"{ADMIN}{config.id}/change/", change_data(config, edit))
    assert response.status_code == 200
    assert "STOP cannot be removed from the English Opt-out set" in response.content.decode()
    assert set_words(config, "opt_out", "en").startswith("STOP, ")


def test_the_admin_adds_a_country_set_and_deletes_one(admin_user, client_for, world, config):
    extra = [
        {"kind": "opt_out", "language": "es", "country": "mx", "keywords": "BAJA", "reply": "Adiós"}
    ]
    delete = {("help", "es", "")}
    response = client_for(admin_user).post(
        f"{ADMIN}{config.id}/change/", change_data(config, extra=extra, delete=delete)
    )
    assert response.status_code == 302
    assert config.keyword_sets.get(country="MX").reply == "Adiós"
    assert not config.keyword_sets.filter(kind="help", language="es").exists()
    assert keyword_match(config, "baja", "MX").reply == "Adiós"


def test_the_admin_resets_configurations_to_the_defaults(admin_user, client_for, world, config):
    config.keyword_sets.all().delete()
    client = client_for(admin_user)
    response = client.post(
        ADMIN, {"action": "reset_to_defaults", "_selected_action": [config.id]}, follow=True
    )
    assert response.status_code == 200
    assert "1 configuration now has the default keyword sets." in response.content.decode()
    assert set(keywords.keyword_rules_of(config).sets) == set(DEFAULT_RULES.sets)


def test_the_admin_lists_and_filters_configurations(admin_user, client_for, world, config):
    lone = lone_sender(world)
    keyword_config_create(sender=lone, enabled=False)
    client = client_for(admin_user)
    page = client.get(ADMIN)
    assert page.status_code == 200
    assert {str(c) for c in page.context["cl"].result_list} == {str(world.service), str(lone)}
    only_lone = client.get(ADMIN, {"scope": "sender"}).context["cl"].result_list
    assert [c.sender for c in only_lone] == [lone]
    disabled = client.get(ADMIN, {"enabled__exact": "0"}).context["cl"].result_list
    assert [c.sender for c in disabled] == [lone]
    spanish = client.get(ADMIN, {"keyword_sets__language": "es"}).context["cl"].result_list
    assert len(set(spanish)) == 2


def test_the_block_list_shows_the_keyword_and_where_it_came_from(admin_user, client_for, world):
    receive_and_apply(world, "BAJA", customer=SPANISH_CUSTOMER)
    client = client_for(admin_user)
    english = client.get("/admin/messaging/optout/").content.decode()
    assert "BAJA" in english and "customer keyword" in english
    spanish = client.get("/admin/messaging/optout/", headers={"accept-language": "es"})
    assert "palabra clave del cliente" in spanish.content.decode()
