"""Sessions and sign-in: cookie flags, a fresh session at sign-in, cookies void after sign-out or disable,
rate-limited attempts, and a login form that does not tell whether an e-mail has an account."""
from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import textwrap
from http.cookies import SimpleCookie

import pytest
from flask import Flask

from lhb_review import create_app
from lhb_review.extensions import db
from lhb_review.models import AuditLog, User
from lhb_review.ops import users as user_service
from lhb_review.core.actors import Actor
from tests.conftest import ROOT, Browser, test_env
from tests.factories import PASSWORD, make_user

ADMIN = Actor(email="admin@example.com", is_admin=True)


def cookies_set(response) -> dict[str, str]:
    """Set-Cookie headers by cookie name (the raw header, flags included)."""
    found = {}
    for header in response.headers.getlist("Set-Cookie"):
        found[header.split("=", 1)[0]] = header
    return found


def flags(header: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}


def samesite(header: str) -> str | None:
    match = re.search(r"SameSite=(\w+)", header, re.I)
    return match.group(1) if match else None


def login_response(browser: Browser, user: User, remember: bool = False):
    browser.refresh_csrf("/login")
    data = {"email": user.email, "password": PASSWORD}
    if remember:
        data["remember"] = "yes"
    return browser.post("/login", data)


def signed_in(browser: Browser) -> bool:
    response = browser.get("/queue")
    return response.status_code == 200


@pytest.fixture
def https_app(app, database_url, tmp_path):
    return create_app({"TESTING": True}, env=test_env(database_url, tmp_path, HTTPS="true"))


# --- cookie flags ---------------------------------------------------------------------------------------

def test_session_and_remember_cookies_are_httponly_lax_and_not_secure_over_http(client):
    user = make_user()
    response = login_response(client, user, remember=True)
    assert response.status_code == 302
    cookies = cookies_set(response)
    for name in ("session", "remember_token"):
        assert name in cookies, cookies
        assert "httponly" in flags(cookies[name])
        assert samesite(cookies[name]) == "Lax"
        assert "secure" not in flags(cookies[name])


def test_cookies_are_secure_when_https_is_configured(https_app):
    with https_app.app_context():
        user = make_user()
        browser = Browser(https_app.test_client())
        response = login_response(browser, user, remember=True)
        assert response.status_code == 302
        cookies = cookies_set(response)
        for name in ("session", "remember_token"):
            assert {"secure", "httponly"} <= flags(cookies[name]), cookies[name]
            assert samesite(cookies[name]) == "Lax"


# --- a fresh session at sign-in --------------------------------------------------------------------------

def test_sign_in_starts_a_fresh_session(client):
    user = make_user()
    client.refresh_csrf("/login")
    with client.client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
        before = dict(sess)
    response = login_response(client, user)
    assert response.status_code == 302
    with client.client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess.get("_user_id") == f"{user.id}:{user.session_token}"
        assert sess.get("csrf_token") != before.get("csrf_token") or "csrf_token" not in sess


# --- cookies void after sign-out, disable, password reset ------------------------------------------------

def copy_cookies(source: Browser, target: Browser) -> None:
    """Put every cookie of ``source`` into ``target``: an attacker's copy of the victim's cookies."""
    for cookie in source.client._cookies.values():
        target.client.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)


def test_a_copied_session_cookie_is_useless_after_sign_out(login_as, make_client):
    user = make_user()
    victim = login_as(user)
    thief = make_client()
    copy_cookies(victim, thief)
    assert signed_in(thief), "the copy works while the victim is signed in"

    response = victim.post("/logout")
    assert response.status_code == 302
    assert not signed_in(thief)
    assert thief.get("/queue").headers["Location"].startswith("/login")


def test_a_copied_remember_cookie_is_useless_after_sign_out(app, make_client):
    user = make_user()
    victim = make_client()
    assert login_response(victim, user, remember=True).status_code == 302
    remember = victim.client.get_cookie("remember_token")
    assert remember is not None

    thief = make_client()
    thief.client.set_cookie("remember_token", remember.value)
    assert signed_in(thief), "the remember cookie alone signs in while it is valid"

    victim.refresh_csrf("/queue")
    assert victim.post("/logout").status_code == 302
    late = make_client()
    late.client.set_cookie("remember_token", remember.value)
    assert not signed_in(late)


@pytest.mark.parametrize("change", ["disable", "disable_then_enable", "password_reset"])
def test_a_session_cookie_is_useless_after_the_account_changes(login_as, make_client, change):
    user = make_user()
    victim = login_as(user)
    thief = make_client()
    copy_cookies(victim, thief)
    assert signed_in(thief)

    if change.startswith("disable"):
        user_service.set_active(ADMIN, user.email, False)
    if change == "disable_then_enable":
        user_service.set_active(ADMIN, user.email, True)
    if change == "password_reset":
        user_service.set_password(ADMIN, user.email, "a brand new password")

    assert not signed_in(thief)
    assert not signed_in(victim)


def forged_session(app: Flask, value: str) -> str:
    serializer = app.session_interface.get_signing_serializer(app)
    return serializer.dumps({"_user_id": value, "_fresh": True})


@pytest.mark.parametrize("token", ["", "wrong", "0" * 64, "\u00e9\u00e9"])
def test_a_signed_cookie_without_the_users_current_token_signs_nobody_in(app, make_client, token):
    """Even with the secret key, a cookie naming the user needs the token stored in the database."""
    user = make_user()
    browser = make_client()
    value = f"{user.id}:{token}" if token else str(user.id)
    browser.client.set_cookie("session", forged_session(app, value))
    assert not signed_in(browser)

    control = make_client()
    control.client.set_cookie("session", forged_session(app, f"{user.id}:{user.session_token}"))
    assert signed_in(control), "the same forgery with the right token works, so the token is what counts"


def test_sign_out_rotates_the_token_and_audits_together(login_as):
    user = make_user()
    before = user.session_token
    browser = login_as(user)
    assert browser.post("/logout").status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).session_token != before
    assert [row.action for row in db.session.query(AuditLog).order_by(AuditLog.created_at)] == ["login", "logout"]


# --- rate limits -----------------------------------------------------------------------------------------

def attempt(browser: Browser, email: str, password: str = "wrong password", ip: str = "192.0.2.1"):
    browser.refresh_csrf("/login")
    return browser.post("/login", {"email": email, "password": password}, environ_base={"REMOTE_ADDR": ip})


def account_limit(app) -> int:
    return int(app.config["LOGIN_LIMIT_PER_ACCOUNT"].split()[0])


@pytest.mark.parametrize("exists", [True, False], ids=["known-email", "unknown-email"])
def test_failed_sign_ins_on_one_account_are_limited_from_any_address(app, client, exists):
    email = make_user().email if exists else "nobody@example.com"
    limit = account_limit(app)
    for n in range(limit):
        assert attempt(client, email, ip=f"198.51.100.{n + 1}").status_code == 401
    refused = attempt(client, email, ip="203.0.113.9")
    assert refused.status_code == 429
    assert "Too many sign-in attempts" in refused.get_data(as_text=True)
    assert int(refused.headers["Retry-After"]) > 0
    assert attempt(client, "someone.else@example.com", ip="203.0.113.9").status_code == 401


def test_the_account_limit_stops_even_the_right_password(app, client):
    user = make_user()
    for _ in range(account_limit(app)):
        attempt(client, user.email)
    assert attempt(client, user.email, password=PASSWORD).status_code == 429
    assert db.session.query(AuditLog).filter_by(action="login").count() == 0


def test_successful_sign_ins_do_not_use_up_the_account_limit(app, make_client):
    user = make_user()
    for _ in range(account_limit(app) + 2):
        browser = make_client()
        assert attempt(browser, user.email, password=PASSWORD).status_code == 302


def test_sign_in_attempts_from_one_address_are_limited(app, database_url, tmp_path):
    limited = create_app({"TESTING": True, "LOGIN_LIMIT_PER_IP": "3 per minute"}, env=test_env(database_url, tmp_path))
    with limited.app_context():
        browser = Browser(limited.test_client())
        codes = [attempt(browser, f"person{n}@example.com", ip="192.0.2.77").status_code for n in range(4)]
        assert codes == [401, 401, 401, 429]
        assert attempt(browser, "person9@example.com", ip="192.0.2.78").status_code == 401


WORKER = textwrap.dedent("""
    import json, sys
    from lhb_review import create_app
    from tests.conftest import Browser
    env = json.loads(sys.argv[1])
    app = create_app({"TESTING": True}, env=env)
    codes = []
    with app.app_context():
        browser = Browser(app.test_client())
        for _ in range(int(sys.argv[2])):
            browser.refresh_csrf("/login")
            codes.append(browser.post("/login", {"email": sys.argv[3], "password": "wrong"}).status_code)
    print(json.dumps(codes))
""")


def run_worker(env: dict, attempts: int, email: str) -> list[int]:
    """One process with its own app, like one gunicorn worker; returns the status of each attempt."""
    done = subprocess.run(
        [sys.executable, "-c", WORKER, json.dumps(env), str(attempts), email],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def redis_url():
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {url}")
    prefix = f"lhb-test-{secrets.token_hex(6)}"
    yield url, prefix
    for key in client.scan_iter(match=f"*{prefix}*"):
        client.delete(key)


def test_with_redis_configured_all_workers_share_one_count(app, database_url, tmp_path, redis_url):
    url, prefix = redis_url
    env = test_env(database_url, tmp_path, REDIS_URL=url, RATELIMIT_KEY_PREFIX=prefix,
                   LOGIN_LIMIT_PER_ACCOUNT="4 per 15 minutes")
    assert run_worker(env, 3, "shared@example.com") == [401, 401, 401]
    assert run_worker(env, 2, "shared@example.com") == [401, 429]


def test_without_redis_each_worker_counts_alone(app, database_url, tmp_path):
    """The contrast that shows the test above can fail: in-memory counts are per process."""
    env = test_env(database_url, tmp_path, LOGIN_LIMIT_PER_ACCOUNT="4 per 15 minutes")
    assert create_app({}, env=env).config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert run_worker(env, 3, "alone@example.com") == [401, 401, 401]
    assert run_worker(env, 2, "alone@example.com") == [401, 401]


# --- the form does not tell whether an e-mail has an account ----------------------------------------------

def normalised(html: str) -> str:
    html = re.sub(r'name="csrf_token"[^>]*value="[^"]+"', "csrf", html)
    html = re.sub(r'"X-CSRFToken": "[^"]+"', "csrf", html)
    return re.sub(r'value="[^"]*@[^"]*"', 'value="EMAIL"', html)


class CountingHasher:
    """The real argon2 hasher, counting verifications: the expensive step a timing attacker would look for."""

    def __init__(self, real):
        self.real = real
        self.calls: list[str] = []

    def verify(self, hash_, password):
        self.calls.append(hash_)
        return self.real.verify(hash_, password)

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.fixture
def verify_calls(monkeypatch):
    counting = CountingHasher(user_service.hasher)
    monkeypatch.setattr(user_service, "hasher", counting)
    return counting.calls


def test_unknown_email_wrong_password_and_disabled_account_look_the_same(make_client, verify_calls):
    known = make_user()
    disabled = make_user(active=False)
    answers = []
    for email, password in [("nobody@example.com", "whatever it is"), (known.email, "wrong password"),
                            (disabled.email, PASSWORD)]:
        verify_calls.clear()
        response = attempt(make_client(), email, password)
        answers.append((response.status_code, normalised(response.get_data(as_text=True)), len(verify_calls)))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == 401 and answers[0][2] == 1
    actions = db.session.query(AuditLog.action).all()
    assert [a for (a,) in actions] == ["login_failed"] * 3
