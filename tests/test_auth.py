"""Signing in and out: audited, CSRF-protected, safe redirects, disabled users shut out, every page behind login."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from lhb_review.extensions import db
from lhb_review.models import AuditLog, User
from tests.factories import PASSWORD, make_order_with_stages, make_user


def audit(action: str | None = None) -> list[AuditLog]:
    db.session.expire_all()
    stmt = select(AuditLog).order_by(AuditLog.created_at)
    if action:
        stmt = stmt.where(AuditLog.action == action)
    return list(db.session.scalars(stmt))


def test_login_signs_in_and_is_audited_without_the_password(app, client):
    user = make_user("rev@example.com")
    response = client.login(user.email, PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/queue"
    [row] = audit()
    assert (row.action, row.reviewer_email, str(row.ip_address)) == ("login", "rev@example.com", "127.0.0.1")
    assert row.user_agent
    assert PASSWORD not in str(row.details)
    assert client.get("/queue").status_code == 200


@pytest.mark.parametrize("email,password", [("rev@example.com", "wrong password"), ("nobody@example.com", PASSWORD)])
def test_failed_login_is_audited_and_does_not_say_which_part_was_wrong(app, client, email, password):
    make_user("rev@example.com")
    response = client.login(email, password)
    assert response.status_code == 401
    assert "do not match an active account" in response.get_data(as_text=True)
    [row] = audit()
    assert (row.action, row.reviewer_email) == ("login_failed", email)
    assert password not in str(row.details)
    assert client.get("/queue").status_code == 302


def test_disabled_user_cannot_sign_in(app, client):
    user = make_user("gone@example.com", active=False)
    assert client.login(user.email, PASSWORD).status_code == 401
    assert [a.action for a in audit()] == ["login_failed"]


def test_disabled_user_is_signed_out_on_the_next_request(app, login_as):
    user = make_user("soon-gone@example.com")
    browser = login_as(user)
    assert browser.get("/queue").status_code == 200
    db.session.get(User, user.id).active = False
    db.session.commit()
    response = browser.get("/queue")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_login_without_csrf_token_is_refused_and_not_audited(app, client):
    user = make_user()
    response = client.post("/login", {"email": user.email, "password": PASSWORD}, csrf=False)
    assert response.status_code == 400
    assert audit() == []


@pytest.mark.parametrize("target,expected", [
    ("/orders/ORD-1", "/orders/ORD-1"),
    ("/queue?stage=postBria", "/queue?stage=postBria"),
    ("https://evil.example/", "/queue"),
    ("//evil.example/", "/queue"),
    ("/\\evil.example", "/queue"),
    ("javascript:alert(1)", "/queue"),
    ("", "/queue"),
])
def test_next_only_redirects_within_the_site(app, client, target, expected):
    user = make_user()
    client.refresh_csrf("/login")
    response = client.post(f"/login?next={target}", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_logout_is_a_post_and_is_audited(app, login_as):
    user = make_user("bye@example.com")
    browser = login_as(user)
    assert browser.get("/logout").status_code == 405
    response = browser.post("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert [a.action for a in audit()] == ["login", "logout"]
    assert browser.get("/queue").status_code == 302


@pytest.mark.parametrize("path", ["/", "/queue", "/queue?stage=preBria", "/orders/{o}", "/orders/{o}/stages/preBria",
                                  "/assets/orders/x/preBria/front.png"])
def test_every_page_needs_a_login(app, client, path):
    order = make_order_with_stages("pending")
    url = path.format(o=order.order_id)
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("action", ["approve", "reject", "reopen"])
def test_actions_need_a_login_and_write_nothing(app, client, action):
    order = make_order_with_stages("pending")
    response = client.post(f"/orders/{order.order_id}/stages/preBria/{action}", {"notes": "x"})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert audit() == []
