"""The customer phone page and its JSON endpoints. Staff only: it shows every simulated
customer's messages and lets the viewer write as any of them."""

from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from messaging.encoding import MAX_BODY_CHARS
from messaging.errors import error_message
from messaging.models import Channel, Direction, Message, Sender, SenderKind
from messaging.simulator import selectors
from messaging.simulator.services import simulator_customer_reply
from messaging.statuses import Status

STATUS_LABELS = {
    Status.ACCEPTED: gettext_lazy("Accepted"),
    Status.SCHEDULED: gettext_lazy("Scheduled"),
    Status.QUEUED: gettext_lazy("Queued"),
    Status.SENDING: gettext_lazy("Sending"),
    Status.SENT: gettext_lazy("Sent"),
    Status.DELIVERED: gettext_lazy("Delivered"),
    Status.UNDELIVERED: gettext_lazy("Undelivered"),
    Status.FAILED: gettext_lazy("Failed"),
    Status.READ: gettext_lazy("Read"),
    Status.CANCELED: gettext_lazy("Canceled"),
    Status.RECEIVING: gettext_lazy("Receiving"),
    Status.RECEIVED: gettext_lazy("Received"),
}
CHANNEL_LABELS = {
    Channel.SMS: gettext_lazy("SMS"),
    Channel.WHATSAPP: "WhatsApp",
    Channel.MESSENGER: "Messenger",
}
CUSTOMER_PLACEHOLDERS = {
    Channel.SMS: "+14155550123",
    Channel.WHATSAPP: "+14155550123",
    Channel.MESSENGER: "1234567890",
}


def staff_required(view):
    """Anonymous → sign-in; signed in without staff status → 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_staff or request.user.is_superuser):
            raise PermissionDenied("The simulator is for staff users.")
        return view(request, *args, **kwargs)

    return wrapped


# ---------------------------------------------------------------- representations


def _message_json(message: Message) -> dict:
    return {
        "sid": message.sid,
        "direction": message.direction,
        "from_customer": message.direction == Direction.INBOUND,
        "body": message.body,
        "status": message.status,
        "status_label": str(STATUS_LABELS.get(message.status, message.status)),
        "error_code": message.error_code,
        "error_message": _error_text(message.error_code, message.error_message),
        "num_segments": message.num_segments,
        "media": [{"url": m.url, "content_type": m.content_type} for m in message.media.all()],
        "date": message.date_created.isoformat(),
    }


def _thread_json(thread: selectors.Thread) -> dict:
    return {
        "customer": thread.customer,
        "sender": thread.sender_sid,
        "sender_address": thread.sender_address,
        "channel": thread.channel,
        "last_body": thread.last_body,
        "last_from_customer": thread.last_direction == Direction.INBOUND,
        "date": thread.last_at.isoformat(),
        "count": thread.count,
    }


def _can_reply(sender: Sender) -> bool:
    # An alphanumeric sender id is one-way: a handset cannot answer it.
    return sender.kind != SenderKind.ALPHANUMERIC


def _selection(params) -> tuple[Sender | None, str, str]:
    """(sender, canonical customer address, error) from the page's query or form."""
    sender = selectors.simulator_sender_get(params.get("sender", ""))
    if params.get("sender") and sender is None:
        return None, "", _("Pick a simulator sender and a customer.")
    raw = params.get("customer") or params.get("number") or ""
    if not raw.strip():
        return sender, "", ""
    channel = params.get("channel") or (sender.channel if sender else None)
    try:
        address = selectors.customer_address_parse(raw, channel=channel)
    except selectors.CustomerAddressError as exc:
        return sender, "", _("Not a valid customer address: %(reason)s") % {"reason": exc}
    if sender is not None and address.channel != sender.channel:
        error = _("%(sender)s sends on %(channel)s; %(customer)s is on %(other)s.") % {
            "sender": sender.address,
            "channel": CHANNEL_LABELS[Channel(sender.channel)],
            "customer": address.value,
            "other": CHANNEL_LABELS[Channel(address.channel)],
        }
        return sender, address.value, error
    return sender, address.value, ""


def _error_text(code: int | None, stored: str = "") -> str:
    if code is None:
        return ""
    generic = error_message(code)
    if stored and stored != generic:
        return stored  # a specific explanation beats the generic one
    return _(generic)


def _failure_rules(rules: dict | None) -> list[dict]:
    return [
        {
            "suffix": rule.get("suffix", ""),
            "status": rule.get("status", Status.UNDELIVERED),
            "status_label": STATUS_LABELS.get(rule.get("status"), rule.get("status")),
            "error_code": rule.get("error_code"),
            "meaning": _error_text(rule.get("error_code")),
        }
        for rule in (rules or {}).get("failures", [])
    ]


# ---------------------------------------------------------------- views


@require_GET
@staff_required
def simulator_index(request: HttpRequest) -> HttpResponse:
    sender, customer, error = _selection(request.GET)
    provider = sender.provider if sender else selectors.simulator_provider_default()
    senders = selectors.simulator_senders()
    channel = (
        request.GET.get("channel")
        or (sender.channel if sender else "")
        or (customer.split(":", 1)[0] if ":" in customer else Channel.SMS)
    )
    ready = sender is not None and bool(customer) and not error
    rules = selectors.simulator_rules(provider) if provider else None
    context = {
        "senders": senders,
        "sender_groups": [
            (CHANNEL_LABELS[ch], [s for s in senders if s.channel == ch])
            for ch in Channel
            if any(s.channel == ch for s in senders)
        ],
        "sender": sender,
        "customer": customer,
        "number": customer.split(":", 1)[1] if ":" in customer else customer,
        "channel": channel,
        "channels": [(ch.value, CHANNEL_LABELS[ch], CUSTOMER_PLACEHOLDERS[ch]) for ch in Channel],
        "profile_name": request.GET.get("name", "")[:128],
        "error": error,
        "ready": ready,
        "can_reply": ready and _can_reply(sender),
        "threads": selectors.simulator_threads(),
        "thread_messages": (
            [
                _message_json(m)
                for m in selectors.simulator_thread_messages(sender=sender, customer=customer)
            ]
            if ready
            else []
        ),
        "provider": provider,
        "rules": rules,
        "failure_rules": _failure_rules(rules),
        "max_body": MAX_BODY_CHARS,
        "i18n": {
            "empty": _(
                "No messages yet. Send one from the agent desktop or the API, or reply below."
            ),
            "offline": _("Lost contact with the server; retrying…"),
            "sending": _("Sending…"),
            "noThreads": _("No simulator traffic yet."),
            "error": _("Error"),
        },
    }
    return render(request, "messaging/simulator.html", context)


@require_GET
@staff_required
def simulator_thread_api(request: HttpRequest) -> JsonResponse:
    sender, customer, error = _selection(request.GET)
    if sender is None or not customer or error:
        return JsonResponse(
            {"code": 20422, "message": error or _("Pick a simulator sender and a customer.")},
            status=400,
        )
    rows = selectors.simulator_thread_messages(sender=sender, customer=customer)
    return JsonResponse(
        {
            "customer": customer,
            "sender": sender.sid,
            "messages": [_message_json(m) for m in rows],
        }
    )


@require_GET
@staff_required
def simulator_threads_api(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"threads": [_thread_json(t) for t in selectors.simulator_threads()]})


def _reply_answer(
    request: HttpRequest, *, sender: Sender | None, customer: str, status: int, body: dict
) -> HttpResponse:
    """JSON for the page's script; without script, back to the page (PRG) with a flash."""
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse(body, status=status)
    if status >= 400:
        messages.error(request, body.get("message", ""))
    query = {"sender": sender.sid if sender else "", "customer": customer}
    if request.POST.get("profile_name"):
        query["name"] = request.POST["profile_name"]
    return redirect(f"{reverse('simulator:index')}?{urlencode(query)}")


@require_POST
@staff_required
def simulator_reply(request: HttpRequest) -> HttpResponse:
    """The customer writes back. Goes through the webhook handler, signature and all."""
    sender, customer, error = _selection(request.POST)
    body = request.POST.get("body", "")
    if not error and (sender is None or not customer):
        error = _("Pick a simulator sender and a customer.")
    if not error and not _can_reply(sender):
        error = _("Customers cannot reply to an alphanumeric sender ID.")
    if not error and not body.strip():
        error = _("Type a message first.")
    if not error and len(body) > MAX_BODY_CHARS:
        error = _("The message is longer than %(max)s characters.") % {"max": MAX_BODY_CHARS}
    if error:
        return _reply_answer(
            request,
            sender=sender,
            customer=customer,
            status=400,
            body={"code": 20422, "message": error},
        )
    outcome = simulator_customer_reply(
        sender=sender,
        customer=customer,
        body=body,
        profile_name=request.POST.get("profile_name", "")[:128],
    )
    if outcome.status != 200:
        return _reply_answer(
            request, sender=sender, customer=customer, status=400, body=outcome.body
        )
    return _reply_answer(
        request, sender=sender, customer=customer, status=201, body={"sid": outcome.body["sid"]}
    )
