"""Grant each role's group its permissions (today: Supervisor → routing.supervise_workspace).

Permissions are normally created after `migrate` (post_migrate), which is too late for this
migration, so it creates the one it needs (and its content type) when missing; Django's own
post_migrate step then finds them and creates nothing twice. The codenames are written out
here rather than imported from roles.py: a migration must not change when the code does.
"""

from django.db import migrations

# (group, app_label, model, codename, name)
GRANTS = [
    (
        "Supervisor",
        "routing",
        "workspace",
        "supervise_workspace",
        "Can act on any task, reservation or worker",
    ),
]


def grant(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    content_type_model = apps.get_model("contenttypes", "ContentType")
    for group_name, app_label, model, codename, name in GRANTS:
        content_type, _ = content_type_model.objects.get_or_create(app_label=app_label, model=model)
        permission, _ = permission_model.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
        group, _ = group_model.objects.get_or_create(name=group_name)
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for group_name, app_label, _model, codename, _name in GRANTS:
        group = group_model.objects.filter(name=group_name).first()
        permission = permission_model.objects.filter(
            content_type__app_label=app_label, codename=codename
        ).first()
        if group is not None and permission is not None:
            group.permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_roles"),
        ("routing", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
