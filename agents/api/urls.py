from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.trailing_slash = "/?"  # /runs/1/cancel and /runs/1/cancel/ both work (see advisors.api.urls)
router.register("agents", views.AgentViewSet, basename="agent")
router.register("runs", views.RunViewSet, basename="agentrun")

urlpatterns = router.urls
