"""Uploaded files that replace an asset: checked by their content (size, format, that they open cleanly),
and named by it. The replacement itself is an action of the state machine (review.machine.replace_asset)."""
from __future__ import annotations

import hashlib
import io
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import PurePosixPath

from PIL import Image, UnidentifiedImageError

from lhb_review.core.errors import DomainError, Invalid

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

    from lhb_review.review.pdf_safety import active_content

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
    if active_content(reader):
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


def new_key(old_key: str, checked: CheckedFile) -> str:
    """Next to the old file, named by content: ``page-1-r3f9a0c12d4e5.png``. Old files stay (history)."""
    path = PurePosixPath(old_key)
    stem = re.sub(r"-r[0-9a-f]{12}$", "", path.stem)
    return str(path.with_name(f"{stem}-r{checked.sha256[:12]}.{checked.extension}"))
