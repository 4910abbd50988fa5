from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
# SimpleRouter's constructor only knows "/" or ""; set the optional slash afterwards.
router.trailing_slash = "/?"
router.register("tokens", views.ApiTokenViewSet, basename="apitoken")
router.register("audit", views.AuditEntryViewSet, basename="auditentry")

urlpatterns = router.urls
