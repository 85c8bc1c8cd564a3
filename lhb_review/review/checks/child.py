"""The check process: reads a stage's files from paths, checks each, and writes one JSON line per event.

Run by isolated.run_isolated as ``python .../checks/child.py`` under time and memory limits, so a hostile
file can at worst end this process, never the worker. It loads only the pure engine modules: the packages
above them are registered as bare namespaces, so the app (Flask, SQLAlchemy) is never imported here,
which keeps the process small and quick to start.
"""
from __future__ import annotations

import importlib
import json
import resource
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = {"lhb_review": HERE.parents[1], "lhb_review.review": HERE.parent, "lhb_review.review.checks": HERE}


def load_engine():
    """The engine module, imported without running the __init__ of the packages that contain it."""
    if sys.path and Path(sys.path[0]).resolve() == HERE:
        sys.path.pop(0)  # run as a script: its folder must not shadow top-level modules (e.g. pdf, images)
    for name, path in PACKAGES.items():
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(path)]
            sys.modules[name] = package
    return importlib.import_module("lhb_review.review.checks.engine")


def limit(memory_mb: int, cpu_seconds: int) -> None:
    """Cap this process's address space and CPU time, before any file is read."""
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))


def main() -> int:
    if len(sys.argv) == 3:
        limit(int(sys.argv[1]), int(sys.argv[2]))
    engine = load_engine()
    settings_module = sys.modules["lhb_review.review.checks.settings"]
    job = json.load(sys.stdin)
    specs = settings_module.Specs(**job["specs"])
    settings = settings_module.CheckSettings.from_dict(job["settings"])
    for item in job["files"]:
        asset = item["asset"]
        print(json.dumps({"start": asset.get("key")}), flush=True)
        data = Path(item["path"]).read_bytes()
        results = engine.check_asset_safely(job["stage"], asset, data, specs, settings)
        print(json.dumps({"done": asset.get("key"), "results": [r.as_dict() for r in results]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
