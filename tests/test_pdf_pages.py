"""Pictures of PDF pages for the compare view: the page's illustration, extracted once and stored."""
from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from lhb_review.review import pdf_pages
from lhb_review.core.storage import LocalStorage
from tests.upload_files import hand_made_pdf, pdf_bytes


def test_the_largest_picture_of_a_page_comes_out_as_png():
    png = pdf_pages.page_picture(pdf_bytes(2), 2, max_pixels=10**6)
    with Image.open(io.BytesIO(png)) as img:
        assert (img.format, img.size) == ("PNG", (200, 200))


@pytest.mark.parametrize("data,page", [(hand_made_pdf(), 1), (pdf_bytes(1), 2), (pdf_bytes(1), 0)])
def test_pages_without_a_picture_say_so(data, page):
    with pytest.raises(pdf_pages.NoPicture):
        pdf_pages.page_picture(data, page, max_pixels=10**6)


def test_pictures_over_the_pixel_cap_are_not_extracted():
    with pytest.raises(pdf_pages.NoPicture):
        pdf_pages.page_picture(pdf_bytes(1), 1, max_pixels=100)


def test_the_picture_is_stored_once_under_the_pdfs_content_hash(tmp_path):
    store = LocalStorage(tmp_path)
    data = pdf_bytes(3)
    store.put("orders/A/postPdf/book.pdf", data, "application/pdf")
    sha = hashlib.sha256(data).hexdigest()
    key = pdf_pages.cached_page_picture(store, "orders/A/postPdf/book.pdf", sha, 3, max_pixels=10**6)
    assert key == f"derived/pdf-pages/{sha}/page-3.png" and store.exists(key)
    store.delete("orders/A/postPdf/book.pdf")  # a second call needs only the stored picture
    assert pdf_pages.cached_page_picture(store, "orders/A/postPdf/book.pdf", sha, 3, max_pixels=10**6) == key
    assert pdf_pages.count_pages(data) == 3 and pdf_pages.count_pages(b"%PDF-broken") == 0
