"""HMAC-SHA256 webhook signatures, one scheme both ways.

The signature covers "<timestamp>.<body>" (the timestamp in Unix seconds, sent in
X-OpsCenter-Timestamp) and travels as X-OpsCenter-Signature: sha256=<hex>. We sign what we
send (webhook agents, delivery webhooks) and verify what the messaging service sends us
the same way, so one receiver implementation serves both directions.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

TIMESTAMP_HEADER = "X-OpsCenter-Timestamp"
SIGNATURE_HEADER = "X-OpsCenter-Signature"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Return the signature header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


class SignatureInvalid(Exception):
    """The request is not signed by a holder of the secret (or not recently): the reason says which."""


def verify(
    secrets: Iterable[str], timestamp: str | None, signature: str | None, body: bytes, *,
    tolerance_seconds: int, now: float | None = None,
) -> None:
    """Check a signed request; raise SignatureInvalid with a reason the sender can act on.

    The timestamp must be within `tolerance_seconds` of our clock in either direction: an
    old one is a replay, a future one would stay replayable for longer than the window.
    The header may carry several comma-separated signatures (a sender mid-rotation).
    """
    if not timestamp or not signature:
        raise SignatureInvalid(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise SignatureInvalid(f"{TIMESTAMP_HEADER} must be Unix seconds") from None
    skew = (time.time() if now is None else now) - sent_at
    if skew > tolerance_seconds:
        raise SignatureInvalid(f"timestamp is {int(skew)} s old; the window is {tolerance_seconds} s")
    if skew < -tolerance_seconds:
        raise SignatureInvalid(f"timestamp is {int(-skew)} s in the future; check the sender's clock")
    offered = [part.strip() for part in signature.split(",") if part.strip()]
    for secret in secrets:
        expected = sign(secret, timestamp, body)
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return
    raise SignatureInvalid("signature does not match the body and timestamp")
