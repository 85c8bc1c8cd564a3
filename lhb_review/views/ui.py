"""Template helpers: times, ages, statuses, audit actions and specs, said the same way on every page."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import Flask

from lhb_review.core.audit import ACTIONS
from lhb_review.models.core import stage_assets
from lhb_review.review import reasons
from lhb_review.review import sla
from lhb_review.core.stages import STAGE_LABELS, Stage
from lhb_review.web.links import static_url

STATUS_LABELS = {
    "pending": "Pending",
    "in_review": "In review",
    "approved": "Approved",
    "rejected": "Rejected",
    "needs_changes": "Needs changes",
    "waiting": "Waiting",
    "any": "Any status",
}
# The icon (a symbol of the sprite in base.html) that goes with each status, so colour is never alone.
STATUS_ICONS = {
    "pending": "i-clock",
    "in_review": "i-eye",
    "approved": "i-check",
    "rejected": "i-cross",
    "needs_changes": "i-cross",
}
ACTION_LABELS = ACTIONS
# Specs are stored as JSONB, which does not keep key order: show the keys reviewers look for first.
SPEC_ORDER = {
    "character": ("name", "age", "pronouns", "skin_tone", "hair", "eyes", "glasses", "outfit"),
    "book": ("title", "theme", "dedication", "pages", "trim_size", "cover", "language"),
    "details": ("quantity", "shipping", "gift_wrap", "total", "currency"),
}
KEY_WORDS = {"id": "ID", "pdf": "PDF", "url": "URL", "sku": "SKU"}


def stage_label(name: str | None) -> str:
    try:
        return STAGE_LABELS[Stage(name)]
    except ValueError:
        return name or ""


def status_label(status: str | None) -> str:
    return STATUS_LABELS.get(status or "", (status or "unknown").replace("_", " ").capitalize())


def status_icon(status: str | None) -> str:
    return STATUS_ICONS.get(status or "", "i-dot")


def action_label(action: str | None) -> str:
    return ACTION_LABELS.get(action or "", (action or "").replace("_", " ").capitalize())


def humanize_key(key: str) -> str:
    words = str(key).replace("-", "_").split("_")
    text = " ".join(KEY_WORDS.get(w.lower(), w) for w in words if w)
    return text[:1].upper() + text[1:]


def spec_value(value: Any) -> str:
    """A scalar or a flat list as people read it; nested mappings are laid out by the template."""
    if value is None or value == "":
        return "—"
    if value is True:
        return "Yes"
    if value is False:
        return "No"
    if isinstance(value, list):
        return ", ".join(spec_value(v) for v in value) or "—"
    return str(value)


def spec_items(specs: Any, kind: str = "") -> list[tuple[str, Any]]:
    """(label, value) pairs of a specs mapping: the familiar keys first, the rest alphabetically."""
    if not isinstance(specs, dict):
        return []
    preferred = [k for k in SPEC_ORDER.get(kind, ()) if k in specs]
    rest = sorted(k for k in specs if k not in preferred)
    return [(humanize_key(k), specs[k]) for k in [*preferred, *rest]]


def when(value: datetime | None) -> str:
    """An absolute time, in UTC, the same way on every page."""
    if value is None:
        return "—"
    return value.astimezone(timezone.utc).strftime("%d %b %Y, %H:%M UTC")


def age(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago, to the two largest units: "45 min", "3 h 10 min", "2 d 4 h"."""
    if value is None:
        return "—"
    seconds = int(((now or datetime.now(timezone.utc)) - value).total_seconds())
    if seconds < 60:
        return "just now"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        rest = minutes % 60
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    rest = hours % 24
    return f"{days} d {rest} h" if rest else f"{days} d"


def waited(value: datetime | None, now: datetime) -> tuple[str, str]:
    """The service-level mark of a waiting stage in one go: its CSS class and its words ("", "" within it)."""
    if value is None:
        return "", ""
    found = sla.age(value, now)
    if found.level == "ok":
        return "", ""
    return {"warn": "age-day age-warn", "breach": "age-old age-breach"}[found.level], found.label


def thousands(value: int) -> str:
    """A count with thousands separators: 12,345."""
    return f"{value:,}"


def reason_label(code: str) -> str:
    return reasons.label(code)


def is_image(asset: dict) -> bool:
    return str(asset.get("content_type", "")).startswith("image/")


def is_pdf(asset: dict) -> bool:
    return asset.get("content_type") == "application/pdf" or str(asset.get("key", "")).lower().endswith(".pdf")


def register(app: Flask) -> None:
    app.add_template_filter(when)
    app.add_template_filter(age)
    app.add_template_filter(waited)
    app.add_template_filter(thousands)
    app.add_template_filter(reason_label)
    app.add_template_filter(stage_label)
    app.add_template_filter(status_label)
    app.add_template_filter(status_icon)
    app.add_template_filter(action_label)
    app.add_template_filter(spec_value)
    app.add_template_filter(humanize_key)
    app.add_template_global(spec_items)
    app.add_template_global(static_url)
    app.add_template_global(stage_assets)
    app.add_template_test(is_image, "image_asset")
    app.add_template_test(is_pdf, "pdf_asset")
