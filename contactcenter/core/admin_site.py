from django.contrib.admin import AdminSite
from django.utils.translation import gettext_lazy as _

from contactcenter.accounts.roles import Role
from contactcenter.accounts.selectors import user_has_role


class ContactCenterAdminSite(AdminSite):
    site_header = _("contactcenter administration")
    site_title = _("contactcenter admin")
    index_title = _("Configuration")

    def has_permission(self, request):
        # Staff status alone is not enough: the Admin role (or a superuser) configures.
        user = request.user
        return (
            user.is_active
            and user.is_staff
            and (user.is_superuser or user_has_role(user, Role.ADMIN))
        )
