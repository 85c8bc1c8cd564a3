"""Pictures and a PDF drawn locally for demo orders, so the review pages show real assets offline.

The files are made to pass every machine check of the order they belong to: character views of at least
1024 px, one illustration per spread with the pixels to print it with bleed at 300 DPI, and a print PDF
(reportlab) with the book's page count, its trim size plus bleed in TrimBox and BleedBox, an embedded font
(Bitstream Vera, which reportlab ships) and a text layer with the child's name, the title and the
dedication. ``flaw`` spoils exactly one of those, so a demo order can show each kind of failure.
"""
from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from lhb_review.review.checks.settings import BadSpec, parse_trim_size

FLAWS = ("short_pdf", "low_resolution", "missing_name", "wrong_trim")
PRINT_DPI = 310  # a little over the 300 DPI the checks want, so rounding never makes it a warning
BLEED_PT = 9  # 0.125 in
CHARACTER_SIDE = 1024

SIZE = (640, 640)
SKIN = {"light": "#f6d7c3", "medium": "#d9a47c", "tan": "#c68642", "deep": "#8d5524"}
HAIR = {"black": "#1b1b1b", "brown": "#6b4226", "blonde": "#e8c872", "red": "#b7410e", "auburn": "#922724"}
OUTFIT = {"explorer": "#2f855a", "astronaut": "#cbd5e0", "knight": "#718096", "pirate": "#c53030", "fairy": "#d53f8c"}
BACKDROP = {
    "my-first-adventure": "#bee3f8",
    "bedtime-hero": "#2a4365",
    "space-explorer": "#1a202c",
    "dino-friends": "#c6f6d5",
}


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow before 10.1
        return ImageFont.load_default()


def draw_character(specs: dict, project: str, caption: str, *, pose: int = 0, drift: bool = False) -> Image.Image:
    """A friendly, simple figure in the child's colours. ``drift`` changes the hair, as a bad render would."""
    img = Image.new("RGB", SIZE, BACKDROP.get(project, "#e2e8f0"))
    d = ImageDraw.Draw(img)
    cx = 320 + (pose - 1) * 60
    skin = SKIN.get(specs.get("skin_tone"), "#e0b899")
    hair = HAIR.get((specs.get("hair") or {}).get("color"), "#4a5568")
    if drift:
        hair = "#38a169"
    outfit = OUTFIT.get(specs.get("outfit"), "#3182ce")
    d.rounded_rectangle((cx - 95, 330, cx + 95, 560), radius=40, fill=outfit, outline="#1a202c", width=4)
    d.ellipse((cx - 90, 130, cx + 90, 310), fill=skin, outline="#1a202c", width=4)
    d.chord((cx - 100, 110, cx + 100, 260), 180, 360, fill=hair)
    for ex in (cx - 38, cx + 28):
        d.ellipse((ex, 205, ex + 14, 221), fill="#1a202c")
    d.arc((cx - 40, 230, cx + 40, 280), 20, 160, fill="#1a202c", width=4)
    d.rectangle((0, 590, SIZE[0], SIZE[1]), fill="#ffffff")
    d.text((20, 600), caption, fill="#1a202c", font=_font(24))
    return img


def draw_page(specs: dict, project: str, book: dict, page: int) -> Image.Image:
    img = draw_character(specs, project, f"Page {page}", pose=page % 3)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, SIZE[0], 70), fill="#fffaf0")
    name = specs.get("name", "Our hero")
    d.text((20, 20), f"{name} and the {book.get('theme', 'big adventure')}", fill="#1a202c", font=_font(26))
    return img


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def pdf_bytes(pages: list[Image.Image]) -> bytes:
    buf = io.BytesIO()
    first, *rest = pages
    first.save(buf, format="PDF", save_all=True, append_images=rest, resolution=72)
    return buf.getvalue()


def _trim_pt(book: dict) -> tuple[float, float]:
    try:
        return parse_trim_size(book.get("trim_size") or "8.5 x 8.5 in")
    except BadSpec:
        return 612.0, 612.0


def draw_spread(specs: dict, project: str, book: dict, first_page: int, size: tuple[int, int]) -> Image.Image:
    """One illustration for two facing pages: a scene on each half, scaled up to ``size`` pixels."""
    left = draw_page(specs, project, book, first_page)
    right = draw_page(specs, project, book, first_page + 1)
    both = Image.new("RGB", (SIZE[0] * 2, SIZE[1]))
    both.paste(left, (0, 0))
    both.paste(right, (SIZE[0], 0))
    return both.resize(size, Image.NEAREST)  # flat colours: nearest is fast and as sharp as the drawing


def jpeg_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=82)
    return buf.getvalue()


def spread_pixels(book: dict) -> tuple[int, int]:
    """The pixels a spread illustration needs: two trimmed pages plus bleed, at PRINT_DPI."""
    w, h = _trim_pt(book)
    return math.ceil((2 * w + 2 * BLEED_PT) / 72 * PRINT_DPI), math.ceil((h + 2 * BLEED_PT) / 72 * PRINT_DPI)


def _font_name() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    import reportlab

    if "DemoVera" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("DemoVera", str(Path(reportlab.__file__).parent / "fonts" / "Vera.ttf")))
    return "DemoVera"


def print_pdf(spreads: list[bytes], pages: int, book: dict, *, name: str, trim: tuple[float, float] | None = None) -> bytes:
    """A print-ready PDF: ``pages`` pages of the trim size plus bleed, each showing its half of a spread
    illustration, with the title on page 1, the dedication on page 2 and the child's name in the text."""
    import tempfile

    from reportlab import rl_config

    # reportlab would otherwise ASCII85-encode each picture in pure Python and hash its decoded pixels: given
    # JPEG files and binary streams it copies each picture in once.
    a85, rl_config.useA85 = rl_config.useA85, 0
    try:
        with tempfile.TemporaryDirectory(prefix="lhb-demo-") as tmp:
            paths = []
            for k, data in enumerate(spreads):
                path = Path(tmp) / f"spread-{k}.jpg"
                path.write_bytes(data)
                paths.append(str(path))
            return _draw_book(paths, pages, book, name=name, trim=trim)
    finally:
        rl_config.useA85 = a85


def _draw_book(paths: list[str], pages: int, book: dict, *, name: str, trim: tuple[float, float] | None) -> bytes:
    from reportlab.pdfgen import canvas

    w, h = trim or _trim_pt(book)
    font = _font_name()
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=(w + 2 * BLEED_PT, h + 2 * BLEED_PT), pageCompression=1, invariant=1,
                        initialFontName=font, initialFontSize=14)
    pdf.setTitle(str(book.get("title") or "A Little Hero Book"))
    for n in range(1, pages + 1):
        pdf.setPageSize((w + 2 * BLEED_PT, h + 2 * BLEED_PT))
        pdf.setBleedBox((0, 0, w + 2 * BLEED_PT, h + 2 * BLEED_PT))
        pdf.setTrimBox((BLEED_PT, BLEED_PT, w + BLEED_PT, h + BLEED_PT))
        spread = paths[((n - 1) // 2) % len(paths)]
        # The spread is 2w + 2 bleed wide: a left page shows its left half, a right page its right half.
        x = 0 if n % 2 else -w
        pdf.drawImage(spread, x, 0, width=2 * w + 2 * BLEED_PT, height=h + 2 * BLEED_PT)
        pdf.setFillColorRGB(1, 1, 1)
        pdf.rect(BLEED_PT + 27, BLEED_PT + 27, w - 54, 46, stroke=0, fill=1)
        pdf.setFillColorRGB(0.1, 0.12, 0.17)
        pdf.setFont(font, 14)
        if n == 1:
            line = str(book.get("title") or "")
        elif n == 2:
            line = str(book.get("dedication") or "")
        else:
            line = f"{name} and the {book.get('theme', 'big adventure')}, page {n}."
        pdf.drawString(BLEED_PT + 36, BLEED_PT + 44, line)
        pdf.showPage()
    pdf.save()
    return buf.getvalue()


def write_asset(root: Path, key: str, data: bytes, label: str, content_type: str) -> dict:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    return {"key": key, "label": label, "content_type": content_type, "sha256": hashlib.sha256(data).hexdigest()}


def make_order_assets(root: Path, order_id: str, project: str, specs: dict, book: dict, *, flaw: str | None = None,
                      stages: tuple[str, ...] = ("preBria", "postBria", "postPdf")) -> dict:
    """Draw and store the assets of one order's ``stages`` (the others are left out, which keeps seeding fast);
    returns the r2_assets mapping. ``flaw`` (one of FLAWS) spoils one check's worth of it."""
    if flaw is not None and flaw not in FLAWS:
        raise ValueError(f"Unknown flaw {flaw!r}: one of {', '.join(FLAWS)}")
    prefix = f"orders/{order_id}"
    name = specs.get("name", "Hero")
    found: dict[str, list[dict]] = {}
    if "preBria" in stages:
        views = ((1, "front", "Character, front"), (2, "side", "Character, three-quarter view"))
        found["preBria"] = [
            write_asset(root, f"{prefix}/preBria/character-{view}.png",
                        png_bytes(draw_character(specs, project, f"{name} - {view}", pose=pose).resize(
                            (CHARACTER_SIDE, CHARACTER_SIDE), Image.NEAREST)), label, "image/png")
            for pose, view, label in views]
    if "postBria" not in stages and "postPdf" not in stages:
        return found
    pages = book.get("pages") if isinstance(book.get("pages"), int) and book.get("pages") > 0 else 12
    size = spread_pixels(book)
    spreads = [jpeg_bytes(draw_spread(specs, project, book, 2 * k + 1, size)) for k in range(math.ceil(pages / 2))]
    if "postBria" in stages:
        found["postBria"] = []
        for k, data in enumerate(spreads, start=1):
            if flaw == "low_resolution" and k == 2:
                data = jpeg_bytes(Image.open(io.BytesIO(data)).resize((size[0] // 4, size[1] // 4)))
            found["postBria"].append(write_asset(root, f"{prefix}/postBria/spread-{k}.jpg", data,
                                                 f"Illustration, pages {2 * k - 1}–{2 * k}", "image/jpeg"))
    if "postPdf" in stages:
        shown_name, shown_book = name, book
        trim = None
        if flaw == "short_pdf":
            pages = max(pages // 4, 3)
        elif flaw == "missing_name":
            shown_name = "Our hero"
        elif flaw == "wrong_trim":
            w, h = _trim_pt(book)
            trim = (w - 72, h - 72)  # an inch short each way: smaller pages keep the pictures over 300 DPI
        data = print_pdf(spreads, pages, shown_book, name=shown_name, trim=trim)
        found["postPdf"] = [write_asset(root, f"{prefix}/postPdf/book.pdf", data, "Print-ready book", "application/pdf")]
    return found
