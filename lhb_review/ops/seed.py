"""Demo data: orders across platforms and projects, stages in every status, consistent approvals and audit."""
from __future__ import annotations

import random
import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select

from lhb_review.ops.demo_assets import make_order_assets
from lhb_review.extensions import db
from lhb_review.models import Approval, ApprovalFingerprint, AuditLog, Order, ReviewStage, StageClaim, StageDecision
from lhb_review.review.claims import ttl as claim_ttl
from lhb_review.core.stages import STAGE_ORDER
from lhb_review.review.checks import enqueue_checks

FIRST = ["Ava", "Noah", "Mia", "Liam", "Zara", "Omar", "Isla", "Mateo", "Priya", "Kenji", "Chloe", "Leo",
         "Amara", "Finn", "Sofia", "Ezra", "Nia", "Hugo", "Lena", "Ravi"]
LAST = ["Johnson", "García", "Okafor", "Nguyen", "Müller", "Rossi", "Kowalski", "Haddad", "Silva", "Tanaka",
        "O'Brien", "Andersson", "Dubois", "Patel", "Kim", "Novak"]
CHILD = ["Maya", "Theo", "Luna", "Sami", "Ivy", "Max", "Aria", "Kai", "Nora", "Eli", "Rosa", "Jude"]
PROJECTS = ["my-first-adventure", "bedtime-hero", "space-explorer", "dino-friends"]
THEMES = {"my-first-adventure": "hidden treasure", "bedtime-hero": "sleepy moon", "space-explorer": "lost comet",
          "dino-friends": "dinosaur parade"}
REVIEWERS = ["sam.reviewer@littleherobooks.com", "alex.reviewer@littleherobooks.com"]
PIPELINE = "pipeline@littleherobooks.com"
# How far along each demo order is: statuses of preBria, postBria, postPdf (None: not submitted yet).
SHAPES = [
    ("pending", None, None),
    ("pending", None, None),
    ("rejected", None, None),
    ("approved", "pending", None),
    ("approved", "pending", None),
    ("approved", "rejected", None),
    ("approved", "approved", "pending"),
    ("approved", "approved", "approved"),
    ("in_review", None, None),
]
# Demo orders whose files each fail one machine check, clearly (the others pass every check). Shapes 4 and 6
# (postBria and postPdf waiting for review) put each where a reviewer meets it first.
DEMO_FLAWS = {4: "low_resolution", 15: "short_pdf", 24: "missing_name", 33: "wrong_trim"}


def ascii_slug(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum())


def demo_order_id(n: int) -> str:
    return f"LHB-DEMO-{n:04d}"


def seed_demo(count: int, asset_root: Path, *, now: datetime | None = None) -> tuple[int, int]:
    """Create demo orders 1..count that do not exist yet; returns (created, skipped). Idempotent."""
    now = now or datetime.now(timezone.utc)
    existing = set(db.session.scalars(select(Order.order_id).where(Order.order_id.like("LHB-DEMO-%"))))
    created = 0
    for n in range(1, count + 1):
        order_id = demo_order_id(n)
        if order_id in existing:
            continue
        _create_order(n, order_id, asset_root, now)
        created += 1
    db.session.commit()
    return created, count - created


def _create_order(n: int, order_id: str, asset_root: Path, now: datetime) -> None:
    rnd = random.Random(n)
    project = PROJECTS[n % len(PROJECTS)]
    platform = "amazon" if n % 3 == 0 else "shopify"
    first, last = rnd.choice(FIRST), rnd.choice(LAST)
    child = rnd.choice(CHILD)
    order_date = now - timedelta(hours=6 * ((n * 7) % 96) + rnd.randint(2, 300) / 60)
    specs = {
        "name": child,
        "age": rnd.randint(2, 9),
        "pronouns": rnd.choice(["she/her", "he/him", "they/them"]),
        "skin_tone": rnd.choice(["light", "medium", "tan", "deep"]),
        "hair": {"color": rnd.choice(["black", "brown", "blonde", "red", "auburn"]),
                 "style": rnd.choice(["curly", "straight", "braids", "short", "ponytail"])},
        "eyes": rnd.choice(["brown", "blue", "green", "hazel"]),
        "glasses": rnd.random() < 0.25,
        "outfit": rnd.choice(["explorer", "astronaut", "knight", "pirate", "fairy"]),
    }
    flaw = DEMO_FLAWS.get(n)
    book = {
        "title": f"{child} and the {THEMES[project].title()}",
        "theme": THEMES[project],
        "pages": 12,  # a small square board book: print-ready demo files stay quick to draw
        "trim_size": "6 x 6 in",
        "cover": rnd.choice(["hardcover", "softcover"]),
        "dedication": f"For {child}, with love from {first}.",
        "language": "en",
    }
    if flaw == "missing_name":  # the name is missing from the PDF only: title and dedication do not carry it
        book.update(title=f"The {THEMES[project].title()}", dedication=f"For our little hero, with love from {first}.")
    shape = SHAPES[n % len(SHAPES)]
    submitted = tuple(stage for stage, status in zip(("preBria", "postBria", "postPdf"), shape) if status)
    assets = make_order_assets(asset_root, order_id, project, specs, book, flaw=flaw, stages=submitted)
    order = Order(
        order_id=order_id,
        platform=platform,
        amazon_order_id=f"113-{1000000 + n * 7919 % 9000000:07d}-{2000000 + n * 104729 % 7000000:07d}"
        if platform == "amazon" else None,
        project=project,
        customer_first_name=first,
        customer_last_name=last,
        customer_email=f"{ascii_slug(first)}.{ascii_slug(last)}{n}@example.com",
        order_date=order_date,
        status="in_review" if any(s in ("pending", "in_review") for s in shape if s) else (
            "approved" if shape[-1] == "approved" else "needs_changes"),
        ai_generation_started_at=order_date + timedelta(minutes=5),
        character_hash=f"chr_{n:06x}{rnd.getrandbits(32):08x}",
        character_path=f"characters/{order_id}/character.json",
        template_path=f"templates/{project}/v3",
        character_specs=specs,
        book_specs=book,
        order_details={"quantity": rnd.choice([1, 1, 1, 2]), "shipping": rnd.choice(["standard", "express"]),
                       "gift_wrap": rnd.random() < 0.3, "currency": "USD", "total": 34.99},
        asset_prefix=f"orders/{order_id}",
        webhooks=None,
        r2_assets={stage: assets[stage] for stage in submitted},
        created_at=order_date,
    )
    db.session.add(order)
    db.session.flush()
    t = order_date + timedelta(minutes=20)
    for stage, status in zip(STAGE_ORDER, shape):
        if status is None:
            break
        reviewer = REVIEWERS[n % 2]
        decided = status in ("approved", "rejected")
        notes = None
        if status == "rejected":
            notes = "Hair colour drifts between the two views." if stage.value == "preBria" else \
                "Name is misspelled on page 2."
        db.session.add(ReviewStage(
            order_id=order_id, stage_name=stage.value, status=status, created_at=t,
            reviewed_at=t + timedelta(minutes=35) if decided else None,
            reviewer_email=reviewer if status != "pending" else None,
            reviewer_notes=notes,
        ))
        db.session.flush()  # the stage before its approvals row, as the approvals trigger expects
        if status == "in_review":  # someone is looking at it: a live claim, lapsing like any other
            db.session.add(StageClaim(order_id=order_id, stage=stage.value, claimed_by=reviewer, claimed_at=now,
                                      renewed_at=now, expires_at=now + claim_ttl()))
        enqueue_checks(order_id, stage.value, reason="seeded")  # `flask checks run` then checks the demo files
        db.session.add(AuditLog(order_id=order_id, action="stage_submitted", stage=stage.value,
                                reviewer_email=PIPELINE, details={"assets": len(assets[stage.value])},
                                created_at=t))
        if decided:
            db.session.add(Approval(
                order_id=order_id, stage=stage.value, status="approved" if status == "approved" else "pending",
                approved_at=t + timedelta(minutes=35) if status == "approved" else None,
                reviewer_email=reviewer, reviewer_notes=notes, created_at=t + timedelta(minutes=35),
            ))
            demo_decision(order_id, stage.value, status, reviewer, notes, assets[stage.value], t + timedelta(minutes=35))
            db.session.add(AuditLog(
                order_id=order_id, action=f"stage_{status}", stage=stage.value, reviewer_email=reviewer,
                details={"status_before": "pending", "status_after": status, "notes": notes,
                         **({"reasons": DEMO_REASONS[stage.value]} if status == "rejected" else {})},
                ip_address="10.20.0.15", user_agent="Mozilla/5.0 (demo seed)", created_at=t + timedelta(minutes=35),
            ))
        t += timedelta(hours=3)


DEMO_REASONS = {"preBria": ["character_drift"], "postBria": ["text_error"], "postPdf": ["print_quality"]}


def demo_decision(order_id: str, stage: str, status: str, reviewer: str, notes: str | None, assets: list,
                  at: datetime) -> None:
    """The decision history behind a demo decision, and the fingerprint its approval covers."""
    from lhb_review.review import fingerprints

    value = fingerprints.fingerprint(assets)
    db.session.add(StageDecision(
        order_id=order_id, stage=stage, outcome=status, reviewer_email=reviewer, notes=notes,
        reasons=DEMO_REASONS[stage] if status == "rejected" else [], reason_assets=[], fingerprint=value,
        assets=fingerprints.asset_identity(assets),
        previous={"stage": {"status": "pending", "reviewed_at": None, "reviewer_email": None, "reviewer_notes": None},
                  "approval": None, "claim": None, "fingerprint": None},
        decided_at=at,
    ))
    if status == "approved":
        db.session.add(ApprovalFingerprint(order_id=order_id, stage=stage, fingerprint=value,
                                           assets=fingerprints.asset_identity(assets), recorded_at=at))
