"""REST endpoints of this app, mounted under /api/v1/."""

from rest_framework.routers import SimpleRouter

from .api import views

router = SimpleRouter()
router.trailing_slash = "/?"  # /health/checks/1/run and /health/checks/1/run/ both work
router.register("health/checks", views.HealthCheckViewSet, basename="healthcheck")

urlpatterns = router.urls
