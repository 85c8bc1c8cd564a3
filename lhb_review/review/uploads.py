"""Replacing one asset of a stage with an uploaded file: checked by content, stored, audited, and the
approval voided when the stage had one."""
from __future__ import annotations

import copy
import hashlib
import io
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from flask import current_app
from PIL import Image, UnidentifiedImageError
from sqlalchemy import select

from lhb_review.extensions import db
from lhb_review.models import Order, ReviewStage
from lhb_review.core.stages import StageStatus, parse_stage
from lhb_review.core.storage import InvalidKey, Storage, StorageError, get_storage
from lhb_review.core import audit
from lhb_review.review import claims, fingerprints
from lhb_review.core.actors import Actor
from lhb_review.core.clock import db_now
from lhb_review.core.errors import DomainError, Invalid, NotFound
from lhb_review.review.submissions import void_approval
from lhb_review.review.checks import enqueue_checks
from lhb_review.core.tx import transaction

log = logging.getLogger(__name__)

IMAGE_FORMATS = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"), "WEBP": ("image/webp", "webp")}
ACCEPTED = "a PNG, JPEG or WebP image, or a PDF"
REPLACED = "An asset was replaced on the review page."


class StorageUnavailable(DomainError):
    status = 503
    code = "storage_unavailable"


@dataclass(frozen=True)
class CheckedFile:
    """An upload that passed every check, with what its content (not its name) says it is."""

    format: str
    content_type: str
    extension: str
    sha256: str
    size: int
    width: int | None = None
    height: int | None = None
    pages: int | None = None

    @property
    def kind(self) -> str:
        return "pdf" if self.format == "PDF" else "image"


def sniff(data: bytes) -> str | None:
    """The format the first bytes announce: PNG, JPEG, WEBP, PDF, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith(b"%PDF-"):
        return "PDF"
    return None


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def check_upload(data: bytes, *, max_bytes: int, max_pixels: int) -> CheckedFile:
    """Check an uploaded file by its content: size, format, and that it opens cleanly.

    Raises Invalid with a message a reviewer can act on: empty, too large, not an accepted format
    (whatever its name says), damaged, a decompression bomb, an encrypted or page-less PDF.
    """
    if not data:
        raise Invalid("The file is empty.", {"file": "Choose a file."})
    if len(data) > max_bytes:
        raise Invalid(f"The file is {_megabytes(len(data))}; the limit is {_megabytes(max_bytes)}.",
                      {"file": "Choose a smaller file."})
    found = sniff(data)
    if found is None:
        raise Invalid(f"This file is not {ACCEPTED}. Its content was checked, not its name.",
                      {"file": f"Upload {ACCEPTED}."})
    digest = hashlib.sha256(data).hexdigest()
    if found == "PDF":
        pages = _check_pdf(data)
        return CheckedFile("PDF", "application/pdf", "pdf", digest, len(data), pages=pages)
    width, height = _check_image(data, found, max_pixels)
    content_type, extension = IMAGE_FORMATS[found]
    return CheckedFile(found, content_type, extension, digest, len(data), width, height)


def _check_image(data: bytes, expected: str, max_pixels: int) -> tuple[int, int]:
    bomb = Invalid(
        f"This image is too large to open safely (more than {max_pixels:,} pixels): "
        "it looks like a decompression bomb.", {"file": "Upload an image of normal size."})
    damaged = Invalid(f"This {expected} file is damaged or incomplete and cannot be opened.",
                      {"file": "Export the image again and upload that."})
    with warnings.catch_warnings():
        # Pillow warns past MAX_IMAGE_PIXELS and raises past twice that; both are refusals here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=[expected]) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise bomb
                img.verify()
            with Image.open(io.BytesIO(data), formats=[expected]) as img:
                img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise bomb from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError):
            raise damaged from None
    return width, height


def _check_pdf(data: bytes) -> int:
    """A light parse: the header's version, the end-of-file marker, then pypdf reads the cross-reference
    table and the page tree. Encrypted PDFs and PDFs with scripts are refused (a print file needs neither)."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    damaged = Invalid("This PDF is damaged or incomplete and cannot be read.",
                      {"file": "Export the PDF again and upload that."})
    if not re.match(rb"%PDF-[12]\.\d", data[:8]) or b"%%EOF" not in data[-2048:]:
        raise damaged
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise Invalid("This PDF is encrypted; the printer needs an unencrypted file.",
                          {"file": "Upload the PDF without a password."})
        pages = len(reader.pages)
        reader.trailer["/Root"]
    except Invalid:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError):
        raise damaged from None
    if pages < 1:
        raise Invalid("This PDF has no pages.", {"file": "Upload the book's print PDF."})
    if b"/JavaScript" in data or b"/Launch" in data:
        raise Invalid("This PDF contains scripts; print files must not.", {"file": "Export the PDF without scripts."})
    return pages


@dataclass(frozen=True)
class Replacement:
    order_id: str
    stage: str
    old_key: str
    new_key: str
    voided: bool
    status_before: str
    status_after: str


def _new_key(old_key: str, checked: CheckedFile) -> str:
    """Next to the old file, named by content: ``page-1-r3f9a0c12d4e5.png``. Old files stay (history)."""
    path = PurePosixPath(old_key)
    stem = re.sub(r"-r[0-9a-f]{12}$", "", path.stem)
    return str(path.with_name(f"{stem}-r{checked.sha256[:12]}.{checked.extension}"))


def _clean_filename(name: str | None) -> str | None:
    text = (name or "").replace("\x00", "").strip()
    return text[-255:] or None


def replace_asset(
    actor: Actor,
    order_id: str,
    stage: str,
    asset_key: str,
    data: bytes,
    *,
    filename: str | None = None,
    storage: Storage | None = None,
) -> Replacement:
    """Replace the stage's asset ``asset_key`` with an uploaded file.

    The file is checked first (see check_upload) and must be of the same family as the one it replaces
    (image for image, PDF for PDF). It is stored under a new key named by its content, r2_assets is
    updated, and ``asset_replaced`` is audited with the old and new keys and hashes. An approved stage
    loses its approval (void_approval, audited ``approval_voided``); a rejected one returns to pending,
    since what was rejected is gone. One transaction; the file is written before the commit, so a
    failed commit can leave an unreferenced file, never a reference to a missing one.

    Raises UnknownStage, NotFound, Invalid, ClaimedByOther, StorageUnavailable; nothing is written then.
    """
    parsed = parse_stage(stage)
    checked = check_upload(data, max_bytes=current_app.config["MAX_ASSET_BYTES"],
                           max_pixels=current_app.config["MAX_IMAGE_PIXELS"])
    storage = storage or get_storage()
    with transaction():
        order = db.session.scalars(
            select(Order).where(Order.order_id == order_id).with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        if order is None:
            raise NotFound(f"There is no order {order_id}.")
        row = db.session.scalars(
            select(ReviewStage).where(ReviewStage.order_id == order_id, ReviewStage.stage_name == parsed.value)
            .with_for_update().execution_options(populate_existing=True)
        ).one_or_none()
        if row is None:
            raise NotFound(f"Order {order_id} has no {parsed.value} stage.")
        now = db_now()
        claims.refuse_if_claimed_by_other(actor, order_id, parsed.value, now)
        assets: dict[str, Any] = copy.deepcopy(order.r2_assets) if isinstance(order.r2_assets, dict) else {}
        entries = assets.get(parsed.value) if isinstance(assets.get(parsed.value), list) else []
        index = next((i for i, a in enumerate(entries) if isinstance(a, dict) and a.get("key") == asset_key), None)
        if index is None:
            raise NotFound(f"The {parsed.value} stage of {order_id} has no asset {asset_key}.")
        old = entries[index]
        old_kind = "pdf" if str(old.get("content_type", "")).endswith("pdf") else "image"
        if old_kind != checked.kind:
            wanted = "a PDF" if old_kind == "pdf" else "an image (PNG, JPEG or WebP)"
            raise Invalid(f"{old.get('label') or asset_key} is {wanted}; replace it with {wanted}.",
                          {"file": f"Upload {wanted}."})
        if old.get("sha256") == checked.sha256:
            raise Invalid("This file is the one already there: nothing to replace.", {"file": "Choose the new file."})
        try:
            new_key = _new_key(asset_key, checked)
            storage.put(new_key, data, checked.content_type)
        except InvalidKey as exc:
            raise Invalid(f"Cannot store a file under {asset_key}: {exc}") from None
        except StorageError as exc:
            log.error("Storing %s failed: %s", asset_key, exc)
            raise StorageUnavailable("The file store did not accept the file; nothing was changed. "
                                     "Try again in a moment.") from None
        new = {**old, "key": new_key, "content_type": checked.content_type, "sha256": checked.sha256,
               "size": checked.size, "replaces": asset_key, "replaced_at": now.isoformat(),
               "replaced_by": actor.email}
        entries[index] = new
        assets[parsed.value] = entries
        old_entries = fingerprints.current_assets(order_id, parsed)
        order.r2_assets = assets
        before = row.status
        reopened = before in (StageStatus.APPROVED, StageStatus.REJECTED)
        audit.record(actor, "asset_replaced", order_id=order_id, stage=parsed.value, details={
            "old_key": asset_key, "new_key": new_key, "old_sha256": old.get("sha256"), "new_sha256": checked.sha256,
            "label": old.get("label"), "content_type": checked.content_type, "size": checked.size,
            "filename": _clean_filename(filename), "status_before": before,
            "status_after": StageStatus.PENDING.value if reopened else before,
        })
        voided = before == StageStatus.APPROVED
        if voided:
            void_approval(actor, row, reason=REPLACED, old_assets=old_entries, new_assets=entries)
        elif before == StageStatus.REJECTED:
            row.status = StageStatus.PENDING.value
            row.reviewed_at = None
            row.reviewer_email = None
        enqueue_checks(order_id, parsed.value, reason="replaced")
        after = row.status
    return Replacement(order_id, parsed.value, asset_key, new_key, voided, before, after)
