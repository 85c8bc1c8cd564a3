"""The machine checks over files the tests make themselves: each check passing and failing, hostile PDFs flagged."""
from __future__ import annotations

import pytest

from lhb_review.review.checks.active_content import find_active_content
from lhb_review.review.checks.engine import run_checks
from lhb_review.review.checks.isolated import Limits, run_isolated
from lhb_review.review.checks.results import CHECK_IDS
from lhb_review.review.checks.settings import BadSpec, CheckSettings, Specs, parse_trim_size
from tests.check_files import asset, bomb_pdf, book_pdf, nested_pdf, png, spread_px

SPECS = Specs(pages=24, trim_size="8.5 x 8.5 in", name="Maya", title="Maya and the Moon",
              dedication="For Maya, with love from Grandma.")
SETTINGS = CheckSettings()
PDF = "application/pdf"


def outcomes(stage: str, files, specs: Specs = SPECS, settings: CheckSettings = SETTINGS) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for result in run_checks(stage, files, specs, settings):
        found.setdefault(result.check, set()).add(result.outcome)
    return found


def one_pdf(data: bytes, content_type: str = PDF):
    return [(asset("orders/o/postPdf/book.pdf", data, content_type), data)]


def results_of(check: str, stage: str, files, specs: Specs = SPECS):
    return [r for r in run_checks(stage, files, specs, SETTINGS) if r.check == check]


@pytest.mark.parametrize("text, expected", [
    ("8.5 x 8.5 in", (612.0, 612.0)),
    ("210 x 210 mm", (595.28, 595.28)),
    ("8.5in x 11in", (612.0, 792.0)),
    ("21 × 29.7 cm", (595.28, 841.89)),
])
def test_trim_sizes_are_read_in_inches_millimetres_and_centimetres(text, expected):
    width, height = parse_trim_size(text)
    assert (round(width, 2), round(height, 2)) == expected


@pytest.mark.parametrize("text", [None, "", "square", "8.5 by 8.5 in", "0 x 8 in", "8 x 8 furlongs"])
def test_unreadable_trim_sizes_are_refused_in_words(text):
    with pytest.raises(BadSpec):
        parse_trim_size(text)


def test_a_good_print_pdf_passes_every_pdf_check():
    found = outcomes("postPdf", one_pdf(book_pdf()))
    pdf_checks = [c for c in CHECK_IDS if c.startswith(("pdf.", "file."))]
    assert {c: found.get(c) for c in pdf_checks} == {c: {"pass"} for c in pdf_checks}


@pytest.mark.parametrize("name, data, check, page", [
    ("short PDF", book_pdf(pages=3), "pdf.page_count", None),
    ("long PDF", book_pdf(pages=26), "pdf.page_count", 25),
    ("wrong trim", book_pdf(trim_in=(8.0, 10.0)), "pdf.trim_size", 1),
    ("no bleed", book_pdf(bleed_in=0.0), "pdf.bleed", 1),
    ("no trim box and a page-sized media box", book_pdf(bleed_in=0.0, trim_box=False), "pdf.bleed", 1),
    ("low-res page 5", book_pdf(low_res_pages=(5, 9), low_res_px=600), "pdf.image_resolution", 5),
    ("standard 14 font, not embedded", book_pdf(embed_fonts=False), "pdf.fonts_embedded", 1),
    ("name missing", book_pdf(texts=("A Moon Story", "For Maya, with love from Grandma.", "Look up!")),
     "pdf.text.title", None),
    ("no text at all", book_pdf(texts=()), "pdf.text.name", None),
])
def test_each_pdf_check_fails_on_the_file_made_to_break_it(name, data, check, page):
    found = results_of(check, "postPdf", one_pdf(data))
    assert [r.outcome for r in found] == ["fail"], (name, found)
    assert found[0].page == page
    assert found[0].asset == "orders/o/postPdf/book.pdf"
    others = outcomes("postPdf", one_pdf(data))
    assert "fail" not in others["pdf.active_content"] and "error" not in set().union(*others.values())


def test_images_between_the_fail_and_warn_resolution_warn_and_name_their_page():
    found = results_of("pdf.image_resolution", "postPdf", one_pdf(book_pdf(low_res_pages=(3,), low_res_px=2000)))
    assert [(r.outcome, r.page) for r in found] == [("warn", 3)]
    assert f"{2000 / 8.75:.0f} DPI" in found[0].message  # 2000 px over 8.5 in plus two 0.125 in bleeds


def test_the_missing_name_is_reported_with_the_name_it_looked_for():
    found = results_of("pdf.text.name", "postPdf",
                       one_pdf(book_pdf(texts=("The Moon", "For you, with love.", "Look up!"))))
    assert found[0].outcome == "fail" and "Maya" in found[0].message


def test_text_is_compared_without_case_or_spacing_differences():
    data = book_pdf(texts=("MAYA   AND THE  MOON", "for maya, with love from grandma.", "x"))
    assert {r.outcome for r in run_checks("postPdf", one_pdf(data), SPECS, SETTINGS) if r.check.startswith("pdf.text")} == {"pass"}


def test_a_missing_spec_warns_instead_of_failing_the_file():
    found = outcomes("postPdf", one_pdf(book_pdf()), Specs())
    assert found["pdf.page_count"] == found["pdf.trim_size"] == found["pdf.text.name"] == {"warn"}


@pytest.mark.parametrize("catalog_extra, page_extra, what", [
    (b"/OpenAction << /S /JavaScript /JS (app.alert(1)) >>", b"", "JavaScript"),
    (b"/OpenAction << /S /JavaS#63ript /JS (app.alert(1)) >>", b"", "JavaScript"),
    (b"/OpenAction << /S /Launch /F (calc.exe) >>", b"", "Launch"),
    (b"/Names << /EmbeddedFiles << /Names [(a.exe) << /Type /Filespec /EF << >> >>] >> >>", b"", "embedded"),
    (b"/AcroForm << /Fields [<< /FT /Tx /T (name) >>] >>", b"", "form"),
    (b"", b"/AA << /O << /S /JavaScript /JS (x) >> >>", "JavaScript"),
    (b"", b"/Annots [<< /Type /Annot /Subtype /Link /Rect [0 0 9 9] /A << /S /URI /URI (http://x) >> >>]", "web"),
])
def test_active_content_is_found_in_the_parsed_objects_even_when_its_names_are_escaped(catalog_extra, page_extra, what):
    found = results_of("pdf.active_content", "postPdf",
                       one_pdf(book_pdf(pages=24, catalog_extra=catalog_extra, page_extra=page_extra)))
    assert [r.outcome for r in found] == ["fail"]
    assert what.lower() in found[0].message.lower()
    if page_extra:
        assert found[0].page == 1


def test_an_escaped_name_is_not_in_the_bytes_but_is_found_all_the_same():
    data = book_pdf(catalog_extra=b"/OpenAction << /S /JavaS#63ript /JS (x) >>")
    assert b"/JavaScript" not in data
    import io

    from pypdf import PdfReader
    assert [f.what for f in find_active_content(PdfReader(io.BytesIO(data)))] == ["JavaScript", "a JavaScript action"]


@pytest.mark.parametrize("depth", [150, 5000])
def test_deeply_nested_objects_are_flagged_not_followed_into_a_crash(depth):
    found = outcomes("postPdf", one_pdf(nested_pdf(depth)))
    flagged = found.get("pdf.active_content", set()) | found.get("file.decodes", set())
    assert flagged & {"fail", "error"}


def test_a_decompression_bomb_gives_an_error_and_the_other_checks_still_answer():
    found = outcomes("postPdf", one_pdf(bomb_pdf(300)))
    assert found["pdf.image_resolution"] == {"error"}
    assert found["pdf.page_count"] == {"fail"} and found["file.decodes"] == {"pass"}


def test_an_encrypted_pdf_fails_the_encryption_check():
    import io

    from pypdf import PdfReader, PdfWriter
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(book_pdf())))
    writer.encrypt(user_password="", owner_password="owner-secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    found = results_of("pdf.encrypted", "postPdf", one_pdf(out.getvalue()))
    assert [r.outcome for r in found] == ["fail"]


@pytest.mark.parametrize("data, content_type, outcome", [
    (png(20, 20), "image/png", "pass"),
    (png(20, 20), "image/jpeg", "fail"),
    (b"%PDF-1.7\nnot really\n%%EOF", PDF, "fail"),
    (png(20, 20)[:60], "image/png", "fail"),
    (b"GIF89a....", "image/gif", "fail"),
])
def test_files_decode_with_a_real_decoder_as_what_they_claim(data, content_type, outcome):
    found = results_of("file.decodes", "preBria", [(asset("orders/o/preBria/front.png", data, content_type), data)])
    assert [r.outcome for r in found] == [outcome]


def test_a_missing_file_and_a_changed_file_fail_exists_and_sha256():
    data = png(20, 20)
    entry = asset("orders/o/preBria/front.png", data, "image/png")
    assert outcomes("preBria", [(entry, None)])["file.exists"] == {"fail"}
    found = outcomes("preBria", [(entry, png(21, 20))])
    assert found["file.exists"] == {"pass"} and found["file.sha256"] == {"fail"}


@pytest.mark.parametrize("size, mode, outcomes_wanted", [
    ((1024, 1400), "RGB", {"pass"}),
    ((1000, 1400), "RGB", {"fail"}),
    ((1200, 1200), "CMYK", {"pass", "warn"}),
])
def test_character_views_need_the_pixels_and_colour_mode(size, mode, outcomes_wanted):
    import io

    from PIL import Image
    out = io.BytesIO()
    Image.new(mode, size).save(out, format="JPEG" if mode == "CMYK" else "PNG")
    data, kind = out.getvalue(), "image/jpeg" if mode == "CMYK" else "image/png"
    found = outcomes("preBria", [(asset("orders/o/preBria/v.png", data, kind), data)])
    assert found["image.resolution"] == outcomes_wanted


def test_illustrations_are_counted_against_the_pages_and_sized_for_a_spread_with_bleed():
    good = png(*spread_px(dpi=300))
    files = [(asset(f"orders/o/postBria/p{n}.png", good, "image/png"), good) for n in range(12)]
    found = outcomes("postBria", files)
    assert found["illustrations.count"] == {"pass"} and found["image.resolution"] == {"pass"}
    assert outcomes("postBria", files[:3])["illustrations.count"] == {"fail"}
    low, mid = png(*spread_px(dpi=140)), png(*spread_px(dpi=200))
    assert outcomes("postBria", [(asset("k/low.png", low, "image/png"), low)])["image.resolution"] == {"fail"}
    assert outcomes("postBria", [(asset("k/mid.png", mid, "image/png"), mid)])["image.resolution"] == {"warn"}
    per_page = CheckSettings(pages_per_illustration=1)
    assert outcomes("postBria", files, settings=per_page)["illustrations.count"] == {"fail"}


def test_a_picture_that_declares_too_many_pixels_is_refused_before_decoding():
    data = png(3000, 3000, "L")
    found = results_of("file.decodes", "postBria", [(asset("k/big.png", data, "image/png"), data)],)
    assert found[0].outcome == "pass"
    tight = CheckSettings(max_pixels=1_000_000)
    found = [r for r in run_checks("postBria", [(asset("k/big.png", data, "image/png"), data)], SPECS, tight)
             if r.check == "file.decodes"]
    assert found[0].outcome == "fail" and "more than" in found[0].message


def test_results_list_failures_first():
    results = run_checks("postPdf", one_pdf(book_pdf(pages=3, embed_fonts=False)), SPECS, SETTINGS)
    outcomes_in_order = [r.outcome for r in results]
    assert outcomes_in_order == sorted(outcomes_in_order, key=["fail", "error", "warn", "pass"].index)


def test_isolated_checks_survive_a_file_that_overruns_the_memory_limit_and_check_the_rest():
    huge, small = png(6000, 6000, "RGBA"), png(1200, 1200)  # 144 MB once decoded; the child may use 100 MB
    files = [(asset("k/huge.png", huge, "image/png"), huge), (asset("k/small.png", small, "image/png"), small)]
    results = run_isolated("preBria", files, SPECS, SETTINGS, Limits(seconds=60, memory_mb=100))
    by_file = {key: {(r.check, r.outcome) for r in results if r.asset == key} for key in ("k/huge.png", "k/small.png")}
    assert by_file["k/huge.png"] == {("file.decodes", "error")}
    assert by_file["k/small.png"] == {("file.decodes", "pass"), ("image.resolution", "pass")}
    assert {(r.check, r.outcome) for r in run_isolated("preBria", files, SPECS, SETTINGS, Limits())} >= {
        ("file.decodes", "pass"), ("image.resolution", "pass")}


def test_a_check_process_that_cannot_even_start_records_errors_not_a_crash():
    data = png(20, 20)
    results = run_isolated("preBria", [(asset("k/a.png", data, "image/png"), data)], SPECS, SETTINGS,
                           Limits(seconds=10, memory_mb=8))
    assert [(r.check, r.outcome, r.asset) for r in results] == [("file.decodes", "error", "k/a.png")]
    assert "memory" in results[0].message
