"""The project's URLs plus /bench/bare/: a view that does nothing and answers 204 (the baseline)."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from opscenter.urls import urlpatterns as project_urlpatterns


@csrf_exempt  # as the webhook (its signature is its proof): the same middleware work, minus nothing
def bare(request):
    request.body  # read the body, as any real endpoint must  # noqa: B018
    return HttpResponse(status=204)


urlpatterns = [path("bench/bare/", bare), *project_urlpatterns]
