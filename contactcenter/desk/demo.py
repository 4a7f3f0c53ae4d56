"""The desk's demo data: disposition codes and canned responses (English and Spanish)."""

from contactcenter.desk.models import CannedResponse, Disposition

DEMO_DISPOSITIONS = [
    ("resolved", "Resolved", False),
    ("appointment-changed", "Appointment changed", False),
    ("follow-up", "Needs follow-up", True),
    ("no-answer", "Customer stopped answering", False),
    ("spam", "Spam / wrong number", False),
]
DEMO_CANNED = [
    (
        "greeting",
        "Greeting",
        "en",
        "Hi {{customer.name}}, this is {{agent.first_name}}. How can I help you?",
    ),
    (
        "saludo",
        "Saludo",
        "es",
        "Hola {{customer.name}}, soy {{agent.first_name}}. ¿En qué le puedo ayudar?",
    ),
    ("closing", "Closing", "en", "Thank you for writing, {{customer.name}}. Have a good day!"),
    (
        "despedida",
        "Despedida",
        "es",
        "Gracias por escribirnos, {{customer.name}}. ¡Que tenga un buen día!",
    ),
    (
        "wait",
        "One moment",
        "",
        "One moment please, I am checking. / Un momento por favor, lo estoy revisando.",
    ),
]


def demo_desk_seed() -> None:
    for position, (code, label, requires_notes) in enumerate(DEMO_DISPOSITIONS):
        Disposition.objects.get_or_create(
            code=code,
            defaults={"label": label, "requires_notes": requires_notes, "position": position},
        )
    for shortcut, title, language, body in DEMO_CANNED:
        CannedResponse.objects.get_or_create(
            shortcut=shortcut, defaults={"title": title, "language": language, "body": body}
        )
