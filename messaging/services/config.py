"""Configuration writes: senders and messaging services, and a service's sender pool.

Every write validates with the model's `full_clean()` (the rules the admin applies too: the
sender address is normalised there), runs in one transaction and refuses with a
`MessagingError` (20422 naming the field) instead of writing anything half.
"""

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction

from messaging.errors import MessagingError
from messaging.models import (
    Account,
    MessagingService,
    ProviderAccount,
    Sender,
    StickySender,
)

SENDER_OPTIONS = frozenset(
    {
        "friendly_name",
        "country",
        "sms_capable",
        "mms_capable",
        "throughput",
        "inbound_request_url",
        "inbound_method",
        "fallback_url",
        "status_callback_url",
        "active",
    }
)
SENDER_CHANGES = SENDER_OPTIONS | {"kind", "address"}
SERVICE_FIELDS = frozenset(
    {
        "friendly_name",
        "usecase",
        "sticky_sender",
        "smart_encoding",
        "area_code_geomatch",
        "country_geomatch",
        "fallback_to_long_code",
        "validity_period",
        "inbound_request_url",
        "inbound_method",
        "fallback_url",
        "fallback_method",
        "status_callback",
        "use_inbound_webhook_on_number",
    }
)
# Model field → the name clients use for it.
_PUBLIC_FIELD = {"service": "messaging_service_sid", NON_FIELD_ERRORS: None}
# Errors that `clean()` raises without a field name, by their code.
_FIELD_OF_CODE = {"country": "country"}


# ---------------------------------------------------------------- helpers


def _refuse_unknown(values: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(values) - allowed)
    if unknown:  # a programming error of the caller, not bad input
        raise TypeError(f"unknown fields: {', '.join(unknown)}")


def _validation_error(exc: ValidationError) -> MessagingError:
    """The first problem of a Django ValidationError, as 20422 naming the field."""
    if hasattr(exc, "error_dict"):
        name, errors = next(iter(exc.error_dict.items()))
        first = errors[0]
        text = next(iter(first.messages), "Invalid value.")
        if name == NON_FIELD_ERRORS:  # raised by clean() without naming a field
            name = _FIELD_OF_CODE.get(first.code or "", name)
        field = _PUBLIC_FIELD.get(name, name)
    else:
        text, field = next(iter(exc.messages), "Invalid value."), None
    return MessagingError(20422, f"{field}: {text}" if field else text, field)


def _full_clean(instance: Sender | MessagingService) -> None:
    """Field rules and `clean()`, then the model's constraints.

    The sender address is checked for duplicates in between, by hand, so that refusal says
    plainly what is wrong instead of Django's generic "with this Channel and Address".
    """
    try:
        instance.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise _validation_error(exc) from exc
    if isinstance(instance, Sender):
        _refuse_duplicate_address(instance)
    try:
        instance.validate_constraints()
    except ValidationError as exc:
        raise _validation_error(exc) from exc


def _provider_for(account_id: int, sid: str) -> ProviderAccount:
    provider = ProviderAccount.objects.filter(account_id=account_id, sid=sid).first()
    if provider is None:
        raise MessagingError(20422, f"provider: provider account {sid} was not found.", "provider")
    return provider


def _service_for(account_id: int, sid: str | None) -> MessagingService | None:
    if sid is None or sid == "":
        return None
    service = MessagingService.objects.filter(account_id=account_id, sid=sid).first()
    if service is None:
        raise MessagingError(
            20422,
            f"messaging_service_sid: messaging service {sid} was not found.",
            "messaging_service_sid",
        )
    return service


def _duplicate(sender: Sender) -> MessagingError:
    return MessagingError(
        20422,
        f"address: a {sender.channel} sender with the address {sender.address} already exists.",
        "address",
    )


def _refuse_duplicate_address(sender: Sender) -> None:
    taken = Sender.objects.filter(channel=sender.channel, address=sender.address)
    if sender.pk is not None:
        taken = taken.exclude(pk=sender.pk)
    if taken.exists():
        raise _duplicate(sender)


def _save_sender(sender: Sender) -> None:
    _full_clean(sender)
    try:
        with transaction.atomic():  # the unique index decides a race between two writers
            sender.save()
    except IntegrityError as exc:
        raise _duplicate(sender) from exc


def _forget_sticky(*, sender: Sender, service_id: int | None) -> None:
    """A sender leaving a pool must no longer be remembered as anyone's sticky sender."""
    if service_id is not None:
        StickySender.objects.filter(service_id=service_id, sender=sender).delete()


# ---------------------------------------------------------------- senders


@transaction.atomic
def sender_create(
    *,
    account: Account,
    kind: str,
    address: str,
    provider_sid: str,
    messaging_service_sid: str | None = None,
    **options: Any,
) -> Sender:
    """A new sender of `account`; `options` are the optional model fields (SENDER_OPTIONS)."""
    _refuse_unknown(options, SENDER_OPTIONS)
    sender = Sender(
        account=account,
        provider=_provider_for(account.id, provider_sid),
        service=_service_for(account.id, messaging_service_sid),
        kind=kind,
        address=address,
        **options,
    )
    _save_sender(sender)
    return sender


@transaction.atomic
def sender_update(*, sender: Sender, **changes: Any) -> Sender:
    """Change some fields of a sender; `provider_sid` and `messaging_service_sid` move it.

    The row is locked and re-read, so the caller's instance is left as it was when the
    change is refused.
    """
    _refuse_unknown(changes, SENDER_CHANGES | {"provider_sid", "messaging_service_sid"})
    locked = Sender.objects.select_for_update().get(pk=sender.pk)
    previous_service_id = locked.service_id
    if "provider_sid" in changes:
        locked.provider = _provider_for(locked.account_id, changes.pop("provider_sid"))
    if "messaging_service_sid" in changes:
        locked.service = _service_for(locked.account_id, changes.pop("messaging_service_sid"))
    for name, value in changes.items():
        setattr(locked, name, value)
    _save_sender(locked)
    if locked.service_id != previous_service_id:
        _forget_sticky(sender=locked, service_id=previous_service_id)
    return locked


# ---------------------------------------------------------------- messaging services


@transaction.atomic
def service_create(*, account: Account, friendly_name: str, **fields: Any) -> MessagingService:
    _refuse_unknown(fields, SERVICE_FIELDS)
    service = MessagingService(account=account, friendly_name=friendly_name, **fields)
    _full_clean(service)
    service.save()
    return service


@transaction.atomic
def service_update(*, service: MessagingService, **changes: Any) -> MessagingService:
    _refuse_unknown(changes, SERVICE_FIELDS)
    locked = MessagingService.objects.select_for_update().get(pk=service.pk)
    for name, value in changes.items():
        setattr(locked, name, value)
    _full_clean(locked)
    locked.save()
    return locked


@transaction.atomic
def service_add_sender(*, service: MessagingService, sender_sid: str) -> Sender:
    """Put a sender of the same account in the service's pool (idempotent).

    A sender belongs to at most one pool: one already in another service is refused rather
    than silently moved.
    """
    sender = (
        Sender.objects.select_for_update()
        .filter(account_id=service.account_id, sid=sender_sid)
        .first()
    )
    if sender is None:
        raise MessagingError(
            20404, f"The requested resource Sender {sender_sid} was not found.", "sender_sid"
        )
    if sender.service_id == service.id:
        return sender
    if sender.service_id is not None:
        other = MessagingService.objects.only("sid").get(pk=sender.service_id)
        raise MessagingError(
            20422,
            f"sender_sid: sender {sender.sid} already belongs to the messaging service "
            f"{other.sid}; remove it there first.",
            "sender_sid",
        )
    sender.service = service
    sender.save(update_fields=["service", "date_updated"])
    return sender


@transaction.atomic
def service_remove_sender(*, service: MessagingService, sender_sid: str) -> Sender:
    """Take a sender out of the service's pool; it stays a sender of the account."""
    sender = Sender.objects.select_for_update().filter(service=service, sid=sender_sid).first()
    if sender is None:
        raise MessagingError(
            20404,
            f"The requested resource Sender {sender_sid} is not in the pool of {service.sid}.",
            "sender_sid",
        )
    sender.service = None
    sender.save(update_fields=["service", "date_updated"])
    _forget_sticky(sender=sender, service_id=service.id)
    return sender
