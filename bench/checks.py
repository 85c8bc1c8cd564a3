"""How long the machine checks take: a 32-page print PDF and a set of 32 illustrations. Prints figures only.

    python -m bench.checks [--rounds 3]

Each set is checked in this process (the engine alone) and the way the worker does it (a child process
under the time and memory limits), so the cost of the isolation shows too. The files are generated here,
so the figures do not depend on any stored data; nothing is written to a database.
"""
from __future__ import annotations

import argparse
import statistics
import time

from lhb_review.review.checks.engine import run_checks
from lhb_review.review.checks.isolated import Limits, run_isolated
from lhb_review.review.checks.settings import CheckSettings, Specs
from tests.check_files import asset, book_pdf, png, spread_px

SPECS = Specs(pages=32, trim_size="8.5 x 8.5 in", name="Maya", title="Maya and the Moon",
              dedication="For Maya, with love from Grandma.")


def timed(run, rounds: int) -> tuple[float, float]:
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), max(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings, limits = CheckSettings(pages_per_illustration=1), Limits()
    pdf = book_pdf(pages=32)
    pdf_files = [(asset("bench/postPdf/book.pdf", pdf, "application/pdf"), pdf)]
    picture = png(*spread_px(dpi=300))
    pictures = [(asset(f"bench/postBria/page-{n}.png", picture, "image/png"), picture) for n in range(1, 33)]
    print(f"32-page print PDF: {len(pdf) / 1024:.0f} KiB; 32 illustrations of {len(picture) / 1024:.0f} KiB each "
          f"({spread_px(dpi=300)[0]} x {spread_px(dpi=300)[1]} px)")
    cases = [
        ("print PDF, in process", lambda: run_checks("postPdf", pdf_files, SPECS, settings)),
        ("print PDF, bounded child process", lambda: run_isolated("postPdf", pdf_files, SPECS, settings, limits)),
        ("32 illustrations, in process", lambda: run_checks("postBria", pictures, SPECS, settings)),
        ("32 illustrations, bounded child process",
         lambda: run_isolated("postBria", pictures, SPECS, settings, limits)),
    ]
    for name, run in cases:
        median, worst = timed(run, args.rounds)
        print(f"{name:42s} median {median * 1000:8.1f} ms   worst {worst * 1000:8.1f} ms   ({args.rounds} rounds)")


if __name__ == "__main__":
    main()
