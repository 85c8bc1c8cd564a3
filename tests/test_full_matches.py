"""Validated fields match in full: a value that is valid but for a trailing newline is refused."""
from __future__ import annotations

import pytest

from lhb_review.core.errors import Invalid
from lhb_review.core.storage import InvalidKey, check_key
from lhb_review.ops.bootstrap import BootstrapError, check_identifier
from lhb_review.pipeline import orders, tokens
from lhb_review.review.submissions import validate_assets
from lhb_review.web.observability import choose_request_id
from tests.pipeline_helpers import order_body

SHA = "0" * 64


def asset(**overrides) -> dict:
    return {"key": "orders/ORD-1/front.png", "content_type": "image/png", "sha256": SHA, **overrides}


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_an_order_id_with_a_line_break_is_refused(ending):
    assert orders.validate_order_id("ORD-1") == "ORD-1"
    with pytest.raises(Invalid):
        orders.validate_order_id("ORD-1" + ending)


def test_a_status_with_a_trailing_newline_is_refused():
    assert orders.validate_order(order_body(status="received"))["status"] == "received"
    with pytest.raises(Invalid) as refused:
        orders.validate_order(order_body(status="received\n"))
    assert "status" in refused.value.fields


def test_an_email_with_a_trailing_newline_inside_is_refused():
    with pytest.raises(Invalid) as refused:
        orders.validate_order(order_body(customer_email="ada@example.com\nbcc@evil.example"))
    assert "customer_email" in refused.value.fields


@pytest.mark.parametrize("field,value", [("sha256", SHA + "\n"), ("content_type", "image/png\n")])
def test_asset_fields_with_a_trailing_newline_are_refused(field, value):
    assert validate_assets([asset()])
    with pytest.raises(Invalid) as refused:
        validate_assets([asset(**{field: value})])
    assert f"assets[0].{field}" in refused.value.fields


def test_a_token_name_is_matched_in_full():
    """validate_name strips the name first, so the pattern must refuse an embedded line break."""
    assert tokens.validate_name("pipeline") == "pipeline"
    with pytest.raises(Invalid):
        tokens.validate_name("pipe\nline")


def test_a_storage_key_with_a_trailing_newline_is_refused():
    assert check_key("orders/a.png") == "orders/a.png"
    with pytest.raises(InvalidKey):
        check_key("orders/a.png\n")


def test_a_role_name_with_a_trailing_newline_is_refused():
    assert check_identifier("lhb_app", "role") == "lhb_app"
    with pytest.raises(BootstrapError):
        check_identifier("lhb_app\n", "role")


def test_a_request_id_with_a_trailing_newline_is_replaced():
    assert choose_request_id("abc-123") == "abc-123"
    assert choose_request_id("abc-123\n") != "abc-123\n"
