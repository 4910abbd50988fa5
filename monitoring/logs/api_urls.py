"""REST endpoints of this app, mounted under /api/v1/."""

from rest_framework.routers import SimpleRouter

from .api import LogEntryViewSet

router = SimpleRouter()
router.trailing_slash = "/?"
router.register("logs", LogEntryViewSet, basename="logentry")

urlpatterns = router.urls
