"""Sending a notification through Apprise, under the outbound-address policy.

`send_apprise()` returns when Apprise says the target took the message, or raises
RetryableSendError (a network error, a time-out, a 5xx, a rate limit — trying later can
help) or PermanentSendError (a URL Apprise cannot use, a target the policy refuses, a 4xx
— trying again cannot help). Apprise only reports success or failure, so the reason comes
from the log lines it captured during the call.

Apprise URLs carry credentials: errors and log lines never contain the URL (see `_scrub`
and `_RedactUrls`), and callers show `Channel.masked_url`.

The private-address policy (opscenter.net.check_outbound_url: OUTBOUND_ALLOW_PRIVATE,
OUTBOUND_ALLOWED_HOSTS) applies to plugins whose host is chosen by the user — generic
webhooks (json://, xml://, form://) and self-hosted services (ntfy, Gotify, Matrix,
Mattermost, Rocket.Chat, …). SaaS plugins (slack://, tgram://, pagerduty://) talk to fixed
public endpoints; their "host" is a token. E-mail is left out on purpose: an SMTP relay on
the private network is the normal set-up, and it is not a webhook a user can point at
internal HTTP services. Checked when a channel is saved and again before every send (DNS
can change in between).
"""

from __future__ import annotations

import logging
import re
import threading

import apprise
from django.core.exceptions import ValidationError

from opscenter.net import OutboundRefused, check_outbound_url

# Schemes whose host is a network address the user picks (both the plain and the TLS form).
HOSTED_SCHEMES = frozenset({
    "json", "jsons", "xml", "xmls", "form", "forms",  # generic webhooks
    "apprise", "apprises", "ntfy", "ntfys", "gotify", "gotifys", "matrix", "matrixs", "mmost", "mmosts",
    "rocket", "rockets", "ncloud", "nclouds", "nctalk", "nctalks", "hassio", "hassios", "signal", "signals",
    "emby", "embys", "jellyfin", "jellyfins", "kodi", "kodis", "xbmc", "xbmcs", "enigma2", "enigma2s",
    "mastodon", "mastodons", "toot", "toots", "misskey", "misskeys", "gorush", "gorushs", "synology",
    "synologys", "smseagle", "smseagles", "humhub", "humhubs", "bark", "barks", "goalert", "goalerts",
    "onebot", "onebots", "evolution", "evolutions", "lametric", "lametrics", "pjet", "pjets",
    "mqtt", "mqtts", "rsyslog", "growl", "amqp", "amqps", "irc", "ircs", "xmpp", "xmpps", "smpp", "smpps",
})
# Plugin modes in which the "host" is a topic or a token and the target is the vendor's cloud.
CLOUD_MODES = frozenset({"cloud", "t2bot"})
# HTTP statuses that mean "not now" rather than "never".
RETRYABLE_STATUSES = frozenset({408, 425, 429})
_HTTP_ERROR = re.compile(r"error=(\d{3})\b")
_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]{1,20})://[^\s'\"<>]+")
# Apprise repeats a URL it could not read after this prefix, scheme or not.
_UNSUPPORTED = re.compile(r"(Unsupported URL:?\s*).*", re.DOTALL)
_MAX_ERROR = 500


class SendError(Exception):
    """A notification that did not go out; the message says why (never the URL)."""


class RetryableSendError(SendError):
    """Trying again later can help (network, time-out, 5xx, rate limit)."""


class PermanentSendError(SendError):
    """Trying again cannot help (bad URL, refused target, 4xx)."""


# --- logging: Apprise's own log lines must not carry channel URLs ---------------------------


class _RedactUrls(logging.Filter):
    """Replace URLs in Apprise's log lines (they reach the log store) by their scheme."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's problem, not ours
            return True
        redacted = _UNSUPPORTED.sub(r"\1••••", _URL.sub(r"\1://••••", message))
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_apprise_logger = logging.getLogger("apprise")  # apprise.logger.LOGGER_NAME
if not any(isinstance(f, _RedactUrls) for f in _apprise_logger.filters):
    _apprise_logger.addFilter(_RedactUrls())


class _ThreadCapture(logging.Handler):
    """Collect the Apprise log lines of the current thread (other threads may be sending too)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(record.getMessage())


def _scrub(text: str, url: str, *, keep: str = "") -> str:
    """Remove from `text` every URL and every longer piece of `url` (tokens, passwords) but `keep`."""
    text = _URL.sub(r"\1://••••", text)
    rest = url.split("://", 1)[-1]
    for piece in sorted(set(re.split(r"[/:@?&=#,+;%]", rest)), key=len, reverse=True):
        if len(piece) >= 6 and piece != keep:
            text = text.replace(piece, "••••")
    return text.strip()[:_MAX_ERROR]


# --- parsing and the address policy ----------------------------------------------------------


def _instantiate(url: str):
    """Return the Apprise plugin for `url`, or raise PermanentSendError saying why it cannot be used."""
    capture = _ThreadCapture()
    _apprise_logger.addHandler(capture)
    try:
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    finally:
        _apprise_logger.removeHandler(capture)
    if plugin is not None:
        return plugin
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if not scheme:
        raise PermanentSendError("This is not an Apprise URL: write scheme://…, e.g. json://hooks.example.com/alerts.")
    if not _known_scheme(scheme):
        raise PermanentSendError(f"Apprise does not know the scheme “{scheme}://”.")
    # Apprise logs the specific reason (a bad token, a missing field) while parsing.
    detail = "; ".join(_scrub(line, url) for line in capture.lines if line) or "a field is missing or invalid"
    raise PermanentSendError(f"Apprise cannot use this {scheme}:// URL: {detail}")


def _known_scheme(scheme: str) -> bool:
    from apprise.manager_plugins import NotificationManager

    return scheme in NotificationManager()


def _plugin_host(plugin) -> str:
    return str(getattr(plugin, "host", "") or "")


def _is_hosted(plugin, url: str) -> bool:
    """Return whether the plugin's host is a network address the user chose (not a token, not a vendor cloud)."""
    scheme = url.split("://", 1)[0].lower()
    return scheme in HOSTED_SCHEMES and str(getattr(plugin, "mode", "") or "") not in CLOUD_MODES


def _shown_host(plugin, url: str) -> str:
    """Return the host errors may name: a real address, never a token that sits where the host would."""
    return _plugin_host(plugin).strip("[]") if _is_hosted(plugin, url) else ""


def _check_target(plugin, url: str) -> None:
    """Apply the private-address policy to a plugin whose host the user chose."""
    scheme = url.split("://", 1)[0].lower()
    if not _is_hosted(plugin, url):
        return
    host = _plugin_host(plugin).strip("[]")
    if not host:
        raise PermanentSendError(f"This {scheme}:// URL names no host.")
    netloc = f"[{host}]" if ":" in host else host
    port = getattr(plugin, "port", None)
    if isinstance(port, int):
        netloc += f":{port}"
    # One SSRF policy for the whole product: the check webhook agents and deliveries use.
    check_outbound_url(f"{'https' if getattr(plugin, 'secure', False) else 'http'}://{netloc}/")


def validate_channel_url(url: str) -> None:
    """Raise ValidationError({"url": …}) for a URL Apprise cannot use or a target the policy refuses."""
    url = (url or "").strip()
    if not url:
        raise ValidationError({"url": "Give an Apprise URL, e.g. json://hooks.example.com/alerts or slack://…"})
    try:
        plugin = _instantiate(url)
    except PermanentSendError as exc:
        raise ValidationError({"url": str(exc)}) from None
    try:
        _check_target(plugin, url)
    except (PermanentSendError, OutboundRefused) as exc:
        raise ValidationError({"url": f"Refused: {_scrub(str(exc), url, keep=_shown_host(plugin, url))}"}) from None


# --- sending ---------------------------------------------------------------------------------


def send_apprise(url: str, *, title: str, body: str, timeout: int, notify_type: str = "info",
                 dedupe_key: str = "") -> None:
    """Send one message through Apprise; raise RetryableSendError or PermanentSendError when it did not go out.

    `dedupe_key` also goes out as an Idempotency-Key header where the plugin sends HTTP
    headers we control (json://, xml://, form://), so a webhook receiver can drop repeats.
    """
    plugin = _instantiate(url)
    host = _shown_host(plugin, url)
    try:
        _check_target(plugin, url)
    except OutboundRefused as exc:
        message = _scrub(str(exc), url, keep=host)
        # Resolution failing is a DNS problem that may pass; an address we refuse stays refused.
        if message.startswith("cannot resolve"):
            raise RetryableSendError(f"Cannot send yet: {message}") from None
        raise PermanentSendError(f"Refused: {message}") from None
    # A redirect could lead a public target to a private address after the check.
    plugin.redirects = False
    # Apprise splits our budget: connect + read within it, and the whole call bounded too.
    plugin.socket_connect_timeout = max(1.0, timeout / 2)
    plugin.socket_read_timeout = max(1.0, timeout / 2)
    if dedupe_key and isinstance(getattr(plugin, "headers", None), dict):
        plugin.headers["Idempotency-Key"] = dedupe_key
    sender = apprise.Apprise()
    sender.add(plugin)
    try:
        result = sender.notify(body=body, title=title, notify_type=notify_type, body_format="text",
                               timeout=timeout)
    except Exception as exc:  # a plugin bug must not lose the notification: try again later
        raise RetryableSendError(f"Apprise failed: {type(exc).__name__}: {_scrub(str(exc), url, keep=host)}") from None
    if result:
        return
    lines = [_scrub(entry.message, url, keep=host) for entry in result.logs()
             if entry.level in {"WARNING", "ERROR", "CRITICAL"} and entry.message]
    status_name = getattr(result.status, "name", str(result.status))
    reason = "; ".join(dict.fromkeys(lines)) or f"Apprise reported {status_name.lower()} without a reason"
    if status_name == "TIMEOUT":
        raise RetryableSendError(f"Timed out after {timeout} s. {reason}"[:_MAX_ERROR])
    codes = [int(code) for code in _HTTP_ERROR.findall(reason)]
    # Like Alertmanager: a 4xx other than "slow down"/"too early" will not change by retrying.
    if codes and all(400 <= code < 500 and code not in RETRYABLE_STATUSES for code in codes):
        raise PermanentSendError(reason)
    if codes and all(300 <= code < 400 for code in codes):
        raise PermanentSendError(f"{reason} (redirects are not followed: use the final URL)"[:_MAX_ERROR])
    raise RetryableSendError(reason)
