"""The sign-in limit is atomic: a parallel burst of wrong passwords against gunicorn with two workers sharing
Redis gets exactly the limit's number of password checks, and every other attempt a 429."""
from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from sqlalchemy import func, select

from lhb_review.extensions import db
from lhb_review.models import AuditLog
from tests.conftest import ROOT, test_env
from tests.factories import make_user

CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
LIMIT = 10
BURST = 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
def gunicorn(app, database_url, tmp_path, redis_prefix):
    url, prefix = redis_prefix
    port = free_port()
    env = test_env(database_url, tmp_path, REDIS_URL=url, RATELIMIT_KEY_PREFIX=prefix,
                   LOGIN_LIMIT_PER_ACCOUNT=f"{LIMIT} per 15 minutes", LOGIN_LIMIT_PER_IP="1000 per minute")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "8", "--worker-class", "gthread",
         "--bind", f"127.0.0.1:{port}", "--timeout", "60", "wsgi:app"],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail(f"gunicorn exited: {proc.stderr.read()[-2000:]}")
            try:
                if requests.get(base + "/login", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not answer")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def signed_out_session(base: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    session.trust_env = False
    html = session.get(base + "/login", timeout=10).text
    return session, CSRF_RE.search(html).group(1)


def test_a_parallel_burst_of_wrong_passwords_gets_exactly_the_limit_of_checks(gunicorn):
    email = make_user("burst@example.com").email
    sessions = [signed_out_session(gunicorn) for _ in range(BURST)]
    start = threading.Barrier(BURST)
    codes: list[int] = []
    errors: list[BaseException] = []

    def attempt(session, token):
        try:
            start.wait(30)
            response = session.post(gunicorn + "/login", allow_redirects=False, timeout=60,
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
