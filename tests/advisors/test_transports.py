"""Delivery transports: the webhook and WhatsApp Cloud API requests exactly as sent, and how
each answer (success, errors, time-outs, refused connections) is classified."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from advisors import transports
from advisors.transports import (
    NOT_CONFIGURED,
    OutboxTransport,
    OutcomeUnknown,
    TransportError,
    WebhookTransport,
    WhatsAppTransport,
    get_transport,
    parse_retry_after,
    truncate_words,
)
from tests.factories import make_advisor, make_content, make_delivery

HOOK = "https://hooks.example.com/opscenter/deliveries"
SECRET = "hook-secret-42"
TOKEN = "EAAG-test-token"
NUMBER_ID = "109876543210"
GRAPH = f"https://graph.facebook.com/v21.0/{NUMBER_ID}/messages"
IMAGE = "content/2026/11/22/sip-card.png"


@dataclass
class FakeNetwork:
    """What the transports sent, and what the 'network' answers (a Response or an exception to raise)."""

    answers: list[httpx.Response | Exception | Callable] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    timeouts: list[float] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if callable(answer) and not isinstance(answer, httpx.Response):
            answer = answer(request)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def json(self, n: int = -1) -> dict:
        return json.loads(self.requests[n].content)


def fake_network(monkeypatch) -> FakeNetwork:
    """Replace the transports' HTTP client with one whose transport is an httpx.MockTransport."""
    network = FakeNetwork()

    def client(timeout: float) -> httpx.Client:
        network.timeouts.append(timeout)
        return httpx.Client(transport=httpx.MockTransport(network.handle), timeout=timeout, follow_redirects=False)

    monkeypatch.setattr(transports, "http_client", client)
    return network


@pytest.fixture
def network(monkeypatch) -> FakeNetwork:
    return fake_network(monkeypatch)


@pytest.fixture
def webhook(settings):
    settings.DELIVERY_WEBHOOK_URL = HOOK
    settings.DELIVERY_WEBHOOK_SECRET = SECRET
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.OUTBOUND_ALLOWED_HOSTS = ["hooks.example.com"]  # no DNS lookup in tests
    settings.DELIVERY_TIMEOUT_SECONDS = 7
    settings.PUBLIC_BASE_URL = "https://ops.example.com"
    return settings


@pytest.fixture
def whatsapp(settings):
    settings.WHATSAPP_ACCESS_TOKEN = TOKEN
    settings.WHATSAPP_PHONE_NUMBER_ID = NUMBER_ID
    settings.WHATSAPP_API_BASE = "https://graph.facebook.com"
    settings.WHATSAPP_API_VERSION = "v21.0"
    settings.WHATSAPP_TEMPLATE_NAME = ""
    settings.WHATSAPP_TEMPLATE_LANGUAGE = "en"
    settings.PUBLIC_BASE_URL = "https://ops.example.com"
    settings.DELIVERY_TIMEOUT_SECONDS = 9
    return settings


def delivery_for(*, image: str = "", title: str = "Why SIPs beat timing the market", body: str | None = None,
                 channel: str = "webhook"):
    from advisors.models import Advisor

    advisor = Advisor.objects.filter(arn="ARN-778899").first() or make_advisor(
        name="Asha Mehta", arn="ARN-778899", phone="+919812345678"
    )
    extra = {"body": body} if body is not None else {}
    content = make_content(advisor, status="approved", title=title, image=image, **extra)
    return make_delivery(content, channel=channel)


def graph_error(status: int, code: int, message: str, **extra) -> httpx.Response:
    return httpx.Response(
        status,
        json={"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbC123trace", **extra}},
    )


def wa_ok(message_id: str = "wamid.HBgMOTE5ODEyMzQ1Njc4FQIAERgSQzBBRjM0") -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "messaging_product": "whatsapp",
            "contacts": [{"input": "919812345678", "wa_id": "919812345678"}],
            "messages": [{"id": message_id}],
        },
    )


# --- registry -------------------------------------------------------------------------------------


def test_every_configured_channel_has_a_transport():
    assert isinstance(get_transport("outbox"), OutboxTransport)
    assert isinstance(get_transport("webhook"), WebhookTransport)
    assert isinstance(get_transport("whatsapp"), WhatsAppTransport)
    with pytest.raises(TransportError) as refused:
        get_transport("pigeon")
    assert refused.value.permanent


# --- webhook --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_webhook_posts_the_signed_payload_with_an_idempotency_key(network, webhook):
    delivery = delivery_for(image=IMAGE)
    content = delivery.content
    network.answers = [httpx.Response(202, json={"id": "recv-981", "status": "accepted"})]
    before = int(time.time())

    sent = WebhookTransport().send(delivery)

    assert (sent.provider_message_id, sent.delivered, sent.http_status) == ("recv-981", False, 202)
    [request] = network.requests
    assert request.method == "POST" and str(request.url) == HOOK
    assert network.timeouts == [7]
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == f"delivery-{delivery.pk}"
    assert request.headers["X-OpsCenter-Delivery"] == str(delivery.pk)
    timestamp = request.headers["X-OpsCenter-Timestamp"]
    assert before <= int(timestamp) <= int(time.time())
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + request.content, hashlib.sha256).hexdigest()
    assert request.headers["X-OpsCenter-Signature"] == f"sha256={expected}"
    assert network.json() == {
        "delivery_id": delivery.pk,
        "content_id": content.pk,
        "advisor": {"name": "Asha Mehta", "arn": "ARN-778899", "phone": "+919812345678"},
        "title": "Why SIPs beat timing the market",
        "body": content.body,
        "image_url": f"https://ops.example.com/media/{IMAGE}",
        "cycle_date": "2026-11-22",
    }


@pytest.mark.django_db
def test_webhook_without_an_image_sends_null_and_names_the_message_itself_when_the_answer_has_no_id(
    network, webhook
):
    delivery = delivery_for()
    network.answers = [httpx.Response(200, text="ok")]
    sent = WebhookTransport().send(delivery)
    assert sent.provider_message_id == f"webhook-{delivery.pk}" and sent.http_status == 200
    assert network.json()["image_url"] is None


@pytest.mark.django_db
def test_webhook_image_link_is_null_without_a_public_base_url(network, webhook):
    webhook.PUBLIC_BASE_URL = ""
    delivery = delivery_for(image=IMAGE)
    network.answers = [httpx.Response(204)]
    WebhookTransport().send(delivery)
    assert network.json()["image_url"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "permanent"),
    [(408, False), (425, False), (429, False), (500, False), (502, False), (503, False),
     (400, True), (401, True), (403, True), (404, True), (410, True), (422, True)],
)
def test_webhook_errors_are_retryable_only_for_timeouts_rate_limits_and_server_errors(
    network, webhook, status, permanent
):
    network.answers = [httpx.Response(status, text="receiver says no")]
    with pytest.raises(TransportError) as error:
        WebhookTransport().send(delivery_for())
    assert error.value.permanent is permanent
    assert error.value.http_status == status
    assert f"HTTP {status}" in str(error.value) and "receiver says no" in str(error.value)


@pytest.mark.django_db
def test_webhook_honours_retry_after_in_seconds_or_as_a_date(network, webhook):
    network.answers = [httpx.Response(429, headers={"Retry-After": "120"})]
    with pytest.raises(TransportError) as seconds:
        WebhookTransport().send(delivery_for())
    assert seconds.value.retry_after == 120

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    network.answers = [httpx.Response(503, headers={"Retry-After": when})]
    with pytest.raises(TransportError) as date:
        WebhookTransport().send(delivery_for())
    assert 85 <= date.value.retry_after <= 90


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("failure", "words"),
    [(httpx.ReadTimeout("read timed out"), "timed out after 7s"),
     (httpx.ConnectTimeout("connect timed out"), "timed out after 7s"),
     (httpx.ConnectError("connection refused"), "could not be reached")],
)
def test_webhook_timeouts_and_connection_errors_are_retryable(network, webhook, failure, words):
    network.answers = [failure]
    with pytest.raises(TransportError) as error:
        WebhookTransport().send(delivery_for())
    assert error.value.permanent is False and words in str(error.value)


@pytest.mark.django_db
def test_webhook_to_a_private_address_is_refused_for_good_without_a_request(network, webhook):
    webhook.DELIVERY_WEBHOOK_URL = "http://127.0.0.1:8999/hook"
    webhook.OUTBOUND_ALLOWED_HOSTS = []
    network.answers = [httpx.Response(200)]
    with pytest.raises(TransportError) as error:
        WebhookTransport().send(delivery_for())
    assert error.value.permanent and "127.0.0.1" in str(error.value)
    assert network.requests == []


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "secret"), [("", SECRET), (HOOK, "")])
def test_webhook_without_url_or_secret_is_a_permanent_configuration_error(network, webhook, url, secret):
    webhook.DELIVERY_WEBHOOK_URL, webhook.DELIVERY_WEBHOOK_SECRET = url, secret
    with pytest.raises(TransportError) as error:
        WebhookTransport().send(delivery_for())
    assert error.value.permanent and "DELIVERY_WEBHOOK_URL" in str(error.value)
    assert network.requests == []


# --- WhatsApp: the three message shapes -----------------------------------------------------------


@pytest.mark.django_db
def test_whatsapp_sends_a_text_message_when_there_is_no_image(network, whatsapp):
    delivery = delivery_for(channel="whatsapp")
    content = delivery.content
    network.answers = [wa_ok("wamid.TEXT1")]

    sent = WhatsAppTransport().send(delivery)

    assert (sent.provider_message_id, sent.delivered, sent.http_status) == ("wamid.TEXT1", False, 200)
    [request] = network.requests
    assert request.method == "POST" and str(request.url) == GRAPH
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert network.timeouts == [9]
    assert network.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "919812345678",
        "type": "text",
        "text": {"preview_url": False, "body": f"Why SIPs beat timing the market\n\n{content.body}"},
    }


@pytest.mark.django_db
def test_whatsapp_sends_an_image_with_a_caption_when_the_image_has_a_public_link(network, whatsapp):
    delivery = delivery_for(image=IMAGE, channel="whatsapp")
    network.answers = [wa_ok("wamid.IMG1")]
    assert WhatsAppTransport().send(delivery).provider_message_id == "wamid.IMG1"
    assert network.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "919812345678",
        "type": "image",
        "image": {
            "link": f"https://ops.example.com/media/{IMAGE}",
            "caption": f"Why SIPs beat timing the market\n\n{delivery.content.body}",
        },
    }


@pytest.mark.django_db
def test_whatsapp_falls_back_to_text_when_the_image_has_no_public_link(network, whatsapp):
    whatsapp.PUBLIC_BASE_URL = ""
    network.answers = [wa_ok()]
    WhatsAppTransport().send(delivery_for(image=IMAGE, channel="whatsapp"))
    assert network.json()["type"] == "text" and "image" not in network.json()


@pytest.mark.django_db
def test_whatsapp_caption_and_text_are_cut_on_a_word_boundary(network, whatsapp):
    body = " ".join(["diversify"] * 600)  # 5,999 characters
    network.answers = [wa_ok()]
    WhatsAppTransport().send(delivery_for(image=IMAGE, body=body, channel="whatsapp"))
    caption = network.json()["image"]["caption"]
    assert len(caption) <= 1024 and caption.endswith("diversify…")

    WhatsAppTransport().send(delivery_for(body=body, channel="whatsapp"))
    text = network.json()["text"]["body"]
    assert len(text) <= 4096 and text.endswith("diversify…")
    assert text.startswith("Why SIPs beat timing the market\n\ndiversify diversify")


def test_truncate_words_keeps_short_text_and_never_splits_a_word():
    assert truncate_words("short enough", 20) == "short enough"
    assert truncate_words("alpha beta gamma", 12) == "alpha beta…"
    assert truncate_words("supercalifragilistic", 8) == "superca…"  # one long word: cut it, marked


@pytest.mark.django_db
def test_whatsapp_template_carries_the_image_header_and_the_name_and_title(network, whatsapp):
    whatsapp.WHATSAPP_TEMPLATE_NAME = "daily_advisor_post"
    whatsapp.WHATSAPP_TEMPLATE_LANGUAGE = "en_US"
    delivery = delivery_for(image=IMAGE, channel="whatsapp")
    network.answers = [wa_ok("wamid.TPL1")]
    assert WhatsAppTransport().send(delivery).provider_message_id == "wamid.TPL1"
    assert str(network.requests[0].url) == GRAPH
    assert network.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "919812345678",
        "type": "template",
        "template": {
            "name": "daily_advisor_post",
            "language": {"code": "en_US"},
            "components": [
                {"type": "header", "parameters": [
                    {"type": "image", "image": {"link": f"https://ops.example.com/media/{IMAGE}"}}]},
                {"type": "body", "parameters": [
                    {"type": "text", "text": "Asha Mehta"},
                    {"type": "text", "text": "Why SIPs beat timing the market"}]},
            ],
        },
    }


@pytest.mark.django_db
def test_whatsapp_template_without_an_image_has_only_the_body_parameters(network, whatsapp):
    whatsapp.WHATSAPP_TEMPLATE_NAME = "daily_advisor_post"
    network.answers = [wa_ok()]
    WhatsAppTransport().send(delivery_for(channel="whatsapp"))
    assert network.json()["template"]["components"] == [
        {"type": "body", "parameters": [
            {"type": "text", "text": "Asha Mehta"}, {"type": "text", "text": "Why SIPs beat timing the market"}]},
    ]


@pytest.mark.django_db
def test_whatsapp_template_with_an_image_but_no_public_link_is_refused_before_sending(network, whatsapp):
    whatsapp.WHATSAPP_TEMPLATE_NAME = "daily_advisor_post"
    whatsapp.PUBLIC_BASE_URL = ""
    with pytest.raises(TransportError) as error:
        WhatsAppTransport().send(delivery_for(image=IMAGE, channel="whatsapp"))
    assert error.value.permanent and "PUBLIC_BASE_URL" in str(error.value)
    assert network.requests == []


@pytest.mark.django_db
@pytest.mark.parametrize(("token", "number_id"), [("", NUMBER_ID), (TOKEN, ""), ("", "")])
def test_whatsapp_without_token_or_number_id_says_what_to_set(network, whatsapp, token, number_id):
    whatsapp.WHATSAPP_ACCESS_TOKEN, whatsapp.WHATSAPP_PHONE_NUMBER_ID = token, number_id
    with pytest.raises(TransportError) as error:
        WhatsAppTransport().send(delivery_for(channel="whatsapp"))
    assert error.value.permanent
    assert str(error.value) == NOT_CONFIGURED
    assert NOT_CONFIGURED == "WhatsApp is not configured: set WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID"
    assert network.requests == []


# --- WhatsApp: how errors are classified ----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "code", "meta_message", "permanent"),
    [
        (400, 131026, "Message undeliverable", True),
        (400, 131047, "Re-engagement message", True),
        (400, 132000, "Number of parameters does not match the expected number of params", True),
        (404, 132001, "Template name does not exist in the translation", True),
        (400, 100, "Invalid parameter", True),
        (400, 131009, "Parameter value is not valid", True),
        (400, 4, "Application request limit reached", False),
        (400, 80007, "Rate limit issues", False),
        (400, 130429, "Rate limit hit", False),
        (400, 131048, "Spam rate limit hit", False),
        (400, 131056, "(Business Account, Consumer Account) pair rate limit hit", False),
        (429, 130429, "Rate limit hit", False),
        (500, 1, "An unknown error occurred", False),
        (503, 2, "Service temporarily unavailable", False),
    ],
)
def test_whatsapp_error_codes_are_classified_and_kept_in_the_message(
    network, whatsapp, status, code, meta_message, permanent
):
    network.answers = [graph_error(status, code, meta_message)]
    with pytest.raises(TransportError) as error:
        WhatsAppTransport().send(delivery_for(channel="whatsapp"))
    assert error.value.permanent is permanent
    assert error.value.http_status == status
    text = str(error.value)
    assert f"WhatsApp error {code}: {meta_message}" in text
    assert f"HTTP {status}" in text and "AbC123trace" in text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "code", "meta_message"),
    [
        (401, 190, "Error validating access token: Session has expired on Friday, 20-Nov-26."),
        (400, 190, "Invalid OAuth access token - Cannot parse access token"),
        (403, 10, "Application does not have permission for this action"),
        (401, 0, "AuthException"),
    ],
)
def test_whatsapp_token_problems_are_permanent_and_say_so(network, whatsapp, status, code, meta_message):
    network.answers = [graph_error(status, code, meta_message)]
    with pytest.raises(TransportError) as error:
        WhatsAppTransport().send(delivery_for(channel="whatsapp"))
    assert error.value.permanent
    text = str(error.value)
    assert "access token" in text and "invalid, expired" in text and "WHATSAPP_ACCESS_TOKEN" in text
    assert f"WhatsApp error {code}: {meta_message}" in text


@pytest.mark.django_db
def test_whatsapp_error_details_and_retry_after_are_kept(network, whatsapp):
    network.answers = [
        httpx.Response(
            429,
            headers={"Retry-After": "30"},
            json={"error": {"message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429,
                            "error_data": {"messaging_product": "whatsapp", "details": "Cloud API throughput reached"},
                            "fbtrace_id": "Zz9"}},
        )
    ]
    with pytest.raises(TransportError) as error:
        WhatsAppTransport().send(delivery_for(channel="whatsapp"))
    assert error.value.permanent is False and error.value.retry_after == 30
    assert "Cloud API throughput reached" in str(error.value)


@pytest.mark.django_db
def test_whatsapp_error_without_a_json_body_keeps_the_status(network, whatsapp):
    network.answers = [httpx.Response(502, text="<html>Bad gateway</html>")]
    with pytest.raises(TransportError) as error:
        WhatsAppTransport().send(delivery_for(channel="whatsapp"))
    assert error.value.permanent is False
    assert "(no code)" in str(error.value) and "HTTP 502" in str(error.value)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "failure", [httpx.ConnectTimeout("connect timed out"), httpx.ConnectError("name or service not known")]
)
def test_whatsapp_failures_before_the_request_left_are_retryable(network, whatsapp, failure):
    network.answers = [failure]
    with pytest.raises(TransportError) as error:
        WhatsAppTransport().send(delivery_for(channel="whatsapp"))
    assert error.value.permanent is False and error.value.http_status is None
    assert not isinstance(error.value, OutcomeUnknown)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "failure", [httpx.ReadTimeout("read timed out"), httpx.RemoteProtocolError("server disconnected")]
)
def test_whatsapp_failure_after_the_request_left_is_an_unknown_outcome_never_retried(network, whatsapp, failure):
    # The Cloud API has no idempotency key: retrying could send the post twice.
    network.answers = [failure]
    with pytest.raises(OutcomeUnknown) as error:
        WhatsAppTransport().send(delivery_for(channel="whatsapp"))
    assert error.value.permanent and "retry by hand" in str(error.value)


@pytest.mark.django_db
def test_delivery_whose_whatsapp_answer_was_lost_fails_as_unknown_after_one_attempt(network, whatsapp):
    from advisors.models import AttemptOutcome, DeliveryStatus
    from advisors.services import deliver

    network.answers = [httpx.ReadTimeout("read timed out")]
    delivery = delivery_for(channel="whatsapp")
    deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and "Outcome unknown" in delivery.last_error
    assert list(delivery.attempt_log.values_list("outcome", flat=True)) == [AttemptOutcome.UNKNOWN]
    assert len(network.requests) == 1


@pytest.mark.django_db
def test_whatsapp_success_without_a_message_id_is_failed_for_a_person_not_retried(network, whatsapp):
    network.answers = [httpx.Response(200, json={"messaging_product": "whatsapp"})]
    with pytest.raises(TransportError) as error:
        WhatsAppTransport().send(delivery_for(channel="whatsapp"))
    assert error.value.permanent and "without a message id" in str(error.value)


def test_retry_after_parsing_accepts_seconds_and_dates_and_ignores_nonsense():
    now = time.time()
    assert parse_retry_after("45") == 45
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = format_datetime(datetime.fromtimestamp(now + 60, UTC), usegmt=True)
    assert 59 <= parse_retry_after(later, now=now) <= 60
    past = format_datetime(datetime.fromtimestamp(now - 60, UTC), usegmt=True)
    assert parse_retry_after(past, now=now) == 0
