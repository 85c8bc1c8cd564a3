"""Probes: /healthz answers, /readyz follows the database and its migrations."""
from __future__ import annotations

import pytest
from flask_migrate import upgrade

from lhb_review.views.health import migration_heads
from tests.ops_helpers import closed_port_url, make_app


def test_healthz_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_ready_at_head(client):
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 200
    assert body["status"] == "ready"
    assert body["migrations"]["current"] == list(migration_heads())
    assert body["migrations"]["at_head"] is True


def test_readyz_503_when_database_unreachable(tmp_path):
    down = make_app(closed_port_url(), tmp_path)
    response = down.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"
    assert down.test_client().get("/healthz").status_code == 200


@pytest.fixture(scope="module")
def behind_url(scratch_database, tmp_path_factory):
    url = scratch_database("behind")
    older = make_app(url, tmp_path_factory.mktemp("behind"))
    with older.app_context():
        upgrade(revision="0001_seed_schema")
    return url


def test_readyz_503_when_migrations_are_behind(behind_url, tmp_path):
    behind = make_app(behind_url, tmp_path)
    response = behind.test_client().get("/readyz")
    body = response.get_json()
    assert response.status_code == 503
    assert body["status"] == "migrations_pending"
    assert body["migrations"]["current"] == ["0001_seed_schema"]
    assert body["migrations"]["expected"] == list(migration_heads())


def test_readyz_503_on_an_empty_database(scratch_database, tmp_path):
    empty = make_app(scratch_database("empty"), tmp_path)
    response = empty.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["migrations"]["current"] == []


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_need_no_login(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert "Location" not in response.headers
