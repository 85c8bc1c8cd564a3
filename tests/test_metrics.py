"""/metrics: Prometheus text that moves with requests, decisions and errors."""
from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lhb_review import review
from lhb_review.core.actors import Actor
from lhb_review.core.errors import AlreadyDecided
from tests.factories import make_order_with_stages
from tests.ops_helpers import make_app


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_request_counter_and_latency_move_after_requests(client):
    before = scrape(client)
    for _ in range(3):
        client.get("/healthz")
    after = scrape(client)
    key = dict(route="/healthz", method="GET", status="200")
    assert value(after, "lhb_http_requests_total", **key) - value(before, "lhb_http_requests_total", **key) == 3
    assert value(after, "lhb_http_request_duration_seconds_count", **key) - \
        value(before, "lhb_http_request_duration_seconds_count", **key) == 3


def test_routes_are_labelled_by_rule_not_by_path(client):
    client.get("/admin/errors/E-AAAA-BBBB")
    client.get("/no/such/thing/12345")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'route="/admin/errors/<error_id>"' in text
    assert "E-AAAA-BBBB" not in text
    assert 'route="<unmatched>"' in text and "12345" not in text


def test_stages_waiting_by_stage(client):
    make_order_with_stages("pending", "pending")
    make_order_with_stages("pending")
    make_order_with_stages("approved", "in_review")
    samples = scrape(client)
    assert value(samples, "lhb_stages_waiting", stage="preBria", status="pending") == 2
    assert value(samples, "lhb_stages_waiting", stage="postBria", status="pending") == 1
    assert value(samples, "lhb_stages_waiting", stage="postBria", status="in_review") == 1
    assert value(samples, "lhb_stages_waiting", stage="preBria", status="approved") == 0


def test_decisions_counted_by_stage_and_outcome(client):
    before = scrape(client)
    actor = Actor(email="rita@example.com")
    order = make_order_with_stages("pending", "pending")
    review.approve(actor=actor, order_id=order.order_id, stage="preBria")
    review.reject(actor=actor, order_id=order.order_id, stage="postBria", notes="hair is the wrong colour",
                     reasons=["character_drift"])
    after = scrape(client)
    for stage, outcome in (("preBria", "approved"), ("postBria", "rejected")):
        delta = value(after, "lhb_decisions_total", stage=stage, outcome=outcome) - \
            value(before, "lhb_decisions_total", stage=stage, outcome=outcome)
        assert delta == 1, (stage, outcome)


def test_a_refused_decision_is_not_counted(client):
    actor = Actor(email="rita@example.com")
    order = make_order_with_stages("approved")
    before = scrape(client)
    with pytest.raises(AlreadyDecided):
        review.approve(actor=actor, order_id=order.order_id, stage="preBria")
    after = scrape(client)
    assert value(after, "lhb_decisions_total", stage="preBria", outcome="approved") == \
        value(before, "lhb_decisions_total", stage="preBria", outcome="approved")


def test_errors_counted_by_severity(client, database_url, tmp_path):
    boom = make_app(database_url, tmp_path)
    before = scrape(client)
    boom.test_client().get("/boom")
    boom.test_client().get("/boom/db")
    after = scrape(client)
    assert value(after, "lhb_errors_total", severity="error") - value(before, "lhb_errors_total", severity="error") == 1
    assert value(after, "lhb_errors_total", severity="critical") - \
        value(before, "lhb_errors_total", severity="critical") == 1


def test_pool_gauges_are_exposed(client):
    samples = scrape(client)
    names = {name for name, _ in samples}
    assert {"lhb_db_pool_in_use", "lhb_db_pool_idle", "lhb_db_pool_overflow"} <= names
    assert value(samples, "lhb_db_pool_idle") >= 0
    assert value(samples, "lhb_db_pool_in_use") >= 0


def test_multiprocess_mode_sums_values_written_by_workers(tmp_path, monkeypatch, client):
    """With PROMETHEUS_MULTIPROC_DIR set the exposition comes from the shared directory's files."""
    from prometheus_client import CollectorRegistry, Counter
    from prometheus_client import values as prom_values

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    prom_values.ValueClass = prom_values.get_value_class()
    try:
        worker_counter = Counter("lhb_test_worker_total", "written by a pretend worker", registry=CollectorRegistry())
        worker_counter.inc(7)
        text = client.get("/metrics").get_data(as_text=True)
    finally:
        monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
        prom_values.ValueClass = prom_values.get_value_class()
    assert re.search(r"^lhb_test_worker_total 7\.0$", text, re.M)
    assert "lhb_stages_waiting" in text
