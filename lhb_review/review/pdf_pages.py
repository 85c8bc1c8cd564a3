"""Pictures of a print PDF's pages, so the PDF can be compared with the illustrations it was made from.

A book page is an illustration with text set over it; the largest picture on the page is that
illustration. It is taken out with pypdf (no renderer needed), stored once under a key derived from the
PDF's content hash, and served like any asset.
"""
from __future__ import annotations

import io
import logging
from functools import lru_cache

from pypdf import PdfReader

from lhb_review.core.storage import Storage, StorageError

log = logging.getLogger(__name__)
MAX_PAGES = 48


class NoPicture(LookupError):
    """The page has no picture to show (a text-only or vector page, or no such page)."""


def derived_key(sha256: str, page: int) -> str:
    return f"derived/pdf-pages/{sha256}/page-{page}.png"


def count_pages(data: bytes) -> int:
    try:
        return min(len(PdfReader(io.BytesIO(data)).pages), MAX_PAGES)
    except Exception:  # a PDF that cannot be read has no pages to compare; the page says so
        log.warning("Could not count the pages of a PDF", exc_info=True)
        return 0


def page_picture(data: bytes, page: int, *, max_pixels: int) -> bytes:
    """The largest picture on page ``page`` (1-based) as PNG; NoPicture when there is none."""
    reader = PdfReader(io.BytesIO(data))
    if not 1 <= page <= len(reader.pages):
        raise NoPicture(f"The PDF has no page {page}.")
    best = None
    for picture in reader.pages[page - 1].images:
        size = picture.image.size if picture.image is not None else (0, 0)
        if size[0] * size[1] > max_pixels:
            continue
        if best is None or size[0] * size[1] > best.size[0] * best.size[1]:
            best = picture.image
    if best is None:
        raise NoPicture(f"Page {page} has no picture to compare.")
    out = io.BytesIO()
    best.convert("RGB").save(out, format="PNG", optimize=True)
    return out.getvalue()


def cached_page_picture(storage: Storage, pdf_key: str, sha256: str, page: int, *, max_pixels: int) -> str:
    """The storage key of page ``page``'s picture, extracting and storing it on first use."""
    key = derived_key(sha256, page)
    if not storage.exists(key):
        try:
            data = storage.get(pdf_key)
        except StorageError as exc:
            raise NoPicture(f"The PDF is not in the store: {exc}") from None
        storage.put(key, page_picture(data, page, max_pixels=max_pixels), "image/png")
    return key


@lru_cache(maxsize=512)
def pages_in(storage: Storage, pdf_key: str, sha256: str) -> int:
    """How many pages (up to MAX_PAGES) the stored PDF has; remembered per content hash."""
    try:
        return count_pages(storage.get(pdf_key))
    except StorageError:
        return 0
