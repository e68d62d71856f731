"""Benchmark of the embedded LM (timings, not tests): ``make benchmark`` or ``python -m tests.benchmarks.lm``.

Measures in one run: ``load_lm()`` cold (a fresh interpreter, imports included, conversion
cache present) and warm (a reload in a process that has loaded it before), the bridge's forward
pass against the plain transformers model on the same batch (side by side, interleaved), and
residual-stream caching throughput.
Prints a table and writes ``benchmark_lm.json`` to ``GLASSBOX_RESULTS_DIR`` (or the current folder).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BATCH, LENGTH, REPEATS = 32, 32, 5


def cold_load_seconds() -> float:
    """Time ``load_lm()`` in a brand-new interpreter, imports included."""
    code = ("import time; t = time.perf_counter(); from utils.models import load_lm; load_lm(); "
            "print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2], env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return float(out.stdout.strip().splitlines()[-1])


def median_seconds(fn, repeats=REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from utils.env import set_threads
    from utils.models import convert_embedded, load_hf, load_lm

    threads = set_threads()
    convert_embedded()
    results = {"threads": threads, "cold_load_s": cold_load_seconds()}
    load_lm()                                   # the first load in a process also pays for lazy imports
    start = time.perf_counter()
    bridge = load_lm()
    results["warm_load_s"] = time.perf_counter() - start
    hf, _ = load_hf()
    tokens = torch.randint(100, bridge.cfg.d_vocab, (BATCH, LENGTH), generator=torch.Generator().manual_seed(0))
    layer = bridge.cfg.n_layers // 2
    with torch.no_grad():
        bridge(tokens), hf(tokens)                          # warm-up
        bridge_times, hf_times = [], []
        for _ in range(REPEATS):                            # interleaved, so load drifts hit both
            bridge_times.append(median_seconds(lambda: bridge(tokens), 1))
            hf_times.append(median_seconds(lambda: hf(tokens), 1))
        cache_time = median_seconds(lambda: bridge.run_with_cache(
            tokens, names_filter=f"blocks.{layer}.hook_resid_pre", stop_at_layer=layer + 1))
    n = BATCH * LENGTH
    results.update(
        bridge_forward_s=statistics.median(bridge_times), hf_forward_s=statistics.median(hf_times),
        bridge_over_hf=statistics.median(bridge_times) / statistics.median(hf_times),
        forward_tokens_per_s=n / statistics.median(bridge_times),
        cache_resid_tokens_per_s=n / cache_time)
    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value:.3f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    out_dir = Path(os.environ.get("GLASSBOX_RESULTS_DIR", "."))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "benchmark_lm.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
