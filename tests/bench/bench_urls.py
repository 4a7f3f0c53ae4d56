"""The product's URLs plus a trivial view, so a benchmark can compare a real endpoint with
the cheapest Django answer on the same server (same middleware, same process)."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from contactcenter.urls import urlpatterns as product_patterns


@csrf_exempt
def hello(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/hello", hello), *product_patterns]
