"""Replica settings: DATABASE_REPLICA_URLS or DB_REPLICA_HOSTS, clear errors for bad values, and with no
replica configured nothing is routed, counted or added."""
from __future__ import annotations

import os
import secrets

import pytest
from prometheus_client import REGISTRY

from lhb_review.config import ConfigError, build_config
from lhb_review.core import routing
from lhb_review.extensions import READ_ENGINE, db
from lhb_review.web.replicas import TokenPositions
from tests.factories import make_order_with_stages, make_user


def test_replica_urls_are_a_comma_separated_list_on_psycopg2():
    config = build_config({"DATABASE_REPLICA_URLS": "postgresql://r@replica-a:5433/lhb, postgres://r@replica-b/lhb,"})
    assert config["DATABASE_REPLICA_URLS"] == (
        "postgresql+psycopg2://r@replica-a:5433/lhb", "postgresql+psycopg2://r@replica-b/lhb",
    )


def test_db_replica_hosts_reuse_the_db_login():
    config = build_config({"DB_USER": "lhb", "DB_PASSWORD": "s3cret", "DB_NAME": "books", "DB_PORT": "6432",
                           "DB_HOST": "primary", "DB_REPLICA_HOSTS": "replica-a,replica-b:5433"})
    assert config["DATABASE_REPLICA_URLS"] == (
        "postgresql+psycopg2://lhb:s3cret@replica-a:6432/books", "postgresql+psycopg2://lhb:s3cret@replica-b:5433/books",
    )


def test_no_replicas_by_default():
    config = build_config({})
    assert config["DATABASE_REPLICA_URLS"] == ()
    assert config["REPLICA_MAX_LAG_MS"] == 1000 and config["REPLICA_COOLDOWN_SECONDS"] == 30


@pytest.mark.parametrize("env", [
    {"REPLICA_MAX_LAG_MS": "soon"},
    {"REPLICA_MAX_LAG_MS": "-1"},
    {"REPLICA_CONNECT_TIMEOUT_SECONDS": "0"},
    {"DB_REPLICA_HOSTS": "replica:fivefourthreetwo"},
    {"DATABASE_REPLICA_URLS": "mysql://replica/lhb"},
])
def test_bad_replica_settings_are_clear_errors(env):
    with pytest.raises(ConfigError):
        build_config(env)


@pytest.mark.parametrize(("lsn", "value"), [(None, 0), ("0/0", 0), ("0/16B3748", 0x16B3748), ("1A/0", 0x1A << 32)])
def test_wal_positions_order_as_the_wal_does(lsn, value):
    assert routing.lsn_value(lsn) == value
    assert routing.lsn_value("1/0") > routing.lsn_value("0/FFFFFFFF")


def test_without_replicas_nothing_is_routed_or_counted(app, login_as):
    assert routing.EXTENSION not in app.extensions
    browser = login_as(make_user())
    order = make_order_with_stages("pending")
    before = {s.labels["target"]: s.value for m in REGISTRY.collect() if m.name == "lhb_db_read_requests"
              for s in m.samples if s.name.endswith("_total")}
    assert browser.get(f"/orders/{order.order_id}").status_code == 200
    assert browser.post(f"/orders/{order.order_id}/stages/preBria/approve", {"notes": "ok"}).status_code in (302, 303)
    after = {s.labels["target"]: s.value for m in REGISTRY.collect() if m.name == "lhb_db_read_requests"
             for s in m.samples if s.name.endswith("_total")}
    assert after == before
    assert READ_ENGINE not in db.session.info and routing.COMMIT_LSN not in db.session.info


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="TEST_REDIS_URL is not set")
def test_token_write_positions_in_redis_only_move_forward():
    """Two app servers recording one token's writes out of order keep the later position."""
    positions = TokenPositions(os.environ["TEST_REDIS_URL"], f"lhb-test-{secrets.token_hex(4)}")
    assert positions.get("lhb_a") == 0
    positions.put("lhb_a", 500)
    positions.put("lhb_a", 300)
    assert positions.get("lhb_a") == 500
    assert positions.get("lhb_b") == 0


def test_token_write_positions_unknown_when_redis_is_down():
    """No answer from Redis: the position is unknown (the asker reads from the primary), and recording
    one fails quietly."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    positions = TokenPositions(f"redis://127.0.0.1:{port}/0", "lhb-test")
    assert positions.get("lhb_a") is None
    positions.put("lhb_a", 500)


def test_token_write_positions_in_memory_without_redis():
    positions = TokenPositions(None, "lhb-test", capacity=2)
    positions.put("lhb_a", 500)
    positions.put("lhb_a", 300)
    positions.put("lhb_b", 1)
    positions.put("lhb_c", 2)
    assert positions.get("lhb_a") == 0  # the oldest entry gave way
    assert (positions.get("lhb_b"), positions.get("lhb_c")) == (1, 2)
