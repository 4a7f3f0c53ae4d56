"""Demo data for `make run`. Idempotent: seeding twice leaves the same data.

Later features add their own demo objects here (senders, queues, flows, ...).
"""

from django.contrib.auth import get_user_model
from django.db import transaction

from contactcenter.accounts.roles import Role
from contactcenter.accounts.services import user_ensure_with_role
from contactcenter.desk.demo import demo_desk_seed
from contactcenter.flows.demo import demo_flows_seed
from messaging import crypto
from messaging.models import (
    Account,
    ContentTemplate,
    ContentTemplateTranslation,
    MessagingService,
    ProviderAccount,
    ProviderKind,
    Sender,
    TemplateCategory,
    TemplateStatus,
)
from messaging.providers.simulator import DEFAULT_SETTINGS
from messaging.services.accounts import account_get_or_create_default
from messaging.services.providers import (
    WEBHOOK_SECRET,
    provider_credentials_set,
    provider_webhook_secret,
)
from routing.models import TaskQueue, Worker, Workflow, Workspace
from routing.services import config as routing_config
from routing.services import workers as routing_workers

DEMO_PASSWORD = "demo"
DEMO_USERS: dict[str, tuple[Role, str, str]] = {
    "admin": (Role.ADMIN, "Ada", "Admin"),
    "supervisor": (Role.SUPERVISOR, "Sofía", "Supervisor"),
    "agent1": (Role.AGENT, "Ana", "Agent"),
    "agent2": (Role.AGENT, "Bruno", "Agent"),
}

DEMO_PROVIDER = "Simulator"
DEMO_SERVICE = "Demo service"
# (kind, address, friendly name, country, MMS). The numbers are in the NANP 555-01xx range
# reserved for fiction, so the demo can never text a real person.
DEMO_SENDERS: list[tuple[str, str, str, str, bool]] = [
    ("long_code", "+14155550100", "Demo long code", "US", True),
    ("toll_free", "+18885550100", "Demo toll-free", "US", True),
    ("short_code", "55501", "Demo short code", "US", False),
    ("alphanumeric", "ACME", "ACME (Spain)", "ES", False),
    ("whatsapp", "whatsapp:+14155550199", "Demo WhatsApp", "", False),
    ("messenger_page", "messenger:100200300", "Demo Messenger page", "", False),
]


@transaction.atomic
def demo_seed() -> None:
    for username, (role, first_name, last_name) in DEMO_USERS.items():
        user_ensure_with_role(
            username=username,
            password=DEMO_PASSWORD,
            role=role,
            email=f"{username}@example.com",
            first_name=first_name,
            last_name=last_name,
        )
    account = account_get_or_create_default()
    provider = _demo_provider(account)
    service = _demo_service(account)
    senders = [
        _demo_sender(account, provider, service, kind, address, name, country, mms)
        for kind, address, name, country, mms in DEMO_SENDERS
    ]
    _demo_template(account)
    demo_routing_seed()
    chat_senders = [s for s in senders if s.kind in ("whatsapp", "messenger_page")]
    demo_flows_seed(account, service=service, senders=chat_senders)
    demo_desk_seed()


DEMO_WORKSPACE = "Customer support"
DEMO_WORKFLOW = "Support routing"
# name → target_workers
DEMO_QUEUES = {
    "Spanish support": "languages HAS 'es'",
    "English support": "languages HAS 'en'",
    "VIP": "vip == true",
}
# username → (attributes, capacity per channel)
DEMO_WORKERS: dict[str, tuple[dict, dict[str, int]]] = {
    "agent1": (
        {"languages": ["es", "en"], "vip": True, "level": 2},
        {"sms": 3, "whatsapp": 3, "messenger": 3, "chat": 3},
    ),
    "agent2": (
        {"languages": ["en"], "vip": False, "level": 1},
        {"sms": 2, "whatsapp": 2, "messenger": 2, "chat": 2},
    ),
}


def demo_routing_seed() -> Workspace:
    """A workspace with Spanish, English and VIP queues, a workflow that escalates (VIP first
    to the VIP queue, then to everyone at high priority; a language queue raises the priority
    after two minutes) and workers for agent1 and agent2."""
    workspace = Workspace.objects.filter(friendly_name=DEMO_WORKSPACE).first()
    if workspace is None:
        workspace = routing_config.workspace_create(friendly_name=DEMO_WORKSPACE)
    queues = {}
    for name, expression in DEMO_QUEUES.items():
        queue = TaskQueue.objects.filter(workspace=workspace, friendly_name=name).first()
        queues[name] = queue or routing_config.queue_create(
            workspace=workspace, friendly_name=name, target_workers=expression
        )
    configuration = _demo_workflow_configuration({n: q.sid for n, q in queues.items()})
    workflow = Workflow.objects.filter(workspace=workspace, friendly_name=DEMO_WORKFLOW).first()
    if workflow is None:
        routing_config.workflow_create(
            workspace=workspace,
            friendly_name=DEMO_WORKFLOW,
            configuration=configuration,
            task_reservation_timeout=60,
        )
    users = {u.username: u for u in get_user_model().objects.filter(username__in=DEMO_WORKERS)}
    for username, (attributes, capacities) in DEMO_WORKERS.items():
        if not Worker.objects.filter(workspace=workspace, friendly_name=username).exists():
            routing_workers.worker_create(
                workspace=workspace,
                friendly_name=username,
                attributes=attributes,
                capacities=capacities,
                user=users.get(username),
            )
    return workspace


def _demo_workflow_configuration(queue_sids: dict[str, str]) -> dict:
    spanish, english, vip = (
        queue_sids["Spanish support"],
        queue_sids["English support"],
        queue_sids["VIP"],
    )
    return {
        "task_routing": {
            "filters": [
                {
                    "filter_friendly_name": "VIP customers",
                    "expression": "vip == true",
                    "targets": [
                        {"queue": vip, "priority": 10, "timeout": 60},
                        {"queue": english, "priority": 10},
                    ],
                },
                {
                    "filter_friendly_name": "Spanish",
                    "expression": "language == 'es'",
                    "targets": [
                        {"queue": spanish, "timeout": 120},
                        {"queue": spanish, "priority": 5},
                    ],
                },
            ],
            "default_filter": {"queue": english},
        }
    }


def _demo_provider(account: Account) -> ProviderAccount:
    provider, _created = ProviderAccount.objects.get_or_create(
        name=DEMO_PROVIDER,
        defaults={"account": account, "kind": ProviderKind.SIMULATOR, "settings": DEFAULT_SETTINGS},
    )
    # Keep an existing secret: anything already signing with it goes on working after a
    # re-seed. A missing or unreadable one (SECRET_KEY changed) is replaced.
    if not provider_webhook_secret(provider):
        provider_credentials_set(provider, {WEBHOOK_SECRET: crypto.new_token(24)})
    return provider


def _demo_service(account: Account) -> MessagingService:
    service = MessagingService.objects.filter(account=account, friendly_name=DEMO_SERVICE).first()
    if service is None:
        service = MessagingService.objects.create(
            account=account,
            friendly_name=DEMO_SERVICE,
            usecase="mixed",
            sticky_sender=True,
            smart_encoding=True,
        )
    return service


def _demo_sender(
    account: Account,
    provider: ProviderAccount,
    service: MessagingService,
    kind: str,
    address: str,
    name: str,
    country: str,
    mms: bool,
) -> Sender:
    sender = Sender.objects.filter(address=address).first()
    if sender is None:
        sender = Sender(
            account=account,
            provider=provider,
            service=service,
            kind=kind,
            address=address,
            friendly_name=name,
            country=country,
            mms_capable=mms,
        )
        sender.full_clean()
        sender.save()
    elif sender.service_id is None:
        sender.service = service
        sender.save(update_fields=["service", "date_updated"])
    return sender


DEMO_TEMPLATE = "appointment_reminder"
# language → (body, button texts, a sample date). Approved by hand: the demo sends through the
# simulator, so no Meta review is involved (a template with a WhatsApp provider gets Meta's).
DEMO_TEMPLATE_TRANSLATIONS = {
    "en_US": (
        "Hi {{1}}, this is a reminder of your appointment on {{2}} at {{3}}. Reply to confirm "
        "or change it.",
        ("Confirm", "Change the time"),
        "May 4",
    ),
    "es_MX": (
        "Hola {{1}}, le recordamos su cita del {{2}} a las {{3}}. Responda para confirmarla "
        "o cambiarla.",
        ("Confirmar", "Cambiar la hora"),
        "4 de mayo",
    ),
}


def _demo_template(account: Account) -> ContentTemplate:
    """An approved appointment reminder in English and Spanish, to send with ContentSid to
    the demo WhatsApp sender's customers (also outside their 24-hour window)."""
    template, _created = ContentTemplate.objects.get_or_create(
        account=account,
        name=DEMO_TEMPLATE,
        defaults={
            "friendly_name": "Appointment reminder",
            "category": TemplateCategory.UTILITY,
            "default_language": "en_US",
        },
    )
    for language, (body, buttons, date) in DEMO_TEMPLATE_TRANSLATIONS.items():
        ContentTemplateTranslation.objects.get_or_create(
            template=template,
            language=language,
            defaults={
                "status": TemplateStatus.APPROVED,
                "body": body,
                "footer": "Demo clinic",
                "buttons": [{"type": "QUICK_REPLY", "text": text} for text in buttons],
                "samples": {"1": "Ana", "2": date, "3": "10:30"},
            },
        )
    return template
