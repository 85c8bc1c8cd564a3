"""The admin audit log: filters by order, reviewer, action and time; keyset paging; streamed CSV export."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from lhb_review.extensions import db
from lhb_review.models import AuditLog
from tests.factories import make_user

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=timezone.utc)


def add(action="stage_approved", order_id="ORD-1", reviewer="a@example.com", at=T0, **details):
    row = AuditLog(action=action, order_id=order_id, stage="preBria", reviewer_email=reviewer,
                   details=details or {"note": "ok"}, created_at=at, ip_address="10.0.0.1")
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def admin(login_as):
    return login_as(make_user("boss@example.com", role="admin"))


def ids_in(html: str, candidates) -> set[str]:
    return {c for c in candidates if c in html}


def test_filters(admin):
    add(order_id="ORD-AAA", reviewer="a@example.com", action="stage_approved", at=T0)
    add(order_id="ORD-BBB", reviewer="b@example.com", action="stage_rejected", at=T0 + timedelta(days=2))
    add(order_id="ORD-CCC", reviewer="a@example.com", action="stage_rejected", at=T0 + timedelta(days=5))
    names = ("ORD-AAA", "ORD-BBB", "ORD-CCC")
    assert ids_in(admin.get("/admin/audit?order=ORD-BBB").get_data(as_text=True), names) == {"ORD-BBB"}
    assert ids_in(admin.get("/admin/audit?reviewer=A@example.com").get_data(as_text=True), names) == \
        {"ORD-AAA", "ORD-CCC"}
    assert ids_in(admin.get("/admin/audit?action=stage_rejected").get_data(as_text=True), names) == \
        {"ORD-BBB", "ORD-CCC"}
    html = admin.get("/admin/audit?since=2025-03-11&until=2025-03-12").get_data(as_text=True)
    assert ids_in(html, names) == {"ORD-BBB"}
    html = admin.get("/admin/audit?action=stage_rejected&reviewer=a@example.com").get_data(as_text=True)
    assert ids_in(html, names) == {"ORD-CCC"}


@pytest.mark.parametrize("query", ["since=yesterday", "since=2025-03-12&until=2025-03-01"])
def test_bad_filters_give_422_with_a_message(admin, query):
    response = admin.get(f"/admin/audit?{query}")
    assert response.status_code == 422
    assert 'role="alert"' in response.get_data(as_text=True)


def test_a_broken_page_link_gives_400_with_a_message(admin):
    response = admin.get("/admin/audit?after=!!!")
    assert response.status_code == 400
    assert 'role="alert"' in response.get_data(as_text=True) and "page link is broken" in response.get_data(as_text=True)


def test_htmx_filter_returns_only_the_rows_fragment(admin):
    add(order_id="ORD-FRAG")
    response = admin.get("/admin/audit?order=ORD-FRAG", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="audit-rows">') and "<html" not in html
    assert "ORD-FRAG" in html
    assert "HX-Request" in response.headers["Vary"]


def test_keyset_paging_walks_every_row_once_even_with_equal_timestamps(admin):
    for i in range(7):
        add(order_id=f"ORD-P{i}", at=T0 + timedelta(minutes=i // 2))  # pairs share a timestamp
    from lhb_review.ops import audit_query

    seen, cursor = [], None
    while True:
        rows, cursor = audit_query.page(audit_query.AuditFilters(action="stage_approved"), cursor, limit=3)
        seen.extend(r.order_id for r in rows)
        if cursor is None:
            break
    assert sorted(seen) == [f"ORD-P{i}" for i in range(7)] and len(seen) == 7


def test_page_link_to_older_entries(admin):
    for i in range(30):
        add(order_id=f"ORD-L{i:02d}", at=T0 + timedelta(minutes=i))
    html = admin.get("/admin/audit?size=25").get_data(as_text=True)
    assert "ORD-L29" in html and "ORD-L04" not in html
    import re

    link = re.search(r'href="(/admin/audit\?after=[^"]+)"', html).group(1).replace("&amp;", "&")
    older = admin.get(link).get_data(as_text=True)
    assert "ORD-L04" in older and "ORD-L00" in older and "ORD-L29" not in older


def test_csv_export_of_a_filtered_view(admin):
    add(order_id="ORD-CSV1", reviewer="a@example.com", at=T0)
    add(order_id="ORD-CSV2", reviewer="b@example.com", at=T0 + timedelta(minutes=1))
    add(order_id="=HYPERLINK(\"http://evil\")", reviewer="a@example.com", at=T0 + timedelta(minutes=2))
    response = admin.get("/admin/audit.csv?reviewer=a@example.com")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.is_streamed
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["order_id"] for r in rows] == ["'=HYPERLINK(\"http://evil\")", "ORD-CSV1"]
    assert rows[1]["reviewer_email"] == "a@example.com" and rows[1]["ip_address"] == "10.0.0.1"
    assert rows[1]["details"] == '{"note": "ok"}'


def test_csv_export_streams_in_batches(app):
    from lhb_review.ops import audit_query

    for i in range(5):
        add(order_id=f"ORD-B{i}", at=T0 + timedelta(seconds=i))
    chunks = list(audit_query.csv_lines(audit_query.AuditFilters(), batch=2))
    assert len(chunks) == 1 + 3  # header, then batches of 2, 2 and 1
    body = "".join(chunks)
    assert all(f"ORD-B{i}" in body for i in range(5))


def test_reviewer_filter_matches_token_names_as_written(admin):
    add(order_id="ORD-TOKEN", reviewer="Pipeline-Prod")
    add(order_id="ORD-PERSON", reviewer="ann@example.com")
    html = admin.get("/admin/audit?reviewer=Pipeline-Prod").get_data(as_text=True)
    assert "ORD-TOKEN" in html and "ORD-PERSON" not in html
    assert "ORD-PERSON" in admin.get("/admin/audit?reviewer=Ann@Example.com").get_data(as_text=True)


def test_action_choices_list_each_action_once(admin):
    for action in ("stage_rejected", "stage_approved", "stage_approved", "user_created"):
        add(action=action)
    from lhb_review.ops import audit_query

    assert audit_query.known_actions() == ["login", "stage_approved", "stage_rejected", "user_created"]


def test_a_refused_filter_answers_htmx_with_the_results_fragment_only(admin):
    add(order_id="ORD-RANGE")
    response = admin.get("/admin/audit?since=2025-03-12&until=2025-03-10", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert html.lstrip().startswith('<section id="audit-rows">') and "<html" not in html and "<nav" not in html
    assert "The start of the range must come before its end." in html


def test_claims_and_releases_are_hidden_until_asked_for(admin):
    add(action="stage_claimed", order_id="ORD-CLAIM")
    add(action="stage_released", order_id="ORD-RELEASE")
    add(action="stage_approved", order_id="ORD-DECIDED")
    names = ("ORD-CLAIM", "ORD-RELEASE", "ORD-DECIDED")
    assert ids_in(admin.get("/admin/audit").get_data(as_text=True), names) == {"ORD-DECIDED"}
    assert ids_in(admin.get("/admin/audit?claims=1").get_data(as_text=True), names) == set(names)
    assert ids_in(admin.get("/admin/audit?action=stage_claimed").get_data(as_text=True), names) == {"ORD-CLAIM"}


def test_entries_read_as_sentences_and_link_their_order(admin):
    add(action="stage_rejected", order_id="ORD-READ", status_before="in_review", status_after="rejected",
        notes="Hair is blond, specs say brown.")
    html = admin.get("/admin/audit").get_data(as_text=True)
    assert 'href="/orders/ORD-READ"' in html
    assert "Rejected" in html and "Hair is blond, specs say brown." in html
    assert "status_before" not in html and "{&#34;" not in html


def test_paging_goes_back_to_newer_entries(admin):
    import re

    for i in range(60):
        add(order_id=f"ORD-B{i:02d}", at=T0 + timedelta(minutes=i))
    first = admin.get("/admin/audit?size=25&action=stage_approved").get_data(as_text=True)  # not the sign-in
    assert "Newer entries" not in first
    older = admin.get(re.search(r'href="(/admin/audit\?after=[^"]+)"', first).group(1).replace("&amp;", "&"))
    older = admin.get(re.search(r'href="(/admin/audit\?after=[^"]+)"', older.get_data(as_text=True)).group(1)
                      .replace("&amp;", "&")).get_data(as_text=True)
    assert "ORD-B09" in older and "ORD-B10" not in older  # the third page: B09 .. B00
    newer_link = re.search(r'href="(/admin/audit\?before=[^"]+)"', older).group(1).replace("&amp;", "&")
    newer = admin.get(newer_link).get_data(as_text=True)
    assert "ORD-B34" in newer and "ORD-B10" in newer and "ORD-B35" not in newer and "ORD-B09" not in newer
    top = re.search(r'href="(/admin/audit\?before=[^"]+)"', newer).group(1).replace("&amp;", "&")
    newest = admin.get(top).get_data(as_text=True)
    assert "ORD-B59" in newest and "ORD-B35" in newest and "Newer entries" not in newest
