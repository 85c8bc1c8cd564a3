"""Import of the old file-based approval store: JSON files mapping order id -> stage -> approval.

Each entry is ``{status, approved_at | approvedAt, reviewer | reviewer_email, notes}``. A dry run
(the default) only reports; applying writes each entry in a transaction of its own with an
``approval_imported`` audit row. An entry never overwrites a decision in the database that is as new
as or newer than its own time, so a second run changes nothing. A file that does not parse is reported
by name, line and column; an entry that is not valid by name and JSON path; the rest is still imported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lhb_review.models import Approval, ReviewStage
from lhb_review.core.stages import STAGE_NAMES
from lhb_review.core.actors import SYSTEM_EMAIL
from lhb_review.pipeline.orders import storable
from lhb_review import review

STATUSES = ("approved", "pending")
MAX_FILE_BYTES = 50 * 1024 * 1024


@dataclass
class Entry:
    source: str
    path: str  # where in the file, as a JSON path
    order_id: str
    stage: str
    status: str
    approved_at: datetime | None
    reviewer: str
    notes: str | None


@dataclass
class Report:
    """What an import did (or would do): one line per entry and per problem."""

    applied: bool
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"import": 0, "unchanged": 0, "newer": 0})

    def summary(self) -> str:
        verb = "imported" if self.applied else "to import"
        return (
            f"{self.counts['import']} {verb}, {self.counts['unchanged']} already up to date, "
            f"{self.counts['newer']} skipped (newer decision in the database), {len(self.errors)} errors"
        )


def files_at(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() == ".json" and p.is_file())
    return [path]


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    # The old store wrote toISOString() (UTC); a time without a zone is read as UTC too.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def one_of(raw: dict, names: tuple[str, str]) -> tuple[Any, str | None]:
    """The value under either spelling; an error when both are present and differ."""
    a, b = (raw.get(n) for n in names)
    if a is not None and b is not None and a != b:
        return None, f"{names[0]} and {names[1]} disagree"
    return (a if a is not None else b), None


def parse_entry(source: str, order_id: str, stage: str, raw: Any) -> tuple[Entry | None, str | None]:
    where = f"$[{json.dumps(order_id)}][{json.dumps(stage)}]"
    if stage not in STAGE_NAMES:
        return None, f"{where}: unknown stage {stage!r} (expected {', '.join(STAGE_NAMES)})"
    if not isinstance(raw, dict):
        return None, f"{where}: expected an object with status, approved_at, reviewer, notes"
    if not order_id or len(order_id) > 255 or not storable(order_id):
        return None, f"{where}: the order id must be 1-255 characters"
    status = raw.get("status")
    if status not in STATUSES:
        return None, f"{where}.status: expected approved or pending, got {status!r}"
    when_raw, problem = one_of(raw, ("approved_at", "approvedAt"))
    if problem:
        return None, f"{where}: {problem}"
    approved_at = parse_time(when_raw) if when_raw is not None else None
    if when_raw is not None and approved_at is None:
        return None, f"{where}.approved_at: not an ISO 8601 date-time: {str(when_raw)[:60]!r}"
    if status == "approved" and approved_at is None:
        return None, f"{where}.approved_at: an approved entry needs its approval time"
    reviewer, problem = one_of(raw, ("reviewer", "reviewer_email"))
    if problem:
        return None, f"{where}: {problem}"
    reviewer = reviewer if reviewer is not None else SYSTEM_EMAIL
    if not isinstance(reviewer, str) or not reviewer.strip() or len(reviewer) > 255 or not storable(reviewer):
        return None, f"{where}.reviewer: expected an e-mail address of at most 255 characters"
    notes = raw.get("notes")
    if notes is not None and (not isinstance(notes, str) or not storable(notes)):
        return None, f"{where}.notes: expected text"
    return Entry(source, where, order_id, stage, status, approved_at, reviewer.strip(), notes or None), None


def read_file(path: Path) -> tuple[list[Entry], list[str]]:
    """The valid entries of one file, and a message for each problem (file name and position)."""
    name = str(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return [], [f"{name}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB, not read"]
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return [], [f"{name}: line {exc.lineno}, column {exc.colno}: {exc.msg}"]
    except UnicodeDecodeError as exc:
        return [], [f"{name}: byte {exc.start}: not UTF-8 text"]
    except (OSError, RecursionError, ValueError) as exc:
        return [], [f"{name}: {exc}"]
    if not isinstance(data, dict):
        return [], [f"{name}: $: expected an object mapping order ids to stages, got {type(data).__name__}"]
    entries, errors = [], []
    for order_id, stages in data.items():
        if not isinstance(stages, dict):
            errors.append(
                f"{name}: $[{json.dumps(order_id)}]: expected an object mapping stages to approvals"
            )
            continue
        for stage, raw in stages.items():
            entry, problem = parse_entry(name, order_id, stage, raw)
            if problem:
                errors.append(f"{name}: {problem}")
            else:
                entries.append(entry)
    return entries, errors


def plan(entry: Entry, approval: Approval | None, stage: ReviewStage | None) -> str:
    """import, unchanged or newer: what the entry does against what the database holds."""
    if entry.status == "pending":
        # A pending entry has no time of its own: it only fills a gap and never undoes anything.
        return "unchanged" if approval is not None or stage is not None else "import"
    if (
        approval is not None
        and approval.status == "approved"
        and approval.approved_at == entry.approved_at
        and approval.reviewer_email == entry.reviewer
    ):
        return "unchanged"
    times = [
        t for t in (approval.updated_at if approval else None, stage.reviewed_at if stage else None) if t
    ]
    if approval is not None and approval.approved_at:
        times.append(approval.approved_at)
    if times and max(times) >= entry.approved_at:
        return "newer"
    return "import"


def run(path: Path, *, apply_changes: bool = False) -> Report:
    """Import every file at ``path`` (a file or a directory of *.json); a dry run unless ``apply_changes``."""
    report = Report(applied=apply_changes)
    paths = files_at(path)
    if not paths or not path.exists():
        report.errors.append(f"{path}: no such file, or no .json files in it")
        return report
    for file in paths:
        entries, errors = read_file(file)
        report.errors.extend(errors)
        for entry in entries:
            action = review.import_approval(entry, plan=plan, apply_changes=apply_changes)
            report.counts[action] += 1
            label = {
                "import": "import" if not apply_changes else "imported",
                "unchanged": "unchanged",
                "newer": "skipped, newer decision in the database",
            }[action]
            report.lines.append(
                f"{label:<40} {entry.order_id} {entry.stage} {entry.status} "
                f"({Path(entry.source).name} {entry.path})"
            )
    return report
