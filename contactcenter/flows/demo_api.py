"""The demo's appointments API, the "small HTTP API" the tutorial's function cancels through
(seeds/004: `DELETE /Citas/<documento>/`). Bearer token = the function's secret."""

import hmac

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from contactcenter.flows.models import DemoAppointment


def _json(appointment: DemoAppointment) -> dict:
    return {
        "document": appointment.document,
        "patient": appointment.patient,
        "starts_at": appointment.starts_at.isoformat(),
        "state": appointment.state,
    }


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


def _authorized(request: HttpRequest) -> bool:
    expected = getattr(settings, "DEMO_APPOINTMENTS_TOKEN", "")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not expected:
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


@csrf_exempt
def appointment_detail(request: HttpRequest, document: str) -> JsonResponse:
    if not _authorized(request):
        return _error(401, "unauthorized", "Send the demo token as a Bearer token.")
    if request.method not in ("GET", "DELETE"):
        return _error(405, "method_not_allowed", "Use GET or DELETE.")
    appointment = DemoAppointment.objects.filter(document=document.strip()).first()
    if appointment is None:
        return _error(404, "not_found", f"No appointment for document {document}.")
    if request.method == "DELETE":
        if appointment.state == DemoAppointment.State.CANCELED:
            return _error(409, "already_canceled", "That appointment was already canceled.")
        if appointment.starts_at <= timezone.now():
            return _error(409, "in_the_past", "That appointment has already taken place.")
        appointment.state = DemoAppointment.State.CANCELED
        appointment.save(update_fields=["state", "date_updated"])
    return JsonResponse(_json(appointment))
