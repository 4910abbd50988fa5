"""Business rules of the opscenter app: API tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from .audit import record_audit
from .models import ApiToken, AuditSource, TokenScope

TOKEN_PREFIX = "ops_"  # noqa: S105 (a public marker, not a secret)


class DomainError(Exception):
    """A refused action: the view maps it to HTTP 409 or a form message."""

    code = "conflict"
    status = 409


class TokenInvalid(DomainError):
    code = "invalid"
    status = 400


def _digest(secret: str) -> str:
    # The secret is 32 random bytes, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_token(
    user,
    *,
    name: str,
    scope: str = TokenScope.READ,
    days: int = 90,
    source: str = AuditSource.UI,
    request: HttpRequest | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for `user`; return the row and the secret, which is never stored."""
    name = (name or "").strip()
    if not name:
        raise TokenInvalid("Give the token a name so you can recognise it later.")
    if scope not in TokenScope.values:
        raise TokenInvalid(f"Scope must be one of: {', '.join(TokenScope.values)}.")
    if not 1 <= int(days) <= settings.API_TOKEN_MAX_DAYS:
        raise TokenInvalid(f"A token must expire within 1 to {settings.API_TOKEN_MAX_DAYS} days.")
    public = secrets.token_hex(4)
    secret = f"{TOKEN_PREFIX}{public}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name[:100],
            prefix=f"{TOKEN_PREFIX}{public}",
            digest=_digest(secret),
            scope=scope,
            expires_at=timezone.now() + timedelta(days=int(days)),
        )
        record_audit(
            "api_token.created",
            actor=user,
            target=token,
            changes={"scope": scope, "expires_at": token.expires_at.isoformat()},
            source=source,
            request=request,
        )
    return token, secret


def revoke_api_token(
    token: ApiToken, *, by, source: str = AuditSource.UI, request: HttpRequest | None = None
) -> ApiToken:
    """Revoke `token` at once; revoking twice is refused."""
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if not updated:
            raise DomainError("This token is already revoked.")
        token.refresh_from_db()
        record_audit("api_token.revoked", actor=by, target=token, source=source, request=request)
    return token


def authenticate_api_token(raw: str) -> ApiToken | None:
    """Return the active token matching the presented secret, or None."""
    if not raw.startswith(TOKEN_PREFIX) or raw.count("_") < 2:
        return None
    prefix = raw[: len(TOKEN_PREFIX) + 8]
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.digest, _digest(raw)):
        return None
    if not token.is_active or not token.user.is_active:
        return None
    now = timezone.now()
    # Write last-used at most once a minute: a busy script must not turn reads into writes.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
