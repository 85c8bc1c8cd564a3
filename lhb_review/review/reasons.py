"""Why a stage is rejected: the reason codes and the labels people see, defined once."""
from __future__ import annotations

from collections.abc import Iterable

REASONS: dict[str, str] = {
    "character_drift": "Character drift",
    "anatomy": "Anatomy",
    "text_error": "Text or name mistake",
    "print_quality": "Colour or print quality",
    "wrong_template": "Wrong template",
    "other": "Other",
}
REASON_CODES: tuple[str, ...] = tuple(REASONS)


class UnknownReason(ValueError):
    def __init__(self, codes: list[str]):
        self.codes = codes
        super().__init__(f"Unknown reason {', '.join(map(repr, codes))}: expected one of {', '.join(REASON_CODES)}")


def label(code: str) -> str:
    """The label for a code; an unknown code (an old row, say) is shown as itself rather than hidden."""
    return REASONS.get(code, code) if isinstance(code, str) else str(code)


def parse_reasons(values: Iterable[object] | None) -> list[str]:
    """Reason codes as stored: known codes only, each once, in the list's order (not the caller's).

    Raises UnknownReason for anything not in REASONS; an empty result is the caller's to judge.
    """
    given = [str(v).strip() for v in (values or []) if str(v).strip()]
    unknown = [v for v in given if v not in REASONS]
    if unknown:
        raise UnknownReason(unknown)
    return [code for code in REASON_CODES if code in given]
