"""API permissions: a token's scope, then the user's role permissions."""

from __future__ import annotations

from rest_framework import permissions

from ..models import ApiToken, TokenScope


def token_allows(request) -> bool:
    """A read-scoped token may only use safe methods; sessions are limited by role only."""
    token = request.auth
    if isinstance(token, ApiToken) and token.scope == TokenScope.READ:
        return request.method in permissions.SAFE_METHODS
    return True


class TokenScopePermission(permissions.BasePermission):
    message = "This API token is read-only; create a read-and-write token to change data."

    def has_permission(self, request, view) -> bool:
        return token_allows(request)


class RoleModelPermissions(permissions.DjangoModelPermissions):
    """Authenticated, within the token's scope, and holding the model permission.

    Reading needs the model's view permission too (Django's default lets anyone read).
    Views without a queryset need only an authenticated user within scope.
    """

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if not token_allows(request):
            self.message = TokenScopePermission.message
            return False
        if getattr(view, "queryset", None) is None and not hasattr(view, "get_queryset"):
            return True
        return super().has_permission(request, view)


def require(permission: str) -> type[permissions.BasePermission]:
    """Build a permission class that needs one named permission ("app.codename")."""

    class HasNamedPermission(permissions.BasePermission):
        message = "Your role does not allow this."

        def has_permission(self, request, view) -> bool:
            return bool(
                request.user and request.user.is_authenticated and token_allows(request)
                and request.user.has_perm(permission)
            )

    HasNamedPermission.__name__ = f"Requires_{permission.replace('.', '_')}"
    return HasNamedPermission
