"""The demo's bot flow: seeds/004's tutorial (cancel a medical appointment, or talk to a
person), in Spanish and English, attached to the demo WhatsApp sender, Messenger page and
SMS service. The language chosen first picks every later text and the agents' queue."""

import json
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from contactcenter.flows.models import (
    DemoAppointment,
    Flow,
    FlowAttachment,
    FlowFunctionConfig,
)
from contactcenter.flows.services import flow_publish
from messaging import crypto
from messaging.models import Account, MessagingService, Sender

DEMO_FLOW = "Appointments assistant"
REPLY_TIMEOUT = "600"


def _es_en(spanish: str, english: str) -> str:
    """One body, the customer's language (flow.variables.language) choosing the text."""
    return (
        "{% if flow.variables.language == 'es' %}"
        + spanish
        + "{% else %}"
        + english
        + "{% endif %}"
    )


def _state(name: str, kind: str, transitions: list[dict], **properties) -> dict:
    return {"name": name, "type": kind, "properties": properties, "transitions": transitions}


def _go(event: str, next_state: str = "") -> dict:
    return {"event": event, "next": next_state} if next_state else {"event": event}


def _any_of(next_state: str, label: str, words: str, source: str) -> dict:
    return {
        "event": "match",
        "next": next_state,
        "conditions": [
            {
                "friendly_name": label,
                "arguments": [source],
                "type": "matches_any_of",
                "value": words,
            }
        ],
    }


WELCOME = (
    "Hola 👋 Soy el asistente de citas de la clínica. Responde 1 para continuar en español.\n"
    "Hi 👋 I'm the clinic's appointments assistant. Reply 2 for English."
)
MENU = _es_en(
    "¿Qué quieres hacer?\n1. Cancelar mi cita\n2. Hablar con una persona",
    "What would you like to do?\n1. Cancel my appointment\n2. Talk to a person",
)


def demo_flow_definition() -> dict:
    language = "{{widgets.welcome.inbound.Body}}"
    choice = "{{widgets.menu.inbound.Body}}"
    states = [
        _state(
            "Trigger",
            "trigger",
            [
                _go("incomingMessage", "welcome"),
                _go("incomingRequest", "welcome"),
                _go("incomingParent"),
            ],
        ),
        _state(
            "welcome",
            "send-and-wait-for-reply",
            [
                _go("incomingMessage", "split_language"),
                _go("timeout", "goodbye"),
                _go("deliveryFailure"),
            ],
            body=WELCOME,
            timeout=REPLY_TIMEOUT,
        ),
        _state(
            "split_language",
            "split-based-on",
            [
                _any_of("set_spanish", "Español", "1, es, español, espanol, spanish", language),
                _any_of("set_english", "English", "2, en, english, inglés, ingles", language),
                _go("noMatch", "welcome"),
            ],
            input=language,
        ),
        _state(
            "set_spanish",
            "set-variables",
            [_go("next", "menu")],
            variables=[{"key": "language", "value": "es"}],
        ),
        _state(
            "set_english",
            "set-variables",
            [_go("next", "menu")],
            variables=[{"key": "language", "value": "en"}],
        ),
        _state(
            "menu",
            "send-and-wait-for-reply",
            [
                _go("incomingMessage", "split_menu"),
                _go("timeout", "goodbye"),
                _go("deliveryFailure"),
            ],
            body=MENU,
            timeout=REPLY_TIMEOUT,
        ),
        _state(
            "split_menu",
            "split-based-on",
            [
                _any_of("ask_document", "Cancel", "1, cancelar, cancel", choice),
                _any_of("connecting", "Person", "2, persona, agente, person, agent, human", choice),
                _go("noMatch", "not_understood"),
            ],
            input=choice,
        ),
        _state(
            "not_understood",
            "send-message",
            [_go("sent", "menu"), _go("failed")],
            body=_es_en(
                "No te entendí. Responde 1 o 2.", "Sorry, I didn't get that. Reply 1 or 2."
            ),
        ),
        _state(
            "ask_document",
            "send-and-wait-for-reply",
            [
                _go("incomingMessage", "save_document"),
                _go("timeout", "goodbye"),
                _go("deliveryFailure"),
            ],
            body=_es_en(
                "Escribe el número de documento con el que pediste la cita.",
                "Please type the document number you booked the appointment with.",
            ),
            timeout=REPLY_TIMEOUT,
        ),
        _state(
            "save_document",
            "set-variables",
            [_go("next", "cancel_appointment")],
            variables=[
                {"key": "documento", "value": "{{widgets.ask_document.inbound.Body | strip}}"}
            ],
        ),
        _state(
            "cancel_appointment",
            "run-function",
            [_go("success", "canceled"), _go("fail", "cancel_failed")],
            function="cancel_appointment",
            parameters=[{"key": "documento", "value": "{{flow.variables.documento}}"}],
        ),
        _state(
            "canceled",
            "send-message",
            [_go("sent"), _go("failed")],
            body=_es_en(
                "Listo, {{widgets.cancel_appointment.parsed.patient}}: cancelamos tu cita "
                "(documento {{flow.variables.documento}}). ¡Gracias!",
                "Done, {{widgets.cancel_appointment.parsed.patient}}: your appointment "
                "(document {{flow.variables.documento}}) is canceled. Thank you!",
            ),
        ),
        _state(
            "cancel_failed",
            "send-message",
            [_go("sent", "menu"), _go("failed")],
            body=_es_en(
                "No pudimos cancelar la cita del documento {{flow.variables.documento}}: "
                "{{widgets.cancel_appointment.error}}",
                "We could not cancel the appointment for document {{flow.variables.documento}}: "
                "{{widgets.cancel_appointment.error}}",
            ),
        ),
        _state(
            "connecting",
            "send-message",
            [_go("sent", "to_agent"), _go("failed", "to_agent")],
            body=_es_en(
                "Te comunico con una persona de nuestro equipo. Un momento, por favor.",
                "Connecting you to a person on our team. One moment, please.",
            ),
        ),
        _state(
            "to_agent",
            "send-to-agent",
            [_go("callComplete"), _go("failedToEnqueue", "agents_unavailable"), _go("callFailure")],
            workflow="Support routing",
            attributes='{"language": "{{flow.variables.language}}", "topic": "appointments"}',
            priority="0",
            timeout="3600",
        ),
        _state(
            "agents_unavailable",
            "send-message",
            [_go("sent"), _go("failed")],
            body=_es_en(
                "Ahora no hay nadie disponible. Escríbenos más tarde, por favor.",
                "Nobody is available right now. Please write to us later.",
            ),
        ),
        _state(
            "goodbye",
            "send-message",
            [_go("sent"), _go("failed")],
            body=_es_en(
                "Cerramos la conversación por inactividad. Escríbenos cuando quieras.",
                "We closed this conversation after no reply. Write to us any time.",
            ),
        ),
    ]
    return {
        "description": "Cancel an appointment or talk to a person (seeds/004's tutorial)",
        "initial_state": "Trigger",
        "flags": {"allow_concurrent_calls": True},
        "states": states,
    }


# document → (patient, days ahead)
DEMO_APPOINTMENTS = {
    "1001": ("Ana Gómez", 2),
    "1002": ("Bruno Díaz", 3),
    "1003": ("Carla Ruiz", 5),
    "2001": ("Dave Miller", 4),
    "2002": ("Emma Brown", 6),
}


def demo_appointments_url() -> str:
    base = settings.PUBLIC_BASE_URL or f"http://127.0.0.1:{settings.PORT}"
    return f"{base}/demo/appointments"


@transaction.atomic
def demo_flows_seed(account: Account, *, service: MessagingService, senders: list[Sender]) -> Flow:
    _function_config()
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    for document, (patient, days) in DEMO_APPOINTMENTS.items():
        starts_at = now + timedelta(days=days, hours=1)
        appointment, created = DemoAppointment.objects.get_or_create(
            document=document, defaults={"patient": patient, "starts_at": starts_at}
        )
        if not created and appointment.starts_at <= now:
            # A demo seeded long ago: book its past appointments again, in the future.
            appointment.starts_at, appointment.state = starts_at, DemoAppointment.State.BOOKED
            appointment.save(update_fields=["starts_at", "state", "date_updated"])
    flow = Flow.objects.filter(account=account, friendly_name=DEMO_FLOW).first()
    if flow is None:
        flow = Flow.objects.create(
            account=account,
            friendly_name=DEMO_FLOW,
            description="seeds/004 tutorial",
            definition=demo_flow_definition(),
            time_zone="America/Bogota",
        )
        flow_publish(flow, by="seed_demo")
    if not FlowAttachment.objects.filter(service=service).exists():
        FlowAttachment.objects.create(flow=flow, service=service)
    for sender in senders:
        if not FlowAttachment.objects.filter(sender=sender).exists():
            FlowAttachment.objects.create(flow=flow, sender=sender)
    return flow


def _function_config() -> None:
    config, created = FlowFunctionConfig.objects.get_or_create(
        name="cancel_appointment",
        defaults={"environment": {"APPOINTMENTS_API_URL": demo_appointments_url()}},
    )
    if created or not config.secrets_encrypted:
        token = {"APPOINTMENTS_API_TOKEN": settings.DEMO_APPOINTMENTS_TOKEN}
        config.secrets_encrypted = crypto.encrypt(json.dumps(token))
        config.save(update_fields=["secrets_encrypted", "date_updated"])
