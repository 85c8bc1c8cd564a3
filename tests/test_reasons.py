"""Structured reject reasons: defined once, required on reject, stored with the decision and in the audit row."""
from __future__ import annotations

import pytest

from lhb_review.review.reasons import REASON_CODES, REASONS, UnknownReason, label, parse_reasons
from lhb_review import review
from lhb_review.core.errors import Invalid
from tests.factories import make_order_with_stages
from tests.flow_helpers import ANA, approval_row, audit_rows, decision_rows, stage_row


def test_the_reason_list_is_the_agreed_one_with_labels():
    assert REASON_CODES == ("character_drift", "anatomy", "text_error", "print_quality", "wrong_template", "other")
    assert REASONS["text_error"] == "Text or name mistake"
    assert REASONS["print_quality"] == "Colour or print quality"
    assert label("gone_code") == "gone_code"


def test_parse_keeps_known_codes_once_in_list_order():
    assert parse_reasons(["other", " anatomy ", "other", ""]) == ["anatomy", "other"]
    with pytest.raises(UnknownReason):
        parse_reasons(["anatomy", "<script>"])


def test_reject_stores_reasons_and_assets_with_the_decision_and_in_the_audit_row(app):
    order = make_order_with_stages("pending")
    key = order.r2_assets["preBria"][0]["key"]
    review.reject(ANA, order.order_id, "preBria", notes="Extra finger on the left hand",
                     reasons=["other", "anatomy"], asset_keys=[key])
    [decision] = decision_rows(order.order_id)
    assert (decision.outcome, decision.reasons, decision.reason_assets) == ("rejected", ["anatomy", "other"], [key])
    assert decision.notes == "Extra finger on the left hand"
    [audit] = audit_rows(order.order_id)
    assert audit.details["reasons"] == ["anatomy", "other"]
    assert audit.details["reason_assets"] == [key]
    assert audit.details["decision_id"] == str(decision.id)


@pytest.mark.parametrize("reasons,assets,field", [
    (None, None, "reasons"),
    ([], None, "reasons"),
    (["not_a_reason"], None, "reasons"),
    (["anatomy"], ["orders/other/asset.png"], "asset_keys"),
])
def test_reject_with_bad_reasons_writes_nothing(app, reasons, assets, field):
    order_id = make_order_with_stages("pending").order_id
    with pytest.raises(Invalid) as caught:
        review.reject(ANA, order_id, "preBria", notes="Wrong", reasons=reasons, asset_keys=assets)
    assert field in caught.value.fields
    assert stage_row(order_id).status == "pending"
    assert approval_row(order_id) is None
    assert audit_rows(order_id) == [] and decision_rows(order_id) == []


def test_approve_records_no_reasons(app):
    order_id = make_order_with_stages("pending").order_id
    review.approve(ANA, order_id, "preBria")
    [decision] = decision_rows(order_id)
    assert decision.reasons == [] and "reasons" not in audit_rows(order_id)[0].details
