"""The per-account sign-in limit: taking an attempt and testing the limit are one atomic step in the shared store."""
from __future__ import annotations

import logging
import time

from flask import current_app
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from lhb_review.extensions import limiter

log = logging.getLogger(__name__)
SCOPE = "login-account"
_fallback = MovingWindowRateLimiter(MemoryStorage())  # per process, only while the shared store is down


def _identifiers(key: str) -> tuple[str, ...]:
    return (current_app.config.get("RATELIMIT_KEY_PREFIX") or "lhb-review", SCOPE, key)


def _call(method: str, *args, **kwargs):
    """The shared store's strategy (Redis when REDIS_URL is set); memory while it cannot be reached."""
    try:
        return getattr(limiter.limiter, method)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a store outage must not lock everybody out
        log.warning("Rate-limit store unreachable (%s); counting sign-in attempts in memory", exc)
        return getattr(_fallback, method)(*args, **kwargs)


def reserve(key: str) -> int | None:
    """Take one attempt for account ``key`` before its password is checked.

    Returns None when the attempt may go ahead, or the seconds until one may (the limit is reached). The
    store increments and compares in one step (a Redis script, or a lock in memory), so a burst of
    parallel attempts across every worker gets at most the limit's number of password checks.
    """
    item = parse(current_app.config["LOGIN_LIMIT_PER_ACCOUNT"])
    if _call("hit", item, *_identifiers(key)):
        return None
    stats = _call("get_window_stats", item, *_identifiers(key))
    return max(1, int(stats.reset_time - time.time()))


def forgive(key: str) -> None:
    """A correct password clears the account's count: only failed attempts are limited."""
    _call("clear", parse(current_app.config["LOGIN_LIMIT_PER_ACCOUNT"]), *_identifiers(key))
