"""Pictures of a print PDF's pages, rendered as a press would see them, for the compare and proof views.

Pages are rendered with PDFium (pypdfium2): text, vector art and every placed image, not just the largest
picture. Each picture is stored once under a key derived from the PDF's content hash and served like any
asset. Nothing is rendered past the pixel limit: the picture's own size is bounded by the page size and
``RENDER_LONG_SIDE``, and a page whose images declare more pixels than the limit is refused before PDFium
decodes anything. A PDF or page that cannot be read or rendered is ``NoPicture``, never an error page.
"""
from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass
from functools import lru_cache


from lhb_review.core.storage import Storage, StorageError
from lhb_review.review.checks.boxes import page_box

log = logging.getLogger(__name__)
MAX_PAGES = 48
RENDER_LONG_SIDE = 1200  # pixels on the long side of a rendered page: enough to judge, cheap to store
MAX_FORM_DEPTH = 8
MAX_IMAGES_PER_PAGE = 2_000
RENDER_VERSION = "r1"  # part of the stored key: a new way of rendering never serves an old picture
# PDFium is not thread-safe: one render at a time per process.
_PDFIUM = threading.Lock()


class NoPicture(LookupError):
    """The page cannot be shown (no such page, a damaged PDF or page, or one over the pixel limit)."""


def _reader(data: bytes):
    from pypdf import PdfReader  # loaded on first use: a worker that never opens a PDF does not carry pypdf

    return PdfReader(io.BytesIO(data))


def derived_key(sha256: str, page: int) -> str:
    return f"derived/pdf-pages/{sha256}/{RENDER_VERSION}-page-{page}.png"


def count_pages(data: bytes) -> int:
    """How many pages the PDF has (up to MAX_PAGES), counted by PDFium, the renderer the pictures come from:
    a page that shows a PDF's pages loads no PDF parser in Python for it. 0 when PDFium cannot open it."""
    import pypdfium2 as pdfium

    with _PDFIUM:
        try:
            pdf = pdfium.PdfDocument(data)
        except Exception:  # noqa: BLE001 - a PDF that cannot be read has no pages to show; the page says so
            log.warning("Could not count the pages of a PDF", exc_info=True)
            return 0
        try:
            return min(len(pdf), MAX_PAGES)
        finally:
            pdf.close()


def _declared_image_pixels(resources, depth: int = 0, seen: set | None = None) -> int:
    """The most pixels any image on the page (forms included, to a bounded depth) declares in its /Width and
    /Height; nothing is decoded. Raises NoPicture when the resources cannot be read."""
    seen = set() if seen is None else seen
    if depth > MAX_FORM_DEPTH:
        raise NoPicture("The page's forms are nested too deeply.")
    try:
        resources = resources.get_object() if resources is not None else None
        from pypdf.generic import DictionaryObject

        if not isinstance(resources, DictionaryObject) or "/XObject" not in resources:
            return 0
        xobjects = resources["/XObject"].get_object()
        most = 0
        for name in list(xobjects.keys())[:MAX_IMAGES_PER_PAGE]:
            ref = xobjects.raw_get(name)
            ident = getattr(ref, "idnum", None)
            if ident is not None:
                if ident in seen:
                    continue
                seen.add(ident)
            obj = ref.get_object()
            subtype = obj.get("/Subtype")
            if subtype == "/Image":
                most = max(most, int(obj["/Width"]) * int(obj["/Height"]))
            elif subtype == "/Form":
                most = max(most, _declared_image_pixels(obj.get("/Resources"), depth + 1, seen))
        return most
    except NoPicture:
        raise
    except Exception:  # noqa: BLE001 - unreadable resources or sizes that are not numbers: a damaged page
        raise NoPicture("The page's resources are damaged.") from None


@dataclass(frozen=True)
class PageGeometry:
    """A page's boxes in PDF points, relative to the rendered area (the CropBox, else the MediaBox), with y
    measured down from the top as a picture's is: (x, y, width, height)."""

    width: float
    height: float
    trim: tuple[float, float, float, float]
    bleed: tuple[float, float, float, float]


def _relative(box, area) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    ax0, _ay0, _ax1, ay1 = area
    return (round(x0 - ax0, 2), round(ay1 - y1, 2), round(x1 - x0, 2), round(y1 - y0, 2))


def page_geometry(data: bytes) -> list[PageGeometry]:
    """The trim and bleed of each page (up to MAX_PAGES), from the same boxes the checks read; [] when the
    PDF cannot be read."""
    try:
        reader = _reader(data)
        found = []
        for page in reader.pages[:MAX_PAGES]:
            area = page_box(page, "/CropBox")
            found.append(PageGeometry(round(area[2] - area[0], 2), round(area[3] - area[1], 2),
                                      _relative(page_box(page, "/TrimBox"), area),
                                      _relative(page_box(page, "/BleedBox"), area)))
        return found
    except Exception:  # noqa: BLE001 - a damaged PDF has no geometry to draw; the proof says so
        log.warning("Could not read the page boxes of a PDF", exc_info=True)
        return []


def page_picture(data: bytes, page: int, *, max_pixels: int, long_side: int = RENDER_LONG_SIDE) -> bytes:
    """Page ``page`` (1-based) rendered as PNG, ``long_side`` pixels on its longer side; NoPicture when the
    PDF or the page cannot be read or rendered, or the picture (or an image on the page) is past
    ``max_pixels``."""
    try:
        reader = _reader(data)
        count = len(reader.pages)
    except Exception:  # noqa: BLE001 - a PDF that cannot be read has no pictures
        raise NoPicture("The PDF cannot be read.") from None
    if not 1 <= page <= min(count, MAX_PAGES):
        raise NoPicture(f"The PDF has no page {page} to show.")
    try:
        declared = _declared_image_pixels(reader.pages[page - 1].get("/Resources"))
    except RecursionError:
        raise NoPicture("The page is nested too deeply to read.") from None
    if declared > max_pixels:
        raise NoPicture(f"An image on page {page} declares more than {max_pixels} pixels.")
    import pypdfium2 as pdfium  # loaded on first render: the rest of the app does not need PDFium

    with _PDFIUM:
        try:
            pdf = pdfium.PdfDocument(data)
        except Exception:  # noqa: BLE001 - PdfiumError and friends: PDFium could not open it
            raise NoPicture("The PDF cannot be opened for rendering.") from None
        try:
            if page > len(pdf):
                raise NoPicture(f"The PDF has no page {page} to show.")
            pdf_page = pdf[page - 1]
            try:
                width, height = pdf_page.get_size()
                if not (0 < width < 14_400 and 0 < height < 14_400):  # the PDF spec's 200 in limit
                    raise NoPicture(f"Page {page} has no usable size.")
                scale = long_side / max(width, height)
                if round(width * scale) * round(height * scale) > max_pixels:
                    raise NoPicture(f"Page {page}'s picture would be past the {max_pixels} pixel limit.")
                image = pdf_page.render(scale=scale).to_pil()
            finally:
                pdf_page.close()
        except NoPicture:
            raise
        except Exception:  # noqa: BLE001 - a page PDFium cannot render: say so, do not fail the page
            log.warning("Could not render page %s of a PDF", page, exc_info=True)
            raise NoPicture(f"Page {page} cannot be rendered.") from None
        finally:
            pdf.close()
    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG", optimize=True)
    return out.getvalue()


def cached_page_picture(storage: Storage, pdf_key: str, sha256: str, page: int, *, max_pixels: int) -> str:
    """The storage key of page ``page``'s picture, rendering and storing it on first use."""
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


@lru_cache(maxsize=128)
def geometry_of(storage: Storage, pdf_key: str, sha256: str) -> tuple[PageGeometry, ...]:
    """page_geometry of the stored PDF; remembered per content hash."""
    try:
        return tuple(page_geometry(storage.get(pdf_key)))
    except StorageError:
        return ()
