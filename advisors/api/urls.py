from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
# SimpleRouter turns any truthy trailing_slash into "/", so set the optional slash after
# construction: clients may call /content/1/approve or /content/1/approve/ (a POST
# redirected by APPEND_SLASH would lose its body).
router.trailing_slash = "/?"
router.register("advisors", views.AdvisorViewSet, basename="advisor")
router.register("content", views.ContentViewSet, basename="content")
router.register("deliveries", views.DeliveryViewSet, basename="delivery")

urlpatterns = router.urls
