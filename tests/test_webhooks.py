"""Webhooks sent to a real HTTP server on 127.0.0.1: signatures, retries, racing workers, a killed worker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema_rs
import pytest
from sqlalchemy import func, select, update

from lhb_review.api.spec import build_spec
from lhb_review.extensions import db
from lhb_review.models import AuditLog, WebhookAttempt, WebhookDelivery
from lhb_review import review
from lhb_review.pipeline import webhooks
from lhb_review.core.actors import Actor
from lhb_review.core import egress
from tests.factories import make_order_with_stages, make_user
from tests.pipeline_helpers import Receiver

SECRET = "global-webhook-secret-for-tests"
REVIEWER = Actor(email="rev@example.com", ip="192.0.2.10", user_agent="pytest")
ROOT = Path(__file__).resolve().parent.parent


def settings(**overrides) -> webhooks.WebhookSettings:
    values = dict(
        secret=SECRET, timeout=5, max_attempts=5, backoff_base=0.05, backoff_cap=0.2, lease=30, batch=10,
        allowed_networks=egress.parse_networks("127.0.0.1/32"),
    )
    values.update(overrides)
    return webhooks.WebhookSettings(**values)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def deliveries() -> list[WebhookDelivery]:
    db.session.expire_all()
    return list(db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)))


def attempts(delivery_id) -> list[WebhookAttempt]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.number)
        )
    )


def approved_order(*urls):
    order = make_order_with_stages("pending", webhooks=list(urls))
    review.approve(REVIEWER, order.order_id, "preBria", notes="Looks right")
    return order


def drain_until_settled(config, rounds: int = 200) -> None:
    """Run the worker until nothing is pending (waiting out each short backoff), bounded in rounds."""
    for _ in range(rounds):
        webhooks.drain(config)
        db.session.expire_all()
        if not db.session.scalar(
            select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "pending")
        ):
            return
        time.sleep(0.05)
    raise AssertionError("deliveries still pending")


def test_delivery_carries_a_valid_signature_timestamp_and_idempotency_key(app, receiver):
    order = approved_order(receiver.url)
    [delivery] = deliveries()
    assert webhooks.drain(settings()) == 1
    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert webhooks.verify(SECRET, headers["X-LHB-Timestamp"], body, headers["X-LHB-Signature"])
    assert not webhooks.verify(
        "another-secret-of-some-length", headers["X-LHB-Timestamp"], body, headers["X-LHB-Signature"]
    )
    assert not webhooks.verify(SECRET, headers["X-LHB-Timestamp"], body + b" ", headers["X-LHB-Signature"])
    assert headers["Idempotency-Key"] == str(delivery.id) == headers["X-LHB-Delivery"]
    assert headers["X-LHB-Event"] == "stage_approved"
    payload = json.loads(body)
    assert (
        payload["order_id"],
        payload["stage"],
        payload["status"],
        payload["reviewer"],
        payload["notes"],
    ) == (order.order_id, "preBria", "approved", "rev@example.com", "Looks right")
    spec = build_spec()
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": spec["components"],
        "$ref": "#/components/schemas/WebhookEvent",
    }
    assert list(jsonschema_rs.validator_for(schema, validate_formats=True).iter_errors(payload)) == []
    [row] = deliveries()
    assert (row.status, row.attempts, row.locked_until) == ("delivered", 1, None)
    [attempt] = attempts(row.id)
    assert (attempt.outcome, attempt.status_code) == ("delivered", 200)


def test_a_url_with_its_own_secret_is_signed_with_it(app, receiver):
    own = "per-url-secret-0123456789"
    approved_order({"url": receiver.url, "secret": own})
    webhooks.drain(settings())
    [request] = receiver.requests
    headers = request["headers"]
    assert webhooks.verify(own, headers["X-LHB-Timestamp"], request["body"], headers["X-LHB-Signature"])
    assert not webhooks.verify(
        SECRET, headers["X-LHB-Timestamp"], request["body"], headers["X-LHB-Signature"]
    )


def test_an_old_timestamp_fails_verification(app):
    body = b'{"a":1}'
    stamp = str(int(time.time()) - 3600)
    assert not webhooks.verify(SECRET, stamp, body, webhooks.sign(SECRET, stamp, body))
    assert webhooks.verify(SECRET, stamp, body, webhooks.sign(SECRET, stamp, body), now=int(stamp) + 10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_receiver_down_then_up_is_delivered_once_after_retries(app):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks"
    approved_order(url)
    config = settings(backoff_base=0.05, backoff_cap=0.1, max_attempts=20)
    webhooks.drain(config)
    time.sleep(0.12)
    webhooks.drain(config)
    [row] = deliveries()
    assert row.status == "pending" and row.attempts == 2 and "ConnectionError" in row.last_error
    assert row.next_attempt_at is not None
    server = Receiver(port=port)
    try:
        drain_until_settled(config)
        assert len(server.requests) == 1
        [row] = deliveries()
        assert row.status == "delivered" and row.attempts >= 3
        outcomes = [a.outcome for a in attempts(row.id)]
        assert outcomes[-1] == "delivered" and set(outcomes[:-1]) == {"failed"}
        assert server.keys() == [str(row.id)]
    finally:
        server.stop()


def test_error_answers_are_retried_with_backoff_and_give_up_at_max_attempts(app, receiver):
    receiver.status = 500
    approved_order(receiver.url)
    config = settings(max_attempts=3, backoff_base=0.01, backoff_cap=0.02)
    drain_until_settled(config)
    [row] = deliveries()
    assert (row.status, row.attempts, row.last_error) == ("failed", 3, "HTTP 500")
    assert [a.status_code for a in attempts(row.id)] == [500, 500, 500]
    assert len(set(receiver.keys())) == 1 and len(receiver.requests) == 3


def test_backoff_doubles_up_to_the_cap():
    config = settings(backoff_base=30, backoff_cap=600)
    assert [webhooks.backoff(n, config) for n in range(1, 8)] == [30, 60, 120, 240, 480, 600, 600]


def test_a_failed_attempt_is_not_due_before_its_backoff(app, receiver):
    receiver.status = 503
    approved_order(receiver.url)
    config = settings(backoff_base=3600, backoff_cap=3600)
    assert webhooks.drain(config) == 1
    assert webhooks.drain(config) == 0
    assert len(receiver.requests) == 1


def test_without_any_secret_nothing_is_sent_and_the_reason_is_recorded(app, receiver):
    approved_order(receiver.url)
    webhooks.drain(settings(secret=None, backoff_base=3600))
    assert receiver.requests == []
    [row] = deliveries()
    assert row.status == "pending" and "WEBHOOK_SECRET" in row.last_error


def test_two_workers_racing_send_each_delivery_exactly_once(app, receiver):
    for _ in range(12):
        approved_order(receiver.url)
    assert len(deliveries()) == 12
    config = settings(batch=2)
    barrier = threading.Barrier(2)
    errors = []

    def work(name):
        try:
            with app.app_context():
                barrier.wait()
                webhooks.drain(config, worker=name)
        except Exception as exc:  # reported below: a failure in a thread must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"worker-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    keys = receiver.keys()
    assert len(keys) == 12 and len(set(keys)) == 12
    rows = deliveries()
    assert {r.status for r in rows} == {"delivered"} and {r.attempts for r in rows} == {1}
    assert db.session.scalar(select(func.count()).select_from(WebhookAttempt)) == 12


def test_claims_skip_rows_locked_by_another_worker(app, receiver):
    approved_order(receiver.url)
    approved_order(receiver.url)
    first = webhooks.claim("worker-a", settings(), limit=1)
    second = webhooks.claim("worker-b", settings(), limit=5)
    assert len(first) == 1 and len(second) == 1 and first[0].id != second[0].id
    assert webhooks.claim("worker-c", settings()) == []


def worker_env(database_url: str, tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DATABASE_URL"))}
    env.update(
        {
            "APP_ENV": "test",
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test",
            "LOG_LEVEL": "WARNING",
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
            "FLASK_APP": "wsgi",
        }
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def test_a_worker_killed_between_sending_and_recording_is_redelivered_with_the_same_key(
    app, receiver, database_url, tmp_path
):
    approved_order(receiver.url)
    [row] = deliveries()
    receiver.hold = threading.Event()
    env = worker_env(database_url, tmp_path, WEBHOOK_LEASE_SECONDS=1)
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "webhooks", "deliver"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert receiver.arrived.wait(60), "the worker never sent the delivery"
        # The receiver holds the answer; the worker has sent and waits: kill it before it can record.
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            os.kill(worker.pid, signal.SIGKILL)
    receiver.hold.set()
    receiver.hold = None
    [row] = deliveries()
    assert row.status == "pending" and row.locked_by is not None
    [open_attempt] = attempts(row.id)
    assert open_attempt.finished_at is None
    # Another worker retries once the dead worker's lease has run out (wait for it, bounded).
    config = settings(lease=30)
    for _ in range(100):
        if webhooks.drain(config):
            break
        time.sleep(0.05)
    assert receiver.keys() == [str(row.id), str(row.id)]
    [row] = deliveries()
    assert row.status == "delivered" and row.attempts == 2
    assert [a.outcome for a in attempts(row.id)] == ["abandoned", "delivered"]


def test_cli_deliver_once_drains_and_exits(app, runner, receiver, monkeypatch):
    approved_order(receiver.url)
    monkeypatch.setitem(app.config, "WEBHOOK_SECRET", SECRET)
    result = runner.invoke(args=["webhooks", "deliver", "--once"])
    assert result.exit_code == 0, result.output
    assert "1 delivery attempts made" in result.output
    assert len(receiver.requests) == 1 and deliveries()[0].status == "delivered"


def test_the_worker_stops_cleanly_on_sigterm(app, database_url, tmp_path):
    env = worker_env(database_url, tmp_path, WEBHOOK_POLL_SECONDS=0.2)
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "webhooks", "deliver"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = worker.stdout.readline()
    assert "delivering webhooks" in line
    worker.send_signal(signal.SIGTERM)
    out, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0 and "Worker stopped" in out


# --- admin pages


def test_admins_see_deliveries_and_their_attempts(app, receiver, login_as):
    order = approved_order(receiver.url)
    receiver.status = 500
    webhooks.drain(settings(backoff_base=3600))
    [row] = deliveries()
    admin = login_as(make_user(role="admin"))
    page = admin.get("/admin/deliveries/").get_data(as_text=True)
    assert order.order_id in page and "stage_approved" in page and receiver.url in page
    detail = admin.get(f"/admin/deliveries/{row.id}").get_data(as_text=True)
    assert str(row.id) in detail and "HTTP 500" in detail and "Retry now" in detail
    filtered = admin.get("/admin/deliveries/?status=delivered").get_data(as_text=True)
    assert "No deliveries match" in filtered


def test_an_admin_retry_makes_a_delivery_due_now(app, receiver, login_as):
    approved_order(receiver.url)
    receiver.status = 500
    webhooks.drain(settings(backoff_base=3600, backoff_cap=3600))
    [row] = deliveries()
    admin = login_as(make_user(role="admin"))
    response = admin.post(f"/admin/deliveries/{row.id}/retry")
    assert response.status_code == 303
    db.session.expire_all()
    [entry] = db.session.scalars(select(AuditLog).where(AuditLog.action == "webhook_retry_requested")).all()
    assert entry.details["delivery_id"] == str(row.id) and entry.reviewer_email.startswith("user")
    receiver.status = 200
    assert webhooks.drain(settings()) == 1
    assert deliveries()[0].status == "delivered"


def test_reviewers_cannot_see_deliveries(app, login_as, receiver):
    approved_order(receiver.url)
    [row] = deliveries()
    reviewer = login_as(make_user(role="reviewer"))
    assert reviewer.get("/admin/deliveries/").status_code == 403
    assert reviewer.get(f"/admin/deliveries/{row.id}").status_code == 403
    assert reviewer.post(f"/admin/deliveries/{row.id}/retry").status_code == 403


def test_anonymous_users_are_sent_to_login(app, client):
    response = client.get("/admin/deliveries/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_unknown_delivery_is_404(app, login_as):
    admin = login_as(make_user(role="admin"))
    assert admin.get("/admin/deliveries/not-a-uuid").status_code == 404
    assert admin.get("/admin/deliveries/00000000-0000-0000-0000-000000000000").status_code == 404


def test_an_expired_lease_is_claimable_again(app, receiver):
    approved_order(receiver.url)
    [claimed] = webhooks.claim("worker-a", settings())
    assert webhooks.claim("worker-b", settings()) == []
    db.session.execute(
        update(WebhookDelivery).values(locked_until=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 1))
    )
    db.session.commit()
    [again] = webhooks.claim("worker-b", settings())
    assert again.id == claimed.id and again.attempt == 2


def test_admins_find_the_deliveries_page_in_the_navigation(app, login_as):
    admin = login_as(make_user(role="admin"))
    assert 'href="/admin/deliveries/"' in admin.get("/queue").get_data(as_text=True)
    reviewer = login_as(make_user(role="reviewer"))
    assert "/admin/deliveries/" not in reviewer.get("/queue").get_data(as_text=True)


# --- what a delivery says after a reopen or an undo ------------------------------------------------------

ADMIN = Actor(email="admin@example.com", ip="192.0.2.11", user_agent="pytest", is_admin=True)


def payload_of(event: str) -> dict:
    return next(d.payload for d in reversed(deliveries()) if d.event == event)


def test_reopening_a_rejected_stage_announces_it_pending_with_no_reasons(app):
    order = make_order_with_stages("pending", webhooks=["https://hooks.example.com/lhb"])
    review.reject(REVIEWER, order.order_id, "preBria", "Hair colour drifts.", ["character_drift"])
    assert payload_of("stage_rejected")["reasons"] == ["character_drift"]

    review.reopen(ADMIN, order.order_id, "preBria", notes="Try again")

    reopened = payload_of("stage_reopened")
    assert reopened["review_status"] == "pending" and reopened["reasons"] == []


def test_an_undo_announces_the_stage_as_it_is_after_the_undo_even_with_the_order_loaded_before(app):
    from lhb_review.review import queries

    order = make_order_with_stages("pending", webhooks=["https://hooks.example.com/lhb"])
    review.reject(REVIEWER, order.order_id, "preBria", "Hair colour drifts.", ["character_drift"])
    loaded = queries.order_with_stages(order.order_id)  # as the undo view loads the page's order first
    assert loaded.stages[0].status == "rejected"

    review.undo(REVIEWER, order.order_id, "preBria")

    undone = payload_of("stage_undone")
    assert undone["review_status"] == "pending" and undone["reviewer"] is None and undone["reasons"] == []
