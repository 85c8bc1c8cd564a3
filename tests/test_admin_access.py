"""Every admin page and action: anonymous visitors go to sign in, reviewers get 403, admins get through."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lhb_review.extensions import db
from lhb_review.models import AuditLog
from tests.factories import make_user
from tests.ops_helpers import sign_in

PAGES = ["/admin/errors", "/admin/errors/E-AAAA-AAAA", "/admin/users", "/admin/audit", "/admin/audit.csv", "/admin/"]
ACTIONS = [
    ("/admin/errors/E-AAAA-AAAA/resolve", {}),
    ("/admin/users", {"email": "new@example.com", "password": "long enough pw", "role": "admin"}),
    ("/admin/users/{target}/disable", {}),
    ("/admin/users/{target}/enable", {}),
    ("/admin/users/{target}/role", {"role": "admin"}),
    ("/admin/users/{target}/password", {"password": "another long one"}),
]


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_is_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize("path", PAGES)
def test_reviewer_gets_403_on_pages(login_as, path):
    browser = login_as(make_user(role="reviewer"))
    assert browser.get(path).status_code == 403


@pytest.mark.parametrize("path, data", ACTIONS)
def test_reviewer_gets_403_on_actions_and_nothing_is_written(login_as, path, data):
    target = make_user("target@example.com")
    browser = login_as(make_user(role="reviewer"))
    before = db.session.scalar(select(func.count()).select_from(AuditLog))
    response = browser.post(path.format(target=target.id), data)
    assert response.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(AuditLog)) == before
    db.session.expire_all()
    assert target.active and target.role == "reviewer"


@pytest.mark.parametrize("path, data", ACTIONS)
def test_anonymous_actions_redirect_to_login(client, path, data):
    target = make_user("target@example.com")
    client.refresh_csrf("/login")
    response = client.post(path.format(target=target.id), data)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("path, data", ACTIONS)
def test_actions_without_csrf_token_are_refused(login_as, path, data):
    target = make_user("target@example.com")
    browser = login_as(make_user(role="admin"))
    response = browser.post(path.format(target=target.id), data, csrf=False)
    assert response.status_code == 400


@pytest.mark.parametrize("path", [p for p in PAGES if "E-AAAA" not in p])
def test_admin_gets_the_pages(login_as, path):
    browser = login_as(make_user(role="admin"))
    response = browser.get(path, follow_redirects=True)
    assert response.status_code == 200


def test_admin_sees_admin_links_and_reviewer_does_not(app, login_as):
    admin_html = sign_in(app, login_as, make_user(role="admin")).get("/queue").get_data(as_text=True)
    reviewer_html = sign_in(app, login_as, make_user(role="reviewer")).get("/queue").get_data(as_text=True)
    for link in ("/admin/errors", "/admin/users", "/admin/audit"):
        assert link in admin_html
        assert link not in reviewer_html
    assert "/stats" in admin_html and "/stats" in reviewer_html
