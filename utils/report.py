"""The "what you measured" table at the end of each chapter, and the claim ledger behind it.

``claim("caa_beats_random", value, ">", threshold, ci=(lo, hi))`` states a scientific claim,
checks it and records it. ``record("05_grokking", test_acc=0.99)`` prints the chapter's numbers
and claims so far and, when ``GLASSBOX_RESULTS_DIR`` is set (CI sets it), writes them to
``<chapter>.json`` there. Every table also says how it was run: scale, seed, model, torch
threads, peak RAM and the wall time since the chapter's ``setup()``.

Claims versus ``assert``: a claim is a statement about the world (the model, the data) that
another seed or another model could refute; ``assert`` stays for checks of the code itself
(shapes, ranges, a control that is really a control).

How a claim is judged. With an interval, the claim holds only if the *whole* interval is on
the right side of the threshold (``ci[0] > threshold`` for ``">"``): a difference must stay
above zero at the lower end of its interval. The margin is the distance from the threshold to
the end of the interval (or to the value, without one); positive means it holds.

Strict or reported. On the embedded model a failed claim stops the notebook with
:class:`ClaimFailed` — that is how the tests notice a phenomenon that stopped reproducing.
On another model (``GLASSBOX_MODEL``) the ledger instead prints the failed claim as a finding
about that model and the notebook goes on; ``GLASSBOX_CLAIMS=strict|report`` overrides.
"""
from __future__ import annotations

import json
import operator
import os
from pathlib import Path

import torch

from utils.env import (current_chapter, current_scale, default_seed, peak_gpu_memory_gb, peak_memory_gb,
                       seconds_since_setup, smoke_run)

_RECORDS: dict[str, dict] = {}
_CLAIMS: dict[str, dict[str, dict]] = {}
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
CLAIM_MODES = ("strict", "report")


class ClaimFailed(AssertionError):
    """A scientific claim did not hold on this run; the message names claim, value, threshold and seed."""


def model_name() -> str:
    """The LM the chapters load (``GLASSBOX_MODEL`` or the embedded default)."""
    from utils.models import EMBEDDED, is_embedded
    name = os.environ.get("GLASSBOX_MODEL") or None
    return EMBEDDED if is_embedded(name) else name


def claim_mode() -> str:
    """``strict`` (a failed claim raises) on the embedded model, ``report`` on any other model and
    in smoke runs (capped counts measure nothing)."""
    from utils.models import is_embedded
    strict = is_embedded(os.environ.get("GLASSBOX_MODEL") or None) and not smoke_run()
    mode = os.environ.get("GLASSBOX_CLAIMS") or ("strict" if strict else "report")
    if mode not in CLAIM_MODES:
        raise ValueError(f"GLASSBOX_CLAIMS={mode!r}; expected one of {CLAIM_MODES}.")
    return mode


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


def _judge(value: float, op: str, threshold: float, ci) -> tuple[bool, float]:
    """Does the claim hold, and by what margin (positive = holds)?"""
    if op not in _OPS:
        raise ValueError(f"op={op!r}; expected one of {sorted(_OPS)}")
    greater = op.startswith(">")
    edge = value if ci is None else (ci[0] if greater else ci[1])
    margin = (edge - threshold) if greater else (threshold - edge)
    return bool(_OPS[op](edge, threshold)), float(margin)


def claim(name: str, value, op: str, threshold, ci=None, chapter: str | None = None, why: str = "") -> float:
    """State, check and record a claim: ``value op threshold`` (on the far end of ``ci`` if given).

    ``value``: the measured number (a float, a 0-d tensor or array). ``ci``: its interval
    ``(low, high)`` over the sampled units, from :mod:`utils.stats`. ``why``: what the claim
    says, in words, printed with it. Returns ``value`` as a float.
    """
    value = float(value)
    threshold = float(threshold)
    if ci is not None:
        ci = (float(ci[0]), float(ci[1]))
        if not ci[0] <= ci[1] and not (ci[0] != ci[0] or ci[1] != ci[1]):   # NaN: undefined, judged below
            raise ValueError(f"claim {name!r}: interval {ci} has its low end above its high end")
    if value != value or (ci is not None and ci[0] != ci[0]):   # NaN never supports a claim
        holds, margin = False, float("nan")
    else:
        holds, margin = _judge(value, op, threshold, ci)
    chapter = chapter or current_chapter() or "unknown"
    entry = {"value": value, "op": op, "threshold": threshold, "ci": ci, "margin": margin, "holds": holds,
             "seed": default_seed(), "model": model_name(), "why": why}
    _CLAIMS.setdefault(chapter, {})[name] = entry
    _write(chapter)                        # on disk at once: a run that stops later still shows this claim
    interval = "" if ci is None else f" (95% CI {ci[0]:.4g} to {ci[1]:.4g})"
    verdict = f"{value:.4g}{interval} {op} {threshold:.4g}"
    if holds:
        print(f"✔ claim {name}: {verdict}, margin {margin:.3g}")
        return value
    message = (f"claim {name!r} failed on seed {default_seed()} with {model_name()}: measured {value:.4g}{interval}, "
               f"needed {op} {threshold:.4g}" + (f" ({why})" if why else ""))
    if claim_mode() == "strict":
        raise ClaimFailed(message)
    print(f"✘ finding: {message}; the notebook goes on (GLASSBOX_CLAIMS=report).")
    return value


def claims(chapter: str) -> dict[str, dict]:
    """Every claim recorded so far for ``chapter``: ``{name: {value, op, threshold, ci, margin, holds, ...}}``."""
    return {k: dict(v) for k, v in _CLAIMS.get(chapter, {}).items()}


def record(chapter: str, **metrics) -> dict:
    """Add ``metrics`` to the chapter's table, print it with the claims, maybe write it to disk."""
    table = _RECORDS.setdefault(chapter, {})
    table.update({k: _plain(v) for k, v in metrics.items()})
    table.update(scale=current_scale(), seed=default_seed(), model=model_name(), threads=torch.get_num_threads(),
                 peak_ram_gb=round(peak_memory_gb(), 2))
    if torch.cuda.is_available():
        table.update(gpu=torch.cuda.get_device_name(), peak_gpu_gb=round(peak_gpu_memory_gb(), 2))
    if smoke_run():
        table.update(smoke=True)
    elapsed = seconds_since_setup()
    if elapsed is not None:
        table.update(wall_s=round(elapsed, 1))          # what the chapter's time budget is about
    width = max(len(k) for k in table)
    print(f"What you measured — {chapter}")
    for key, value in table.items():
        print(f"  {key:<{width}}  {value}")
    ledger = claims(chapter)
    if ledger:
        failed = [k for k, c in ledger.items() if not c["holds"]]
        print(f"Claims: {len(ledger) - len(failed)} of {len(ledger)} hold"
              + (f"; failed here: {failed}" if failed else ""))
        for key, c in ledger.items():
            interval = "" if c["ci"] is None else f" [{c['ci'][0]:.3g}, {c['ci'][1]:.3g}]"
            print(f"  {'✔' if c['holds'] else '✘'} {key:<{width}}  {c['value']:.4g}{interval} {c['op']} "
                  f"{c['threshold']:.4g}  margin {c['margin']:.3g}")
    _write(chapter)
    return dict(table)


def _write(chapter: str) -> None:
    """``<chapter>.json`` in ``GLASSBOX_RESULTS_DIR`` (if set): the table so far and every claim."""
    out_dir = os.environ.get("GLASSBOX_RESULTS_DIR")
    if out_dir:
        path = Path(out_dir) / f"{chapter}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {**_RECORDS.get(chapter, {"seed": default_seed(), "model": model_name()}),
                   "claims": _plain(claims(chapter))}
        path.write_text(json.dumps(payload, indent=2))
