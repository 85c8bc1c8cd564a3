"""The demo data shows the machine checks: `flask seed`, then `flask checks run --once`, and every demo stage
passes every check except the four demo orders made to fail one check each, which fail exactly that one."""
from __future__ import annotations

from sqlalchemy import select

from lhb_review.extensions import db
from lhb_review.models import ReviewStage
from lhb_review.ops.seed import DEMO_FLAWS, demo_order_id
from lhb_review.review.checks import stage_checks

FAILS = {"low_resolution": ("postBria", "image.resolution"), "short_pdf": ("postPdf", "pdf.page_count"),
         "missing_name": ("postPdf", "pdf.text.name"), "wrong_trim": ("postPdf", "pdf.trim_size")}


def test_seeded_orders_pass_every_check_but_each_flawed_one_fails_exactly_its_check(runner, app):
    seeded = runner.invoke(args=["seed", "--orders", "36"])
    assert seeded.exit_code == 0, seeded.output
    worked = runner.invoke(args=["checks", "run", "--once"])
    assert worked.exit_code == 0, worked.output
    db.session.expire_all()
    expected = {(demo_order_id(n), FAILS[flaw][0]): FAILS[flaw][1] for n, flaw in DEMO_FLAWS.items()}
    stages = db.session.execute(select(ReviewStage.order_id, ReviewStage.stage_name)).all()
    assert {(o, s) for o, s in stages} >= set(expected)  # every flaw sits on a submitted stage
    passing_pdfs = 0
    for order_id, stage in stages:
        found = stage_checks(order_id, stage)
        assert found["state"] == "done", (order_id, stage)
        not_passing = sorted({r["check"] for r in found["results"] if r["outcome"] != "pass"})
        want = [expected[(order_id, stage)]] if (order_id, stage) in expected else []
        assert not_passing == want, (order_id, stage, [r for r in found["results"] if r["outcome"] != "pass"])
        if (order_id, stage) in expected:
            failing = [r for r in found["results"] if r["outcome"] != "pass"]
            assert [r["outcome"] for r in failing] == ["fail"]  # one result, and a failure rather than a warning
        if stage == "postPdf" and not want:
            passing_pdfs += 1
            assert {"pdf.fonts_embedded", "pdf.text.name", "pdf.bleed", "pdf.image_resolution"} <= {
                r["check"] for r in found["results"]}
    assert passing_pdfs >= 3
