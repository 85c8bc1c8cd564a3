"""Markup and script placed in every field people type or the pipeline sends (customer names, specs, notes,
reasons, asset labels, error messages) shows up as text on every page that renders it, never as markup."""
from __future__ import annotations

import pytest

from lhb_review.extensions import db
from lhb_review.models import AuditLog, ErrorLog
from tests.factories import make_order, make_stage, make_user
from tests.security_routes import ROUTES
from tests.world import World

RAW = "<x-lhb-probe"
# HTML-escaped text, or JSON shown as text with Jinja's tojson (which writes < as \u003c).
ESCAPED = ("&lt;x-lhb-probe", "\\u003cx-lhb-probe")


def payload(field: str) -> str:
    return (f'<x-lhb-probe data-f="{field}"></x-lhb-probe><script>window.lhbProbe="{field}"</script>'
            f'"\'><img src=x onerror="lhbProbe=1">')


FIELDS = ["customer_name", "character_spec", "book_spec", "asset_label", "reviewer_notes", "audit_notes",
          "reject_reason", "error_message", "order_id_search"]

# Where each field must be seen (escaped). Pages that land later add themselves here.
ORDER = "/orders/PROBE-1"
STAGE = "/orders/PROBE-1/stages/preBria"
RENDERED_ON: dict[str, list[str]] = {
    "customer_name": ["/queue", ORDER, STAGE],
    "character_spec": [ORDER, STAGE],
    "book_spec": [ORDER],
    "asset_label": [STAGE],
    "reviewer_notes": [ORDER, STAGE],
    "audit_notes": ["/admin/audit", ORDER],
    "reject_reason": ["/admin/audit"],
    "error_message": ["/admin/errors", "/admin/errors/err-probe"],
}

READS = [r for r in ROUTES if r.method == "GET"]


@pytest.fixture
def hostile_world(app, make_client):
    world = World.build(app, make_client)
    order = make_order(
        order_id="PROBE-1",
        customer_first_name=payload("customer_name")[:100],
        customer_last_name="<b>bold</b>",
        customer_email="probe@example.com",
        character_specs={"name": payload("character_spec"), "hair": {"color": payload("character_spec")}},
        book_specs={"title": payload("book_spec"), "dedication": payload("book_spec")},
        r2_assets={stage: [{"key": f"probe/{stage}.png", "label": payload("asset_label"), "content_type": "image/png",
                            "sha256": "0" * 64}] for stage in ("preBria", "postBria", "postPdf")},
    )
    make_stage(order, "preBria", "rejected", reviewer_email="walk-reviewer@example.com",
               reviewer_notes=payload("reviewer_notes"))
    make_stage(order, "postBria", "pending")
    make_stage(order, "postPdf", "pending")
    db.session.add(AuditLog(order_id=order.order_id, action="stage_rejected", stage="preBria",
                            reviewer_email="walk-reviewer@example.com",
                            details={"notes": payload("audit_notes"), "reasons": [payload("reject_reason")],
                                     "status_before": "pending", "status_after": "rejected"}))
    db.session.add(ErrorLog(error_id="err-probe", error_type=payload("error_message")[:50], severity="error",
                            message=payload("error_message"), details={"order_id": order.order_id}))
    db.session.commit()
    world.values.update(order_id=order.order_id, stage="preBria", error_id="err-probe")
    return world


@pytest.mark.parametrize("identity", ["reviewer", "admin"])
@pytest.mark.parametrize("route", READS, ids=lambda r: r.id)
def test_no_page_renders_a_payload_as_markup(hostile_world, route, identity):
    browser = hostile_world.client(identity)
    response = hostile_world.request(browser, route, identity, query="q=" + "%3Cx-lhb-probe%3E")
    if response.mimetype not in ("text/html", "application/json"):
        return  # files (images, PDFs) are served as they are, with nosniff and their own strict policy
    html = response.get_data(as_text=True)
    assert RAW not in html, f"{route.id} renders markup from data"
    assert "<script>window.lhbProbe" not in html
    assert 'onerror="lhbProbe' not in html


@pytest.mark.parametrize("field,path", [(f, p) for f, paths in RENDERED_ON.items() for p in paths])
def test_each_field_is_shown_as_text_where_it_belongs(hostile_world, field, path):
    browser = hostile_world.client("admin")
    html = browser.get(path).get_data(as_text=True)
    assert any(form in html for form in ESCAPED), f"{field} is not shown on {path}"


def test_a_payload_typed_into_the_sign_in_form_comes_back_as_text(client):
    client.refresh_csrf("/login")
    response = client.post("/login", {"email": payload("email"), "password": "x"})
    html = response.get_data(as_text=True)
    assert RAW not in html
    assert any(form in html for form in ESCAPED)
