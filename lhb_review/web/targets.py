"""Where a redirect or a "try again" link may point: a path on this site, nothing else."""
from __future__ import annotations

from urllib.parse import urlsplit

from lhb_review.web.edge import CONTROL


def local_target(target: str | None, host: str | None = None) -> str | None:
    """The path (and query) of ``target`` when it names a page of this site, otherwise None.

    Refused: schemes, other hosts, protocol-relative ``//x`` and ``/\\x`` (browsers read a backslash as a
    slash), and control characters (CR/LF would split the Location header). A full URL is accepted only
    when its host is ``host`` (this request's), and is cut down to its path and query.
    """
    if not target or len(target) > 2000 or CONTROL.search(target) or "\\" in target:
        return None
    try:
        parts = urlsplit(target)
    except ValueError:
        return None
    if parts.scheme or parts.netloc:
        if host is None or parts.scheme not in ("http", "https") or parts.netloc != host:
            return None
    path = parts.path
    if not path.startswith("/") or path.startswith("//"):
        return None
    return path + (f"?{parts.query}" if parts.query else "")
