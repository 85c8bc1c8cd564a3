"""Active content in a parsed PDF: scripts, actions, embedded files and form fields, found by walking objects.

The walk reads the PDF's objects as the parser decoded them, so a name written with escapes
(``/JavaS#63ript``) is the same name as ``/JavaScript``; searching the raw bytes would miss it. The walk is
iterative (no recursion to exhaust), follows each indirect object once, and stops at a depth and object
budget, reporting what it could not inspect rather than passing it.
"""
from __future__ import annotations

from dataclasses import dataclass

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

# Action types a print file never needs. GoTo (a link inside the document) and Named (next page...) stay.
ACTIONS = {
    "/JavaScript": "a JavaScript action",
    "/Launch": "a Launch action (opens a program or file)",
    "/SubmitForm": "a form-submission action",
    "/ImportData": "an import-data action",
    "/ResetForm": "a form-reset action",
    "/GoToR": "a link that opens another file",
    "/GoToE": "a link into an embedded file",
    "/URI": "a link to a web address",
    "/Rendition": "a media rendition action",
    "/Sound": "a sound action",
    "/Movie": "a movie action",
    "/RichMediaExecute": "a rich-media action",
    "/Hide": "a show/hide action",
}
ANNOTATIONS = {
    "/Widget": "a form field",
    "/FileAttachment": "an attached file",
    "/RichMedia": "rich media (video, Flash)",
    "/Movie": "a movie",
    "/Sound": "a sound",
    "/Screen": "a media screen",
}
SKIP_KEYS = {"/Parent", "/P"}  # back-pointers to what the walk has already seen


@dataclass(frozen=True)
class Finding:
    """One piece of active content: what it is, where (a key path such as /Root/OpenAction), and its page."""

    what: str
    where: str
    page: int | None = None


def _page_numbers(reader: PdfReader) -> dict[int, int]:
    numbers: dict[int, int] = {}
    for number, page in enumerate(reader.pages, start=1):
        ref = page.indirect_reference
        if ref is not None:
            numbers.setdefault(ref.idnum, number)
    return numbers


def _inspect(obj: DictionaryObject, where: str, page: int | None) -> list[Finding]:
    found = []
    keys = set(obj.keys())
    if "/JS" in keys or "/JavaScript" in keys:
        found.append(Finding("JavaScript", where, page))
    subtype_s = obj.get("/S")
    if isinstance(subtype_s, NameObject) and subtype_s in ACTIONS:
        found.append(Finding(ACTIONS[subtype_s], where, page))
    subtype = obj.get("/Subtype")
    if isinstance(subtype, NameObject) and subtype in ANNOTATIONS and obj.get("/Type") in (None, "/Annot"):
        found.append(Finding(ANNOTATIONS[subtype], where, page))
    if obj.get("/Type") in ("/EmbeddedFile", "/Filespec") and ("/EF" in keys or obj.get("/Type") == "/EmbeddedFile"):
        found.append(Finding("an embedded file", where, page))
    if "/EmbeddedFiles" in keys:
        found.append(Finding("embedded files", where, page))
    if "/AcroForm" in keys:
        form = obj.get("/AcroForm")
        form = form.get_object() if isinstance(form, IndirectObject) else form
        if isinstance(form, DictionaryObject) and (form.get("/Fields") or "/XFA" in form):
            found.append(Finding("an interactive form", where, page))
    return found


def find_active_content(
    reader: PdfReader, *, max_objects: int = 200_000, max_depth: int = 100
) -> list[Finding]:
    """Every piece of active content reachable from the trailer, plus a finding for anything the walk could
    not inspect (an object that does not parse, nesting deeper than ``max_depth``, more than ``max_objects``).
    Never raises for a hostile file; an empty list means nothing active was found."""
    found: list[Finding] = []
    pages = _page_numbers(reader)
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[object, str, int | None, int]] = [(reader.trailer, "trailer", None, 0)]
    visited = 0
    while stack:
        obj, where, page, depth = stack.pop()
        visited += 1
        if visited > max_objects:
            found.append(Finding(f"more than {max_objects} objects to inspect", where, page))
            break
        if depth > max_depth:
            found.append(Finding(f"objects nested more than {max_depth} levels deep", where, page))
            continue
        if isinstance(obj, IndirectObject):
            key = (obj.idnum, obj.generation)
            if key in seen:
                continue
            seen.add(key)
            page = pages.get(obj.idnum, page)
            try:
                resolved = obj.get_object()
            except (RecursionError, MemoryError):
                found.append(Finding("an object nested too deeply to read", where, page))
                continue
            except Exception:  # noqa: BLE001 - an unreadable object may hide anything: report it
                found.append(Finding("an object that cannot be read", where, page))
                continue
            stack.append((resolved, where, page, depth + 1))
            continue
        if isinstance(obj, DictionaryObject):
            found.extend(_inspect(obj, where, page))
            for name, value in obj.items():
                if name in SKIP_KEYS:
                    continue
                if isinstance(value, (DictionaryObject, ArrayObject, IndirectObject)):
                    stack.append((value, f"{where}/{name[1:]}" if len(where) < 200 else where, page, depth + 1))
        elif isinstance(obj, ArrayObject):
            for value in obj:
                if isinstance(value, (DictionaryObject, ArrayObject, IndirectObject)):
                    stack.append((value, where, page, depth + 1))
    return found
