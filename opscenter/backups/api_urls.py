"""REST endpoints of this app, mounted under /api/v1/."""

from rest_framework.routers import SimpleRouter

from .api import BackupViewSet, RestoreViewSet

router = SimpleRouter()
router.trailing_slash = "/?"  # /backups/1/verify and /backups/1/verify/ both work
router.register("backups", BackupViewSet, basename="backup")
router.register("restores", RestoreViewSet, basename="restore")

urlpatterns = router.urls
