"""What a stage submission from the pipeline is: its assets, validated, and what a submission did.

A stage's assets live in ``orders.r2_assets[stage]`` as a list of {key, label, content_type, sha256}.
Two submissions carry the same assets when their sets of (key, sha256) are equal; labels and order
do not matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lhb_review.core import contracts
from lhb_review.models import ReviewStage
from lhb_review.review import fingerprints

MAX_ASSETS = contracts.MAX_ASSETS


def same_assets(old: list[dict[str, Any]] | None, new: list[dict[str, Any]] | None) -> bool:
    """Whether two asset lists are the same submission: equal sets of (key, sha256)."""
    return fingerprints.fingerprint(old) == fingerprints.fingerprint(new)


def validate_assets(value: Any) -> list[dict[str, str]]:
    """The assets of a submission, normalised (contracts.Assets); raises Invalid with an error per field path."""
    assets = contracts.checked(contracts.STAGE_ASSETS, value, "Some assets are not valid.", prefix="assets")
    return [a.stored() for a in assets]


@dataclass(frozen=True)
class Submission:
    stage: ReviewStage
    result: str  # created, resubmitted or unchanged
