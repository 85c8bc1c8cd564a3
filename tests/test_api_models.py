"""The models are the one source: the generated document and the API's validation agree on every body."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema_rs
import pytest
from sqlalchemy import func, select, update

from lhb_review.api.spec import build_spec
from lhb_review.extensions import db
from lhb_review.models import Order
from tests.factories import make_order_with_stages
from tests.pipeline_helpers import asset, make_token, order_body

DRAFT = "https://json-schema.org/draft/2020-12/schema"
ROOT = Path(__file__).resolve().parent.parent


def validator(name: str):
    spec = build_spec()
    schema = {"$schema": DRAFT, "components": spec["components"], "$ref": f"#/components/schemas/{name}"}
    return jsonschema_rs.validator_for(schema, validate_formats=True)


@pytest.fixture
def client(app):
    token = make_token("models")
    test_client = app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return test_client


def put_json(client, path: str, body) -> int:
    return client.put("/api/v1" + path, data=json.dumps(body), content_type="application/json").status_code


def test_no_json_schema_is_written_by_hand():
    """Schemas come from the models: outside the models themselves (core/contracts.py, whose few
    json_schema_extra annotations say what a type cannot), no module spells out a JSON Schema constraint."""
    keywords = re.compile(
        r"""["'](additionalProperties|patternProperties|oneOf|anyOf|allOf|minItems|maxItems|minLength|maxLength"""
        r"""|pattern|minimum|maximum|enum|uniqueItems|format)["']\s*:"""
    )
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "lhb_review").rglob("*.py")
        if path.name != "contracts.py" and keywords.search(path.read_text())
    ]
    assert offenders == []


SHA = "a" * 64
ORDER_CASES = [
    order_body(),
    order_body(customer_email="shop@example.test"),
    order_body(status="received\n"),
    order_body(status="In Review"),
    order_body(order_date="2026-11-20T09:30:00+20:00"),
    order_body(order_date="0001-01-01T00:00:00Z"),
    order_body(order_date="2026-11-20t09:30:00z"),
    order_body(customer_first_name="   "),
    order_body(customer_first_name="\u00a0Ada"),
    order_body(book_specs={"title": "NUL \x00 inside"}),
    order_body(book_specs={"key\x00": 1}),
    order_body(webhooks=["https://a.example/h", "https://a.example/h"]),
    order_body(webhooks=["https://a.example/h", "https://b.example/h"]),
    order_body(webhooks=["http://[::1]/h"]),
    order_body(webhooks=[{"url": "https://a.example/h", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]),
    order_body(webhooks=[{"url": "https://a.example/h", "secret": "whsec_not base64 at all!"}]),
    order_body(platform="amazon"),
    order_body(platform="amazon", amazon_order_id="111-2222222-3333333"),
    order_body(colour="blue"),
]


@pytest.mark.parametrize("body", ORDER_CASES, ids=range(len(ORDER_CASES)))
def test_an_order_body_is_accepted_exactly_when_the_document_allows_it(client, body):
    documented = validator("OrderInput").is_valid(body)
    status = put_json(client, "/orders/ORD-1", body)
    assert status in (200, 201, 422)
    assert (status != 422) == documented, (status, documented)


ASSET_CASES = [
    [asset("front")],
    [asset("front"), asset("front")],
    [dict(asset("front"), sha256=SHA + "\n")],
    [dict(asset("front"), content_type="image/png\n")],
    [dict(asset("front"), key="a/../b")],
    [dict(asset("front"), key="a/..b/./c")],
    [dict(asset("front"), key="/abs")],
    [dict(asset("front"), key="a\\b")],
    [dict(asset("front"), label="NUL \x00")],
    [],
]


@pytest.mark.parametrize("assets", ASSET_CASES, ids=range(len(ASSET_CASES)))
def test_a_submission_is_accepted_exactly_when_the_document_allows_it(client, assets):
    assert put_json(client, "/orders/ORD-1", order_body()) == 201
    documented = validator("StageSubmission").is_valid({"assets": assets})
    status = put_json(client, "/orders/ORD-1/stages/preBria", {"assets": assets})
    assert status in (200, 201, 422)
    assert (status != 422) == documented, (status, documented)


def test_duplicates_are_refused_and_the_document_says_each_item_once(client):
    spec = build_spec()["components"]["schemas"]
    assert spec["StageSubmission"]["properties"]["assets"]["uniqueItems"] is True
    webhooks = spec["OrderInput"]["properties"]["webhooks"]["anyOf"][0]
    assert webhooks["uniqueItems"] is True and "once" in webhooks["description"]
    put_json(client, "/orders/ORD-1", order_body())
    same_key = [asset("front"), dict(asset("front", "v2"))]
    response = client.put("/api/v1/orders/ORD-1/stages/preBria", json={"assets": same_key})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"assets[1].key": "This key is listed twice."}


@pytest.mark.parametrize(
    "query, documented",
    [("status=", False), ("status=pending", True), ("status=pending,approved", True), ("status=done", False),
     ("cursor=", True), ("limit=0", False), ("limit=200", True)],
)
def test_the_waiting_list_parameters_agree_with_the_document(client, query, documented):
    # A cursor is opaque and signed: any string fits the document, only handed-out ones are accepted (400
    # bad_cursor otherwise; test_api.py and test_paging.py pin that).
    [param] = [p for p in build_spec()["paths"]["/stages"]["get"]["parameters"] if p["name"] == query.split("=")[0]]
    schema = {"$schema": DRAFT, **param["schema"]}
    value = query.split("=", 1)[1]
    value = int(value) if param["schema"]["type"] == "integer" else value
    assert jsonschema_rs.validator_for(schema).is_valid(value) == documented
    status = client.get(f"/api/v1/stages?{query}").status_code
    assert status == (200 if documented else 422)


@pytest.mark.parametrize("notes, documented", [("Fine", True), ("NUL \x00 here", False), ("x" * 5001, False)])
def test_approval_notes_agree_with_the_document(client, notes, documented):
    order = make_order_with_stages("pending")
    assert validator("ApproveInput").is_valid({"notes": notes}) == documented
    response = client.post(f"/api/v1/orders/{order.order_id}/stages/preBria/approve", json={"notes": notes})
    assert response.status_code == (200 if documented else 422)


def test_a_stored_email_the_input_rules_would_refuse_is_still_a_conforming_answer(client):
    """An e-mail stored before the rules (or by the importer) is answered as stored: the answer's schema
    documents it as text, not as format: email."""
    put_json(client, "/orders/ORD-1", order_body())
    db.session.execute(update(Order).where(Order.order_id == "ORD-1").values(customer_email="not an e-mail"))
    db.session.commit()
    response = client.get("/api/v1/orders/ORD-1")
    assert response.status_code == 200 and response.get_json()["customer_email"] == "not an e-mail"
    assert list(validator("OrderView").iter_errors(response.get_json())) == []


@pytest.mark.parametrize("order_id", ["X%0A", "ORD-1%0A", "a%20b"])
def test_order_ids_are_full_matches(client, order_id):
    # A control character in a path segment is refused at the edge (404, no such order can exist); a space
    # reaches the model (422). Either way no order is created.
    assert put_json(client, f"/orders/{order_id}", order_body()) in (404, 422)
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0


def test_the_readme_field_tables_are_the_ones_the_models_generate():
    from lhb_review.api.spec import readme_fields

    readme = (ROOT / "README.md").read_text()
    begin, end = "<!-- api-fields:begin -->\n", "<!-- api-fields:end -->"
    assert begin in readme and end in readme
    assert readme.split(begin, 1)[1].split(end, 1)[0] == readme_fields()
