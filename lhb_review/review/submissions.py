"""What a stage submission from the pipeline is: its assets, validated, and what a submission did.

A stage's assets live in ``orders.r2_assets[stage]`` as a list of {key, label, content_type, sha256}.
Two submissions carry the same assets when their sets of (key, sha256) are equal; labels and order
do not matter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lhb_review.core.errors import Invalid
from lhb_review.models import ReviewStage
from lhb_review.review import fingerprints

MAX_ASSETS = 200
MAX_KEY = 1000
MAX_LABEL = 200
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
CONTENT_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,63}/[a-z0-9][a-z0-9.+-]{0,127}$")


def same_assets(old: list[dict[str, Any]] | None, new: list[dict[str, Any]] | None) -> bool:
    """Whether two asset lists are the same submission: equal sets of (key, sha256)."""
    return fingerprints.fingerprint(old) == fingerprints.fingerprint(new)


def validate_assets(value: Any) -> list[dict[str, str]]:
    """The assets of a submission, normalised; raises Invalid with an error per field path."""
    if not isinstance(value, list) or not value:
        raise Invalid("A submission needs a non-empty list of assets.", {"assets": "At least one asset."})
    if len(value) > MAX_ASSETS:
        raise Invalid(f"At most {MAX_ASSETS} assets per stage.", {"assets": f"At most {MAX_ASSETS}."})
    errors: dict[str, str] = {}
    result: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        where = f"assets[{i}]"
        if not isinstance(item, dict):
            errors[where] = "An object with key, content_type and sha256 (label optional)."
            continue
        unknown = set(item) - {"key", "label", "content_type", "sha256"}
        if unknown:
            errors[where] = f"Unknown fields: {', '.join(sorted(map(str, unknown)))}."
            continue
        key, label = item.get("key"), item.get("label")
        content_type, sha = item.get("content_type"), item.get("sha256")
        if (
            not isinstance(key, str)
            or not key
            or len(key) > MAX_KEY
            or key.startswith("/")
            or ".." in key.split("/")
            or any(ord(c) < 32 or c == "\\" for c in key)
        ):
            errors[f"{where}.key"] = (
                f"A relative storage key (no '..', no leading '/'), at most {MAX_KEY} characters."
            )
        elif key in seen:
            errors[f"{where}.key"] = "This key is listed twice."
        if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL or "\x00" in label):
            errors[f"{where}.label"] = f"Text of at most {MAX_LABEL} characters."
        if not isinstance(content_type, str) or not CONTENT_TYPE_RE.match(content_type):
            errors[f"{where}.content_type"] = "A media type such as image/png or application/pdf."
        if not isinstance(sha, str) or not SHA256_RE.match(sha):
            errors[f"{where}.sha256"] = "The SHA-256 of the file: 64 lowercase hex digits."
        if isinstance(key, str):
            seen.add(key)
        if not any(k.startswith(where) for k in errors):
            result.append(
                {
                    "key": key,
                    "label": label or key.rsplit("/", 1)[-1],
                    "content_type": content_type,
                    "sha256": sha,
                }
            )
    if errors:
        raise Invalid("Some assets are not valid.", errors)
    return result


@dataclass(frozen=True)
class Submission:
    stage: ReviewStage
    result: str  # created, resubmitted or unchanged
