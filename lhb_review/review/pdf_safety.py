"""Active content in a PDF (scripts, launch and submit actions, embedded files), found by walking its parsed objects."""
from __future__ import annotations

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

# Action types (/S) and keys that make a PDF do something when opened or clicked. A print file needs none.
ACTIONS = {"/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/GoToE", "/RichMediaExecute"}
KEYS = {"/JS": "a script", "/JavaScript": "a script", "/EmbeddedFiles": "an embedded file",
        "/EmbeddedFile": "an embedded file", "/RichMedia": "rich media", "/XFA": "an XFA form"}
MAX_NODES = 500_000  # a walk past this many objects is refused rather than left unfinished


def _objects(reader: PdfReader):
    """Every object the file's cross-reference knows, including those packed into (compressed) object
    streams, whether or not the page tree reaches them; and the trailer."""
    yield reader.trailer
    for generation, numbers in reader.xref.items():
        for number in numbers:
            yield IndirectObject(number, generation, reader)
    for number in getattr(reader, "xref_objStm", {}):
        yield IndirectObject(number, 0, reader)


def active_content(reader: PdfReader) -> list[str]:
    """What active content the PDF holds, e.g. ``["a /JavaScript action in object 7"]``; [] when none.

    Names are compared after pypdf decodes them, so ``/JavaS#63ript`` is ``/JavaScript``; objects in
    compressed object streams are parsed like any other. Pure: reads only the given reader.
    """
    found: list[str] = []
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[object, str]] = [(obj, "the trailer") for obj in _objects(reader)]
    nodes = 0
    while stack:
        obj, where = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            found.append("more objects than can be checked")
            break
        if isinstance(obj, IndirectObject):
            ref = (obj.idnum, obj.generation)
            if ref in seen:
                continue
            seen.add(ref)
            where = f"object {obj.idnum}"
            try:
                obj = obj.get_object()
            except Exception:  # noqa: BLE001 - a dangling reference holds nothing
                continue
        if isinstance(obj, DictionaryObject):
            action = obj.get("/S")
            if isinstance(action, NameObject) and action in ACTIONS:
                found.append(f"a {action} action in {where}")
            for key, value in obj.items():
                if key in KEYS:
                    found.append(f"{KEYS[key]} ({key}) in {where}")
                stack.append((value, where))
        elif isinstance(obj, ArrayObject):
            stack.extend((value, where) for value in obj)
    return sorted(set(found))
