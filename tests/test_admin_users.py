"""Admin user management: create, disable, enable, change role, reset password; each audited."""
from __future__ import annotations

from sqlalchemy import select

from lhb_review.extensions import db
from lhb_review.models import AuditLog, User
from lhb_review.ops.users import check_password
from tests.factories import PASSWORD, make_user
from tests.ops_helpers import sign_in


def audit_rows(action: str) -> list[AuditLog]:
    return db.session.scalars(select(AuditLog).where(AuditLog.action == action)).all()


def fresh(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def test_create_user(login_as):
    admin = make_user("boss@example.com", role="admin")
    browser = login_as(admin)
    response = browser.post("/admin/users", {"email": "New.Person@Example.com", "password": "a long password",
                                             "role": "reviewer"})
    assert response.status_code == 303
    user = db.session.scalar(select(User).where(User.email == "new.person@example.com"))
    assert user is not None and user.role == "reviewer" and user.active
    assert check_password(user, "a long password")
    [row] = audit_rows("user_created")
    assert row.reviewer_email == "boss@example.com"
    assert row.details == {"email": "new.person@example.com", "role": "reviewer"}
    assert row.ip_address == "127.0.0.1"
    assert "a long password" not in str(row.details)


def test_create_user_with_a_short_password_shows_the_form_again(login_as):
    browser = login_as(make_user(role="admin"))
    response = browser.post("/admin/users", {"email": "x@example.com", "password": "short", "role": "reviewer"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "At least 10 characters" in html and 'value="x@example.com"' in html
    assert db.session.scalar(select(User).where(User.email == "x@example.com")) is None
    assert audit_rows("user_created") == []


def test_create_user_with_a_taken_email_is_refused(login_as):
    make_user("taken@example.com")
    browser = login_as(make_user(role="admin"))
    response = browser.post("/admin/users", {"email": "taken@example.com", "password": "long enough pw",
                                             "role": "admin"})
    assert response.status_code == 409
    assert audit_rows("user_created") == []


def test_disable_and_enable_user(app, login_as):
    admin = make_user("boss@example.com", role="admin")
    target = make_user("rev@example.com")
    target_browser = sign_in(app, login_as, target)
    browser = sign_in(app, login_as, admin)
    assert browser.post(f"/admin/users/{target.id}/disable").status_code == 303
    assert fresh(target).active is False
    assert [r.details["email"] for r in audit_rows("user_disabled")] == ["rev@example.com"]
    # The disabled reviewer is signed out on their next request.
    assert target_browser.get("/queue").status_code == 302
    assert browser.post(f"/admin/users/{target.id}/enable").status_code == 303
    assert fresh(target).active is True
    [row] = audit_rows("user_enabled")
    assert row.reviewer_email == "boss@example.com"


def test_change_role(login_as):
    browser = login_as(make_user("boss@example.com", role="admin"))
    target = make_user("rev@example.com")
    assert browser.post(f"/admin/users/{target.id}/role", {"role": "admin"}).status_code == 303
    assert fresh(target).role == "admin"
    [row] = audit_rows("user_role_changed")
    assert row.details == {"email": "rev@example.com", "before": "reviewer", "after": "admin"}


def test_change_role_to_nonsense_changes_nothing(login_as):
    browser = login_as(make_user(role="admin"))
    target = make_user("rev@example.com")
    response = browser.post(f"/admin/users/{target.id}/role", {"role": "emperor"}, follow_redirects=True)
    assert "Role must be one of" in response.get_data(as_text=True)
    assert fresh(target).role == "reviewer"
    assert audit_rows("user_role_changed") == []


def test_reset_password(login_as, make_client):
    browser = login_as(make_user("boss@example.com", role="admin"))
    target = make_user("rev@example.com")
    assert browser.post(f"/admin/users/{target.id}/password", {"password": "brand new secret"}).status_code == 303
    assert check_password(fresh(target), "brand new secret")
    assert not check_password(fresh(target), PASSWORD)
    [row] = audit_rows("user_password_reset")
    assert row.details == {"email": "rev@example.com"} and "brand new secret" not in str(row.details)


def test_the_last_admin_cannot_be_disabled_or_demoted(login_as):
    admin = make_user("only@example.com", role="admin")
    browser = login_as(admin)
    response = browser.post(f"/admin/users/{admin.id}/disable", follow_redirects=True)
    assert "last active admin" in response.get_data(as_text=True)
    response = browser.post(f"/admin/users/{admin.id}/role", {"role": "reviewer"}, follow_redirects=True)
    assert "last active admin" in response.get_data(as_text=True)
    admin = fresh(admin)
    assert admin.active and admin.role == "admin"
    assert audit_rows("user_disabled") == [] and audit_rows("user_role_changed") == []


def test_unknown_user_is_404(login_as):
    browser = login_as(make_user(role="admin"))
    assert browser.post("/admin/users/not-a-uuid/disable").status_code == 404
    assert browser.post("/admin/users/00000000-0000-0000-0000-000000000000/disable").status_code == 404


def test_users_page_escapes_emails(login_as):
    make_user('"><script>alert(1)</script>@x.example')
    html = login_as(make_user(role="admin")).get("/admin/users").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
