"""Benchmark of chapter 05's training step (timings, not tests): ``make benchmark`` or
``python -m tests.benchmarks.grokking``.

The one-layer transformer of chapter 05 computes the query, the MLP and the unembedding at the
last position only (``forward(..., last_only=True)``): the loss reads nothing else. This measures
what that saves: the wall time of one full-batch AdamW step with one position against all
three, on the fast-scale data (p = 47, 40% of the pairs), interleaved so that load on the
machine hits both, keeping the fastest of ``TRIES`` tries (the one the load disturbed least).
Prints a table and writes ``benchmark_grokking.json`` to ``GLASSBOX_RESULTS_DIR`` (or the
current folder). Nothing is asserted: a speed-up depends on the machine.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

P, FRAC_TRAIN, LR, WEIGHT_DECAY = 47, 0.4, 3e-3, 2.0     # chapter 05's fast scale
STEPS_PER_TRY, TRIES = 4, 5


def seconds_per_step(data, last_only: bool, device, n_steps: int = STEPS_PER_TRY) -> float:
    """Wall time of one full-batch AdamW step, computing one position or all three."""
    import torch

    from utils.grokking import OneLayerTransformer, loss_f64
    torch.manual_seed(0)
    model = OneLayerTransformer(P).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY, betas=(0.9, 0.98))
    x, y = data.tokens[data.train_idx].to(device), data.labels[data.train_idx].to(device)
    start = time.perf_counter()
    for _ in range(n_steps):
        logits = model(x, last_only=last_only)
        loss = loss_f64(logits if last_only else logits[:, -1], y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / n_steps


def main() -> dict:
    from utils.env import get_device, set_threads
    from utils.grokking import make_data

    threads = set_threads()
    device = get_device()
    data = make_data(P, FRAC_TRAIN, seed=0)
    seconds_per_step(data, True, device, 1)                  # warm-up (allocations, kernels)
    timings = {True: [], False: []}
    for _ in range(TRIES):
        for last_only in (True, False):
            timings[last_only].append(seconds_per_step(data, last_only, device))
    t_last, t_all = min(timings[True]), min(timings[False])
    results = {"device": str(device), "threads": threads, "p": P, "train_pairs": len(data.train_idx),
               "ms_per_step_last_only": 1000 * t_last, "ms_per_step_all_positions": 1000 * t_all,
               "last_position_speedup": t_all / t_last}
    print(f"chapter 05 training step on {device} ({threads} threads), p = {P}:")
    for key, value in results.items():
        print(f"  {key:<28} {value:.3g}" if isinstance(value, float) else f"  {key:<28} {value}")
    out = Path(os.environ.get("GLASSBOX_RESULTS_DIR") or ".") / "benchmark_grokking.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
