"""The product URLconf plus ``/bench/bare/``, reachable only with ``bench.settings``."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.urls import urlpatterns as product_urlpatterns


@csrf_exempt
@require_POST
def bare_view(request):
    """The floor of a Django request: same server and middleware, no work, an empty 200 answer."""
    request.body  # noqa: B018 - read the body as the receiver must, so both pay for it
    return HttpResponse(status=200)


urlpatterns = [path("bench/bare/", bare_view), *product_urlpatterns]
