"""Pictures of PDF pages for the compare and proof views: each page rendered by PDFium, once, and stored."""
from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from lhb_review.core.storage import LocalStorage
from lhb_review.review import pdf_pages
from tests.upload_files import hand_made_pdf, pdf_bytes, pdf_from_objects


def vector_pdf(extra_page: str = "") -> bytes:
    """One 300 x 150 pt page with no image at all: a red rectangle drawn on its left half, and a TrimBox
    and BleedBox."""
    content = b"1 0 0 rg 0 0 150 150 re f"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 150] /BleedBox [3 3 297 147] "
         f"/TrimBox [12 12 288 138] /Contents 4 0 R {extra_page}>>").encode(),
        f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream",
    ]
    return pdf_from_objects(objects)


def test_a_page_is_rendered_with_its_vector_art_not_just_its_pictures():
    png = pdf_pages.page_picture(vector_pdf(), 1, max_pixels=10**7, long_side=600)
    with Image.open(io.BytesIO(png)) as img:
        assert (img.format, img.size) == ("PNG", (600, 300))
        rgb = img.convert("RGB")
        assert rgb.getpixel((150, 150)) == (255, 0, 0)  # the rectangle, which has no embedded picture
        assert rgb.getpixel((450, 150)) == (255, 255, 255)  # the blank half of the page


def test_an_image_page_renders_at_the_page_size_scaled_to_the_long_side():
    png = pdf_pages.page_picture(pdf_bytes(2), 2, max_pixels=10**7)
    with Image.open(io.BytesIO(png)) as img:
        assert img.size == (pdf_pages.RENDER_LONG_SIDE, pdf_pages.RENDER_LONG_SIDE)


def test_a_blank_page_is_rendered_too():
    with Image.open(io.BytesIO(pdf_pages.page_picture(hand_made_pdf(), 1, max_pixels=10**7, long_side=100))) as img:
        assert img.convert("RGB").getpixel((50, 50)) == (255, 255, 255)


@pytest.mark.parametrize("data,page", [(pdf_bytes(1), 2), (pdf_bytes(1), 0), (pdf_bytes(1), -1)])
def test_pages_the_pdf_does_not_have_say_so(data, page):
    with pytest.raises(pdf_pages.NoPicture):
        pdf_pages.page_picture(data, page, max_pixels=10**7)


def test_pictures_over_the_pixel_cap_are_not_rendered():
    with pytest.raises(pdf_pages.NoPicture):
        pdf_pages.page_picture(pdf_bytes(1), 1, max_pixels=100)


def test_the_geometry_gives_trim_and_bleed_from_the_top_left_of_the_page():
    (geometry,) = pdf_pages.page_geometry(vector_pdf())
    assert (geometry.width, geometry.height) == (300, 150)
    assert geometry.trim == (12, 12, 276, 126) and geometry.bleed == (3, 3, 294, 144)
    assert pdf_pages.page_geometry(b"%PDF-broken") == []


def test_the_picture_is_stored_once_under_the_pdfs_content_hash(tmp_path):
    store = LocalStorage(tmp_path)
    data = pdf_bytes(3)
    store.put("orders/A/postPdf/book.pdf", data, "application/pdf")
    sha = hashlib.sha256(data).hexdigest()
    key = pdf_pages.cached_page_picture(store, "orders/A/postPdf/book.pdf", sha, 3, max_pixels=10**7)
    assert key == pdf_pages.derived_key(sha, 3) and key.startswith(f"derived/pdf-pages/{sha}/") and store.exists(key)
    store.delete("orders/A/postPdf/book.pdf")  # a second call needs only the stored picture
    assert pdf_pages.cached_page_picture(store, "orders/A/postPdf/book.pdf", sha, 3, max_pixels=10**7) == key
    assert pdf_pages.count_pages(data) == 3 and pdf_pages.count_pages(b"%PDF-broken") == 0
