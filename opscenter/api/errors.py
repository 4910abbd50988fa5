"""One JSON error shape for the whole API.

    {"error": {"status": 409, "code": "conflict", "message": "…", "fields": {"name": ["…"]}}}

`fields` is present for validation errors only.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ..services import DomainError


def _flatten(detail) -> str:
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    if isinstance(detail, dict):
        return " ".join(_flatten(item) for item in detail.values())
    return str(detail)


def documented_errors(*codes: int) -> dict:
    """Describe the error responses an endpoint can give, for the OpenAPI schema."""
    from drf_spectacular.utils import OpenApiResponse

    from .serializers import ErrorSerializer

    described = {
        400: "invalid fields (see error.fields) or a refused action",
        401: "not authenticated",
        403: "your role or your token's scope does not allow this",
        404: "no such item",
        409: "someone acted first, or the item is no longer in a state that allows this",
    }
    return {code: OpenApiResponse(ErrorSerializer, described[code]) for code in codes}


def exception_handler(exc, context):
    """Render every API error, including domain refusals, in the one shape."""
    if isinstance(exc, DomainError):
        body = {"status": exc.status, "code": exc.code, "message": str(exc)}
        if getattr(exc, "fields", None):
            body["fields"] = exc.fields
        return Response({"error": body}, status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        body = {
            "status": response.status_code,
            "code": "invalid",
            "message": "Some fields are invalid.",
            "fields": {key: [str(m) for m in (v if isinstance(v, list) else [v])] for key, v in detail.items()},
        }
    else:
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        body = {
            "status": response.status_code,
            "code": codes if isinstance(codes, str) else "error",
            "message": _flatten(getattr(exc, "detail", str(exc))),
        }
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS and getattr(exc, "wait", None):
        body["retry_after_seconds"] = int(exc.wait)
    response.data = {"error": body}
    return response
