"""The native JSON API, `/api/v1/`: messages, senders, messaging services and delivery queues.

One DRF view per operation, each with explicit input and output serializers: parse, call one
service or selector, render. Where two operations share a path (GET and POST on a
collection), the URL points at a class that merely combines the two operation views.
Everything is scoped to the caller's account: another account's sid is a 404 (20404).
"""

from collections.abc import Mapping
from typing import Any

from django.db.models import prefetch_related_objects
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.api import serializers as s
from messaging.api.auth import Principal
from messaging.api.drf import (
    HasPrincipal,
    MessagingAuthentication,
    SafeJSONParser,
    native_exception_handler,
    validation_error,
)
from messaging.errors import MessagingError
from messaging.models import Account, Message
from messaging.selectors import (
    delivery_queue_depths,
    message_get,
    messages_list,
    sender_get,
    senders_of,
    service_get,
    services_of,
)
from messaging.services.config import (
    sender_create,
    sender_update,
    service_add_sender,
    service_create,
    service_remove_sender,
    service_update,
)
from messaging.services.messages import (
    MessageRequest,
    message_cancel,
    message_create,
    message_redact,
)
from messaging.sids import is_sid


def _errors(*statuses: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: "Invalid input (code 20422 or a messaging code such as 21211).",
        401: "Missing or refused credentials (20003).",
        403: "Signed in, but not an administrator (20403).",
        404: "No such resource in this account (20404).",
    }
    return {
        code: OpenApiResponse(response=s.ErrorOutput, description=descriptions[code])
        for code in statuses
    }


AUTH_ERRORS = _errors(401, 403)


class NativeApi(APIView):
    """Authentication, permission, JSON in and out and the error body, for every view here."""

    authentication_classes = [MessagingAuthentication]
    permission_classes = [HasPrincipal]
    parser_classes = [SafeJSONParser]
    renderer_classes = [JSONRenderer]
    throttle_classes: list = []

    def get_exception_handler(self):
        return native_exception_handler

    @property
    def account(self) -> Account:
        principal: Principal = self.request.auth
        return principal.account

    def parse(
        self,
        serializer_class: type[serializers.Serializer],
        data: Any,
        *,
        partial: bool = False,
        strict: bool = True,
    ) -> dict[str, Any]:
        """Validated input, or a MessagingError naming the first field at fault.

        `strict`: a body key the operation does not take is refused, so a typo or a
        read-only field is reported instead of silently ignored.
        """
        serializer = serializer_class(data=data, partial=partial)
        if strict and isinstance(data, Mapping):
            writable = {name for name, field in serializer.fields.items() if not field.read_only}
            unknown = [key for key in data if key not in writable]
            if unknown:
                raise MessagingError(
                    20422,
                    f"{unknown[0]}: not a field this operation accepts "
                    f"({', '.join(sorted(writable))}).",
                    str(unknown[0]),
                )
        if not serializer.is_valid():
            raise validation_error(serializer.errors, getattr(serializer_class, "error_codes", {}))
        return dict(serializer.validated_data)


def require_sid(sid: str, resource: str, *prefixes: str, field: str | None = None) -> str:
    """A path sid that cannot exist is a 404 before any query (and NUL never reaches SQL)."""
    if not any(is_sid(sid, prefix) for prefix in prefixes):
        raise MessagingError(
            20404, f"The requested resource {resource} {sid} was not found.", field
        )
    return sid


def _message(account: Account, sid: str) -> Message:
    return message_get(account=account, sid=sid)


# ---------------------------------------------------------------- messages


def _message_body(message: Message, account: Account) -> dict:
    return s.MessageOutput(message, context={"account": account}).data


class MessageCreateApi(NativeApi):
    @extend_schema(
        operation_id="messages_create",
        tags=["messages"],
        summary="Send a message",
        description="From a sender (`from`) or through a messaging service "
        "(`messaging_service_sid`, which picks `from` later: status `accepted`). "
        '`schedule_type: "fixed"` with `send_at` schedules it.',
        request=s.MessageCreateInput,
        responses={201: s.MessageOutput, **_errors(400, 404), **AUTH_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = self.parse(s.MessageCreateInput, request.data)
        message = message_create(
            account=self.account,
            request=MessageRequest(
                to=data.get("to") or "",
                from_=data.get("from") or None,
                messaging_service_sid=data.get("messaging_service_sid") or None,
                body=data.get("body"),
                media_urls=[url for url in data.get("media_urls", []) if url != ""],
                content_sid=data.get("content_sid") or None,
                content_variables=data.get("content_variables"),
                status_callback=data.get("status_callback") or None,
                validity_period=data.get("validity_period"),
                smart_encoded=data.get("smart_encoded"),
                schedule_type=data.get("schedule_type") or None,
                send_at=data.get("send_at"),
                tags=data.get("tags") or {},
            ),
        )
        return Response(_message_body(message, self.account), status=201)


class MessageListApi(NativeApi):
    @extend_schema(
        operation_id="messages_list",
        tags=["messages"],
        summary="List messages, newest first",
        description="Keyset-paged: follow `next` (or pass `next_page_token` as `page_token`) "
        "until it is null. Pages stay stable while new messages arrive.",
        parameters=[s.MessageListQuery],
        responses={200: s.MessagePageOutput, **_errors(400), **AUTH_ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = self.parse(s.MessageListQuery, request.query_params, strict=False)
        page = messages_list(
            account=self.account,
            to=query.get("to"),
            from_=query.get("from"),
            status=query.get("status"),
            date_sent_after=query.get("date_sent_after"),
            date_sent_before=query.get("date_sent_before"),
            page_size=query["page_size"],
            page_token=query.get("page_token"),
        )
        # Two queries for the whole page instead of two per message.
        prefetch_related_objects(page.items, "history", "media")
        next_url = None
        if page.next_token:
            params = request.query_params.copy()
            params["page_token"] = page.next_token
            next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        body = s.MessagePageOutput(
            {"results": page.items, "next_page_token": page.next_token, "next": next_url},
            context={"account": self.account},
        ).data
        return Response(body)


class MessageRetrieveApi(NativeApi):
    @extend_schema(
        operation_id="messages_retrieve",
        tags=["messages"],
        summary="Fetch a message",
        responses={200: s.MessageOutput, **_errors(404), **AUTH_ERRORS},
    )
    def get(self, request: Request, sid: str) -> Response:
        message = _message(self.account, sid)
        return Response(_message_body(message, self.account))


class MessageCancelApi(NativeApi):
    @extend_schema(
        operation_id="messages_cancel",
        tags=["messages"],
        summary="Cancel a scheduled message",
        description="Only a `scheduled` message can be canceled; canceling twice is harmless.",
        request=None,
        responses={200: s.MessageOutput, **_errors(400, 404), **AUTH_ERRORS},
    )
    def post(self, request: Request, sid: str) -> Response:
        message = message_cancel(message=_message(self.account, sid))
        return Response(_message_body(message, self.account))


class MessageRedactApi(NativeApi):
    @extend_schema(
        operation_id="messages_redact",
        tags=["messages"],
        summary="Blank a message's body",
        description="Allowed once the message has left the queue (sent, delivered, failed…).",
        request=None,
        responses={200: s.MessageOutput, **_errors(400, 404), **AUTH_ERRORS},
    )
    def post(self, request: Request, sid: str) -> Response:
        message = message_redact(message=_message(self.account, sid))
        return Response(_message_body(message, self.account))


class MessagesEndpoint(MessageListApi, MessageCreateApi):
    """GET /api/v1/messages lists, POST sends."""


# ---------------------------------------------------------------- senders


class SenderListApi(NativeApi):
    @extend_schema(
        operation_id="senders_list",
        tags=["senders"],
        summary="List the account's senders",
        responses={200: s.SenderListOutput, **AUTH_ERRORS},
    )
    def get(self, request: Request) -> Response:
        senders = senders_of(account=self.account).order_by("id")
        return Response(s.SenderListOutput({"results": senders}).data)


class SenderCreateApi(NativeApi):
    @extend_schema(
        operation_id="senders_create",
        tags=["senders"],
        summary="Add a sender",
        description="The address is validated and normalised for its kind; an address that "
        "another sender of the channel already has is refused (20422).",
        request=s.SenderInput,
        responses={201: s.SenderOutput, **_errors(400), **AUTH_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = self.parse(s.SenderInput, request.data)
        sender = sender_create(account=self.account, **data)
        return Response(s.SenderOutput(sender).data, status=201)


class SenderRetrieveApi(NativeApi):
    @extend_schema(
        operation_id="senders_retrieve",
        tags=["senders"],
        summary="Fetch a sender",
        responses={200: s.SenderOutput, **_errors(404), **AUTH_ERRORS},
    )
    def get(self, request: Request, sid: str) -> Response:
        return Response(s.SenderOutput(sender_get(account=self.account, sid=sid)).data)


class SenderUpdateApi(NativeApi):
    @extend_schema(
        operation_id="senders_update",
        tags=["senders"],
        summary="Change a sender",
        description="Only the fields given change; the whole sender is validated again.",
        request=s.SenderInput(partial=True),
        responses={200: s.SenderOutput, **_errors(400, 404), **AUTH_ERRORS},
    )
    def patch(self, request: Request, sid: str) -> Response:
        sender = sender_get(account=self.account, sid=sid)
        data = self.parse(s.SenderInput, request.data, partial=True)
        if data:
            sender = sender_update(sender=sender, **data)
        return Response(s.SenderOutput(sender).data)


class SendersEndpoint(SenderListApi, SenderCreateApi):
    """GET /api/v1/senders lists, POST adds."""


class SenderEndpoint(SenderRetrieveApi, SenderUpdateApi):
    """GET /api/v1/senders/{sid} fetches, PATCH changes."""


# ---------------------------------------------------------------- messaging services


class ServiceListApi(NativeApi):
    @extend_schema(
        operation_id="services_list",
        tags=["services"],
        summary="List the account's messaging services",
        responses={200: s.ServiceListOutput, **AUTH_ERRORS},
    )
    def get(self, request: Request) -> Response:
        services = services_of(account=self.account).order_by("id")
        return Response(s.ServiceListOutput({"results": services}).data)


class ServiceCreateApi(NativeApi):
    @extend_schema(
        operation_id="services_create",
        tags=["services"],
        summary="Create a messaging service",
        request=s.ServiceInput,
        responses={201: s.ServiceOutput, **_errors(400), **AUTH_ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = self.parse(s.ServiceInput, request.data)
        service = service_create(account=self.account, **data)
        return Response(
            s.ServiceOutput(service_get(account=self.account, sid=service.sid)).data, status=201
        )


class ServiceRetrieveApi(NativeApi):
    @extend_schema(
        operation_id="services_retrieve",
        tags=["services"],
        summary="Fetch a messaging service",
        responses={200: s.ServiceOutput, **_errors(404), **AUTH_ERRORS},
    )
    def get(self, request: Request, sid: str) -> Response:
        return Response(s.ServiceOutput(service_get(account=self.account, sid=sid)).data)


class ServiceUpdateApi(NativeApi):
    @extend_schema(
        operation_id="services_update",
        tags=["services"],
        summary="Change a messaging service",
        description="Only the fields given change; the whole service is validated again.",
        request=s.ServiceInput(partial=True),
        responses={200: s.ServiceOutput, **_errors(400, 404), **AUTH_ERRORS},
    )
    def patch(self, request: Request, sid: str) -> Response:
        service = service_get(account=self.account, sid=sid)
        data = self.parse(s.ServiceInput, request.data, partial=True)
        if data:
            service_update(service=service, **data)
        return Response(s.ServiceOutput(service_get(account=self.account, sid=sid)).data)


class ServiceSenderAddApi(NativeApi):
    @extend_schema(
        operation_id="services_senders_add",
        tags=["services"],
        summary="Put a sender in the service's pool",
        description="Idempotent. A sender in another service's pool is refused (20422): "
        "remove it there first.",
        request=s.ServiceSenderInput,
        responses={200: s.ServiceOutput, **_errors(400, 404), **AUTH_ERRORS},
    )
    def post(self, request: Request, sid: str) -> Response:
        service = service_get(account=self.account, sid=sid)
        data = self.parse(s.ServiceSenderInput, request.data)
        service_add_sender(service=service, sender_sid=data["sender_sid"])
        return Response(s.ServiceOutput(service_get(account=self.account, sid=sid)).data)


class ServiceSenderRemoveApi(NativeApi):
    @extend_schema(
        operation_id="services_senders_remove",
        tags=["services"],
        summary="Take a sender out of the service's pool",
        description="The sender stays a sender of the account.",
        request=None,
        responses={204: None, **_errors(404), **AUTH_ERRORS},
    )
    def delete(self, request: Request, sid: str, sender_sid: str) -> Response:
        service = service_get(account=self.account, sid=sid)
        require_sid(sender_sid, "Sender", "PN", field="sender_sid")
        service_remove_sender(service=service, sender_sid=sender_sid)
        return Response(status=204)


class ServicesEndpoint(ServiceListApi, ServiceCreateApi):
    """GET /api/v1/services lists, POST creates."""


class ServiceEndpoint(ServiceRetrieveApi, ServiceUpdateApi):
    """GET /api/v1/services/{sid} fetches, PATCH changes."""


# ---------------------------------------------------------------- delivery queues


class QueuesApi(NativeApi):
    @extend_schema(
        operation_id="queues_retrieve",
        tags=["queues"],
        summary="Delivery queue depths",
        description="What waits to leave, per sender and per messaging service, read from the "
        "database: queued messages and segments, messages being sent, the age of the oldest "
        "queued message and an estimate of how long the queue takes to drain at the senders' "
        "throughput. Senders with nothing queued or sending are left out; every service is "
        "listed.",
        responses={200: s.QueuesOutput, **AUTH_ERRORS},
    )
    def get(self, request: Request) -> Response:
        return Response(s.QueuesOutput(delivery_queue_depths(account=self.account)).data)
