"""The review stages, their pipeline order and the statuses a stage moves through: defined once."""
from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    PRE_BRIA = "preBria"
    POST_BRIA = "postBria"
    POST_PDF = "postPdf"

    @property
    def label(self) -> str:
        return STAGE_LABELS[self]

    @property
    def position(self) -> int:
        return STAGE_ORDER.index(self)

    @property
    def earlier(self) -> tuple["Stage", ...]:
        return STAGE_ORDER[: self.position]

    @property
    def previous(self) -> "Stage | None":
        return STAGE_ORDER[self.position - 1] if self.position else None


STAGE_ORDER: tuple[Stage, ...] = (Stage.PRE_BRIA, Stage.POST_BRIA, Stage.POST_PDF)
STAGE_NAMES: tuple[str, ...] = tuple(s.value for s in STAGE_ORDER)
STAGE_LABELS = {
    Stage.PRE_BRIA: "Character (before Bria)",
    Stage.POST_BRIA: "Illustrations (after Bria)",
    Stage.POST_PDF: "Print PDF",
}


class StageStatus(StrEnum):
    PENDING = "pending"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    REJECTED = "rejected"


WAITING = (StageStatus.PENDING, StageStatus.IN_REVIEW)
DECIDED = (StageStatus.APPROVED, StageStatus.REJECTED)


class UnknownStage(ValueError):
    """A stage name that is not one of preBria, postBria, postPdf."""

    def __init__(self, name: object):
        self.name = name
        super().__init__(f"Unknown stage {name!r}: expected one of {', '.join(STAGE_NAMES)}")


def parse_stage(name: object) -> Stage:
    """The Stage for a name, or UnknownStage (never a silent default)."""
    try:
        return Stage(name)
    except ValueError:
        raise UnknownStage(name) from None
