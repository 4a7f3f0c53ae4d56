from django.contrib.admin.apps import AdminConfig


class ContactCenterAdminConfig(AdminConfig):
    """The Django admin, on a site that requires the Admin role."""

    default_site = "contactcenter.core.admin_site.ContactCenterAdminSite"
