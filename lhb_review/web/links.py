"""Links from a pattern: ``url_for`` once, then each link is the pattern with its values filled in.

A page that links every one of its rows (the queue: two links a row) would otherwise build each link
through the URL map. ``Links("review.stage", "order_id", "stage")`` asks ``url_for`` once, with
placeholders, and fills in each row's values quoted exactly as the route's converter quotes them, so
the links are the ones ``url_for`` would build (tests/test_links.py compares them on awkward ids).
"""
from __future__ import annotations

import re

from flask import current_app, g, url_for

_SLOT = "LHBSLOT{}X"


class Links:
    """Links to one endpoint for many values: ``links(order_id=..., stage=...)``."""

    def __init__(self, endpoint: str, *names: str, **fixed):
        slots = {name: _SLOT.format(i) for i, name in enumerate(names)}
        pattern = url_for(endpoint, **fixed, **slots)
        # Split the pattern into literal text and the names that go between the pieces.
        by_slot = {slot: name for name, slot in slots.items()}
        pieces = re.split(f"({'|'.join(map(re.escape, by_slot))})", pattern)
        self._literals = pieces[0::2]
        self._names = [by_slot[p] for p in pieces[1::2]]
        self._quote = current_app.url_map.converters["default"](current_app.url_map).to_url

    def __call__(self, **values) -> str:
        quote, out = self._quote, [self._literals[0]]
        for name, literal in zip(self._names, self._literals[1:]):
            out.append(quote(values[name]))
            out.append(literal)
        return "".join(out)


def static_url(filename: str) -> str:
    """``url_for("static", filename=...)`` once per request (an icon sprite is named on every icon)."""
    cache = g.setdefault("_static_urls", {})
    url = cache.get(filename)
    if url is None:
        url = cache[filename] = url_for("static", filename=filename)
    return url
