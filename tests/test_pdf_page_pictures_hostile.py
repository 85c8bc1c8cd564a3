"""A stored PDF whose page picture is damaged, or bigger than it declares or than the pixel limit, is a clear
"no picture", never a 500: sizes are read before anything is decoded."""
from __future__ import annotations

import io
import zlib

import pytest
from PIL import Image

from lhb_review.review import pdf_pages


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
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "#3182ce").save(out, format="JPEG")
    return out.getvalue()


def test_a_good_picture_still_comes_out():
    data = pdf_with_image(jpeg(40, 30), 40, 30, "/DCTDecode")
    assert pdf_pages.page_picture(data, 1, max_pixels=10_000).startswith(b"\x89PNG")


HOSTILE = {
    "damaged jpeg": pdf_with_image(b"\xff\xd8\xff\xe0 not really a jpeg", 40, 30, "/DCTDecode"),
    "damaged flate": pdf_with_image(b"\x78\x9c garbage that does not inflate", 40, 30, "/FlateDecode"),
    "truncated pixels": pdf_with_image(zlib.compress(b"\0" * 10), 40, 30, "/FlateDecode"),
    "declares more than the limit": pdf_with_image(jpeg(40, 30), 40_000, 40_000, "/DCTDecode"),
    "decodes to more than it declares": pdf_with_image(jpeg(400, 300), 10, 10, "/DCTDecode"),
    "a size that is not a number": pdf_with_image(jpeg(40, 30), 40, 30, "/DCTDecode").replace(
        b"/Width 40", b"/Width (x)"),
}


@pytest.mark.parametrize("data", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_picture_is_no_picture_not_an_error(data):
    with pytest.raises(pdf_pages.NoPicture):
        pdf_pages.page_picture(data, 1, max_pixels=10_000)
