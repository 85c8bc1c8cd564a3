"""Running check_asset in a child process with a time and memory limit, so no file can stop the worker."""
from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lhb_review.review.checks.results import ERROR, Result

CHILD = Path(__file__).resolve().parent / "child.py"
from lhb_review.review.checks.settings import CheckSettings, Specs


@dataclass(frozen=True)
class Limits:
    seconds: float = 60.0  # per file
    memory_mb: int = 768


def _stopped(key: str | None, why: str) -> Result:
    return Result("file.decodes", ERROR, f"Checking this file was stopped: {why}. The file may be hostile or "
                                          "broken; ask the pipeline for a fresh export.", key)


def _describe_exit(code: int | None, limits: Limits) -> str:
    if code is not None and code < 0:
        return f"the check process was killed by signal {-code} (the {limits.seconds:g} s CPU limit, or a crash)"
    return (f"the check process ended with code {code} (usually the {limits.memory_mb} MB memory limit)"
            if code else "the check process ended early")


def run_isolated(stage: str, files: list[tuple[dict[str, Any], bytes]], specs: Specs, settings: CheckSettings,
                 limits: Limits) -> list[Result]:
    """check_asset of every file, in child processes: a file that overruns ``limits`` gets a ``file.decodes``
    error and the files after it are checked by a fresh child."""
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="lhb-checks-") as tmp:
        entries = []
        for n, (asset, data) in enumerate(files):
            path = Path(tmp) / f"{n}.bin"
            path.write_bytes(data)
            entries.append({"asset": asset, "path": str(path)})
        remaining = entries
        while remaining:
            done, stopped = _one_child(stage, remaining, specs, settings, limits)
            results.extend(done)
            count = _count_done(done, remaining)
            if stopped is None:
                remaining = remaining[count:]
                if count == 0:  # the child finished without checking anything it was given
                    results.extend(_stopped(e["asset"].get("key"), "the check process did not answer")
                                   for e in remaining)
                    break
                continue
            key, why, started = stopped
            if count >= len(remaining):  # every file was answered; only the exit was slow
                break
            key = key or remaining[count]["asset"].get("key")
            if not started:  # it died before starting any file: retrying would loop
                results.extend(_stopped(e["asset"].get("key"), why) for e in remaining[count:])
                break
            results.append(_stopped(key, why))
            remaining = remaining[count + 1:]
    return results


def _count_done(done: list[Result], remaining: list[dict]) -> int:
    keys = {r.asset for r in done}
    count = 0
    for entry in remaining:
        if entry["asset"].get("key") in keys:
            count += 1
        else:
            break
    return count


def _one_child(stage: str, entries: list[dict], specs: Specs, settings: CheckSettings,
               limits: Limits) -> tuple[list[Result], tuple[str | None, str, bool] | None]:
    """Check ``entries`` in order in one child; (results, None) when it got through them all, else
    (results so far, (key being checked, why it stopped, whether any file was started))."""
    job = json.dumps({"stage": stage, "specs": specs.as_dict(), "settings": settings.as_dict(), "files": entries})
    proc = subprocess.Popen(
        # The child limits itself before it reads anything (no preexec_fn: unsafe in a threaded parent).
        [sys.executable, "-I", str(CHILD), str(limits.memory_mb), str(int(limits.seconds) + 1)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True,
    )
    results: list[Result] = []
    current: str | None = None
    started = False
    answered = 0
    buffer = b""
    try:
        proc.stdin.write(job.encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    # Starting the interpreter is not the file's fault: the first file's clock starts with its "start" line.
    deadline = time.monotonic() + limits.seconds + 30
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                return results, (current, f"it took longer than {limits.seconds:g} s", started)
            if not selector.select(timeout=min(left, 1.0)):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                code = proc.wait(timeout=5)
                if current is None and started:
                    return results, None
                return results, (current, _describe_exit(code, limits), started)
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                event = json.loads(line)
                if "start" in event:
                    current, started = event["start"], True
                    deadline = time.monotonic() + limits.seconds
                else:
                    results.extend(Result.from_dict(r) for r in event["results"])
                    current = None
                    answered += 1
                    if answered == len(entries):
                        return results, None
    finally:
        selector.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
