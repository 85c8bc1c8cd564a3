"""Hostile PDFs for the page renderer. A damaged PDF, a damaged page, or an image that declares more pixels
than the limit is a clear "no picture", never a 500: sizes are read before anything is decoded. A damaged
image on a page that is otherwise sound renders as the press would show it (the page, without that
image), at the page's own bounded size, whatever the image claims."""
from __future__ import annotations

import io
import zlib

import pytest
from PIL import Image

from lhb_review.review import pdf_pages
from tests.upload_files import pdf_from_objects


def pdf_with_image(stream: bytes, width: int, height: int, filters: str) -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Resources << /XObject << /Im0 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        (f"<< /Type /XObject /Subtype /Image /Width {width} /Height {height} /ColorSpace /DeviceRGB "
         f"/BitsPerComponent 8 /Filter {filters} /Length {len(stream)} >>\nstream\n").encode() + stream
        + b"\nendstream",
        b"<< /Length 29 >>\nstream\nq 200 0 0 200 0 0 cm /Im0 Do Q\nendstream",
    ]
    return pdf_from_objects(objects)


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "#3182ce").save(out, format="JPEG")
    return out.getvalue()


LIMIT = 40_000  # pixels: a 200 x 200 render fits, a 40 000 x 40 000 image does not


def render(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(pdf_pages.page_picture(data, 1, max_pixels=LIMIT, long_side=200)))


def test_a_good_picture_is_rendered_over_the_whole_page():
    with render(pdf_with_image(jpeg(40, 30), 40, 30, "/DCTDecode")) as img:
        assert img.size == (200, 200)
        r, g, b = img.convert("RGB").getpixel((100, 100))
        assert b > 150 and r < 100  # the picture's blue, drawn by the renderer


SOUND_PAGE_BAD_IMAGE = {
    "damaged jpeg": pdf_with_image(b"\xff\xd8\xff\xe0 not really a jpeg", 40, 30, "/DCTDecode"),
    "damaged flate": pdf_with_image(b"\x78\x9c garbage that does not inflate", 40, 30, "/FlateDecode"),
    "truncated pixels": pdf_with_image(zlib.compress(b"\0" * 10), 40, 30, "/FlateDecode"),
    "decodes to more than it declares": pdf_with_image(jpeg(400, 300), 10, 10, "/DCTDecode"),
}


@pytest.mark.parametrize("data", SOUND_PAGE_BAD_IMAGE.values(), ids=SOUND_PAGE_BAD_IMAGE.keys())
def test_a_damaged_image_on_a_sound_page_renders_the_page_at_its_own_size(data):
    with render(data) as img:
        assert img.size == (200, 200)


def nested_forms(depth: int) -> bytes:
    """A page whose form XObject draws a form that draws a form... ``depth`` deep."""
    data = pdf_with_image(jpeg(4, 4), 4, 4, "/DCTDecode")
    first = data.index(b"4 0 obj")
    head = data[:first]
    objects = [b"<< /Type /XObject /Subtype /Form /BBox [0 0 1 1] /Resources << /XObject << /F0 %d 0 R >> >> "
               b"/Length 0 >>\nstream\n\nendstream" % (n + 1) for n in range(4, 4 + depth)]
    objects.append(b"<< /Type /XObject /Subtype /Form /BBox [0 0 1 1] /Length 0 >>\nstream\n\nendstream")
    objects.append(b"<< /Length 8 >>\nstream\n/Im0 Do\nendstream")
    head = head.replace(b"/Contents 5 0 R", b"/Contents %d 0 R" % (4 + len(objects) - 1))
    out = bytearray(head)
    offsets = [head.index(b"%d 0 obj" % n) for n in (1, 2, 3)]
    for number, body in enumerate(objects, start=4):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(offsets) + 1, xref)
    return bytes(out)


HOSTILE = {
    "declares more than the limit": pdf_with_image(jpeg(40, 30), 40_000, 40_000, "/DCTDecode"),
    "a size that is not a number": pdf_with_image(jpeg(40, 30), 40, 30, "/DCTDecode").replace(
        b"/Width 40", b"/Width (x)"),
    "not a pdf": b"GIF89a this is not a PDF at all",
    "truncated in the middle": pdf_with_image(jpeg(40, 30), 40, 30, "/DCTDecode")[:120],
    "an empty file": b"",
    "forms nested past the limit": nested_forms(pdf_pages.MAX_FORM_DEPTH + 4),
    "a page past the 200 inch limit": pdf_with_image(jpeg(4, 4), 4, 4, "/DCTDecode").replace(
        b"/MediaBox [0 0 200 200]", b"/MediaBox [0 0 99999 99]"),
}


@pytest.mark.parametrize("data", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_pdf_is_no_picture_not_an_error(data):
    with pytest.raises(pdf_pages.NoPicture):
        pdf_pages.page_picture(data, 1, max_pixels=LIMIT, long_side=200)


def test_forms_nested_within_the_limit_still_render():
    with render(nested_forms(3)) as img:
        assert img.size == (200, 200)
