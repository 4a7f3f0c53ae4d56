import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from contactcenter.accounts.selectors import user_roles


def test_seed_demo_refuses_with_debug_off(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="refuses to run with DEBUG off"):
        call_command("seed_demo")
    assert not get_user_model().objects.exists()


def test_seed_demo_creates_the_demo_logins_and_is_idempotent(db, settings):
    settings.DEBUG = True
    call_command("seed_demo", verbosity=0)
    call_command("seed_demo", verbosity=0)
    users = get_user_model().objects.order_by("username")
    assert [u.username for u in users] == ["admin", "agent1", "agent2", "supervisor"]
    roles = {u.username: sorted(user_roles(u)) for u in users}
    assert roles == {
        "admin": ["Admin"],
        "agent1": ["Agent"],
        "agent2": ["Agent"],
        "supervisor": ["Supervisor"],
    }
    for user in users:
        assert authenticate(username=user.username, password="demo") == user
    admin = users.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    assert not users.get(username="agent1").is_staff


def test_seed_demo_with_force_runs_with_debug_off(db, settings):
    settings.DEBUG = False
    call_command("seed_demo", "--force", verbosity=0)
    assert get_user_model().objects.count() == 4


def test_seed_demo_creates_the_simulator_senders_and_service_once(db, settings):
    from messaging.models import Account, MessagingService, ProviderAccount, Sender
    from messaging.services.providers import provider_webhook_secret

    settings.DEBUG = True
    call_command("seed_demo", verbosity=0)
    provider = ProviderAccount.objects.get()
    secret = provider_webhook_secret(provider)
    call_command("seed_demo", verbosity=0)

    assert Account.objects.count() == 1
    provider = ProviderAccount.objects.get()
    assert (provider.name, provider.kind) == ("Simulator", "simulator")
    assert secret and provider_webhook_secret(provider) == secret  # not rotated by a re-seed
    senders = {s.address: s for s in Sender.objects.all()}
    assert {a: (s.kind, s.channel, s.country, s.mms_capable) for a, s in senders.items()} == {
        "+14155550100": ("long_code", "sms", "US", True),
        "+18885550100": ("toll_free", "sms", "US", True),
        "55501": ("short_code", "sms", "US", False),
        "ACME": ("alphanumeric", "sms", "ES", False),
        "whatsapp:+14155550199": ("whatsapp", "whatsapp", "US", False),
        "messenger:100200300": ("messenger_page", "messenger", "", False),
    }
    service = MessagingService.objects.get()
    assert service.friendly_name == "Demo service"
    assert service.sticky_sender and service.smart_encoding
    assert set(service.senders.values_list("address", flat=True)) == set(senders)
    assert {s.provider_id for s in senders.values()} == {provider.id}


def test_seed_demo_creates_the_routing_workspace_once(db, settings):
    from routing.models import Activity, TaskQueue, Worker, Workflow, Workspace

    settings.DEBUG = True
    call_command("seed_demo", verbosity=0)
    call_command("seed_demo", verbosity=0)

    workspace = Workspace.objects.get()
    assert workspace.default_activity.friendly_name == "Offline"
    assert set(Activity.objects.values_list("friendly_name", flat=True)) == {
        "Offline",
        "Available",
        "Unavailable",
        "Break",
    }
    queues = {q.friendly_name: q for q in TaskQueue.objects.all()}
    assert set(queues) == {"Spanish support", "English support", "VIP"}
    workflow = Workflow.objects.get()
    vip_filter = workflow.configuration["task_routing"]["filters"][0]
    assert [t["queue"] for t in vip_filter["targets"]] == [
        queues["VIP"].sid,
        queues["English support"].sid,
    ]
    agent1 = Worker.objects.get(user__username="agent1")
    capacities = {c.task_channel.unique_name: c.capacity for c in agent1.channels.all()}
    assert {k: capacities[k] for k in ("sms", "whatsapp", "messenger")} == {
        "sms": 3,
        "whatsapp": 3,
        "messenger": 3,
    }
    assert agent1.attributes["languages"] == ["es", "en"]
    assert set(agent1.queues.values_list("friendly_name", flat=True)) == set(queues)
    agent2 = Worker.objects.get(user__username="agent2")
    assert agent2.attributes["languages"] == ["en"]
    assert {
        c.capacity
        for c in agent2.channels.exclude(task_channel__unique_name__in=["default", "voice"])
    } == {2}
    assert set(agent2.queues.values_list("friendly_name", flat=True)) == {"English support"}
