"""The "what you measured" table at the end of each chapter.

``record("05_grokking", test_acc=0.99)`` prints the chapter's numbers so far and, when
``GLASSBOX_RESULTS_DIR`` is set (CI sets it), writes them to ``<chapter>.json`` there. Every
table also says how it was run: scale, seed, torch threads, peak RAM and the wall time since
the chapter's ``setup()``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from utils.env import current_scale, default_seed, peak_memory_gb, seconds_since_setup

_RECORDS: dict[str, dict] = {}


def _plain(value):
    """JSON-friendly numbers: tensors and numpy scalars become floats, rounded for reading."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def record(chapter: str, **metrics) -> dict:
    """Add ``metrics`` to the chapter's table, print the table, maybe write it to disk."""
    table = _RECORDS.setdefault(chapter, {})
    table.update({k: _plain(v) for k, v in metrics.items()})
    table.update(scale=current_scale(), seed=default_seed(), threads=torch.get_num_threads(),
                 peak_ram_gb=round(peak_memory_gb(), 2))
    elapsed = seconds_since_setup()
    if elapsed is not None:
        table.update(wall_s=round(elapsed, 1))          # what the chapter's time budget is about
    width = max(len(k) for k in table)
    print(f"What you measured — {chapter}")
    for key, value in table.items():
        print(f"  {key:<{width}}  {value}")
    out_dir = os.environ.get("GLASSBOX_RESULTS_DIR")
    if out_dir:
        path = Path(out_dir) / f"{chapter}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(table, indent=2))
    return dict(table)
