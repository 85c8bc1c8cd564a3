"""The stage review page and its actions: each rule and error path, with the database checked afterwards."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from lhb_review import create_app
from lhb_review.extensions import db
from lhb_review.models import Approval, AuditLog, ReviewStage
from tests.conftest import Browser, test_env
from tests.factories import PASSWORD, make_order, make_order_with_stages, make_stage, make_user
from tests.sql_counter import count_statements


@pytest.fixture
def reviewer(app, login_as):
    return login_as(make_user("rev@example.com"))


@pytest.fixture
def admin(app, login_as):
    return login_as(make_user("boss@example.com", role="admin"))


def state(order_id: str, stage: str = "preBria"):
    """(stage status, reviewer, approvals status or None, audit actions) as the database has them now."""
    db.session.expire_all()
    row = db.session.scalar(select(ReviewStage).where(ReviewStage.order_id == order_id,
                                                      ReviewStage.stage_name == stage))
    approval = db.session.scalar(select(Approval.status).where(Approval.order_id == order_id, Approval.stage == stage))
    actions = list(db.session.scalars(select(AuditLog.action).where(AuditLog.order_id == order_id)
                                      .order_by(AuditLog.created_at)))
    return row.status, row.reviewer_email, approval, actions


def url(order_id: str, stage: str = "preBria", action: str | None = None) -> str:
    return f"/orders/{order_id}/stages/{stage}" + (f"/{action}" if action else "")


def is_panel_fragment(body: str) -> bool:
    """The decision panel alone, or (after a 409) followed by the claim bar swapped out of band."""
    stripped = body.strip()
    if 'hx-swap-oob="true"' in stripped:
        stripped = stripped[:stripped.index('<div id="claim-bar"')].strip()
    return stripped.startswith('<section class="card decision') and 'id="decision-panel"' in stripped.split(">")[0] \
        and stripped.endswith("</section>") and "<html" not in body


# --- the page -------------------------------------------------------------------------------------------

def test_stage_page_shows_images_in_a_gallery_specs_and_the_decision_panel(app, reviewer):
    order = make_order_with_stages("pending")
    body = reviewer.get(url(order.order_id)).get_data(as_text=True)
    key = order.r2_assets["preBria"][0]["key"]
    assert re.search(rf'<a class="thumb" href="/assets/{key}"[^>]*data-gallery-item', body)
    assert f'<img src="/assets/{key}"' in body
    assert '<dialog class="lightbox" id="lightbox"' in body
    assert re.search(r"<dt>Name</dt>\s*<dd>Maya</dd>", body)
    assert 'id="decision-panel"' in body
    assert f'action="{url(order.order_id, action="approve")}"' in body
    assert f'hx-post="{url(order.order_id, action="reject")}"' in body
    assert 'name="csrf_token"' in body
    assert "<script>" not in body and "style=" not in body  # strict CSP: no inline scripts or styles


def test_post_pdf_stage_shows_the_pdf_inline(app, reviewer):
    order = make_order_with_stages("approved", "approved", "pending")
    body = reviewer.get(url(order.order_id, "postPdf")).get_data(as_text=True)
    key = order.r2_assets["postPdf"][0]["key"]
    assert f'<iframe class="pdf-frame" src="/assets/{key}"' in body


@pytest.mark.parametrize("r2_assets", [None, [], {"preBria": "oops"}, {"preBria": [1, {"label": "no key"}, {"key": 5}]}])
def test_malformed_assets_from_the_pipeline_do_not_break_the_page(app, reviewer, r2_assets):
    order = make_order(r2_assets=r2_assets)
    make_stage(order, "preBria", "pending")
    response = reviewer.get(url(order.order_id))
    assert response.status_code == 200
    assert "No assets were submitted for this stage" in response.get_data(as_text=True)


def test_later_stage_page_says_which_stage_must_be_approved_first(app, reviewer):
    order = make_order_with_stages("pending", "pending")
    body = reviewer.get(url(order.order_id, "postBria")).get_data(as_text=True)
    assert "first: stages are approved in pipeline order" in body
    assert re.search(r'data-action="approve" disabled', body)


def test_stage_history_is_shown_newest_first(app, reviewer, login_as):
    order = make_order_with_stages("pending")
    reviewer.post(url(order.order_id, action="reject"), {"notes": "first try", "reasons": "anatomy"})
    admin = login_as(make_user("boss@example.com", role="admin"))
    admin.post(url(order.order_id, action="reopen"), {"notes": "new assets"})
    assert state(order.order_id)[3] == ["stage_rejected", "stage_reopened"]
    body = reviewer.get(url(order.order_id)).get_data(as_text=True)
    history = body[body.index('id="stage-history"'):]
    assert history.index("Reopened") < history.index("Rejected")
    assert "first try" in history and "new assets" in history


@pytest.mark.parametrize("path", ["/orders/NOPE/stages/preBria", "/orders/{o}/stages/nonsense",
                                  "/orders/{o}/stages/postPdf", "/orders/{o}/stages/preBria/explode"])
def test_unknown_order_or_stage_is_404(app, reviewer, path):
    order = make_order_with_stages("pending")
    assert reviewer.get(path.format(o=order.order_id)).status_code == 404


def test_stage_page_needs_at_most_five_statements(app, reviewer):
    order = make_order_with_stages("approved", "pending")
    reviewer.post(url(order.order_id, "postBria", "reject"), {"notes": "history row", "reasons": "other"})
    with count_statements() as seen:
        assert reviewer.get(url(order.order_id, "postBria")).status_code == 200
    assert len(seen) <= 5


# --- actions that succeed ------------------------------------------------------------------------------

def test_approve_with_a_plain_form_redirects_back_with_a_flash(app, reviewer):
    order_id = make_order_with_stages("pending").order_id
    response = reviewer.post(url(order_id, action="approve"), {"notes": "Looks right"},
                             headers={"User-Agent": "ReviewerBrowser/1.0"})
    assert response.status_code == 303
    assert response.headers["Location"] == url(order_id)
    assert state(order_id) == ("approved", "rev@example.com", "approved", ["stage_approved"])
    audit = db.session.scalar(select(AuditLog).where(AuditLog.order_id == order_id))
    assert (audit.stage, audit.reviewer_email, str(audit.ip_address)) == ("preBria", "rev@example.com", "127.0.0.1")
    assert audit.user_agent == "ReviewerBrowser/1.0"
    assert {k: audit.details[k] for k in ("status_before", "status_after", "notes")} == \
        {"status_before": "pending", "status_after": "approved", "notes": "Looks right"}
    assert audit.details["decision_id"] and len(audit.details["fingerprint"]) == 64
    page = reviewer.get(response.headers["Location"]).get_data(as_text=True)
    assert "flash-success" in page and "Approved." in page


def test_approve_with_htmx_swaps_the_panel_and_triggers_stage_decided(app, reviewer):
    order_id = make_order_with_stages("pending").order_id
    response = reviewer.post(url(order_id, action="approve"), htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "stage-decided"
    assert is_panel_fragment(body)
    assert 'data-status="approved"' in body and "notice-success" in body
    assert state(order_id) == ("approved", "rev@example.com", "approved", ["stage_approved"])


@pytest.mark.parametrize("htmx", [False, True])
def test_reject_with_notes_records_them_and_keeps_the_approval_pending(app, reviewer, htmx):
    order_id = make_order_with_stages("pending").order_id
    response = reviewer.post(url(order_id, action="reject"), {"notes": "  Hair is green  ", "reasons": "character_drift"},
                             htmx=htmx)
    assert response.status_code == (200 if htmx else 303)
    assert state(order_id) == ("rejected", "rev@example.com", "pending", ["stage_rejected"])
    audit = db.session.scalar(select(AuditLog).where(AuditLog.order_id == order_id))
    assert audit.details["notes"] == "Hair is green"
    assert db.session.scalar(select(ReviewStage.reviewer_notes).where(ReviewStage.order_id == order_id)) == \
        "Hair is green"


def test_later_stage_can_be_approved_once_the_earlier_one_is(app, reviewer):
    order_id = make_order_with_stages("pending", "pending").order_id
    assert reviewer.post(url(order_id, action="approve")).status_code == 303
    assert reviewer.post(url(order_id, "postBria", "approve")).status_code == 303
    assert state(order_id, "postBria")[0] == "approved"


@pytest.mark.parametrize("decided", ["approved", "rejected"])
def test_admin_reopens_a_decided_stage(app, admin, decided):
    order_id = make_order_with_stages(decided).order_id
    response = admin.post(url(order_id, action="reopen"), {"notes": "assets replaced"}, htmx=True)
    assert response.status_code == 200 and response.headers["HX-Trigger"] == "stage-decided"
    assert 'data-status="pending"' in response.get_data(as_text=True)
    assert state(order_id) == ("pending", None, "pending", ["stage_reopened"])


# --- refusals: each writes nothing ----------------------------------------------------------------------

@pytest.mark.parametrize("notes", ["", "   "])
def test_reject_without_notes_is_422_with_the_form_shown_again(app, reviewer, notes):
    order_id = make_order_with_stages("pending").order_id
    response = reviewer.post(url(order_id, action="reject"), {"notes": notes, "reasons": "other"})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<html" in body and 'id="reject-notes"' in body and 'aria-invalid="true"' in body
    assert "Notes are required to reject." in body
    assert state(order_id) == ("pending", None, None, [])


def test_reject_without_notes_over_htmx_answers_the_panel_fragment(app, reviewer):
    order_id = make_order_with_stages("pending").order_id
    response = reviewer.post(url(order_id, action="reject"), {"notes": "", "reasons": "other"}, htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert is_panel_fragment(body) and 'id="reject-notes-error"' in body
    assert "HX-Trigger" not in response.headers
    assert state(order_id) == ("pending", None, None, [])


def test_too_long_notes_are_422_and_kept_in_the_form(app, reviewer):
    order_id = make_order_with_stages("pending").order_id
    response = reviewer.post(url(order_id, action="reject"), {"notes": "x" * 5001, "reasons": "other"}, htmx=True)
    assert response.status_code == 422 and "x" * 5001 in response.get_data(as_text=True)
    assert state(order_id) == ("pending", None, None, [])


@pytest.mark.parametrize("htmx", [False, True])
@pytest.mark.parametrize("action", ["approve", "reject"])
@pytest.mark.parametrize("decided", ["approved", "rejected"])
def test_decision_on_a_decided_stage_is_409(app, reviewer, decided, action, htmx):
    order = make_order_with_stages(decided)
    db.session.execute(ReviewStage.__table__.update().values(reviewer_email="first@example.com"))
    db.session.commit()
    response = reviewer.post(url(order.order_id, action=action), {"notes": "second opinion"}, htmx=htmx)
    body = response.get_data(as_text=True)
    assert response.status_code == 409
    assert f"already {decided} by first@example.com" in body
    assert is_panel_fragment(body) == htmx
    assert state(order.order_id) == (decided, "first@example.com", None, [])


@pytest.mark.parametrize("earlier", ["pending", "in_review", "rejected"])
def test_later_stage_before_an_earlier_one_is_409(app, reviewer, earlier):
    order_id = make_order_with_stages(earlier, "pending").order_id
    response = reviewer.post(url(order_id, "postBria", "approve"), htmx=True)
    assert response.status_code == 409
    assert "cannot be approved before preBria is approved" in response.get_data(as_text=True)
    assert state(order_id, "postBria") == ("pending", None, None, [])


@pytest.mark.parametrize("action", ["approve", "reject", "reopen"])
@pytest.mark.parametrize("htmx", [False, True])
def test_missing_csrf_token_is_400_and_writes_nothing(app, admin, action, htmx):
    order_id = make_order_with_stages("approved" if action == "reopen" else "pending").order_id
    headers = {"HX-Request": "true"} if htmx else {}
    response = admin.client.post(url(order_id, action=action), data={"notes": "n"}, headers=headers)
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert state(order_id)[3] == []


def test_another_sessions_csrf_token_is_refused(app, reviewer, login_as):
    order_id = make_order_with_stages("pending").order_id
    other = login_as(make_user("other@example.com"))
    response = reviewer.client.post(url(order_id, action="approve"), data={"csrf_token": other.csrf})
    assert response.status_code == 400
    assert state(order_id) == ("pending", None, None, [])


@pytest.mark.parametrize("htmx", [False, True])
def test_reviewer_cannot_reopen(app, reviewer, htmx):
    order_id = make_order_with_stages("approved").order_id
    response = reviewer.post(url(order_id, action="reopen"), {"notes": "please"}, htmx=htmx)
    assert response.status_code == 403
    assert "Only an admin can reopen" in response.get_data(as_text=True)
    assert state(order_id) == ("approved", None, None, [])


def test_reopen_of_a_waiting_stage_is_409(app, admin):
    order_id = make_order_with_stages("pending").order_id
    assert admin.post(url(order_id, action="reopen")).status_code == 409
    assert state(order_id) == ("pending", None, None, [])


@pytest.mark.parametrize("order_id", ["bad%00id", "x" * 10_000, "../../etc", "%F0%9F%93%9A"])
@pytest.mark.parametrize("suffix", ["", "/stages/preBria", "/stages/preBria/approve"])
def test_odd_order_ids_are_404_never_500(app, reviewer, order_id, suffix):
    make_order_with_stages("pending")
    path = f"/orders/{order_id}{suffix}"
    response = reviewer.post(path, {"notes": "n"}) if suffix.endswith("approve") else reviewer.get(path)
    assert response.status_code == 404
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.stage.is_not(None))) == 0


@pytest.mark.parametrize("path", ["/orders/NOPE/stages/preBria/approve", "/orders/{o}/stages/nonsense/approve",
                                  "/orders/{o}/stages/postBria/approve", "/orders/{o}/stages/preBria/explode"])
def test_action_on_an_unknown_order_or_stage_is_404(app, reviewer, path):
    order_id = make_order_with_stages("pending").order_id
    response = reviewer.post(path.format(o=order_id), {"notes": "n"})
    assert response.status_code == 404
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.stage.is_not(None))) == 0
    assert state(order_id) == ("pending", None, None, [])


def test_opening_an_action_url_shows_the_stage(app, reviewer):
    order_id = make_order_with_stages("pending").order_id
    response = reviewer.get(url(order_id, action="approve"))
    assert response.status_code == 303 and response.headers["Location"] == url(order_id)
    assert state(order_id) == ("pending", None, None, [])


# --- where the client address comes from -----------------------------------------------------------------

def test_forged_forwarded_for_never_reaches_the_audit_log(app, reviewer):
    order_id = make_order_with_stages("pending").order_id
    reviewer.post(url(order_id, action="approve"), headers={"X-Forwarded-For": "203.0.113.66"})
    audit = db.session.scalar(select(AuditLog).where(AuditLog.order_id == order_id))
    assert str(audit.ip_address) == "127.0.0.1"


def test_forwarded_for_is_used_when_one_proxy_hop_is_trusted(app, database_url, tmp_path):
    proxied = create_app({"TESTING": True}, env=test_env(database_url, tmp_path, TRUST_PROXY_HOPS=1))
    try:
        with proxied.app_context():
            user = make_user("proxied@example.com")
            order_id = make_order_with_stages("pending").order_id
            browser = Browser(proxied.test_client())
            assert browser.login(user.email, PASSWORD).status_code == 302
            browser.refresh_csrf("/queue")
            browser.post(url(order_id, action="approve"), headers={"X-Forwarded-For": "203.0.113.66"})
            audit = db.session.scalar(select(AuditLog).where(AuditLog.order_id == order_id))
            assert str(audit.ip_address) == "203.0.113.66"
            db.session.remove()
    finally:
        with proxied.app_context():
            db.engine.dispose()


def test_notes_with_markup_are_shown_as_text(app, reviewer):
    order = make_order()
    make_stage(order, "preBria", "pending")
    reviewer.post(url(order.order_id, action="reject"), {"notes": "<script>alert(1)</script>", "reasons": "other"})
    body = reviewer.get(url(order.order_id)).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


@pytest.mark.parametrize("path,status,icon", [
    ("/queue", "pending", "i-clock"),
    ("/orders/{o}", "approved", "i-check"),
    ("/orders/{o}/stages/preBria", "approved", "i-check"),
    ("/orders/{o}/stages/postBria", "pending", "i-clock"),
])
def test_pages_hold_under_a_strict_csp_and_show_status_by_text_and_icon(app, reviewer, path, status, icon):
    order = make_order_with_stages("approved", "pending")
    body = reviewer.get(path.format(o=order.order_id)).get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body)  # every script comes from a file
    assert not re.search(r"\sstyle=", body) and "<style" not in body and "hx-on" not in body
    assert re.findall(r'<script src="([^"]+)"', body) == ["/static/vendor/htmx-2.0.11.min.js", "/static/js/app.js",
                                                           "/static/js/keys.js"] + (
        ["/static/js/gallery.js"] if "/stages/" in path else [])
    badge = re.search(rf'<span class="badge badge-{status}[^"]*">(.*?)</span>', body, re.S).group(1)
    assert f'<use href="/static/icons.svg#{icon}">' in badge and badge.endswith(status.capitalize())


def test_reading_pages_writes_nothing(app, reviewer):
    order = make_order_with_stages("approved", "pending")
    before = db.session.scalar(select(func.count()).select_from(AuditLog))
    for path in ("/queue", f"/orders/{order.order_id}", url(order.order_id, "postBria"),
                 url(order.order_id, "postBria", "approve")):
        reviewer.get(path)
    assert db.session.scalar(select(func.count()).select_from(AuditLog)) == before
    assert state(order.order_id, "postBria") == ("pending", None, None, [])
