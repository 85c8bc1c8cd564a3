"""Print PDFs and pictures made byte by byte for the machine-check tests: good ones and hostile ones."""
from __future__ import annotations

import hashlib
import io
import zlib

from PIL import Image

PT = 72


class RawPdf:
    """A PDF written object by object, so a test can put any bytes (escaped names, deep nesting) anywhere."""

    def __init__(self) -> None:
        self.objects: list[bytes] = []

    def add(self, body: bytes) -> int:
        self.objects.append(body)
        return len(self.objects)

    def reserve(self) -> int:
        return self.add(b"null")

    def set(self, number: int, body: bytes) -> None:
        self.objects[number - 1] = body

    def stream(self, data: bytes, extra: bytes = b"", *, compress: bool = True) -> int:
        if compress:
            data = zlib.compress(data)
            extra += b" /Filter /FlateDecode"
        return self.add(b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream")

    def build(self, root: int, info: int | None = None) -> bytes:
        out = io.BytesIO()
        out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(self.objects, start=1):
            offsets.append(out.tell())
            out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
        xref = out.tell()
        out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(self.objects) + 1))
        for offset in offsets:
            out.write(b"%010d 00000 n \n" % offset)
        trailer = b"<< /Size %d /Root %d 0 R" % (len(self.objects) + 1, root)
        if info:
            trailer += b" /Info %d 0 R" % info
        out.write(b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref)
        return out.getvalue()


def escape(text: str) -> bytes:
    return text.encode("cp1252").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def book_pdf(
    *,
    pages: int = 24,
    trim_in: tuple[float, float] = (8.5, 8.5),
    bleed_in: float = 0.125,
    trim_box: bool = True,
    image_px: int | None = None,
    low_res_pages: tuple[int, ...] = (),
    low_res_px: int = 600,
    texts: tuple[str, ...] = ("Maya and the Moon", "For Maya, with love from Grandma.", "Maya looks up."),
    embed_fonts: bool = True,
    catalog_extra: bytes = b"",
    page_extra: bytes = b"",
    extra: callable | None = None,
) -> bytes:
    """A picture-book print PDF: every page full-bleed with one image placed over trim plus bleed, and text.

    ``image_px`` defaults to the pixels that give exactly 300 DPI over the full-bleed page.
    """
    pdf = RawPdf()
    catalog = pdf.reserve()
    tree = pdf.reserve()
    bleed = bleed_in * PT
    tw, th = trim_in[0] * PT, trim_in[1] * PT
    full_w, full_h = tw + 2 * bleed, th + 2 * bleed
    px = image_px or round((trim_in[0] + 2 * bleed_in) * 300)
    gray = b"/Type /XObject /Subtype /Image /ColorSpace /DeviceGray /BitsPerComponent 8"
    image = pdf.stream(b"\x80" * (px * px), b" " + gray + b" /Width %d /Height %d" % (px, px))
    small = pdf.stream(b"\x80" * (low_res_px * low_res_px), b" " + gray + b" /Width %d /Height %d" % (low_res_px, low_res_px))
    if embed_fonts:
        program = pdf.stream(b"\x00\x01\x00\x00 not a real font program, present for the descriptor", b" /Length1 52")
        descriptor = pdf.add(b"<< /Type /FontDescriptor /FontName /StoryFont /Flags 32 /FontBBox [0 0 1000 1000] "
                             b"/ItalicAngle 0 /Ascent 800 /Descent -200 /CapHeight 700 /StemV 80 /FontFile2 %d 0 R >>"
                             % program)
        font = pdf.add(b"<< /Type /Font /Subtype /TrueType /BaseFont /StoryFont /FirstChar 32 /LastChar 126 "
                       b"/Widths [%s] /Encoding /WinAnsiEncoding /FontDescriptor %d 0 R >>"
                       % (b" ".join([b"500"] * 95), descriptor))
    else:
        font = pdf.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids = []
    for number in range(1, pages + 1):
        picture = small if number in low_res_pages else image
        lines = b"".join(b"BT /F1 18 Tf %d %d Td (%s) Tj ET\n" % (bleed + 54, bleed + 60 + 30 * i, escape(t))
                         for i, t in enumerate(texts if number == 1 else texts[-1:]))
        content = pdf.stream(b"q %.3f 0 0 %.3f 0 0 cm /Im0 Do Q\n" % (full_w, full_h) + lines)
        boxes = b"/MediaBox [0 0 %.3f %.3f]" % (full_w, full_h)
        if trim_box:
            boxes += b" /TrimBox [%.3f %.3f %.3f %.3f] /BleedBox [0 0 %.3f %.3f]" % (
                bleed, bleed, bleed + tw, bleed + th, full_w, full_h)
        kids.append(pdf.add(b"<< /Type /Page /Parent %d 0 R %s /Contents %d 0 R "
                            b"/Resources << /XObject << /Im0 %d 0 R >> /Font << /F1 %d 0 R >> >> %s >>"
                            % (tree, boxes, content, picture, font, page_extra)))
    pdf.set(tree, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids)))
    pdf.set(catalog, b"<< /Type /Catalog /Pages %d 0 R %s >>" % (tree, catalog_extra))
    if extra:
        extra(pdf)
    return pdf.build(catalog)


def nested_pdf(depth: int) -> bytes:
    """A one-page PDF whose catalog carries an array nested ``depth`` levels deep."""
    return book_pdf(pages=1, catalog_extra=b"/Nest " + b"[" * depth + b"]" * depth)


def bomb_pdf(decompressed_mb: int = 400) -> bytes:
    """A one-page PDF whose content stream inflates to ``decompressed_mb`` MB of spaces (about 0.1% of it on disk)."""
    compressor = zlib.compressobj(9)
    chunk = b" " * (1024 * 1024)
    data = b"".join(compressor.compress(chunk) for _ in range(decompressed_mb)) + compressor.flush()
    pdf = RawPdf()
    catalog = pdf.reserve()
    tree = pdf.reserve()
    content = pdf.add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream")
    page = pdf.add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 630 630] /Contents %d 0 R >>" % (tree, content))
    pdf.set(tree, b"<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % page)
    pdf.set(catalog, b"<< /Type /Catalog /Pages %d 0 R >>" % tree)
    return pdf.build(catalog)


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), "white" if mode != "P" else 0).save(out, format="PNG")
    return out.getvalue()


def asset(key: str, data: bytes, content_type: str) -> dict:
    return {"key": key, "label": key.rsplit("/", 1)[-1], "content_type": content_type,
            "sha256": hashlib.sha256(data).hexdigest()}


def spread_px(trim_in: float = 8.5, bleed_in: float = 0.125, dpi: int = 300) -> tuple[int, int]:
    """Pixels of an illustration spanning a spread plus bleed at ``dpi``."""
    return round((2 * trim_in + 2 * bleed_in) * dpi) + 1, round((trim_in + 2 * bleed_in) * dpi) + 1
