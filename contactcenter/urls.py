from django.contrib import admin
from django.urls import include, path

from contactcenter.core.views import healthz
from contactcenter.desk.urls import desk_patterns, supervisor_patterns
from contactcenter.desk.views import media_file
from contactcenter.flows.urls import demo_patterns, studio_patterns
from messaging.api.native_urls import native_patterns, schema_patterns
from messaging.simulator.urls import simulator_patterns
from messaging.urls import twilio_patterns
from messaging.webhook_urls import webhook_patterns
from routing.api.urls import routing_patterns

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("desk/", include(desk_patterns)),
    path("supervisor/", include(supervisor_patterns)),
    path("media/<str:media_sid>", media_file, name="media-file"),
    path("webhooks/", include(webhook_patterns)),
    path("simulator/", include(simulator_patterns)),
    path("demo/", include(demo_patterns)),
    path("", include(studio_patterns)),
    path("", include(twilio_patterns)),
    path("", include(native_patterns)),
    path("", include(routing_patterns)),
    path("", include(schema_patterns)),
    path("", include("contactcenter.accounts.urls")),
]
