"""Delivery of the webhook outbox: claim due deliveries, send them signed, record every attempt.

Deliveries are signed in the Standard Webhooks format (webhook-id, webhook-timestamp, webhook-signature
``v1,<base64 HMAC-SHA256 of id.timestamp.body>``), so receivers can verify them with any Standard
Webhooks library. The older X-LHB-* headers are sent too while ``legacy_headers`` is on (the default
during the transition).

A worker claims a batch with FOR UPDATE SKIP LOCKED and leases it (locked_until) in one short
transaction, sends outside any transaction, then records the outcome. Several workers never claim
the same delivery at once; a worker that dies mid-delivery leaves its lease to expire, after which
the delivery is sent again with the same idempotency key (the delivery id), so receivers de-duplicate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.exceptions
from urllib3.util import connection as urllib3_connection
from sqlalchemy import func, select, update

from lhb_review.extensions import db
from lhb_review.models import WebhookAttempt, WebhookDelivery
from lhb_review.core import audit, egress
from lhb_review.core.actors import Actor
from lhb_review.review.outbox import secret_for
from lhb_review.core.tx import transaction

log = logging.getLogger(__name__)

ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
# Deprecated, sent while WebhookSettings.legacy_headers is on:
SIGNATURE_HEADER = "X-LHB-Signature"
TIMESTAMP_HEADER = "X-LHB-Timestamp"
EVENT_HEADER = "X-LHB-Event"
DELIVERY_HEADER = "X-LHB-Delivery"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_RESPONSE_KEPT = 2000


@dataclass(frozen=True)
class WebhookSettings:
    secret: str | None
    timeout: float = 10.0
    max_attempts: int = 8
    backoff_base: float = 30.0
    backoff_cap: float = 3600.0
    lease: float = 120.0
    batch: int = 20
    legacy_headers: bool = True
    allowed_networks: tuple = ()

    @classmethod
    def from_config(cls, config) -> "WebhookSettings":
        return cls(
            secret=config.get("WEBHOOK_SECRET") or None,
            timeout=float(config.get("WEBHOOK_TIMEOUT_SECONDS", 10)),
            max_attempts=int(config.get("WEBHOOK_MAX_ATTEMPTS", 8)),
            backoff_base=float(config.get("WEBHOOK_BACKOFF_BASE_SECONDS", 30)),
            backoff_cap=float(config.get("WEBHOOK_BACKOFF_CAP_SECONDS", 3600)),
            lease=float(config.get("WEBHOOK_LEASE_SECONDS", 120)),
            batch=int(config.get("WEBHOOK_BATCH", 20)),
            legacy_headers=bool(config.get("WEBHOOK_LEGACY_HEADERS", True)),
            allowed_networks=tuple(config.get("WEBHOOK_ALLOWED_NETWORKS", ())),
        )


def signing_key(secret: str) -> bytes:
    """The HMAC key of a secret: a Standard Webhooks secret (``whsec_`` and base64) is its decoded bytes,
    any other text its UTF-8 bytes."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            pass  # not base64 after all: refused at registration, so only a hand-set WEBHOOK_SECRET
    return secret.encode()


def sign_standard(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """The webhook-signature header value: ``v1,`` + base64 HMAC-SHA256 of ``<id>.<timestamp>.<body>``."""
    mac = hmac.new(signing_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The deprecated X-LHB-Signature value: ``sha256=`` + hex HMAC-SHA256 of ``<timestamp>.<body>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> bool:
    """What a receiver does: check the signature and that the timestamp is recent (replay protection)."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except (TypeError, ValueError):
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature or "")


def backoff(attempts: int, settings: WebhookSettings) -> float:
    """The longest wait after the ``attempts``-th failure: doubling from the base, never above the cap."""
    return min(settings.backoff_base * (2 ** max(attempts - 1, 0)), settings.backoff_cap)


def jittered_backoff(attempts: int, settings: WebhookSettings, rng: random.Random | None = None) -> float:
    """The wait actually used: uniform between half of ``backoff`` and all of it ("equal jitter"), so
    deliveries that failed together (a receiver's outage) do not all come back in the same second."""
    ceiling = backoff(attempts, settings)
    return (rng or random).uniform(ceiling / 2, ceiling)


def worker_name() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Claimed:
    """A delivery leased to this worker, detached from the session (sending happens outside it)."""

    id: uuid.UUID
    order_id: str
    event: str
    url: str
    payload: dict
    attempt: int
    attempt_id: uuid.UUID


def claim(worker: str, settings: WebhookSettings, limit: int | None = None) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries to ``worker`` and open an attempt for each, in one transaction.

    Due: pending, next_attempt_at passed, and not leased (or the lease expired: its worker died).
    SKIP LOCKED lets concurrent workers take disjoint rows instead of waiting on each other. Times are
    compared with statement_timestamp(), not now(): now() is frozen at the start of a transaction the
    caller may have opened long before, which would hide deliveries that became due since.
    """
    limit = limit or settings.batch
    with transaction():
        due = (
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= func.statement_timestamp(),
                (WebhookDelivery.locked_until.is_(None))
                | (WebhookDelivery.locked_until < func.statement_timestamp()),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = db.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(due.scalar_subquery()))
            .values(
                attempts=WebhookDelivery.attempts + 1,
                locked_by=worker,
                locked_until=func.statement_timestamp()
                + func.make_interval(0, 0, 0, 0, 0, 0, settings.lease),
            )
            .returning(
                WebhookDelivery.id,
                WebhookDelivery.order_id,
                WebhookDelivery.event,
                WebhookDelivery.url,
                WebhookDelivery.payload,
                WebhookDelivery.attempts,
            )
        ).all()
        if not rows:
            return []
        ids = [r.id for r in rows]
        # Attempts left open by a worker that died are closed as abandoned before the retry opens its own.
        db.session.execute(
            update(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(ids), WebhookAttempt.finished_at.is_(None))
            .values(
                finished_at=func.now(),
                outcome="abandoned",
                error="The worker stopped before recording an outcome (lease expired).",
            )
        )
        claimed = []
        for r in rows:
            attempt = WebhookAttempt(delivery_id=r.id, number=r.attempts, worker=worker, id=uuid.uuid4())
            db.session.add(attempt)
            claimed.append(Claimed(r.id, r.order_id, r.event, r.url, r.payload, r.attempts, attempt.id))
    return claimed


class _GuardedConnection:
    """Connects only to addresses the egress policy allows: the name is resolved once, every address it
    resolves to is checked, and the socket goes to a checked address (so a second lookup cannot swap in
    an internal one). TLS still verifies against the URL's host name."""

    allowed_networks: tuple = ()

    def _new_conn(self):
        infos = egress.resolve(self._dns_host, self.port, self.allowed_networks)
        last: OSError | None = None
        for family, _type, _proto, _name, sockaddr in infos:
            try:
                return urllib3_connection.create_connection(
                    (sockaddr[0], self.port), self.timeout, source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as exc:
                last = exc
        raise urllib3.exceptions.NewConnectionError(self, f"Failed to connect: {last}")


def guarded_session(allowed_networks: tuple = ()) -> requests.Session:
    """A requests session for webhook deliveries: no environment proxies, and every connection checked by
    the egress policy (``WEBHOOK_ALLOWED_NETWORKS`` lets internal receivers through explicitly)."""
    attrs = {"allowed_networks": tuple(allowed_networks)}
    http_cls = type("GuardedHTTPConnection", (_GuardedConnection, urllib3.connection.HTTPConnection), attrs)
    https_cls = type("GuardedHTTPSConnection", (_GuardedConnection, urllib3.connection.HTTPSConnection), attrs)

    class GuardedAdapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {
                "http": type("GuardedHTTPPool", (urllib3.HTTPConnectionPool,), {"ConnectionCls": http_cls}),
                "https": type("GuardedHTTPSPool", (urllib3.HTTPSConnectionPool,), {"ConnectionCls": https_cls}),
            }

    session = requests.Session()
    session.trust_env = False  # only the configured URL is contacted, never through an env proxy
    session.mount("http://", GuardedAdapter())
    session.mount("https://", GuardedAdapter())
    return session


@dataclass
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    body: str | None = None
    duration_ms: int = 0


def send(delivery: Claimed, settings: WebhookSettings, session: requests.Session) -> Outcome:
    """POST one delivery, signed. Only a 2xx answer counts as delivered; redirects are not followed."""
    secret = secret_for(delivery.order_id, delivery.url) or settings.secret
    db.session.rollback()  # the secret lookup must not keep a transaction open while the request runs
    if not secret:
        return Outcome(False, error="No signing secret: set WEBHOOK_SECRET or give this URL a secret.")
    body = json.dumps(
        {"delivery_id": str(delivery.id), **delivery.payload}, separators=(",", ":"), sort_keys=True
    ).encode()
    timestamp = str(int(time.time()))
    msg_id = str(delivery.id)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "lhb-review-webhooks/1",
        ID_HEADER: msg_id,
        STANDARD_TIMESTAMP_HEADER: timestamp,
        STANDARD_SIGNATURE_HEADER: sign_standard(secret, msg_id, timestamp, body),
        IDEMPOTENCY_HEADER: msg_id,
    }
    if settings.legacy_headers:
        headers |= {
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            TIMESTAMP_HEADER: timestamp,
            DELIVERY_HEADER: msg_id,
            EVENT_HEADER: delivery.event,
        }
    started = time.monotonic()
    try:
        response = session.post(
            delivery.url, data=body, headers=headers, timeout=settings.timeout, allow_redirects=False
        )
    except egress.EgressRefused as exc:
        return Outcome(False, error=str(exc)[:1000])
    except requests.RequestException as exc:
        return Outcome(
            False,
            error=f"{type(exc).__name__}: {exc}"[:1000],
            duration_ms=int((time.monotonic() - started) * 1000),
        )
    duration = int((time.monotonic() - started) * 1000)
    text_body = response.text[:MAX_RESPONSE_KEPT]
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code, body=text_body, duration_ms=duration)
    return Outcome(
        False,
        response.status_code,
        error=f"HTTP {response.status_code}",
        body=text_body,
        duration_ms=duration,
    )


def record(delivery: Claimed, outcome: Outcome, settings: WebhookSettings, worker: str) -> str:
    """Close the attempt and move the delivery on: delivered, retried later (backoff), or failed for good."""
    with transaction():
        row = db.session.scalar(
            select(WebhookDelivery)
            .where(WebhookDelivery.id == delivery.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        db.session.execute(
            update(WebhookAttempt)
            .where(WebhookAttempt.id == delivery.attempt_id)
            .values(
                finished_at=func.now(),
                outcome="delivered" if outcome.ok else "failed",
                status_code=outcome.status_code,
                error=outcome.error,
                response_body=outcome.body,
                duration_ms=outcome.duration_ms,
            )
        )
        if row.status != "pending":
            return row.status  # settled meanwhile by another worker
        if outcome.ok:
            row.status = "delivered"
            row.delivered_at = func.now()
            row.last_error = None
            row.locked_until = row.locked_by = None
            return "delivered"
        if row.locked_by != worker:
            return row.status  # our lease expired and another worker owns the retry now
        row.locked_until = row.locked_by = None
        if row.attempts >= settings.max_attempts:
            row.status = "failed"
            row.last_error = outcome.error
        else:
            row.last_error = outcome.error
            row.next_attempt_at = func.statement_timestamp() + func.make_interval(
                0, 0, 0, 0, 0, 0, jittered_backoff(row.attempts, settings)
            )
        return row.status


def deliver_batch(settings: WebhookSettings, worker: str, session: requests.Session) -> int:
    """Claim, send and record one batch; returns how many deliveries were attempted."""
    batch = claim(worker, settings)
    for delivery in batch:
        outcome = send(delivery, settings, session)
        status = record(delivery, outcome, settings, worker)
        log.info(
            "webhook %s (%s) to %s, attempt %s: %s",
            delivery.id,
            delivery.event,
            delivery.url,
            delivery.attempt,
            "delivered" if outcome.ok else f"{outcome.error}; now {status}",
        )
    return len(batch)


def drain(settings: WebhookSettings, worker: str | None = None) -> int:
    """Attempt every delivery that is due now, once each; returns the number of attempts made."""
    worker = worker or worker_name()
    total = 0
    with guarded_session(settings.allowed_networks) as session:
        while True:
            done = deliver_batch(settings, worker, session)
            total += done
            if done == 0:
                return total


def retry_now(actor: Actor, delivery_id: uuid.UUID) -> WebhookDelivery | None:
    """Make a failed or waiting delivery due at once (an operator's retry); its idempotency key stays.

    Audited ``webhook_retry_requested``; a delivered one is left alone.
    """
    with transaction():
        row = db.session.scalar(
            select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
        )
        if row is None or row.status == "delivered":
            return row
        audit.record(
            actor,
            "webhook_retry_requested",
            order_id=row.order_id,
            stage=row.stage,
            details={
                "delivery_id": str(row.id),
                "event": row.event,
                "url": row.url,
                "status_before": row.status,
                "attempts": row.attempts,
            },
        )
        row.status = "pending"
        row.next_attempt_at = func.now()
    return row
