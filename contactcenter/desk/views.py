from django.shortcuts import render

from contactcenter.accounts.permissions import role_required
from contactcenter.accounts.roles import Role


@role_required(Role.AGENT)
def desk_index(request):
    return render(request, "desk/index.html")


@role_required(Role.SUPERVISOR)
def supervisor_index(request):
    return render(request, "supervisor/index.html")
