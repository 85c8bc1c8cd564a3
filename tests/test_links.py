"""Links built from one pattern are the links url_for builds, on any id, and a queue page builds two patterns
however many rows it shows."""
from __future__ import annotations

import pytest
from flask import url_for

from lhb_review.web.links import Links, static_url

AWKWARD_IDS = [
    "ORD-1",
    "order with spaces",
    "100%-sure",
    "a/b",
    "qué-tal-ñ",
    "LHBSLOT0X",  # the placeholder text itself, as an id
    "?x=1&y=2#frag",
    "plus+sign",
]


@pytest.mark.parametrize("order_id", AWKWARD_IDS)
def test_a_stage_link_from_the_pattern_is_the_link_url_for_builds(app, order_id):
    with app.test_request_context("/queue"):
        links = Links("review.stage", "order_id", "stage")
        for stage in ("preBria", "postBria", "postPdf"):
            assert links(order_id=order_id, stage=stage) == url_for("review.stage", order_id=order_id, stage=stage)


@pytest.mark.parametrize("order_id", AWKWARD_IDS)
def test_an_order_link_from_the_pattern_is_the_link_url_for_builds(app, order_id):
    with app.test_request_context("/queue"):
        assert Links("orders.order", "order_id")(order_id=order_id) == url_for("orders.order", order_id=order_id)


def test_a_pattern_follows_the_application_root(app):
    with app.test_request_context("/queue", base_url="http://reviews.example.com/lhb/"):
        links = Links("review.stage", "order_id", "stage")
        assert links(order_id="ORD-1", stage="preBria") == "/lhb/orders/ORD-1/stages/preBria"
        assert links(order_id="ORD-1", stage="preBria") == url_for("review.stage", order_id="ORD-1", stage="preBria")


def test_the_static_address_is_built_once_a_request(app):
    with app.test_request_context("/queue"):
        first = static_url("icons.svg")
        assert first == url_for("static", filename="icons.svg")
        assert static_url("icons.svg") is first


def test_a_queue_page_builds_its_row_links_without_one_url_for_a_row(app, login_as, monkeypatch):
    from tests.factories import make_order_with_stages, make_user

    for _ in range(30):
        make_order_with_stages("pending")
    browser = login_as(make_user())
    built: list[str] = []
    original = app.url_for

    def counting(endpoint, **values):
        built.append(endpoint)
        return original(endpoint, **values)

    monkeypatch.setattr(app, "url_for", counting)
    response = browser.get("/queue", headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response.get_data(as_text=True).count("data-queue-row") == 30
    assert built.count("review.stage") == 1 and built.count("orders.order") == 1
