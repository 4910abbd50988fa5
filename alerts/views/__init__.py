"""Console pages of alerting: the alerts page, an alert's page, silences (see urls.py)."""

from .urls import console_urls

__all__ = ["console_urls"]
