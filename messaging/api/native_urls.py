"""URL patterns of the native JSON API and of its OpenAPI schema and docs.

Include both at the root, without a namespace (the docs page finds the schema by the URL
name `api-schema`):

    urlpatterns += [path("", include(native_patterns)), path("", include(schema_patterns))]
"""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from messaging.api import native

V1 = "api/v1"

native_patterns = [
    path(f"{V1}/messages", native.MessagesEndpoint.as_view(), name="api-messages"),
    path(f"{V1}/messages/<str:sid>", native.MessageRetrieveApi.as_view(), name="api-message"),
    path(
        f"{V1}/messages/<str:sid>/cancel",
        native.MessageCancelApi.as_view(),
        name="api-message-cancel",
    ),
    path(
        f"{V1}/messages/<str:sid>/redact",
        native.MessageRedactApi.as_view(),
        name="api-message-redact",
    ),
    path(f"{V1}/senders", native.SendersEndpoint.as_view(), name="api-senders"),
    path(f"{V1}/senders/<str:sid>", native.SenderEndpoint.as_view(), name="api-sender"),
    path(f"{V1}/services", native.ServicesEndpoint.as_view(), name="api-services"),
    path(f"{V1}/services/<str:sid>", native.ServiceEndpoint.as_view(), name="api-service"),
    path(
        f"{V1}/services/<str:sid>/senders",
        native.ServiceSenderAddApi.as_view(),
        name="api-service-senders",
    ),
    path(
        f"{V1}/services/<str:sid>/senders/<str:sender_sid>",
        native.ServiceSenderRemoveApi.as_view(),
        name="api-service-sender",
    ),
    path(f"{V1}/queues", native.QueuesApi.as_view(), name="api-queues"),
]

# The schema documents the API, it grants nothing: public, like the source code.
_public = {"authentication_classes": [], "permission_classes": [AllowAny]}

schema_patterns = [
    path("api/schema/", SpectacularAPIView.as_view(**_public), name="api-schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", **_public),
        name="api-docs",
    ),
]
