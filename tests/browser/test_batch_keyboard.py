"""Batch review in headless Chromium with the keyboard only: flag two cards, reject one with a reason, approve the
rest; then the rows in the database, the answer on the next page, and no console errors (a strict CSP holds)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from lhb_review.extensions import db
from lhb_review.models import AuditLog, ReviewStage, StageClaim, StageDecision
from lhb_review.ops.demo_assets import make_order_assets
from tests.factories import make_order, make_stage, make_user

SPECS = {"name": "Noor", "age": 6, "skin_tone": "tan", "hair": {"color": "black", "style": "braids"},
         "eyes": "brown", "glasses": True, "outfit": "astronaut"}
BOOK = {"title": "Noor and the Lost Comet", "theme": "lost comet", "pages": 24}


@pytest.fixture
def reviewer(app):
    return make_user("bea@example.com")


def waiting_orders(app, n: int) -> list[str]:
    now = datetime.now(timezone.utc)
    ids = []
    for i in range(n):
        order_id = f"LHB-B{i:04d}"
        assets = make_order_assets(app.config["ASSET_DIR"], order_id, "space-explorer", SPECS, BOOK)
        order = make_order(order_id, character_specs=SPECS, book_specs=BOOK, r2_assets=assets,
                           customer_first_name="Noor", customer_last_name=f"Family {i}")
        make_stage(order, "preBria", "pending", created_at=now - timedelta(hours=30 - i))
        ids.append(order_id)
    return ids


def statuses(ids: list[str]) -> list[str]:
    db.session.expire_all()
    found = dict(db.session.execute(select(ReviewStage.order_id, ReviewStage.status)
                                    .where(ReviewStage.order_id.in_(ids))).all())
    return [found[i] for i in ids]


def test_a_batch_decided_with_the_keyboard_only(app, page, browser_login, screenshot, reviewer):
    ids = waiting_orders(app, 6)
    errors = []
    # A missing file (the favicon) is a network matter; a refused script or style, or a script error, is not.
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    browser_login(page, reviewer)
    page.goto("/queue/batch?stage=preBria&size=6")
    page.wait_for_selector("[data-batch-card].is-current")
    assert page.locator("[data-batch-card]").count() == 6
    assert page.evaluate("document.activeElement.id") == "card-0"

    page.keyboard.press("x")                 # flag the first card
    page.keyboard.press("l")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")             # flag the third
    page.keyboard.press("ArrowRight")
    page.keyboard.press("r")                 # reject the fourth: its notes take the keyboard
    assert page.evaluate("document.activeElement.id") == "notes-3"
    page.keyboard.type("Hair is straight; the specs say braids.")  # 'r', 'x', 'h' typed here are text
    page.keyboard.press("Tab")
    page.keyboard.press("Space")             # the first reason: character drift
    page.keyboard.press("Escape")            # back to the card
    assert page.evaluate("document.activeElement.id") == "card-3"
    assert page.locator("#card-0.is-flagged").count() == 1 and page.locator("#card-2.is-flagged").count() == 1
    assert page.locator("#card-3.is-rejecting").count() == 1
    screenshot(page, "batch-keyboard-before-submit")

    page.keyboard.press("Shift+A")           # approve the rest and send the batch
    page.wait_for_selector("[data-batch-result]")
    screenshot(page, "batch-keyboard-answer")

    assert statuses(ids) == ["pending", "approved", "pending", "rejected", "approved", "approved"]
    db.session.expire_all()
    rejected = db.session.scalar(select(StageDecision).where(StageDecision.order_id == ids[3]))
    assert (rejected.reasons, rejected.notes) == (["character_drift"], "Hair is straight; the specs say braids.")
    decisions = db.session.scalars(select(AuditLog).where(AuditLog.action.in_(["stage_approved", "stage_rejected"]))).all()
    assert len(decisions) == 4 and len({a.details["batch"] for a in decisions}) == 1
    assert db.session.scalar(select(StageClaim).where(StageClaim.order_id.in_([ids[0], ids[2]]))) is None
    assert page.locator("[data-outcome=flagged]").count() == 2
    assert page.locator("[data-outcome=approved]").count() == 3
    assert page.locator("[data-outcome=rejected]").count() == 1
    assert not errors, errors
