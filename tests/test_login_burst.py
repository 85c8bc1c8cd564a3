"""The sign-in limit is atomic: a parallel burst of wrong passwords against gunicorn with two workers sharing
Redis gets exactly the limit's number of password checks, and every other attempt a 429."""
from __future__ import annotations

import os
import secrets
import threading

import pytest
import requests
from sqlalchemy import func, select

from lhb_review.extensions import db
from lhb_review.models import AuditLog
from tests.conftest import test_env
from tests.factories import make_user
from tests.gunicorn_helpers import csrf_of, gunicorn, http_session

LIMIT = 10
BURST = 40


@pytest.fixture
def redis_prefix():
    redis = pytest.importorskip("redis")
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {url}")
    prefix = f"lhb-burst-{secrets.token_hex(6)}"
    yield url, prefix
    for key in client.scan_iter(match=f"*{prefix}*"):
        client.delete(key)


@pytest.fixture
def server(app, database_url, tmp_path, redis_prefix):
    url, prefix = redis_prefix
    env = test_env(database_url, tmp_path, REDIS_URL=url, RATELIMIT_KEY_PREFIX=prefix,
                   LOGIN_LIMIT_PER_ACCOUNT=f"{LIMIT} per 15 minutes", LOGIN_LIMIT_PER_IP="1000 per minute")
    with gunicorn(env) as base:
        yield base


def signed_out_session(base: str) -> tuple[requests.Session, str]:
    session = http_session()
    return session, csrf_of(session, base + "/login")


def test_a_parallel_burst_of_wrong_passwords_gets_exactly_the_limit_of_checks(server):
    email = make_user("burst@example.com").email
    sessions = [signed_out_session(server) for _ in range(BURST)]
    start = threading.Barrier(BURST)
    codes: list[int] = []
    errors: list[BaseException] = []

    def attempt(session, token):
        try:
            start.wait(30)
            response = session.post(server + "/login", allow_redirects=False, timeout=60,
                                    data={"csrf_token": token, "email": email, "password": "wrong password"})
            codes.append(response.status_code)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=pair) for pair in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not errors, errors[:3]
    assert len(codes) == BURST
    assert codes.count(401) == LIMIT, sorted(codes)
    assert codes.count(429) == BURST - LIMIT
    db.session.expire_all()
    checks = db.session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "login_failed", AuditLog.reviewer_email == email))
    assert checks == LIMIT, "each password check is audited; no more than the limit may have run"
