from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from contactcenter.accounts.permissions import role_required
from contactcenter.accounts.roles import Role
from contactcenter.accounts.selectors import user_roles
from messaging.errors import MessagingError
from messaging.models import Media
from messaging.services.media import media_file_response


@role_required(Role.AGENT)
def desk_index(request):
    return render(request, "desk/index.html")


@role_required(Role.SUPERVISOR)
def supervisor_index(request):
    return render(request, "supervisor/index.html")


@login_required
def media_file(request, media_sid: str):
    """An inbound media file, for staff (any role): customers' files are never public."""
    if not user_roles(request.user):
        raise PermissionDenied("Media files are for the contact center's staff.")
    media = get_object_or_404(Media, sid=media_sid)
    try:
        return media_file_response(media)
    except MessagingError as error:
        raise Http404(error.message) from error
