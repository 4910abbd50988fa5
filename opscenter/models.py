"""Cross-cutting records: the audit trail, API tokens and the project-wide permissions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Access(models.Model):
    """Holds permissions that belong to no single model (no table is created)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_overview", "Can view the overview and the system status"),
        ]

    def __str__(self) -> str:
        return "access"


class AuditSource(models.TextChoices):
    UI = "ui", "Browser"
    API = "api", "API"
    SYSTEM = "system", "System"


class AuditEntry(models.Model):
    """One state change: who did what to which object, from where."""

    created_at = models.DateTimeField("when", default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text too, so the trail still reads after a user is deleted.
    actor_label = models.CharField("actor", max_length=150, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField("target type", max_length=100, blank=True, db_index=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField("target", max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=10, choices=AuditSource.choices, default=AuditSource.SYSTEM)
    ip_address = models.GenericIPAddressField("IP address", null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"
        default_permissions = ("view",)
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.actor_label or 'system'} {self.action} {self.target_repr}".strip()


class TokenScope(models.TextChoices):
    READ = "read", "Read only"
    WRITE = "write", "Read and write"


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class ApiToken(models.Model):
    """A personal API token. Only a SHA-256 digest of the secret is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    # The public part shown in lists ("ops_ab12cd34…") and used to find the row.
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=10, choices=TokenScope.choices, default=TokenScope.READ)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def state(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "active"
