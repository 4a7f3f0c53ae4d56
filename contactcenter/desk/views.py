from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from contactcenter.accounts.permissions import role_required
from contactcenter.accounts.roles import Role
from contactcenter.accounts.selectors import user_roles
from contactcenter.desk import selectors
from contactcenter.desk.supervisor_text import supervisor_text
from contactcenter.desk.ui_text import desk_text
from contactcenter.desk.uploads import attachment_response
from messaging.errors import MessagingError
from messaging.models import Media
from messaging.services.media import media_file_response

WS_PATH = "/ws/desk/"


@role_required(Role.AGENT)
def desk_index(request):
    worker = selectors.worker_of_user(request.user)
    return render(
        request,
        "desk/index.html",
        {
            "worker_sid": worker.sid if worker else "",
            "agent_stream": f"agent:{worker.sid}" if worker else "",
            "ui_text": desk_text(),
            "api_base": reverse("desk:index") + "api/",
            "ws_path": WS_PATH,
        },
    )


@role_required(Role.SUPERVISOR)
def supervisor_index(request):
    return render(
        request,
        "supervisor/index.html",
        {
            "ui_text": supervisor_text(),
            "api_base": reverse("supervisor:index") + "api/",
            "desk_api_base": reverse("desk:index") + "api/",
            "ws_path": WS_PATH,
        },
    )


def attachment(request, token: str, name: str):
    """A file an agent sent: public by unguessable URL, since providers fetch it."""
    return attachment_response(token, name)


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
