"""Fingerprints of a stage's assets (keys and content hashes), and the record of what each approval saw."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from lhb_review.extensions import db
from lhb_review.models import ApprovalFingerprint, Order
from lhb_review.models.core import stage_assets
from lhb_review.core.stages import Stage


def asset_identity(assets: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """What a fingerprint is made of: each asset's key and content hash, sorted by key.

    Labels and content types are left out on purpose: renaming a label changes nothing a reviewer saw.
    """
    entries = [a for a in (assets if isinstance(assets, list) else []) if isinstance(a, dict) and a.get("key")]
    return sorted(({"key": str(a["key"]), "sha256": a.get("sha256")} for a in entries), key=lambda a: a["key"])


def fingerprint(assets: list[dict[str, Any]] | None) -> str:
    """A sha256 over the sorted (key, sha256) pairs; the same assets in any order give the same value."""
    canonical = json.dumps(asset_identity(assets), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def diff(old: list[dict[str, Any]] | None, new: list[dict[str, Any]] | None) -> dict[str, list[str]]:
    """Which keys were added, removed, or kept with different content between two asset lists."""
    before = {a["key"]: a["sha256"] for a in asset_identity(old)}
    after = {a["key"]: a["sha256"] for a in asset_identity(new)}
    return {
        "added": sorted(after.keys() - before.keys()),
        "removed": sorted(before.keys() - after.keys()),
        "changed": sorted(k for k in before.keys() & after.keys() if before[k] != after[k]),
    }


def current_assets(order_id: str, stage: Stage) -> list[dict[str, Any]]:
    """The stage's assets as stored now (empty when the order has none)."""
    return stage_assets(db.session.scalar(select(Order.r2_assets).where(Order.order_id == order_id)), stage.value)


def record_approval(order_id: str, stage: Stage, assets: list[dict[str, Any]] | None = None) -> str:
    """Remember, in the caller's transaction, which assets the (order, stage) approval covers."""
    assets = current_assets(order_id, stage) if assets is None else assets
    db.session.execute(record_approval_statement(order_id, stage, assets))
    return fingerprint(assets)


def record_approval_statement(order_id: str, stage: Stage, assets: list[dict[str, Any]] | None = None):
    """The upsert record_approval runs (for a caller that sends it within another statement, as a CTE)."""
    assets = current_assets(order_id, stage) if assets is None else assets
    value = fingerprint(assets)
    stmt = insert(ApprovalFingerprint.__table__).values(
        order_id=order_id, stage=stage.value, fingerprint=value, assets=asset_identity(assets)
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[ApprovalFingerprint.order_id, ApprovalFingerprint.stage],
        set_={"fingerprint": stmt.excluded.fingerprint, "assets": stmt.excluded.assets,
              "recorded_at": stmt.excluded.recorded_at},
    )
    return stmt


def approved_fingerprint(order_id: str, stage: Stage) -> ApprovalFingerprint | None:
    return db.session.get(ApprovalFingerprint, (order_id, stage.value), populate_existing=True)
