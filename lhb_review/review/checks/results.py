"""What a machine check answers: a stable check id, an outcome, a message in plain words, where it applies."""
from __future__ import annotations

from dataclasses import asdict, dataclass

PASS, WARN, FAIL, ERROR = "pass", "warn", "fail", "error"
OUTCOMES = (PASS, WARN, FAIL, ERROR)
# Failures first, then errors (the check could not run), warnings, passes: the order a reviewer reads them in.
SEVERITY = {FAIL: 0, ERROR: 1, WARN: 2, PASS: 3}
FAILING = (FAIL, ERROR)

CHECK_IDS = (
    "checks.run",
    "file.exists",
    "file.sha256",
    "file.decodes",
    "image.resolution",
    "illustrations.count",
    "pdf.page_count",
    "pdf.trim_size",
    "pdf.bleed",
    "pdf.image_resolution",
    "pdf.fonts_embedded",
    "pdf.active_content",
    "pdf.encrypted",
    "pdf.text.name",
    "pdf.text.title",
    "pdf.text.dedication",
)


@dataclass(frozen=True)
class Result:
    """One check's answer. ``asset`` is the asset key it concerns, ``page`` a 1-based PDF page."""

    check: str
    outcome: str
    message: str
    asset: str | None = None
    page: int | None = None

    def __post_init__(self) -> None:
        if self.check not in CHECK_IDS:
            raise ValueError(f"Unknown check id {self.check!r}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"Unknown outcome {self.outcome!r}")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict) -> Result:
        return cls(value["check"], value["outcome"], value["message"], value.get("asset"), value.get("page"))


def ordered(results: list[Result]) -> list[Result]:
    """Failures first, then by check id, asset and page, so the list reads the same every time."""
    return sorted(results, key=lambda r: (SEVERITY[r.outcome], CHECK_IDS.index(r.check), r.asset or "", r.page or 0))


def failing_ids(results: list[Result]) -> list[str]:
    """The ids of the checks that failed or could not run, each once, in check order."""
    ids = {r.check for r in results if r.outcome in FAILING}
    return [c for c in CHECK_IDS if c in ids]
