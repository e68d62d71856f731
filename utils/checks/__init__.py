"""Learner checks: each ``check_xxx(fn)`` calls your function on cases with known answers
and prints one pass line, or raises :class:`CheckFailed` with a message that says what to fix.

One module per chapter (``utils.checks.orientation``, ``utils.checks.grokking`` ...); this
module holds what they share.
"""
from __future__ import annotations

import math
import traceback
from pathlib import Path

import torch

_CHECKS_DIR = str(Path(__file__).resolve().parent)


class CheckFailed(AssertionError):
    """Your function ran but gave a wrong answer; the message says what differs.

    In a notebook it shows as one short red line, not as a traceback through the check's own
    code (IPython calls ``_render_traceback_``). When your function itself raised, its
    traceback is kept — the frames in your code, which is what you need to debug it.
    """

    def _render_traceback_(self) -> list[str]:
        lines: list[str] = []
        cause = self.__cause__
        if cause is not None and not isinstance(cause, (NotImplementedError, CheckFailed)):
            frames = [f for f in traceback.extract_tb(cause.__traceback__) if not f.filename.startswith(_CHECKS_DIR)]
            lines += traceback.format_list(frames) + traceback.format_exception_only(type(cause), cause)
        lines.append(f"\x1b[1;31m✘ check failed:\x1b[0m {self}")
        return "".join(lines).rstrip("\n").splitlines()


def call(fn, *args, **kwargs):
    """Call the learner's function, turning "not written yet" and crashes into a clear failure."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as err:
        raise CheckFailed(f"{fn.__name__} is not written yet: replace the `raise NotImplementedError` "
                          "with your code.") from err
    except CheckFailed:
        raise
    except Exception as err:
        raise CheckFailed(f"{fn.__name__} raised {type(err).__name__}: {err}") from err


def expect_tensor(x, name: str, shape=None, dtype=None, device=None, finite: bool = True) -> torch.Tensor:
    """Type, shape, dtype, device and NaN checks with messages that say what to fix."""
    if not isinstance(x, torch.Tensor):
        raise CheckFailed(f"{name} should be a torch.Tensor, got {type(x).__name__}.")
    if shape is not None and tuple(x.shape) != tuple(shape):
        raise CheckFailed(f"{name} has shape {tuple(x.shape)}, expected {tuple(shape)}. "
                          "Check which axis you reduced over or indexed.")
    if dtype is not None and x.dtype != dtype:
        if dtype.is_floating_point and x.dtype.is_floating_point:
            hint = f"Convert with .to({dtype})."
        else:
            hint = "Integer and boolean tensors cannot hold this result: compute it in floating point."
        raise CheckFailed(f"{name} has dtype {x.dtype}, expected {dtype}. {hint}")
    if device is not None and x.device.type != torch.device(device).type:
        raise CheckFailed(f"{name} is on {x.device}, expected {device}. Create new tensors with "
                          "device=<input>.device (or .to(input.device)).")
    if finite and x.is_floating_point() and not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).sum().item()
        raise CheckFailed(f"{name} has {bad} NaN/inf values. Look for a division by zero or a log of 0.")
    return x


def expect_number(value, name: str) -> float:
    """A finite Python number from a number, a NumPy scalar or a one-element tensor."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise CheckFailed(f"{name} should be a single number, got a tensor of shape {tuple(value.shape)}.")
        value = value.item()
    if hasattr(value, "item") and not isinstance(value, (int, float)):      # NumPy scalars
        value = value.item()
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CheckFailed(f"{name} should be a finite number, got {value!r}.")
    return float(value)


def expect_close(actual, expected, name: str, atol=1e-4, rtol=1e-4, hint: str = "") -> None:
    actual, expected = torch.as_tensor(actual, dtype=torch.float64), torch.as_tensor(expected, dtype=torch.float64)
    if actual.shape != expected.shape:
        raise CheckFailed(f"{name}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}.")
    if not torch.allclose(actual, expected, atol=atol, rtol=rtol):
        worst = (actual - expected).abs().max().item()
        raise CheckFailed(f"{name} differs from the expected value (largest difference {worst:.3g}). {hint}".strip())


def passed(name: str, detail: str = "") -> None:
    print(f"✔ {name} passed{': ' + detail if detail else ''}")
