"""Deliveries in the Standard Webhooks format, verified as a receiver would, with the standardwebhooks package."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from lhb_review.pipeline import webhooks
from tests.pipeline_helpers import Receiver
from tests.test_webhooks import SECRET, approved_order, deliveries, settings

# The example of the Standard Webhooks specification: its secret, message id, timestamp and body.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def test_the_signature_matches_the_specifications_example_computed_independently():
    key = base64.b64decode(SPEC_SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{SPEC_ID}.{SPEC_TIMESTAMP}.".encode() + SPEC_BODY, hashlib.sha256).digest()
    independent = "v1," + base64.b64encode(mac).decode()
    assert independent == SPEC_SIGNATURE
    assert webhooks.sign_standard(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_a_plain_text_secret_keys_the_hmac_with_its_utf8_bytes():
    mac = hmac.new(SECRET.encode(), f"{SPEC_ID}.{SPEC_TIMESTAMP}.".encode() + SPEC_BODY, hashlib.sha256)
    expected = "v1," + base64.b64encode(mac.digest()).decode()
    assert webhooks.sign_standard(SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == expected


def test_a_delivery_verifies_with_the_standardwebhooks_package(app, receiver):
    order = approved_order(receiver.url)
    [delivery] = deliveries()
    webhooks.drain(settings())
    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert headers["webhook-id"] == str(delivery.id) == headers["Idempotency-Key"]
    payload = Webhook(SECRET.encode()).verify(body, dict(headers))
    assert (payload["order_id"], payload["event"]) == (order.order_id, "stage_approved")
    with pytest.raises(WebhookVerificationError):
        Webhook(b"another-secret-of-some-length").verify(body, dict(headers))
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET.encode()).verify(body + b" ", dict(headers))


def test_a_whsec_secret_of_the_order_signs_its_url_and_verifies_as_given(app, receiver):
    approved_order({"url": receiver.url, "secret": SPEC_SECRET})
    webhooks.drain(settings())
    [request] = receiver.requests
    Webhook(SPEC_SECRET).verify(request["body"], dict(request["headers"]))
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET.encode()).verify(request["body"], dict(request["headers"]))


def test_a_replayed_delivery_is_refused_by_the_receiver(app, receiver):
    approved_order(receiver.url)
    webhooks.drain(settings())
    [request] = receiver.requests
    headers = dict(request["headers"])
    stale = str(int(headers["webhook-timestamp"]) - 3600)
    headers["webhook-timestamp"] = stale
    headers["webhook-signature"] = webhooks.sign_standard(SECRET, headers["webhook-id"], stale, request["body"])
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET.encode()).verify(request["body"], headers)


def test_the_old_headers_are_sent_during_the_transition_and_can_be_turned_off(app, receiver):
    approved_order(receiver.url)
    webhooks.drain(settings())
    [request] = receiver.requests
    assert webhooks.verify(
        SECRET, request["headers"]["X-LHB-Timestamp"], request["body"], request["headers"]["X-LHB-Signature"]
    )
    receiver.requests.clear()
    approved_order(receiver.url)
    webhooks.drain(settings(legacy_headers=False))
    [request] = receiver.requests
    assert not any(name.lower().startswith("x-lhb-") for name in request["headers"])
    Webhook(SECRET.encode()).verify(request["body"], dict(request["headers"]))


def test_retry_waits_are_jittered_between_half_and_all_of_the_backoff():
    config = settings(backoff_base=30, backoff_cap=600)
    rng = random.Random(16)
    for attempt in range(1, 8):
        ceiling = webhooks.backoff(attempt, config)
        waits = {webhooks.jittered_backoff(attempt, config, rng) for _ in range(50)}
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(waits) > 1, "the waits must differ, or failed deliveries return together"


def test_a_failed_delivery_is_next_due_within_the_jittered_window(app, receiver):
    from sqlalchemy import func, select

    from lhb_review.extensions import db
    from lhb_review.models import WebhookDelivery

    receiver.status = 500
    approved_order(receiver.url)
    before = time.time()
    webhooks.drain(settings(backoff_base=1000, backoff_cap=1000))
    db.session.expire_all()
    [wait] = db.session.execute(
        select(func.extract("epoch", WebhookDelivery.next_attempt_at))
    ).scalars().all()
    assert before + 500 - 5 <= float(wait) <= time.time() + 1000 + 5
