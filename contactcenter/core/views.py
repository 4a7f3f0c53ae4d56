from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from contactcenter.core.health import health_check


@never_cache
@require_GET
def healthz(request):
    report = health_check()
    body: dict = dict(report.checks)
    if not report.healthy:
        body["down"] = sorted(report.errors)
        body["errors"] = report.errors
    return JsonResponse(body, status=200 if report.healthy else 503)
