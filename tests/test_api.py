"""The pipeline API over real HTTP: tokens, every endpoint, its rules and errors, checked in the database."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lhb_review.extensions import db
from lhb_review.models import ApiToken, Approval, AuditLog, Order, ReviewStage, WebhookDelivery
from lhb_review import review
from lhb_review.pipeline import tokens
from lhb_review.core.actors import Actor
from lhb_review.core.errors import AlreadyDecided
from tests.factories import make_order, make_order_with_stages
from tests.pipeline_helpers import ADMIN_CLI, Api, asset, make_token, order_body

REVIEWER = Actor(email="rev@example.com", ip="192.0.2.10", user_agent="pytest")


@pytest.fixture
def api(app, live_server):
    return Api(live_server.url, make_token("pipeline-prod"))


def audits(order_id: str, action: str | None = None) -> list[AuditLog]:
    db.session.expire_all()
    query = select(AuditLog).where(AuditLog.order_id == order_id).order_by(AuditLog.created_at)
    if action:
        query = query.where(AuditLog.action == action)
    return list(db.session.scalars(query))


def stage_row(order_id: str, stage: str) -> ReviewStage | None:
    db.session.expire_all()
    return db.session.scalar(
        select(ReviewStage).where(ReviewStage.order_id == order_id, ReviewStage.stage_name == stage)
    )


def approval_status(order_id: str, stage: str) -> str | None:
    return db.session.scalar(
        select(Approval.status).where(Approval.order_id == order_id, Approval.stage == stage)
    )


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    return body["error"]


# --- tokens and authentication


@pytest.mark.parametrize(
    "header", [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer lhb_not-a-real-token", "Bearer x"]
)
def test_requests_without_a_valid_token_get_401_json(app, live_server, header):
    api = Api(live_server.url, None)
    headers = {"Authorization": header} if header else {}
    response = api.get("/stages", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] in ("unauthorized", "invalid_token")


def test_a_revoked_token_is_refused(app, live_server):
    token = make_token("old-pipeline")
    api = Api(live_server.url, token)
    assert api.get("/stages").status_code == 200
    tokens.revoke(ADMIN_CLI, "old-pipeline")
    assert_error(api.get("/stages"), 401, "invalid_token")


def test_a_token_is_stored_only_as_its_hash_and_marked_used(app, live_server):
    token = make_token("hash-check")
    row = db.session.scalar(select(ApiToken).where(ApiToken.name == "hash-check"))
    assert token not in (row.token_hash, row.prefix) and len(token) > 40 and row.last_used_at is None
    assert Api(live_server.url, token).get("/stages").status_code == 200
    db.session.expire_all()
    assert db.session.scalar(select(ApiToken.last_used_at).where(ApiToken.name == "hash-check")) is not None


def test_cli_creates_lists_and_revokes_tokens(app, runner, live_server):
    created = runner.invoke(args=["tokens", "create", "ci-bot"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("lhb_")
    listed = runner.invoke(args=["tokens", "list"])
    assert "ci-bot" in listed.output and token not in listed.output and "active" in listed.output
    assert runner.invoke(args=["tokens", "create", "ci-bot"]).exit_code == 1
    assert Api(live_server.url, token).get("/stages").status_code == 200
    assert runner.invoke(args=["tokens", "revoke", "ci-bot"]).exit_code == 0
    assert "revoked" in runner.invoke(args=["tokens", "list"]).output
    assert runner.invoke(args=["tokens", "revoke", "ci-bot"]).exit_code == 1
    assert runner.invoke(args=["tokens", "revoke", "nobody"]).exit_code == 1
    assert Api(live_server.url, token).get("/stages").status_code == 401
    assert [a.action for a in audits("")] == ["api_token_created", "api_token_revoked"]


@pytest.mark.parametrize("name", ["", "has space", "_leading", "x" * 101])
def test_cli_refuses_bad_token_names(app, runner, name):
    result = runner.invoke(args=["tokens", "create", name])
    assert result.exit_code == 1
    assert count(ApiToken) == 0


# --- errors that never turn into HTML or a 500


def test_unknown_api_routes_answer_404_json(api):
    for path in ("/nope", "/orders", "/orders/A/stages/preBria/explode"):
        assert_error(api.get(path), 404, "not_found")
    response = api.session.get(api.base.replace("/api/v1", "/api/v2/orders"))
    assert_error(response, 404, "not_found")


def test_wrong_method_answers_405_json_with_allow(api):
    error = assert_error(api.request("DELETE", "/orders/ORD-1"), 405, "method_not_allowed")
    assert error["message"]
    response = api.request("POST", "/orders/ORD-1")
    assert response.status_code == 405 and "PUT" in response.headers["Allow"]
    assert "POST" in api.request("GET", "/orders/ORD-1/stages/preBria/approve").headers["Allow"]


@pytest.mark.parametrize("data", ["{bad", "", "[1,", '{"a": NaN}', "1" * 5000])
def test_malformed_json_answers_400(api, data):
    response = api.put("/orders/ORD-1", data=data, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "malformed_json")
    assert count(Order) == 0


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_wrong_content_type_answers_415(api, content_type):
    response = api.put(
        "/orders/ORD-1", data='{"platform": "shopify"}', headers={"Content-Type": content_type}
    )
    assert_error(response, 415, "unsupported_media_type")
    assert count(Order) == 0


def test_oversized_body_answers_413(app, api, monkeypatch):
    monkeypatch.setitem(app.config, "API_MAX_BODY_BYTES", 2000)
    big = order_body(book_specs={"blurb": "x" * 5000})
    assert_error(api.put("/orders/ORD-1", big), 413, "request_entity_too_large")
    chunked = api.put(
        "/orders/ORD-1", data=(b"x" * 1000 for _ in range(5)), headers={"Content-Type": "application/json"}
    )
    assert_error(chunked, 413, "request_entity_too_large")
    assert count(Order) == 0


def test_api_never_redirects_to_the_login_page(api):
    response = api.get("/orders/ORD-404", allow_redirects=False)
    assert response.status_code == 404 and "login" not in response.text


def test_lone_surrogates_are_refused_not_a_500(api):
    data = '{"platform": "shopify", "project": "\\ud800"}'
    response = api.put("/orders/ORD-1", data=data, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "malformed_json")


# --- orders


def test_put_order_creates_it_and_audits_the_token(api):
    response = api.put("/orders/ORD-1", order_body())
    assert response.status_code == 201
    assert response.headers["Location"].endswith("/api/v1/orders/ORD-1")
    assert response.json()["result"] == "created"
    order = db.session.scalar(select(Order).where(Order.order_id == "ORD-1"))
    assert (order.platform, order.customer_email, order.status) == ("shopify", "ada@example.com", "in_review")
    [row] = audits("ORD-1")
    assert (row.action, row.reviewer_email, str(row.ip_address), row.user_agent) == (
        "order_created",
        "pipeline-prod",
        "127.0.0.1",
        "pipeline-tests/1",
    )


def test_put_order_twice_is_idempotent(api):
    assert api.put("/orders/ORD-1", order_body()).status_code == 201
    updated_at = db.session.scalar(select(Order.updated_at).where(Order.order_id == "ORD-1"))
    again = api.put("/orders/ORD-1", order_body(order_date="2026-11-20T10:30:00+01:00"))
    assert again.status_code == 200 and again.json()["result"] == "unchanged"
    db.session.expire_all()
    assert db.session.scalar(select(Order.updated_at).where(Order.order_id == "ORD-1")) == updated_at
    assert len(audits("ORD-1")) == 1 and count(Order) == 1


def test_put_order_updates_changed_fields_only(api):
    api.put("/orders/ORD-1", order_body())
    response = api.put("/orders/ORD-1", order_body(customer_last_name="Byron", status="printing"))
    assert response.status_code == 200
    assert response.json()["result"] == "updated"
    assert sorted(response.json()["changed"]) == ["customer_last_name", "status"]
    assert response.json()["order"]["customer_last_name"] == "Byron"
    [_, row] = audits("ORD-1")
    assert row.action == "order_updated" and sorted(row.details["changed"]) == [
        "customer_last_name",
        "status",
    ]


def test_put_order_keeps_the_stage_assets(api):
    api.put("/orders/ORD-1", order_body())
    api.put("/orders/ORD-1/stages/preBria", {"assets": [asset("front")]})
    api.put("/orders/ORD-1", order_body(status="printing"))
    db.session.expire_all()
    assert (
        db.session.scalar(select(Order.r2_assets).where(Order.order_id == "ORD-1"))["preBria"][0]["key"]
        == "orders/x/front"
    )


@pytest.mark.parametrize(
    "override, field",
    [
        ({"platform": ...}, "platform"),
        ({"platform": "ebay"}, "platform"),
        ({"customer_email": "not-an-email"}, "customer_email"),
        ({"customer_email": ...}, "customer_email"),
        ({"customer_first_name": ""}, "customer_first_name"),
        ({"customer_first_name": "x" * 101}, "customer_first_name"),
        ({"customer_last_name": "Null\x00Byte"}, "customer_last_name"),
        ({"project": 7}, "project"),
        ({"order_date": ...}, "order_date"),
        ({"order_date": "yesterday"}, "order_date"),
        ({"order_date": "2026-11-20T09:30:00"}, "order_date"),
        ({"ai_generation_started_at": "2026-13-01T00:00:00Z"}, "ai_generation_started_at"),
        ({"platform": "amazon"}, "amazon_order_id"),
        ({"status": "In Review!"}, "status"),
        ({"character_specs": ["not", "an", "object"]}, "character_specs"),
        ({"book_specs": {"title": "NUL \x00 inside"}}, "book_specs"),
        ({"colour": "blue"}, "colour"),
        ({"webhooks": "https://example.com/hook"}, "webhooks"),
        ({"webhooks": ["ftp://example.com/hook"]}, "webhooks[0]"),
        ({"webhooks": [{"url": "https://example.com/h", "secret": "short"}]}, "webhooks[0].secret"),
        ({"webhooks": [{"url": "https://user:pw@example.com/h"}]}, "webhooks[0].url"),
        ({"webhooks": [{"href": "https://example.com/h"}]}, "webhooks[0]"),
        ({"webhooks": ["https://example.com/h", "https://example.com/h"]}, "webhooks[1]"),
    ],
)
def test_put_order_validates_each_field(api, override, field):
    response = api.put("/orders/ORD-1", order_body(**override))
    error = assert_error(response, 422, "invalid")
    assert field in error["fields"], error
    assert count(Order) == 0 and not audits("ORD-1")


def test_put_order_reports_every_bad_field_at_once(api):
    response = api.put("/orders/ORD-1", {"platform": "ebay"})
    fields = assert_error(response, 422, "invalid")["fields"]
    assert {
        "platform",
        "project",
        "customer_first_name",
        "customer_last_name",
        "customer_email",
        "order_date",
    } <= set(fields)


@pytest.mark.parametrize("body", [[], "text", 3, None])
def test_put_order_needs_an_object(api, body):
    assert_error(
        api.put(
            "/orders/ORD-1", data=__import__("json").dumps(body), headers={"Content-Type": "application/json"}
        ),
        422,
        "invalid",
    )


@pytest.mark.parametrize("order_id", ["has space", "x" * 256, "semi;colon", "ünïcode"])
def test_put_order_refuses_bad_order_ids(api, order_id):
    assert_error(api.put(f"/orders/{order_id}", order_body()), 422, "invalid")
    assert count(Order) == 0


def test_get_order_returns_it_with_stages_and_hides_webhook_secrets(api):
    secret = "s3cr3t-value-long-enough"
    api.put(
        "/orders/ORD-1",
        order_body(webhooks=["https://a.example/h", {"url": "https://b.example/h", "secret": secret}]),
    )
    api.put("/orders/ORD-1/stages/preBria", {"assets": [asset("front")]})
    response = api.get("/orders/ORD-1")
    assert response.status_code == 200 and secret not in response.text
    body = response.json()
    assert body["webhooks"] == [
        {"url": "https://a.example/h", "has_secret": False},
        {"url": "https://b.example/h", "has_secret": True},
    ]
    assert [s["stage"] for s in body["stages"]] == ["preBria"]
    assert body["stages"][0]["review_status"] == "pending"
    assert db.session.scalar(select(Order.webhooks))[1]["secret"] == secret


def test_get_unknown_order_is_404(api):
    assert_error(api.get("/orders/ORD-404"), 404, "not_found")


# --- stage submissions


def submit(api, order_id, stage, *assets):
    return api.put(f"/orders/{order_id}/stages/{stage}", {"assets": list(assets)})


def test_submitting_a_stage_creates_it_pending_with_its_assets(api):
    api.put("/orders/ORD-1", order_body())
    response = submit(api, "ORD-1", "preBria", asset("front"), asset("side"))
    assert response.status_code == 201 and response.json()["result"] == "created"
    assert response.json()["stage"]["status"] == "pending"
    assert stage_row("ORD-1", "preBria").status == "pending"
    stored = db.session.scalar(select(Order.r2_assets).where(Order.order_id == "ORD-1"))["preBria"]
    assert [a["key"] for a in stored] == ["orders/x/front", "orders/x/side"]
    [row] = audits("ORD-1", "stage_submitted")
    assert row.reviewer_email == "pipeline-prod" and row.details["result"] == "created"


def test_submitting_the_same_assets_again_changes_nothing(api):
    api.put("/orders/ORD-1", order_body())
    submit(api, "ORD-1", "preBria", asset("front"), asset("side"))
    before = stage_row("ORD-1", "preBria").updated_at
    relabelled = dict(asset("side"), label="Another label")
    response = submit(api, "ORD-1", "preBria", relabelled, asset("front"))
    assert response.status_code == 200 and response.json()["result"] == "unchanged"
    assert stage_row("ORD-1", "preBria").updated_at == before
    assert len(audits("ORD-1", "stage_submitted")) == 1


def test_resubmitting_different_assets_reopens_a_rejected_stage(api):
    api.put("/orders/ORD-1", order_body())
    submit(api, "ORD-1", "preBria", asset("front"))
    review.reject(REVIEWER, "ORD-1", "preBria", notes="Hair colour drifts", reasons=["character_drift"])
    response = submit(api, "ORD-1", "preBria", asset("front", "v2"))
    assert response.json()["result"] == "resubmitted"
    row = stage_row("ORD-1", "preBria")
    assert (row.status, row.reviewer_email, row.reviewed_at) == ("pending", None, None)
    last = audits("ORD-1", "stage_submitted")[-1]
    assert last.details["status_before"] == "rejected" and last.details["result"] == "resubmitted"
    assert not audits("ORD-1", "approval_voided")


def test_resubmitting_different_assets_voids_an_approval(api):
    hook = "https://pipeline.example/hooks"
    api.put("/orders/ORD-1", order_body(webhooks=[hook]))
    submit(api, "ORD-1", "preBria", asset("front"))
    review.approve(REVIEWER, "ORD-1", "preBria")
    assert approval_status("ORD-1", "preBria") == "approved"
    response = submit(api, "ORD-1", "preBria", asset("front", "v2"))
    assert response.json()["stage"]["status"] == "pending"
    row = stage_row("ORD-1", "preBria")
    assert (row.status, row.reviewer_email) == ("pending", None)
    assert approval_status("ORD-1", "preBria") == "pending"
    [voided] = audits("ORD-1", "approval_voided")
    assert voided.details["status_before"] == "approved" and voided.details["reason"]
    assert voided.details["assets_before"][0]["sha256"] == asset("front")["sha256"]
    assert voided.details["assets_after"][0]["sha256"] == asset("front", "v2")["sha256"]
    events = db.session.scalars(select(WebhookDelivery.event).order_by(WebhookDelivery.created_at)).all()
    assert events == ["stage_approved", "approval_voided"]


def test_submitting_to_an_unknown_order_is_404(api):
    assert_error(submit(api, "ORD-404", "preBria", asset("front")), 404, "not_found")
    assert count(ReviewStage) == 0


@pytest.mark.parametrize("path", ["/orders/ORD-1/stages/prebria", "/orders/ORD-1/stages/final"])
def test_unknown_stage_names_are_404(api, path):
    api.put("/orders/ORD-1", order_body())
    assert_error(api.put(path, {"assets": [asset("front")]}), 404, "unknown_stage")
    assert_error(api.get(path), 404, "unknown_stage")
    assert_error(api.post(path + "/approve"), 404, "unknown_stage")


@pytest.mark.parametrize(
    "assets, field",
    [
        ([], "assets"),
        (None, "assets"),
        ([{"key": "../etc/passwd", "content_type": "image/png", "sha256": "a" * 64}], "assets[0].key"),
        ([{"key": "/abs.png", "content_type": "image/png", "sha256": "a" * 64}], "assets[0].key"),
        ([{"key": "a.png", "content_type": "image/png", "sha256": "A" * 64}], "assets[0].sha256"),
        ([{"key": "a.png", "content_type": "png", "sha256": "a" * 64}], "assets[0].content_type"),
        ([{"key": "a.png", "content_type": "image/png", "sha256": "a" * 64, "size": 3}], "assets[0]"),
        ([{"key": "a.png", "content_type": "image/png", "sha256": "a" * 64}] * 2, "assets[1].key"),
        (["a.png"], "assets[0]"),
    ],
)
def test_submission_validates_each_asset(api, assets, field):
    api.put("/orders/ORD-1", order_body())
    response = api.put("/orders/ORD-1/stages/preBria", {"assets": assets})
    assert field in assert_error(response, 422, "invalid")["fields"]
    assert count(ReviewStage) == 0 and not audits("ORD-1", "stage_submitted")


# --- stage status


def test_get_stage_answers_like_get_stage_status_plus_review_state(api):
    order = make_order_with_stages("pending")
    review.reject(REVIEWER, order.order_id, "preBria", notes="Name misspelled", reasons=["text_error"])
    body = api.get(f"/orders/{order.order_id}/stages/preBria").json()
    assert (body["status"], body["review_status"], body["reviewer"], body["notes"]) == (
        "pending",
        "rejected",
        "rev@example.com",
        "Name misspelled",
    )
    assert body["reviewed_at"] and body["reasons"] == ["text_error"] and body["assets"]


def test_get_stage_reads_reasons_from_the_latest_decision(api):
    order = make_order_with_stages("rejected")
    db.session.add(
        AuditLog(
            order_id=order.order_id,
            action="stage_rejected",
            stage="preBria",
            reviewer_email="rev@example.com",
            details={"status_before": "pending", "reasons": ["character_drift", "anatomy"]},
        )
    )
    db.session.commit()
    assert api.get(f"/orders/{order.order_id}/stages/preBria").json()["reasons"] == [
        "character_drift",
        "anatomy",
    ]


def test_get_stage_never_submitted_is_pending(api):
    order = make_order()
    body = api.get(f"/orders/{order.order_id}/stages/postPdf").json()
    assert (body["status"], body["review_status"]) == ("pending", None)
    assert_error(api.get("/orders/ORD-404/stages/preBria"), 404, "not_found")


# --- approve


def test_approve_goes_through_the_decision_rules_as_the_token(api):
    order = make_order_with_stages("pending", webhooks=["https://pipeline.example/hooks"])
    response = api.post(f"/orders/{order.order_id}/stages/preBria/approve", {"notes": "Fine by QA bot"})
    assert response.status_code == 200 and response.json()["result"] == "approved"
    assert response.json()["stage"]["status"] == "approved"
    row = stage_row(order.order_id, "preBria")
    assert (row.status, row.reviewer_email, row.reviewer_notes) == (
        "approved",
        "pipeline-prod",
        "Fine by QA bot",
    )
    assert approval_status(order.order_id, "preBria") == "approved"
    [entry] = audits(order.order_id)
    assert (entry.action, entry.reviewer_email, str(entry.ip_address)) == (
        "stage_approved",
        "pipeline-prod",
        "127.0.0.1",
    )
    [delivery] = db.session.scalars(select(WebhookDelivery)).all()
    assert (delivery.event, delivery.payload["status"], delivery.payload["reviewer"]) == (
        "stage_approved",
        "approved",
        "pipeline-prod",
    )


def test_approve_again_by_the_same_token_is_idempotent(api):
    order = make_order_with_stages("pending")
    api.post(f"/orders/{order.order_id}/stages/preBria/approve")
    again = api.post(f"/orders/{order.order_id}/stages/preBria/approve")
    assert again.status_code == 200 and again.json()["result"] == "already_approved"
    assert len(audits(order.order_id)) == 1


def test_approve_a_stage_decided_by_someone_else_is_409(api):
    order = make_order_with_stages("pending")
    review.reject(REVIEWER, order.order_id, "preBria", notes="No", reasons=["other"])
    error = assert_error(api.post(f"/orders/{order.order_id}/stages/preBria/approve"), 409, "already_decided")
    assert error["details"]["status"] == "rejected"
    assert stage_row(order.order_id, "preBria").status == "rejected"
    assert [a.action for a in audits(order.order_id)] == ["stage_rejected"]


def test_approve_out_of_order_is_409(api):
    order = make_order_with_stages("pending", "pending")
    error = assert_error(
        api.post(f"/orders/{order.order_id}/stages/postBria/approve"), 409, "stage_out_of_order"
    )
    assert error["details"]["waiting_for"] == ["preBria"]
    assert stage_row(order.order_id, "postBria").status == "pending" and not audits(order.order_id)


def test_approve_unknown_stage_row_is_404(api):
    order = make_order_with_stages("pending")
    assert_error(api.post(f"/orders/{order.order_id}/stages/postPdf/approve"), 404, "not_found")


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"notes": 5}, 422, "invalid"),
        ({"notes": "x" * 5001}, 422, "invalid"),
        ({"reviewer": "someone"}, 422, "invalid"),
        (["notes"], 422, "invalid"),
    ],
)
def test_approve_validates_its_body(api, body, status, code):
    order = make_order_with_stages("pending")
    assert_error(api.post(f"/orders/{order.order_id}/stages/preBria/approve", body), status, code)
    assert stage_row(order.order_id, "preBria").status == "pending"


def test_approve_with_a_form_body_is_415(api):
    order = make_order_with_stages("pending")
    response = api.request("POST", f"/orders/{order.order_id}/stages/preBria/approve", data={"notes": "x"})
    assert_error(response, 415, "unsupported_media_type")


# --- the waiting list


def test_stages_lists_waiting_stages_oldest_first(api):
    first = make_order_with_stages("pending")
    make_order_with_stages("approved")
    second = make_order_with_stages("in_review")
    items = api.get("/stages").json()["items"]
    assert [(i["order_id"], i["review_status"]) for i in items] == [
        (first.order_id, "pending"),
        (second.order_id, "in_review"),
    ]
    assert items[0]["platform"] == "shopify" and items[0]["project"]


def test_stages_filters_by_stage_and_status(api):
    order = make_order_with_stages("approved", "pending")
    make_order_with_stages("rejected")
    items = api.get("/stages", params={"stage": "postBria"}).json()["items"]
    assert [(i["order_id"], i["stage"]) for i in items] == [(order.order_id, "postBria")]
    rejected = api.get("/stages", params={"status": "rejected,approved"}).json()["items"]
    assert sorted(i["review_status"] for i in rejected) == ["approved", "rejected"]


def test_stages_pages_with_a_cursor_without_gaps_or_repeats(api):
    made = {make_order_with_stages("pending").order_id for _ in range(7)}
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = api.get("/stages", params=params).json()
        seen += [i["order_id"] for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and len(seen) == 7 and set(seen) == made


@pytest.mark.parametrize(
    "params, field",
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "done"}, "status"),
        ({"stage": "final"}, "stage"),
        ({"sort": "age"}, "sort"),
    ],
)
def test_stages_refuses_bad_parameters(api, params, field):
    assert field in assert_error(api.get("/stages", params=params), 422, "invalid")["fields"]


@pytest.mark.parametrize("cursor", ["not-a-cursor", "WyJ4IiwgInkiXQ", "[" * 3000, "x" * 600])
def test_stages_refuses_a_cursor_it_did_not_hand_out_with_400(api, cursor):
    assert "cursor" in assert_error(api.get("/stages", params={"cursor": cursor}), 400, "bad_cursor")["fields"]


# --- decisions write the outbox in their own transaction


def test_every_decision_writes_one_delivery_per_callback_url(app):
    order = make_order_with_stages(
        "pending", webhooks=["https://a.example/h", {"url": "https://b.example/h"}]
    )
    admin = Actor(email="admin@example.com", is_admin=True)
    review.approve(REVIEWER, order.order_id, "preBria")
    review.reopen(admin, order.order_id, "preBria", notes="Look again")
    review.reject(REVIEWER, order.order_id, "preBria", notes="Eyes drift", reasons=["character_drift"])
    rows = db.session.scalars(
        select(WebhookDelivery).order_by(WebhookDelivery.created_at, WebhookDelivery.url)
    ).all()
    assert [(r.event, r.url) for r in rows] == [
        ("stage_approved", "https://a.example/h"),
        ("stage_approved", "https://b.example/h"),
        ("stage_reopened", "https://a.example/h"),
        ("stage_reopened", "https://b.example/h"),
        ("stage_rejected", "https://a.example/h"),
        ("stage_rejected", "https://b.example/h"),
    ]
    assert rows[-1].payload["notes"] == "Eyes drift" and rows[-1].payload["review_status"] == "rejected"


def test_a_refused_decision_writes_no_delivery(app):
    order = make_order_with_stages("approved", webhooks=["https://a.example/h"])
    with pytest.raises(AlreadyDecided):
        review.approve(REVIEWER, order.order_id, "preBria")
    assert count(WebhookDelivery) == 0


def test_an_order_without_callbacks_gets_no_deliveries(app):
    order = make_order_with_stages("pending")
    review.approve(REVIEWER, order.order_id, "preBria")
    assert count(WebhookDelivery) == 0


def test_racing_creates_of_one_order_make_one_order_and_one_audit_row(api):
    from concurrent.futures import ThreadPoolExecutor

    token = api.session.headers["Authorization"]

    def create(_):
        client = Api(api.base.removesuffix("/api/v1"), None)
        client.session.headers["Authorization"] = token
        return client.put("/orders/ORD-RACE", order_body()).json()["result"]

    with ThreadPoolExecutor(6) as pool:
        results = sorted(pool.map(create, range(6)))
    assert results == ["created"] + ["unchanged"] * 5
    assert count(Order) == 1 and len(audits("ORD-RACE")) == 1


def test_racing_submissions_of_the_same_assets_make_one_stage_and_one_audit_row(api):
    from concurrent.futures import ThreadPoolExecutor

    api.put("/orders/ORD-1", order_body())
    token = api.session.headers["Authorization"]

    def send(_):
        client = Api(api.base.removesuffix("/api/v1"), None)
        client.session.headers["Authorization"] = token
        return submit(client, "ORD-1", "preBria", asset("front")).json()["result"]

    with ThreadPoolExecutor(6) as pool:
        results = sorted(pool.map(send, range(6)))
    assert results == ["created"] + ["unchanged"] * 5
    assert count(ReviewStage) == 1 and len(audits("ORD-1", "stage_submitted")) == 1
