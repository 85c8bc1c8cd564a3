"""Schemathesis hooks for the contract run: the two rules JSON Schema cannot state.

An asset list names each key once and an order names each callback URL once (contracts.distinct_keys,
contracts.distinct_urls). JSON Schema's uniqueItems says only that no two items are identical, so a list
with one key under two checksums, or one URL as a string and as an object, is schema-valid and still,
rightly, refused; so is a callback URL whose host is an internal address in any spelling. Those
refusals, and only they, is not counted as a schema-valid request rejected; the
tests in test_api.py pin it. Likewise a list cursor is a signed, opaque string: any string fits the
schema, and only the ones the API handed out are accepted (400 ``bad_cursor`` otherwise, pinned in
test_api.py and test_paging.py). Every other refusal of schema-valid data still fails the run.
"""

from __future__ import annotations

import json

import schemathesis

from lhb_review.core.egress import REFUSED as INTERNAL_ADDRESS

# Refusals of rules no JSON Schema can state: a key or URL given twice in different spellings, and a callback
# URL whose host is an internal address (0x7f.1, 0000, [::ffff:127.0.0.1] ...: test_egress.py pins those).
REPEATS = {"This key is listed twice.", "This URL is listed twice.", INTERNAL_ADDRESS}


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    if failure.code != "ST202" or response.status_code not in (400, 422):
        return True
    try:
        error = json.loads(response.content)["error"]
    except (ValueError, KeyError, TypeError):
        return True
    if response.status_code == 400:
        return error.get("code") != "bad_cursor"
    fields = error.get("fields")
    return not (fields and set(fields.values()) <= REPEATS)
