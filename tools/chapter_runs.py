"""Run the solution chapters as scripts under one configuration, and tabulate what each run cost.

    python -m tools.chapter_runs smoke        # CI (``make smoke``): every chapter's code path with counts capped
    python -m tools.chapter_runs gpu-check    # on a GPU (``make gpu-check``): every chapter at full scale

``smoke`` runs two lanes, both with ``GLASSBOX_SMOKE=1`` (step counts and data sizes capped, claims
reported rather than asserted, code assertions as strict as ever):

* **full**: full scale's configuration on the embedded model, so the full-scale code path cannot rot
  between the runs on a GPU;
* **architectures**: fast scale on randomly initialised models of three other families
  (:data:`utils.models.RANDOM_ARCHITECTURES`), for every chapter that touches the real LM, so no chapter
  leans on SmolLM2's depth, module names or chat template. Each run must finish and list the claims
  that failed on that model in its summary.

``gpu-check`` runs every chapter at full scale, with nothing capped, and records wall time, peak host
RAM and peak GPU memory per chapter in ``results/gpu-check.json`` (the README's full-scale table).
A run that crashes fails the command; its log is kept next to its results.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("GLASSBOX_RESULTS_DIR") or ROOT / "results")


def chapters(only: list[str] | None = None, needs_lm: bool = False) -> list[Path]:
    found = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py"))
    if only:
        found = [f for f in found if any(f.name.startswith(c) for c in only)]
    if needs_lm:   # a chapter that never loads the LM (05 trains its own) gains nothing from other families
        found = [f for f in found if "load_lm(" in f.read_text() or "load_hf(" in f.read_text()]
    return found


def run(script: Path, out: Path, env: dict[str, str], timeout: int) -> dict:
    """One chapter as a script; its results JSON and log go to ``out``. Returns one row of the table."""
    out.mkdir(parents=True, exist_ok=True)
    log = out / f"{script.stem}.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "TOKENIZERS_PARALLELISM": "false",
           "GLASSBOX_RESULTS_DIR": str(out), **env}
    start = time.perf_counter()
    with log.open("w") as handle:
        try:
            rc = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, stdout=handle,
                                stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    seconds = time.perf_counter() - start
    result = out / f"{script.stem}.json"
    table = json.loads(result.read_text()) if result.exists() else {}      # the chapter's record(): metrics, claims
    ledger = table.get("claims", {})
    failed = sorted(name for name, c in ledger.items() if not c.get("holds"))
    summary = "Claims:" in log.read_text() if log.exists() else False
    print(f"  {script.stem}: exit {rc}, {seconds:.0f} s", flush=True)
    return {"chapter": script.stem, "rc": rc, "seconds": round(seconds, 1),
            "peak_ram_gb": table.get("peak_ram_gb"), "peak_gpu_gb": table.get("peak_gpu_gb"),
            "claims": len(ledger), "failed_claims": failed, "summary_printed": summary, "log": str(log)}


def show(label: str, rows: list[dict]) -> None:
    print(f"\n{label}")
    print(f"  {'chapter':<26} {'rc':>7} {'seconds':>8} {'RAM GB':>7} {'GPU GB':>7} {'claims':>7} {'failed':>7}")
    for r in rows:
        gpu = "—" if r["peak_gpu_gb"] is None else f"{r['peak_gpu_gb']:.2f}"
        ram = "—" if r["peak_ram_gb"] is None else f"{r['peak_ram_gb']:.2f}"
        print(f"  {r['chapter']:<26} {r['rc']!s:>7} {r['seconds']:>8.1f} {ram:>7} {gpu:>7} {r['claims']:>7} "
              f"{len(r['failed_claims']):>7}", flush=True)


def problems(rows: list[dict], want_summary: bool) -> list[str]:
    bad = [f"{r['chapter']}: exit {r['rc']} (log: {r['log']})" for r in rows if r["rc"] != 0]
    if want_summary:
        bad += [f"{r['chapter']}: finished without its claims summary (log: {r['log']})"
                for r in rows if r["rc"] == 0 and not r["summary_printed"]]
    return bad


def smoke(only: list[str] | None, archs: list[str], lanes: list[str], timeout: int) -> int:
    from utils.models import random_model_folder
    report: dict[str, list[dict]] = {}
    smoke_env = {"GLASSBOX_SMOKE": "1", "GLASSBOX_SEED": "0"}
    if "full" in lanes:
        label = "full scale, embedded model"
        report[label] = [run(s, RESULTS / "smoke" / "full", {**smoke_env, "GLASSBOX_SCALE": "full"}, timeout)
                         for s in chapters(only)]
        show(label, report[label])
    if "architectures" in lanes:
        with tempfile.TemporaryDirectory(prefix="glassbox-models-") as tmp:
            for arch in archs:
                folder = random_model_folder(arch, Path(tmp) / arch)
                label = f"fast scale, random-weight {arch}"
                env = {**smoke_env, "GLASSBOX_SCALE": "fast", "GLASSBOX_MODEL": str(folder)}
                report[label] = [run(s, RESULTS / "smoke" / arch, env, timeout) for s in chapters(only, needs_lm=True)]
                show(label, report[label])
    (RESULTS / "smoke.json").write_text(json.dumps(report, indent=1))
    bad = [f"{label}: {p}" for label, rows in report.items() for p in problems(rows, want_summary=True)]
    print("\n" + ("\n".join(bad) if bad else "every smoke run finished and printed its claims summary"))
    return 1 if bad else 0


def gpu_check(only: list[str] | None, timeout: int) -> int:
    import torch
    if not torch.cuda.is_available():
        print("gpu-check runs the full scale on a GPU, and this machine has none "
              "(on a CPU, `make smoke` runs the same code path with capped counts).")
        return 2
    label = f"full scale on {torch.cuda.get_device_name()}"
    rows = [run(s, RESULTS / "gpu-check", {"GLASSBOX_SCALE": "full"}, timeout) for s in chapters(only)]
    show(label, rows)
    (RESULTS / "gpu-check.json").write_text(json.dumps({label: rows}, indent=1))
    bad = problems(rows, want_summary=False)
    failed = [f"{r['chapter']}: {r['failed_claims']}" for r in rows if r["failed_claims"]]
    print("\n" + "\n".join(bad + [f"claims that failed: {f}" for f in failed] or ["every chapter ran"]))
    return 1 if bad or failed else 0


def main(argv=None) -> int:
    from utils.models import RANDOM_ARCHITECTURES
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["smoke", "gpu-check"])
    parser.add_argument("--chapters", nargs="*", help="chapter numbers, e.g. 01 03 (default: all)")
    families = sorted(RANDOM_ARCHITECTURES)
    parser.add_argument("--archs", nargs="*", default=families, choices=families)
    parser.add_argument("--lanes", nargs="*", default=["full", "architectures"], choices=["full", "architectures"])
    parser.add_argument("--timeout", type=int, default=None, help="seconds per chapter run")
    args = parser.parse_args(argv)
    if args.what == "smoke":
        return smoke(args.chapters, args.archs, args.lanes, args.timeout or 600)
    return gpu_check(args.chapters, args.timeout or 3600)


if __name__ == "__main__":
    sys.exit(main())
