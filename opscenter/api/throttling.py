"""Throttles keyed on the real client address, failing open if the cache is down."""

import logging

from rest_framework import throttling

from ..net import client_ip

logger = logging.getLogger(__name__)


class _FailOpen:
    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:
            # The cache is Redis; if it is down, serving the API beats refusing it.
            logger.warning("throttle skipped: cache unavailable", exc_info=True)
            return True

    def get_ident(self, request) -> str:
        return client_ip(request)


class AnonRateThrottle(_FailOpen, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(_FailOpen, throttling.UserRateThrottle):
    pass
