"""Webhook targets stay outside: internal addresses are refused when registered and again when sent to."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from lhb_review.core import egress
from lhb_review.extensions import db
from lhb_review.models import Order, WebhookAttempt, WebhookDelivery
from lhb_review.pipeline import webhooks
from lhb_review import review
from lhb_review.review.outbox import parse_webhooks
from tests.factories import make_order_with_stages
from tests.pipeline_helpers import Api, Receiver, make_token, order_body
from tests.test_webhooks import REVIEWER, SECRET

INTERNAL = [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped loopback
    "http://[::ffff:7f00:1]/",
    "http://0x7f.1/",  # legacy inet_aton spellings of 127.0.0.1
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://0/",
    "http://10.1.2.3:8080/hook",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://[::1]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://localhost:5000/",
    "http://api.localhost/",
    "http://224.0.0.1/",
]
PUBLIC = ["https://hooks.example.com/lhb", "http://93.184.216.34/h", "https://[2606:4700::1111]/h"]


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_addresses_are_refused_in_every_spelling(url):
    assert egress.url_problem(url) == egress.REFUSED


@pytest.mark.parametrize("url", PUBLIC)
def test_public_addresses_and_names_are_accepted(url):
    assert egress.url_problem(url) is None


def test_the_allow_list_lets_a_named_internal_network_through_and_nothing_else():
    allowed = egress.parse_networks("127.0.0.1/32, 10.9.0.0/16")
    assert egress.url_problem("http://127.0.0.1:9000/", allowed) is None
    assert egress.url_problem("http://[::ffff:127.0.0.1]/", allowed) is None
    assert egress.url_problem("http://10.9.8.7/", allowed) is None
    assert egress.url_problem("http://127.0.0.2/", allowed) == egress.REFUSED
    assert egress.url_problem("http://10.10.0.1/", allowed) == egress.REFUSED


def test_an_allow_list_entry_that_is_not_a_network_is_refused_at_start(database_url, tmp_path):
    from lhb_review import create_app
    from lhb_review.config import ConfigError
    from tests.conftest import test_env

    with pytest.raises(ConfigError, match="WEBHOOK_ALLOWED_NETWORKS"):
        create_app(env=test_env(database_url, tmp_path, WEBHOOK_ALLOWED_NETWORKS="127.0.0.1/32,intranet"))


@pytest.fixture
def api(app, live_server):
    return Api(live_server.url, make_token())


@pytest.fixture
def no_allow_list(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_NETWORKS", ())


@pytest.mark.parametrize("item,field", [
    ("http://169.254.169.254/latest/meta-data/", "webhooks[0]"),
    ({"url": "http://[::ffff:127.0.0.1]/", "secret": "0123456789abcdef"}, "webhooks[0].url"),
    ("http://0x7f.1/", "webhooks[0]"),
])
def test_registering_an_internal_webhook_is_a_422_naming_the_field(api, no_allow_list, item, field):
    response = api.put("/orders/ORD-SSRF", order_body(webhooks=[item]))
    assert response.status_code == 422
    assert field in response.json()["error"]["fields"]
    assert db.session.scalar(select(Order).where(Order.order_id == "ORD-SSRF")) is None


def test_the_test_receiver_is_accepted_only_through_the_allow_list(app, monkeypatch):
    url = "http://127.0.0.1:8123/hooks"
    assert parse_webhooks([url])[0] == [{"url": url}]
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_NETWORKS", ())
    assert parse_webhooks([url])[1] == {"webhooks[0]": egress.REFUSED}


def test_at_send_time_a_name_resolving_inside_is_refused_and_nothing_is_sent(app):
    """The stored URL names a host ("localhost") whose address is only known once resolved."""
    receiver = Receiver()
    try:
        order = make_order_with_stages("pending", webhooks=[f"http://127.0.0.1:{receiver.port}/hooks"])
        review.approve(REVIEWER, order.order_id, "preBria", notes="ok")
        [row] = db.session.scalars(select(WebhookDelivery)).all()
        db.session.execute(db.update(WebhookDelivery).values(url=f"http://localhost:{receiver.port}/hooks"))
        db.session.commit()
        webhooks.drain(webhooks.WebhookSettings(secret=SECRET, timeout=5, max_attempts=3))  # no allow-list
        [attempt] = db.session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == row.id)).all()
        assert attempt.outcome == "failed"
        assert "resolves to 127.0.0.1" in attempt.error
        assert receiver.requests == []
    finally:
        receiver.stop()


class Redirector:
    """A receiver that answers every POST with 302 to ``location``."""

    def __init__(self, location: str):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.hits += 1
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_redirects_are_not_followed(app):
    """A receiver answering 302 towards another address: the attempt fails, the other address is not called."""
    inner = Receiver()
    outer = Redirector(inner.url)
    try:
        order = make_order_with_stages("pending", webhooks=[outer.url])
        review.approve(REVIEWER, order.order_id, "preBria", notes="ok")
        settings = webhooks.WebhookSettings.from_config({**app.config, "WEBHOOK_SECRET": SECRET})
        webhooks.drain(settings)
        [attempt] = db.session.scalars(select(WebhookAttempt)).all()
        assert (attempt.outcome, attempt.status_code) == ("failed", 302)
        assert outer.hits == 1 and inner.requests == []
    finally:
        inner.stop()
        outer.stop()
