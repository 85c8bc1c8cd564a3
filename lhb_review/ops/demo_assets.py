"""Pictures and a PDF drawn locally for demo orders, so the review pages show real assets offline."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

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


def write_asset(root: Path, key: str, data: bytes, label: str, content_type: str) -> dict:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    return {"key": key, "label": label, "content_type": content_type, "sha256": hashlib.sha256(data).hexdigest()}


def make_order_assets(root: Path, order_id: str, project: str, specs: dict, book: dict) -> dict:
    """Draw and store every stage's assets of one order; returns the r2_assets mapping."""
    prefix = f"orders/{order_id}"
    name = specs.get("name", "Hero")
    pre = [
        write_asset(root, f"{prefix}/preBria/character-front.png",
                    png_bytes(draw_character(specs, project, f"{name} - front", pose=1)), "Character, front", "image/png"),
        write_asset(root, f"{prefix}/preBria/character-side.png",
                    png_bytes(draw_character(specs, project, f"{name} - three-quarter", pose=2)),
                    "Character, three-quarter view", "image/png"),
    ]
    pages = [draw_page(specs, project, book, n) for n in (1, 2, 3)]
    post = [
        write_asset(root, f"{prefix}/postBria/page-{n}.png", png_bytes(img), f"Illustration, page {n}", "image/png")
        for n, img in zip((1, 2, 3), pages)
    ]
    pdf = [write_asset(root, f"{prefix}/postPdf/book.pdf", pdf_bytes(pages), "Print-ready book", "application/pdf")]
    return {"preBria": pre, "postBria": post, "postPdf": pdf}
