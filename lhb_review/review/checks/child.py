"""The check process: reads a stage's files from paths, checks each, and writes one JSON line per event.

Run by jobs.run_isolated as ``python -m lhb_review.review.checks.child`` under time and memory limits,
so a hostile file can at worst end this process, never the worker.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from lhb_review.review.checks.engine import check_asset_safely
from lhb_review.review.checks.settings import CheckSettings, Specs


def main() -> int:
    job = json.load(sys.stdin)
    specs, settings = Specs(**job["specs"]), CheckSettings.from_dict(job["settings"])
    for item in job["files"]:
        asset = item["asset"]
        print(json.dumps({"start": asset.get("key")}), flush=True)
        data = Path(item["path"]).read_bytes()
        results = check_asset_safely(job["stage"], asset, data, specs, settings)
        print(json.dumps({"done": asset.get("key"), "results": [r.as_dict() for r in results]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
