"""The thresholds machine checks use, from the app's settings, and the order specs they read."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

POINTS_PER = {"in": 72.0, "inch": 72.0, "inches": 72.0, '"': 72.0, "mm": 72 / 25.4, "cm": 72 / 2.54, "pt": 1.0}
TRIM_RE = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(in|inch|inches|\"|mm|cm|pt)?\s*[x×]\s*(\d+(?:\.\d+)?)\s*(in|inch|inches|\"|mm|cm|pt)\s*$",
    re.IGNORECASE,
)


class BadSpec(ValueError):
    """An order spec a check needs is missing or not in a form it can read."""


def parse_trim_size(value: Any) -> tuple[float, float]:
    """Width and height in PDF points from "8.5 x 8.5 in", "210 x 210 mm", "8.5in x 11in"; BadSpec otherwise."""
    if not isinstance(value, str):
        raise BadSpec("The order's book_specs.trim_size is missing.")
    match = TRIM_RE.match(value)
    if not match:
        raise BadSpec(f"The order's trim size {value!r} is not like \"8.5 x 8.5 in\" or \"210 x 210 mm\".")
    width, first_unit, height, unit = match.groups()
    first = POINTS_PER[(first_unit or unit).lower()]
    w, h = float(width) * first, float(height) * POINTS_PER[unit.lower()]
    if not (0 < w < 14400 and 0 < h < 14400):
        raise BadSpec(f"The order's trim size {value!r} is not a size a book can have.")
    return w, h


@dataclass(frozen=True)
class CheckSettings:
    """Thresholds; the defaults are what a picture-book printer asks for."""

    min_image_px: int = 1024  # preBria: pixels on the short side
    color_modes: tuple[str, ...] = ("RGB", "RGBA")  # preBria: the colour modes a character view may have
    aspect_ratio: float | None = None  # preBria: width / height of every view (None: not checked)
    aspect_tolerance: float = 0.02
    warn_dpi: float = 300.0
    fail_dpi: float = 150.0
    bleed_in: float = 0.125
    trim_tolerance_pt: float = 1.0
    pages_per_illustration: int = 2  # one illustration per spread
    cover_pages: int = 0  # pages the print PDF carries beyond book_specs.pages
    safe_zone_in: float = 0.25
    max_pixels: int = 40_000_000
    max_pdf_pages: int = 400
    max_text_chars: int = 2_000_000
    max_objects: int = 200_000

    @classmethod
    def from_config(cls, config: Any) -> CheckSettings:
        aspect = config.get("CHECK_ASPECT_RATIO")
        return cls(
            min_image_px=int(config.get("CHECK_MIN_IMAGE_PX", cls.min_image_px)),
            color_modes=tuple(config.get("CHECK_COLOR_MODES", cls.color_modes)),
            aspect_ratio=float(aspect) if aspect else None,
            warn_dpi=float(config.get("CHECK_WARN_DPI", cls.warn_dpi)),
            fail_dpi=float(config.get("CHECK_FAIL_DPI", cls.fail_dpi)),
            bleed_in=float(config.get("CHECK_BLEED_IN", cls.bleed_in)),
            pages_per_illustration=int(config.get("CHECK_PAGES_PER_ILLUSTRATION", cls.pages_per_illustration)),
            cover_pages=int(config.get("CHECK_COVER_PAGES", cls.cover_pages)),
            safe_zone_in=float(config.get("CHECK_SAFE_ZONE_IN", cls.safe_zone_in)),
            max_pixels=int(config.get("MAX_IMAGE_PIXELS", cls.max_pixels)),
        )

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, value: dict) -> CheckSettings:
        known = {k: v for k, v in value.items() if k in cls.__dataclass_fields__}
        if "color_modes" in known:
            known["color_modes"] = tuple(known["color_modes"])
        return cls(**known)


@dataclass(frozen=True)
class Specs:
    """What the order promises, as the checks read it (each may be missing)."""

    pages: int | None = None
    trim_size: str | None = None
    name: str | None = None
    title: str | None = None
    dedication: str | None = None

    @classmethod
    def from_order(cls, character_specs: Any, book_specs: Any) -> Specs:
        character = character_specs if isinstance(character_specs, dict) else {}
        book = book_specs if isinstance(book_specs, dict) else {}
        pages = book.get("pages")

        def text(value: Any) -> str | None:
            return value.strip() or None if isinstance(value, str) else None

        return cls(
            pages=pages if isinstance(pages, int) and not isinstance(pages, bool) and pages > 0 else None,
            trim_size=text(book.get("trim_size")),
            name=text(character.get("name")),
            title=text(book.get("title")),
            dedication=text(book.get("dedication")),
        )

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def expected_illustrations(self, settings: CheckSettings) -> int | None:
        if self.pages is None:
            return None
        return math.ceil(self.pages / max(settings.pages_per_illustration, 1))
