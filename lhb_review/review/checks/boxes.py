"""A PDF page's boxes, read without importing more than the page object brings."""
from __future__ import annotations


def page_box(page, name: str):
    """The page's own box ``name`` when it has one, else its MediaBox (inherited from the page tree)."""
    if name in page:
        try:
            values = [float(v) for v in page[name]]
            if len(values) == 4:
                return min(values[0], values[2]), min(values[1], values[3]), max(values[0], values[2]), max(values[1], values[3])
        except (TypeError, ValueError):
            pass
    box = page.mediabox
    return float(box.left), float(box.bottom), float(box.right), float(box.top)
