"""Replica settings: DATABASE_REPLICA_URLS or DB_REPLICA_HOSTS, clear errors for bad values, and with no
replica configured nothing is routed, counted or added."""
from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from lhb_review.config import ConfigError, build_config
from lhb_review.core import routing
from lhb_review.extensions import READ_ENGINE, db
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
