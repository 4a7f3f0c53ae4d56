from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from contactcenter.accounts.selectors import landing_url_for


@login_required
def home(request):
    """Send each role to its own landing page; a user with no role is told so."""
    url = landing_url_for(request.user)
    if url is None:
        return render(request, "accounts/no_role.html", status=403)
    return redirect(url)
