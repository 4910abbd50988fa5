"""Prometheus exposition of every registry metric, at /metrics.

A custom collector turns the registry into metric families on each scrape (prometheus_client
does the text format). Access: `Authorization: Bearer <METRICS_TOKEN>`, a Bearer API token of
a user who may view metrics, or a client address in METRICS_ALLOWED_IPS (through trusted
proxies only). No session and no CSRF are involved: a scraper is not a browser.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric as PromMetric

from opscenter.net import client_ip_from

from .registry import HistogramValue, Kind, Sample, all_metrics, read_metric

logger = logging.getLogger(__name__)

PERMISSION = "monitoring.view_metricseries"


def _labels(values: dict) -> dict[str, str]:
    return {str(k): str(v) for k, v in values.items()}


class RegistryCollector:
    """Yields one Prometheus metric family per registry metric, read at scrape time."""

    def collect(self):
        for metric in all_metrics():
            values = read_metric(metric)
            if metric.kind is Kind.HISTOGRAM:
                family = PromMetric(metric.name, metric.help, "histogram")
                for value in values:
                    if not isinstance(value, HistogramValue):
                        continue
                    labels = _labels(value.labels)
                    for bound, count in value.buckets:
                        le = "+Inf" if math.isinf(bound) else repr(float(bound))
                        family.add_sample(f"{metric.name}_bucket", {**labels, "le": le}, float(count))
                    family.add_sample(f"{metric.name}_count", labels, float(value.count))
                    family.add_sample(f"{metric.name}_sum", labels, float(value.sum))
            else:
                counter = metric.kind is Kind.COUNTER
                # A counter family is named without `_total`; its samples carry it.
                base = metric.name[: -len("_total")] if counter and metric.name.endswith("_total") else metric.name
                family = PromMetric(base, metric.help, "counter" if counter else "gauge")
                sample_name = f"{base}_total" if counter else base
                for value in values:
                    if isinstance(value, Sample):
                        family.add_sample(sample_name, _labels(value.labels), float(value.value))
            yield family

    def describe(self):
        return []  # read at scrape time only, never at registration


_registry = CollectorRegistry(auto_describe=False)
_registry.register(RegistryCollector())


def exposition() -> bytes:
    """Return the text exposition of every registry metric."""
    return generate_latest(_registry)


def _address_allowed(request: HttpRequest) -> bool:
    if not settings.METRICS_ALLOWED_IPS:
        return False
    address = client_ip_from(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR"))
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.METRICS_ALLOWED_IPS)


def _bearer(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def check_access(request: HttpRequest) -> tuple[bool, int, str]:
    """Decide whether this request may scrape: (allowed, refusal status, refusal message)."""
    token = _bearer(request)
    if token is not None:
        if settings.METRICS_TOKEN and hmac.compare_digest(token.encode(), settings.METRICS_TOKEN.encode()):
            return True, 200, ""
        from opscenter.services import authenticate_api_token

        api_token = authenticate_api_token(token)
        if api_token is None:
            return False, 401, "The token is invalid, expired or revoked."
        if not api_token.user.has_perm(PERMISSION):
            return False, 403, "This token's user may not view metrics."
        return True, 200, ""
    if _address_allowed(request):
        return True, 200, ""
    return False, 401, "Send Authorization: Bearer <token>, or scrape from an address in METRICS_ALLOWED_IPS."


@csrf_exempt
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Serve the Prometheus text exposition to an authorised scraper."""
    allowed, status, message = check_access(request)
    if not allowed:
        response = HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE_PLAIN_0_0_4)  # every Prometheus version reads 0.0.4
    response["Cache-Control"] = "no-store"
    return response
