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


def _image_sizes(page) -> dict[str, int]:
    """Pixel counts of the page's images, by the name pypdf lists them under, read from each image's
    /Width and /Height: nothing is decoded, so a damaged image or a pixel bomb costs nothing here."""
    sizes: dict[str, int] = {}
    try:
        names = page.images.keys()
        xobjects = page["/Resources"]["/XObject"].get_object()
    except Exception:  # noqa: BLE001 - no readable resources: no pictures
        return sizes
    for name in names:
        if not isinstance(name, str):
            continue  # nested in a form XObject: not the page's illustration
        try:
            obj = xobjects[name].get_object()
            sizes[name] = int(obj["/Width"]) * int(obj["/Height"])
        except Exception:  # noqa: BLE001 - an image without a readable size is skipped
            continue
    return sizes


def page_picture(data: bytes, page: int, *, max_pixels: int) -> bytes:
    """The largest picture on page ``page`` (1-based) as PNG; NoPicture when there is none.

    Sizes are read before anything is decoded: pictures past ``max_pixels`` are skipped unread, and a
    picture that cannot be decoded (damaged) is NoPicture, never an error page.
    """
    try:
        reader = PdfReader(io.BytesIO(data))
        count = len(reader.pages)
    except Exception:  # noqa: BLE001 - a PDF that cannot be read has no pictures
        raise NoPicture("The PDF cannot be read.") from None
    if not 1 <= page <= count:
        raise NoPicture(f"The PDF has no page {page}.")
    pdf_page = reader.pages[page - 1]
    sizes = {name: n for name, n in _image_sizes(pdf_page).items() if 0 < n <= max_pixels}
    if not sizes:
        raise NoPicture(f"Page {page} has no picture to compare.")
    name = max(sizes, key=sizes.get)
    try:
        best = pdf_page.images[name].image
        if best is None or best.size[0] * best.size[1] > max_pixels:
            raise NoPicture(f"Page {page}'s picture is larger than it says.")
        out = io.BytesIO()
        best.convert("RGB").save(out, format="PNG", optimize=True)
    except NoPicture:
        raise
    except Exception:  # noqa: BLE001 - damaged image data: say so, do not fail the page
        log.warning("Could not decode the picture of page %s", page, exc_info=True)
        raise NoPicture(f"Page {page}'s picture is damaged and cannot be shown.") from None
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
