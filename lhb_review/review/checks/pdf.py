"""Checks of a print PDF against the order: pages, trim and bleed, image resolution, fonts, safety, text."""
from __future__ import annotations

import io
import math
import re
import unicodedata
from collections.abc import Callable, Iterator

from pypdf import PdfReader

from lhb_review.review.checks.boxes import page_box
from pypdf.generic import ArrayObject, ContentStream, DictionaryObject, IndirectObject

from lhb_review.review.checks.active_content import find_active_content
from lhb_review.review.checks.results import ERROR, FAIL, PASS, WARN, Result
from lhb_review.review.checks.settings import BadSpec, CheckSettings, Specs, parse_trim_size

MAX_FORM_DEPTH = 8
MAX_OPERATIONS = 500_000
MAX_LISTED = 8


class Unreadable(ValueError):
    """The PDF cannot be parsed (or decrypted) well enough to check."""


def open_pdf(data: bytes) -> PdfReader:
    """Parse the cross-reference table, the catalog and the page tree; Unreadable if any of them fails.
    An encrypted PDF opens when its user password is empty (owner-only protection)."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise Unreadable("it is encrypted with a password")
        reader.trailer["/Root"].get_object()["/Pages"]
        if len(reader.pages) < 1:
            raise Unreadable("it has no pages")
        return reader
    except Unreadable:
        raise
    except RecursionError:
        raise Unreadable("its objects are nested too deeply to parse") from None
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds for hostile input; all mean "damaged"
        raise Unreadable(f"it is damaged ({type(exc).__name__})") from None


def pages_listed(pages: list[int]) -> str:
    shown = ", ".join(str(p) for p in pages[:MAX_LISTED])
    return shown + (f" and {len(pages) - MAX_LISTED} more" if len(pages) > MAX_LISTED else "")


def page_count(reader: PdfReader, key: str, specs: Specs, settings: CheckSettings) -> Result:
    pages = len(reader.pages)
    if specs.pages is None:
        return Result("pdf.page_count", WARN, f"{pages} page{'s' if pages != 1 else ''}; the order declares no page count.", key)
    expected = specs.pages + settings.cover_pages
    cover = f" plus {settings.cover_pages} cover pages" if settings.cover_pages else ""
    if pages != expected:
        return Result("pdf.page_count", FAIL,
                      f"{pages} page{'s' if pages != 1 else ''}; the order's book has {specs.pages}{cover}, so {expected} are expected.",
                      key, expected + 1 if pages > expected else None)
    return Result("pdf.page_count", PASS, f"{pages} pages, as the order says{' with its cover' if cover else ''}.", key)


def trim_size(reader: PdfReader, key: str, specs: Specs, settings: CheckSettings) -> Result:
    try:
        want_w, want_h = parse_trim_size(specs.trim_size)
    except BadSpec as exc:
        return Result("pdf.trim_size", WARN, f"Not checked: {exc}", key)
    wrong: list[int] = []
    first_size = None
    for number, page in enumerate(reader.pages[: settings.max_pdf_pages], start=1):
        x0, y0, x1, y1 = page_box(page, "/TrimBox")
        w, h = x1 - x0, y1 - y0
        if abs(w - want_w) > settings.trim_tolerance_pt or abs(h - want_h) > settings.trim_tolerance_pt:
            wrong.append(number)
            first_size = first_size or (w, h)
    if wrong:
        w, h = first_size
        return Result("pdf.trim_size", FAIL,
                      f"Page {wrong[0]} is {w / 72:.2f} × {h / 72:.2f} in, not {specs.trim_size} "
                      f"(pages {pages_listed(wrong)}).", key, wrong[0])
    return Result("pdf.trim_size", PASS, f"Every page is trimmed to {specs.trim_size}.", key)


def bleed(reader: PdfReader, key: str, specs: Specs, settings: CheckSettings) -> Result:
    need = settings.bleed_in * 72 - 0.01
    short: list[int] = []
    least = math.inf
    for number, page in enumerate(reader.pages[: settings.max_pdf_pages], start=1):
        tx0, ty0, tx1, ty1 = page_box(page, "/TrimBox")
        bx0, by0, bx1, by1 = page_box(page, "/BleedBox")
        margin = min(tx0 - bx0, ty0 - by0, bx1 - tx1, by1 - ty1)
        if margin < need:
            short.append(number)
            least = min(least, margin)
    if short:
        return Result("pdf.bleed", FAIL,
                      f"Page {short[0]} has {max(least, 0) / 72:.3f} in of bleed past the trim; "
                      f"{settings.bleed_in} in is needed on every side (pages {pages_listed(short)}).", key, short[0])
    return Result("pdf.bleed", PASS, f"Every page has at least {settings.bleed_in} in of bleed.", key)


def _multiply(m: list[float], n: list[float]) -> list[float]:
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return [a * a2 + b * c2, a * b2 + b * d2, c * a2 + d * c2, c * b2 + d * d2,
            e * a2 + f * c2 + e2, e * b2 + f * d2 + f2]


def _resolve(value):
    return value.get_object() if isinstance(value, IndirectObject) else value


def placed_images(reader: PdfReader, page, resources, contents, ctm: list[float], depth: int,
                  seen: set) -> Iterator[tuple[int, int, float, float]]:
    """(pixel width, pixel height, placed width pt, placed height pt) of every image the content draws,
    following the transformation matrix through q/Q/cm and into form XObjects."""
    if depth > MAX_FORM_DEPTH or contents is None:
        return
    resources = _resolve(resources)
    xobjects = _resolve(resources.get("/XObject")) if isinstance(resources, DictionaryObject) else None
    stack: list[list[float]] = []
    current = ctm
    stream = ContentStream(contents, reader)
    for count, (operands, operator) in enumerate(stream.operations):
        if count > MAX_OPERATIONS:
            raise Unreadable(f"page content has more than {MAX_OPERATIONS} operations")
        if operator == b"q":
            stack.append(current)
        elif operator == b"Q":
            current = stack.pop() if stack else ctm
        elif operator == b"cm" and len(operands) == 6:
            current = _multiply([float(v) for v in operands], current)
        elif operator == b"INLINE IMAGE":
            settings = operands.get("settings", {}) if isinstance(operands, dict) else {}
            w, h = settings.get("/W", settings.get("/Width")), settings.get("/H", settings.get("/Height"))
            if w and h:
                yield int(w), int(h), math.hypot(current[0], current[1]), math.hypot(current[2], current[3])
        elif operator == b"Do" and operands and isinstance(xobjects, DictionaryObject):
            ref = xobjects.get(operands[0])
            xobject = _resolve(ref)
            if not isinstance(xobject, DictionaryObject):
                continue
            subtype = xobject.get("/Subtype")
            if subtype == "/Image":
                yield (int(xobject.get("/Width", 0)), int(xobject.get("/Height", 0)),
                       math.hypot(current[0], current[1]), math.hypot(current[2], current[3]))
            elif subtype == "/Form":
                ident = ref.idnum if isinstance(ref, IndirectObject) else id(xobject)
                if ident in seen:
                    continue
                matrix = [float(v) for v in xobject.get("/Matrix", [1, 0, 0, 1, 0, 0])]
                yield from placed_images(reader, page, xobject.get("/Resources", resources), xobject,
                                         _multiply(matrix, current), depth + 1, seen | {ident})


def image_resolution(reader: PdfReader, key: str, specs: Specs, settings: CheckSettings) -> Result:
    low: dict[int, float] = {}
    lowest = math.inf
    images = 0
    for number, page in enumerate(reader.pages[: settings.max_pdf_pages], start=1):
        contents = page.get_contents()
        for px_w, px_h, pt_w, pt_h in placed_images(reader, page, page.get("/Resources"), contents,
                                                     [1, 0, 0, 1, 0, 0], 0, set()):
            if pt_w <= 0 or pt_h <= 0 or px_w <= 0 or px_h <= 0:
                continue
            images += 1
            dpi = min(px_w / (pt_w / 72), px_h / (pt_h / 72))
            lowest = min(lowest, dpi)
            if dpi < settings.warn_dpi:
                low[number] = min(low.get(number, math.inf), dpi)
    if not images:
        return Result("pdf.image_resolution", PASS, "No placed images to check.", key)
    failing = sorted(p for p, dpi in low.items() if dpi < settings.fail_dpi)
    warning = sorted(low)
    if failing:
        return Result("pdf.image_resolution", FAIL,
                      f"Images print at {low[failing[0]]:.0f} DPI on page {failing[0]}; at least "
                      f"{settings.fail_dpi:.0f} DPI is needed (pages {pages_listed(failing)}).", key, failing[0])
    if warning:
        return Result("pdf.image_resolution", WARN,
                      f"Images print at {low[warning[0]]:.0f} DPI on page {warning[0]}; {settings.warn_dpi:.0f} DPI "
                      f"is recommended (pages {pages_listed(warning)}).", key, warning[0])
    return Result("pdf.image_resolution", PASS,
                  f"{images} placed images, the lowest at {lowest:.0f} DPI.", key)


def _fonts(resources, depth: int = 0) -> Iterator[tuple[str, DictionaryObject]]:
    resources = _resolve(resources)
    if not isinstance(resources, DictionaryObject) or depth > MAX_FORM_DEPTH:
        return
    fonts = _resolve(resources.get("/Font"))
    if isinstance(fonts, DictionaryObject):
        for name, font in fonts.items():
            font = _resolve(font)
            if isinstance(font, DictionaryObject):
                yield str(name), font
    xobjects = _resolve(resources.get("/XObject"))
    if isinstance(xobjects, DictionaryObject):
        for xobject in xobjects.values():
            xobject = _resolve(xobject)
            if isinstance(xobject, DictionaryObject) and xobject.get("/Subtype") == "/Form":
                yield from _fonts(xobject.get("/Resources"), depth + 1)


def is_embedded(font: DictionaryObject) -> bool:
    """A Type 3 font is its own glyphs; any other font is embedded when its descriptor carries a font file."""
    if font.get("/Subtype") == "/Type3":
        return True
    if font.get("/Subtype") == "/Type0":
        descendants = _resolve(font.get("/DescendantFonts"))
        if not isinstance(descendants, ArrayObject) or not descendants:
            return False
        font = _resolve(descendants[0])
        if not isinstance(font, DictionaryObject):
            return False
    descriptor = _resolve(font.get("/FontDescriptor"))
    return isinstance(descriptor, DictionaryObject) and any(
        k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))


def fonts_embedded(reader: PdfReader, key: str, specs: Specs, settings: CheckSettings) -> Result:
    missing: dict[str, int] = {}
    count = 0
    for number, page in enumerate(reader.pages[: settings.max_pdf_pages], start=1):
        for _, font in _fonts(page.get("/Resources")):
            count += 1
            if not is_embedded(font):
                name = str(font.get("/BaseFont", "unnamed font")).lstrip("/")
                missing.setdefault(name, number)
    if missing:
        names = ", ".join(sorted(missing)[:MAX_LISTED])
        first = min(missing.values())
        return Result("pdf.fonts_embedded", FAIL,
                      f"Fonts not embedded: {names} (first on page {first}). Every font must be embedded, "
                      "the standard 14 included.", key, first)
    return Result("pdf.fonts_embedded", PASS,
                  "Every font is embedded." if count else "The PDF uses no fonts.", key)


def active_content(reader: PdfReader, key: str, specs: Specs, settings: CheckSettings) -> Result:
    found = find_active_content(reader, max_objects=settings.max_objects)
    if found:
        kinds = sorted({f.what for f in found})
        page = min((f.page for f in found if f.page), default=None)
        return Result("pdf.active_content", FAIL,
                      f"The PDF contains {', '.join(kinds[:MAX_LISTED])} (at {found[0].where}); "
                      "a print file must have none.", key, page)
    return Result("pdf.active_content", PASS, "No scripts, actions, attachments or form fields.", key)


def normalise(text: str) -> str:
    """Text as compared: compatibility forms folded, case folded, hyphenation and spacing removed."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("\u00ad", "")
    text = re.sub(r"[\u2018\u2019]", "'", text)
    text = re.sub(r"[\u201c\u201d]", '"', text)
    return re.sub(r"\s+", " ", text).strip()


def extract_text(reader: PdfReader, settings: CheckSettings) -> str:
    parts: list[str] = []
    size = 0
    for page in reader.pages[: settings.max_pdf_pages]:
        text = page.extract_text() or ""
        parts.append(text)
        size += len(text)
        if size > settings.max_text_chars:
            break
    return normalise(" ".join(parts))


TEXT_CHECKS = (("pdf.text.name", "name", "the child's name"), ("pdf.text.title", "title", "the title"),
               ("pdf.text.dedication", "dedication", "the dedication"))


def text_checks(reader: PdfReader, key: str, specs: Specs, settings: CheckSettings) -> list[Result]:
    try:
        text = extract_text(reader, settings)
    except Exception as exc:  # noqa: BLE001 - a hostile stream must not stop the other checks
        return [Result(check, ERROR, f"The PDF's text could not be extracted ({type(exc).__name__}).", key)
                for check, _, _ in TEXT_CHECKS]
    results = []
    for check, field, what in TEXT_CHECKS:
        wanted = getattr(specs, field)
        if not wanted:
            results.append(Result(check, WARN, f"Not checked: the order does not give {what}.", key))
        elif not text:
            results.append(Result(check, FAIL, f"The PDF has no extractable text, so {what} “{wanted}” cannot be "
                                               "found (is the text only in pictures?).", key))
        elif normalise(wanted) in text:
            results.append(Result(check, PASS, f"{what.capitalize()} “{wanted}” appears in the text.", key))
        else:
            results.append(Result(check, FAIL, f"{what.capitalize()} “{wanted}” does not appear in the PDF's text.", key))
    return results


PAGE_CHECKS: tuple[tuple[str, Callable[..., Result]], ...] = (
    ("pdf.page_count", page_count),
    ("pdf.trim_size", trim_size),
    ("pdf.bleed", bleed),
    ("pdf.image_resolution", image_resolution),
    ("pdf.fonts_embedded", fonts_embedded),
    ("pdf.active_content", active_content),
)


def print_pdf(data: bytes, key: str, specs: Specs, settings: CheckSettings) -> list[Result]:
    """Every postPdf check of one PDF; a check that raises gives ``error`` and the others still run."""
    try:
        encrypted = PdfReader(io.BytesIO(data), strict=False).is_encrypted
    except Exception:  # noqa: BLE001 - file.decodes reports an unreadable file
        encrypted = None
    results = []
    if encrypted is None:
        results.append(Result("pdf.encrypted", ERROR, "Could not tell whether the PDF is encrypted.", key))
    elif encrypted:
        results.append(Result("pdf.encrypted", FAIL, "The PDF is encrypted; the printer needs an unencrypted file.", key))
    else:
        results.append(Result("pdf.encrypted", PASS, "Not encrypted.", key))
    try:
        reader = open_pdf(data)
    except Unreadable as exc:
        checks = [check for check, _ in PAGE_CHECKS] + [check for check, _, _ in TEXT_CHECKS]
        return results + [Result(check, ERROR, f"Not checked: the PDF cannot be read ({exc}).", key) for check in checks]
    for check, run in PAGE_CHECKS:
        try:
            results.append(run(reader, key, specs, settings))
        except Exception as exc:  # noqa: BLE001 - see the docstring
            results.append(Result(check, ERROR, f"This check could not run on the PDF ({type(exc).__name__}: "
                                                f"{str(exc)[:200]}).", key))
    results.extend(text_checks(reader, key, specs, settings))
    return results
