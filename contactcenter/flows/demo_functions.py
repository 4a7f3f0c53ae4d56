"""Functions that ship with the product, registered in code (admins enable and configure
them under "Flow functions"). `cancel_appointment` is the tutorial's (seeds/004)."""

from urllib.parse import quote

import httpx

from contactcenter.flows.functions import FunctionCall, FunctionFailed, flow_function


@flow_function(
    "cancel_appointment",
    description="Cancel the appointment of a document number through the appointments API.",
    parameters=("documento",),
)
def cancel_appointment(call: FunctionCall) -> dict:
    document = (call.parameters.get("documento") or call.parameters.get("document") or "").strip()
    if not document:
        raise FunctionFailed("No document number was given.")
    base = call.environment.get("APPOINTMENTS_API_URL", "").rstrip("/")
    if not base:
        raise FunctionFailed("APPOINTMENTS_API_URL is not set in the function's environment.")
    headers = {"Authorization": f"Bearer {call.environment.get('APPOINTMENTS_API_TOKEN', '')}"}
    try:
        # The customer typed it: one path segment, whatever it holds.
        response = httpx.delete(f"{base}/{quote(document, safe='')}/", headers=headers, timeout=5.0)
    except httpx.HTTPError as error:
        raise FunctionFailed(f"The appointments API did not answer: {error}") from error
    if response.status_code != 200:
        raise FunctionFailed(_reason(response), value={"status": response.status_code})
    return {"canceled": True, **response.json()}


def _reason(response: httpx.Response) -> str:
    try:
        return response.json().get("message") or f"HTTP {response.status_code}"
    except ValueError:
        return f"HTTP {response.status_code}"
