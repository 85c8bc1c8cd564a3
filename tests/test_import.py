"""Import of the file-based approval store from sample files in tests/data/import, malformed ones included."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select

from lhb_review.extensions import db
from lhb_review.models import Approval, AuditLog, ReviewStage
from lhb_review import review
from lhb_review.pipeline import importer
from lhb_review.core.actors import Actor
from tests.factories import make_order_with_stages

DATA = Path(__file__).parent / "data" / "import"
STORE = DATA / "store"
SINGLE = DATA / "single" / "approvals.json"
REVIEWER = Actor(email="rev@example.com")


def approvals() -> dict[tuple[str, str], Approval]:
    db.session.expire_all()
    return {(a.order_id, a.stage): a for a in db.session.scalars(select(Approval))}


def imported_audits() -> list[AuditLog]:
    return list(db.session.scalars(select(AuditLog).where(AuditLog.action == "approval_imported")))


def test_a_dry_run_reports_and_writes_nothing(app, runner):
    result = runner.invoke(args=["import-approvals", str(STORE)])
    assert "Dry run" in result.output and "5 to import" in result.output
    assert approvals() == {} and imported_audits() == []


def test_apply_imports_every_valid_entry_with_an_audit_row(app, runner):
    result = runner.invoke(args=["import-approvals", str(STORE), "--apply"])
    assert "5 imported" in result.output
    rows = approvals()
    assert set(rows) == {
        ("LHB-1001", "preBria"),
        ("LHB-1001", "postBria"),
        ("LHB-1002", "preBria"),
        ("LHB-1003", "preBria"),
        ("LHB-3001", "preBria"),
    }
    first = rows[("LHB-1001", "preBria")]
    assert (first.status, first.reviewer_email, first.reviewer_notes) == (
        "approved",
        "sam@littleherobooks.com",
        "Lovely",
    )
    assert first.approved_at == datetime(2026, 10, 1, 10, 0, tzinfo=timezone.utc)
    assert rows[("LHB-1001", "postBria")].reviewer_email == "alex@littleherobooks.com"
    assert rows[("LHB-1003", "preBria")].reviewer_email == "system@littleherolabs.com"
    assert rows[("LHB-1002", "preBria")].status == "pending"
    assert rows[("LHB-3001", "preBria")].reviewer_email == "kim@littleherobooks.com"
    audits = imported_audits()
    assert len(audits) == len(rows) == 5
    audit = next(a for a in audits if a.order_id == "LHB-1001" and a.stage == "preBria")
    assert (
        audit.reviewer_email == "sam@littleherobooks.com" and audit.details["source"] == "01-approvals.json"
    )


def test_malformed_files_are_reported_by_name_and_position_and_the_rest_is_imported(app, runner):
    result = runner.invoke(args=["import-approvals", str(STORE), "--apply"])
    assert result.exit_code == 1
    errors = result.stderr
    assert "02-broken-syntax.json: line 3, column" in errors
    assert '03-bad-entries.json: $["LHB-3001"]["finalPdf"]: unknown stage' in errors
    assert '03-bad-entries.json: $["LHB-3001"]["postBria"].approved_at: an approved entry needs' in errors
    assert '03-bad-entries.json: $["LHB-3001"]["postPdf"].status' in errors
    assert '03-bad-entries.json: $["LHB-3002"]: expected an object' in errors
    assert '03-bad-entries.json: $["LHB-3003"]["preBria"].approved_at: not an ISO 8601' in errors
    assert '03-bad-entries.json: $["LHB-3003"]["postBria"]: approved_at and approvedAt disagree' in errors
    assert "04-wrong-shape.json: $: expected an object" in errors
    assert "README.txt" not in result.output + errors
    assert ("LHB-3001", "preBria") in approvals() and ("LHB-2001", "preBria") not in approvals()
    assert not any(order_id.startswith(("LHB-3002", "LHB-3003")) for order_id, _ in approvals())


def test_a_second_run_changes_nothing(app, runner):
    runner.invoke(args=["import-approvals", str(STORE), "--apply"])
    before = {k: (a.status, a.approved_at, a.reviewer_email, a.updated_at) for k, a in approvals().items()}
    second = runner.invoke(args=["import-approvals", str(STORE), "--apply"])
    assert "0 imported, 5 already up to date" in second.output
    after = {k: (a.status, a.approved_at, a.reviewer_email, a.updated_at) for k, a in approvals().items()}
    assert after == before and len(imported_audits()) == 5


def test_a_newer_decision_in_the_database_is_never_overwritten(app):
    order = make_order_with_stages("pending", order_id="LHB-4001")
    review.reject(REVIEWER, order.order_id, "preBria", notes="Decided after the file was written",
                     reasons=["other"])
    report = importer.run(SINGLE, apply_changes=True)
    assert report.counts == {"import": 0, "unchanged": 0, "newer": 1}
    db.session.expire_all()
    stage = db.session.scalar(select(ReviewStage).where(ReviewStage.order_id == "LHB-4001"))
    assert stage.status == "rejected" and approvals()[("LHB-4001", "preBria")].status == "pending"
    assert imported_audits() == []


def test_an_older_database_state_takes_the_file_approval_and_the_stage_follows(app):
    make_order_with_stages("pending", order_id="LHB-4001")
    report = importer.run(SINGLE, apply_changes=True)
    assert report.counts["import"] == 1
    db.session.expire_all()
    stage = db.session.scalar(select(ReviewStage).where(ReviewStage.order_id == "LHB-4001"))
    assert (stage.status, stage.reviewer_email) == ("approved", "old-store@littleherobooks.com")
    assert stage.reviewed_at == datetime(2026, 9, 1, 12, 0, tzinfo=timezone.utc)
    [audit] = imported_audits()
    assert audit.details["stage_status_before"] == "pending" and audit.details["approved_at"].startswith(
        "2026-09-01"
    )


def test_a_single_file_can_be_imported(app, runner):
    result = runner.invoke(args=["import-approvals", str(SINGLE), "--apply"])
    assert result.exit_code == 0 and "1 imported" in result.output
    assert approvals()[("LHB-4001", "preBria")].status == "approved"


def test_a_pending_entry_never_undoes_an_approval(app, tmp_path):
    file = tmp_path / "pending.json"
    file.write_text('{"LHB-5001": {"preBria": {"status": "pending"}}}')
    order = make_order_with_stages("pending", order_id="LHB-5001")
    review.approve(REVIEWER, order.order_id, "preBria")
    report = importer.run(file, apply_changes=True)
    assert report.counts["unchanged"] == 1 and approvals()[("LHB-5001", "preBria")].status == "approved"


def test_a_missing_path_is_a_clear_error(app, runner, tmp_path):
    result = runner.invoke(args=["import-approvals", str(tmp_path / "nope.json")])
    assert result.exit_code != 0 and "does not exist" in result.output
    empty = runner.invoke(args=["import-approvals", str(tmp_path)])
    assert empty.exit_code == 1 and "no .json files" in empty.stderr
    assert db.session.scalar(select(func.count()).select_from(Approval)) == 0
