"""Running a stage's checks over its files' bytes: pure functions of bytes, specs and settings."""
from __future__ import annotations

import hashlib
from typing import Any

from lhb_review.review.checks import images, pdf
from lhb_review.review.checks.results import ERROR, FAIL, PASS, Result, ordered
from lhb_review.review.checks.settings import CheckSettings, Specs

PDF_TYPE = "application/pdf"


def declared_kind(asset: dict[str, Any]) -> str:
    return "pdf" if str(asset.get("content_type", "")).lower().endswith("pdf") else "image"


def file_present(asset: dict[str, Any], data: bytes | None) -> list[Result]:
    """file.exists and file.sha256: the file is in storage and its bytes hash to what the pipeline declared."""
    key = asset.get("key")
    if data is None:
        return [Result("file.exists", FAIL, "The file is not in storage.", key)]
    results = [Result("file.exists", PASS, f"In storage ({len(data):,} bytes).", key)]
    actual = hashlib.sha256(data).hexdigest()
    declared = asset.get("sha256")
    if actual != declared:
        results.append(Result("file.sha256", FAIL,
                              f"The stored bytes hash to {actual[:12]}…, not the {str(declared)[:12]}… the pipeline "
                              "declared: the file changed or was damaged after submission.", key))
    else:
        results.append(Result("file.sha256", PASS, "The bytes match the declared SHA-256.", key))
    return results


def check_asset(stage: str, asset: dict[str, Any], data: bytes, specs: Specs, settings: CheckSettings) -> list[Result]:
    """file.decodes and the stage's checks of one file's content. Safe to run on hostile bytes in-process
    only under the job's limits (see jobs.run_isolated): a check that raises gives ``error``."""
    key = asset.get("key")
    declared = str(asset.get("content_type", "")).lower()
    found = images.sniff(data)
    if found is None:
        return [Result("file.decodes", FAIL, f"The bytes are not a PNG, JPEG, WebP or PDF (declared {declared}).", key)]
    actual_type = PDF_TYPE if found == "PDF" else images.IMAGE_TYPES[found]
    if actual_type != declared:
        return [Result("file.decodes", FAIL, f"Declared {declared}, but the bytes are {found}.", key)]
    if found == "PDF":
        try:
            reader = pdf.open_pdf(data)
            decoded = Result("file.decodes", PASS, f"A readable PDF of {len(reader.pages)} pages.", key)
        except pdf.Unreadable as exc:
            if "encrypted" in str(exc):
                decoded = Result("file.decodes", PASS, "A PDF (encrypted: see pdf.encrypted).", key)
            else:
                decoded = Result("file.decodes", FAIL, f"The PDF cannot be read: {exc}.", key)
        if stage != "postPdf":
            return [decoded]
        return [decoded, *pdf.print_pdf(data, key, specs, settings)]
    try:
        picture = images.decode(data, found, max_pixels=settings.max_pixels)
    except images.Undecodable as exc:
        return [Result("file.decodes", FAIL, f"The image cannot be decoded: {exc}.", key)]
    results = [Result("file.decodes", PASS, f"A {found} image, {picture.width} × {picture.height} px, {picture.mode}.", key)]
    if stage == "preBria":
        results.extend(images.character_view(key, picture, settings))
    elif stage == "postBria":
        results.append(images.illustration(key, picture, specs, settings))
    return results


def check_asset_safely(stage: str, asset: dict[str, Any], data: bytes, specs: Specs,
                       settings: CheckSettings) -> list[Result]:
    """check_asset, with anything it raises turned into an ``error`` result for the file."""
    try:
        return check_asset(stage, asset, data, specs, settings)
    except MemoryError:
        return [Result("file.decodes", ERROR, "Checking this file ran out of memory.", asset.get("key"))]
    except Exception as exc:  # noqa: BLE001 - one broken file must not stop the others
        return [Result("file.decodes", ERROR, f"Checking this file failed ({type(exc).__name__}).", asset.get("key"))]


def check_stage_set(stage: str, assets: list[dict[str, Any]], specs: Specs, settings: CheckSettings) -> list[Result]:
    """The checks of the stage's set of files rather than any one of them."""
    if stage == "postBria":
        count = sum(1 for a in assets if declared_kind(a) == "image")
        return [images.illustration_count(count, specs, settings)]
    if stage == "postPdf" and not any(declared_kind(a) == "pdf" for a in assets):
        return [Result("pdf.page_count", FAIL, "The stage has no PDF to print.")]
    return []


def run_checks(stage: str, files: list[tuple[dict[str, Any], bytes | None]], specs: Specs,
               settings: CheckSettings) -> list[Result]:
    """Every check of a stage in this process: (asset, bytes or None when missing) for each asset.
    Tests and the benchmark call this; the worker runs check_asset in a bounded subprocess instead."""
    results = check_stage_set(stage, [asset for asset, _ in files], specs, settings)
    for asset, data in files:
        present = file_present(asset, data)
        results.extend(present)
        if data is not None:
            results.extend(check_asset_safely(stage, asset, data, specs, settings))
    return ordered(results)
