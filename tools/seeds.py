"""Run every solution notebook under more seeds and print each claim's value per seed and its smallest margin.

    python -m tools.seeds                      # seeds 1 and 2, every chapter (``make seeds``)
    python -m tools.seeds --seeds 1 2 3 --chapters 01 05
    python -m tools.seeds --summary            # only the table, from results already on disk

Each run is the same nbval execution the test suite does, with ``GLASSBOX_SEED`` set and the
results JSON written to ``results/seed-<N>/``; seed 0 is read from ``results/`` (where
``make test`` writes it), so after ``make test && make seeds`` the table covers seeds 0, 1, 2.
A claim that fails on any seed fails the run: that is a finding to act on, never a threshold
to loosen.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"


def notebooks(chapters: list[str] | None) -> list[Path]:
    found = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    if chapters:
        found = [nb for nb in found if any(nb.name.startswith(c) for c in chapters)]
    if not found:
        raise SystemExit(f"no solution notebook matches {chapters}")
    return found


def results_dir(seed: int) -> Path:
    return RESULTS if seed == 0 else RESULTS / f"seed-{seed}"


def run_seed(seed: int, books: list[Path]) -> int:
    """nbval over ``books`` with ``GLASSBOX_SEED=seed``; returns pytest's exit code."""
    env = {**os.environ, "GLASSBOX_SEED": str(seed), "GLASSBOX_RESULTS_DIR": str(results_dir(seed)),
           "GLASSBOX_SCALE": "fast", "HF_HUB_OFFLINE": "1"}
    print(f"\n=== seed {seed}: {len(books)} notebook(s) ===", flush=True)
    command = [sys.executable, "-m", "pytest", "-q", "--durations=0", *map(str, books)]
    return subprocess.run(command, cwd=ROOT, env=env).returncode


def ledger(seeds: list[int], books: list[Path]) -> dict[str, dict[str, dict[int, dict]]]:
    """``{chapter: {claim: {seed: entry}}}`` from the results JSON on disk."""
    table: dict[str, dict[str, dict[int, dict]]] = {}
    for book in books:
        chapter = book.stem
        for seed in seeds:
            path = results_dir(seed) / f"{chapter}.json"
            if not path.exists():
                continue
            for name, entry in json.loads(path.read_text()).get("claims", {}).items():
                table.setdefault(chapter, {}).setdefault(name, {})[seed] = entry
    return table


def summary(seeds: list[int], books: list[Path]) -> list[str]:
    """Print the claims table; return the claims that failed or are missing on some seed."""
    problems = []
    for chapter, claims in ledger(seeds, books).items():
        print(f"\n{chapter}")
        print(f"  {'claim':<40} " + " ".join(f"{'seed ' + str(s):>10}" for s in seeds) + f" {'min margin':>11}")
        for name, per_seed in claims.items():
            values = [f"{per_seed[s]['value']:>10.4g}" if s in per_seed else f"{'—':>10}" for s in seeds]
            margins = [per_seed[s]["margin"] for s in seeds if s in per_seed]
            failed = [s for s in seeds if s in per_seed and not per_seed[s]["holds"]]
            missing = [s for s in seeds if s not in per_seed]
            mark = "✘" if failed or missing else " "
            print(f"{mark} {name:<40} " + " ".join(values) + f" {min(margins):>11.3g}")
            if failed or missing:
                problems.append(f"{chapter}: {name} (failed on {failed}, missing on {missing})")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chapters", nargs="*", help="chapter prefixes such as 01 05 (default: all)")
    parser.add_argument("--summary", action="store_true", help="print the table from results on disk, run nothing")
    args = parser.parse_args(argv)
    books = notebooks(args.chapters)
    codes = {} if args.summary else {seed: run_seed(seed, books) for seed in args.seeds}
    shown = sorted({0, *args.seeds}) if (RESULTS / f"{books[0].stem}.json").exists() else args.seeds
    problems = summary(shown, books)
    failed_runs = [s for s, code in codes.items() if code != 0]
    if problems:
        print("\nClaims that failed or are missing on some seed:\n  " + "\n  ".join(problems))
    if failed_runs:
        print(f"\nnbval failed for seed(s) {failed_runs}: see the messages above.")
    return 1 if failed_runs or problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
