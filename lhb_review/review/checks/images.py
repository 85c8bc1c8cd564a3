"""Checks of pictures: they decode as what they claim to be, and have the pixels their use needs."""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from lhb_review.review.checks.results import FAIL, PASS, WARN, Result
from lhb_review.review.checks.settings import BadSpec, CheckSettings, Specs, parse_trim_size

IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def sniff(data: bytes) -> str | None:
    """The format the first bytes announce: PNG, JPEG, WEBP, PDF, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if b"%PDF-" in data[:1024]:  # readers accept leading junk before the header
        return "PDF"
    return None


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    mode: str


class Undecodable(ValueError):
    """The bytes are not a picture Pillow can read, or one too large to open safely."""


def decode(data: bytes, fmt: str, *, max_pixels: int) -> Picture:
    """Open and fully decode the picture (a truncated file fails here, not later); refuse decompression bombs
    before decoding by their declared size."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise Undecodable(f"it declares {width} × {height} pixels, more than the {max_pixels:,} allowed")
                img.load()
                return Picture(width, height, img.mode)
    except Undecodable:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise Undecodable("it declares more pixels than can be opened safely") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError) as exc:
        raise Undecodable(f"it is damaged or incomplete ({type(exc).__name__})") from None


def character_view(key: str, picture: Picture, settings: CheckSettings) -> list[Result]:
    """preBria: a character view has enough pixels on its short side, the expected colour mode and shape."""
    results = []
    short = min(picture.width, picture.height)
    size = f"{picture.width} × {picture.height} px"
    if short < settings.min_image_px:
        results.append(Result("image.resolution", FAIL,
                              f"{size}: the short side is below the {settings.min_image_px} px required.", key))
    else:
        results.append(Result("image.resolution", PASS, f"{size}: enough pixels.", key))
    if picture.mode not in settings.color_modes:
        results.append(Result("image.resolution", WARN,
                              f"Colour mode {picture.mode}; expected {' or '.join(settings.color_modes)}.", key))
    if settings.aspect_ratio:
        ratio = picture.width / picture.height
        if abs(ratio - settings.aspect_ratio) > settings.aspect_tolerance * settings.aspect_ratio:
            results.append(Result("image.resolution", WARN,
                                  f"Aspect ratio {ratio:.2f}; views are expected at {settings.aspect_ratio:.2f}.", key))
    return results


def illustration(key: str, picture: Picture, specs: Specs, settings: CheckSettings) -> Result:
    """postBria: the illustration has the pixels to print its page (or spread) plus bleed at the DPI wanted."""
    try:
        trim_w, trim_h = parse_trim_size(specs.trim_size)
    except BadSpec as exc:
        return Result("image.resolution", WARN, f"Not checked: {exc}", key)
    across = max(settings.pages_per_illustration, 1)
    width_in = across * trim_w / 72 + 2 * settings.bleed_in
    height_in = trim_h / 72 + 2 * settings.bleed_in
    dpi = min(picture.width / width_in, picture.height / height_in)
    needs = f"{width_in:.2f} × {height_in:.2f} in with bleed"
    size = f"{picture.width} × {picture.height} px"
    if dpi < settings.fail_dpi:
        return Result("image.resolution", FAIL,
                      f"{size} prints at {dpi:.0f} DPI over {needs}; at least {settings.fail_dpi:.0f} DPI is needed.", key)
    if dpi < settings.warn_dpi:
        return Result("image.resolution", WARN,
                      f"{size} prints at {dpi:.0f} DPI over {needs}; {settings.warn_dpi:.0f} DPI is recommended.", key)
    return Result("image.resolution", PASS, f"{size} prints at {dpi:.0f} DPI over {needs}.", key)


def illustration_count(count: int, specs: Specs, settings: CheckSettings) -> Result:
    """postBria: as many illustrations as the book's pages need (pages / CHECK_PAGES_PER_ILLUSTRATION)."""
    expected = specs.expected_illustrations(settings)
    if expected is None:
        return Result("illustrations.count", WARN, f"{count} illustrations; the order declares no page count to check against.")
    per = "page" if settings.pages_per_illustration <= 1 else f"{settings.pages_per_illustration} pages"
    if count != expected:
        return Result("illustrations.count", FAIL,
                      f"{count} illustrations; a {specs.pages}-page book needs {expected} (one per {per}).")
    return Result("illustrations.count", PASS, f"{count} illustrations for {specs.pages} pages (one per {per}).")
