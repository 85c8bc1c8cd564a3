"""Active content in PDFs is found by parsing: name escapes, object streams and compressed streams hide nothing."""
from __future__ import annotations

import io
import zlib

import pytest
from pypdf import PdfReader

from lhb_review.core.errors import Invalid
from lhb_review.review.pdf_safety import active_content
from lhb_review.review.uploads import _check_pdf
from tests.upload_files import hand_made_pdf, pdf_bytes

PAGES = ["<< /Type /Pages /Kids [3 0 R] /Count 1 >>", "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>"]


def packed_pdf(catalog_extra: str = "", extra_objects: tuple[str, ...] = ()) -> bytes:
    """A PDF 1.5 whose catalog, pages and extra objects all sit in one Flate-compressed object stream,
    found through a cross-reference stream: none of their names appear in the file's bytes."""
    bodies = [f"<< /Type /Catalog /Pages 2 0 R {catalog_extra}>>", *PAGES, *extra_objects]
    packed = len(bodies)
    header, content = [], b""
    for index, body in enumerate(bodies):
        header.append(f"{index + 1} {len(content)}")
        content += body.encode() + b"\n"
    head = (" ".join(header) + "\n").encode()
    stream = zlib.compress(head + content)
    objstm, xref_number = packed + 1, packed + 2
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    objstm_offset = len(out)
    out += (f"{objstm} 0 obj\n<< /Type /ObjStm /N {packed} /First {len(head)} /Filter /FlateDecode "
            f"/Length {len(stream)} >>\nstream\n").encode() + stream + b"\nendstream\nendobj\n"
    xref_offset = len(out)
    rows = [bytes([0, 0, 0, 0, 0, 0xFF, 0xFF])]
    rows += [bytes([2]) + objstm.to_bytes(4, "big") + i.to_bytes(2, "big") for i in range(packed)]
    rows += [bytes([1]) + objstm_offset.to_bytes(4, "big") + b"\0\0",
             bytes([1]) + xref_offset.to_bytes(4, "big") + b"\0\0"]
    table = zlib.compress(b"".join(rows))
    out += (f"{xref_number} 0 obj\n<< /Type /XRef /Size {xref_number + 1} /W [1 4 2] /Root 1 0 R "
            f"/Filter /FlateDecode /Length {len(table)} >>\nstream\n").encode() + table + b"\nendstream\nendobj\n"
    out += f"startxref\n{xref_offset}\n%%EOF\n".encode()
    return bytes(out)


def findings(data: bytes) -> list[str]:
    return active_content(PdfReader(io.BytesIO(data), strict=False))


HIDDEN = {
    "name-escaped JavaScript": hand_made_pdf("/OpenAction << /S /JavaS#63ript /JS (app.alert\\(1\\);) >> "),
    "name-escaped Launch": hand_made_pdf("/OpenAction << /S /L#61unch /F (calc.exe) >> "),
    "escaped key": hand_made_pdf("/OpenAction << /S /#4aavaScript /#4a#53 (x) >> "),
    "JavaScript in an object stream": packed_pdf("/OpenAction 4 0 R ", ("<< /S /JavaScript /JS (app.alert(1)) >>",)),
    "Launch in an object stream": packed_pdf("/OpenAction 4 0 R ", ("<< /S /Launch /F (cmd) >>",)),
    "names tree script, compressed": packed_pdf("/Names << /JavaScript 4 0 R >> ",
                                                 ("<< /Names [(a) << /S /JavaScript /JS (x) >>] >>",)),
    "submit form in a page action": packed_pdf("", ("<< /S /SubmitForm /F (http://x) >>",)),
    "embedded file": packed_pdf("/Names << /EmbeddedFiles << /Names [] >> >> "),
}


@pytest.mark.parametrize("data", HIDDEN.values(), ids=HIDDEN.keys())
def test_hidden_active_content_is_found(data):
    assert findings(data)
    assert b"/JavaScript" not in data or b"#" in data or b"ObjStm" in data


@pytest.mark.parametrize("data", HIDDEN.values(), ids=HIDDEN.keys())
def test_a_replacement_with_hidden_active_content_is_refused(data):
    with pytest.raises(Invalid, match="scripts"):
        _check_pdf(data)


@pytest.mark.parametrize("data", [pdf_bytes(2), hand_made_pdf(), packed_pdf()], ids=["rendered", "hand", "packed"])
def test_plain_print_files_pass(data):
    assert findings(data) == []
    assert _check_pdf(data) == 1 or _check_pdf(data) == 2


def test_the_finding_names_the_action_and_where():
    [finding, *_] = findings(HIDDEN["JavaScript in an object stream"])
    assert "/JavaScript" in finding and "object 4" in finding
