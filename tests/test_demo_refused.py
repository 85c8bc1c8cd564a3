"""Demo data never reaches production: `flask seed` and `flask users demo` refuse outside development/test."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lhb_review.cli.common import DEMO_OVERRIDE
from lhb_review.extensions import db
from lhb_review.models import Order, User


@pytest.fixture
def production(app, monkeypatch):
    monkeypatch.setitem(app.config, "APP_ENV", "production")


def counts() -> tuple[int, int]:
    return db.session.scalar(select(func.count()).select_from(Order)), db.session.scalar(
        select(func.count()).select_from(User))


@pytest.mark.parametrize("args", [["seed", "--orders", "2"], ["users", "demo"], ["seed", "--bulk", "1"]])
def test_demo_commands_refuse_in_production_and_change_nothing(runner, production, args):
    result = runner.invoke(args=args)
    assert result.exit_code == 2
    assert "Refusing to create demo data with APP_ENV=production" in result.output
    assert "password:" not in result.output
    assert counts() == (0, 0)


def test_the_deliberate_override_still_works(runner, production):
    result = runner.invoke(args=["users", "demo", DEMO_OVERRIDE])
    assert result.exit_code == 0, result.output
    assert counts()[1] == 2


def test_in_development_demo_accounts_are_made_as_before(runner, app):
    assert app.config["APP_ENV"] == "test"
    result = runner.invoke(args=["users", "demo"])
    assert result.exit_code == 0 and "password:" in result.output
