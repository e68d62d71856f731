"""Where the course runs: device, dtype, seeds, scale mode, threads, memory.

Every knob is an environment variable, so a teacher or CI can change a chapter without
editing it:

=====================  =====================================================
GLASSBOX_SCALE         ``fast`` or ``full`` (default: full on CUDA, else fast)
GLASSBOX_SEED          default seed for :func:`seed_everything` (default 0)
GLASSBOX_DEVICE        force a device (``cpu``, ``cuda``, ``mps``)
GLASSBOX_ALLOW_MPS     ``1`` lets Apple's MPS be picked automatically
GLASSBOX_THREADS       torch CPU threads (default: see :func:`set_threads`)
GLASSBOX_RESULTS_DIR   where :func:`utils.report.record` writes ``<chapter>.json``
GLASSBOX_CACHE         where converted model weights live (default ~/.cache/glassbox)
GLASSBOX_MODEL         the LM the chapters load (default: the embedded SmolLM2)
GLASSBOX_CLAIMS        ``strict`` or ``report`` (see :mod:`utils.report`)
GLASSBOX_SMOKE         ``1``: the same configuration with step counts and data sizes capped, so a
                       whole chapter's code path runs in seconds (CI's smoke runs; claims are reported)
=====================  =====================================================

Each knob is read through one function here, which fails at once with a message naming the
knob, the bad value and what it accepts; :func:`setup` reads them all before a chapter starts.
"""
from __future__ import annotations

import os
import platform as _platform
import random
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
SCALES = ("fast", "full")


class KnobError(ValueError):
    """An environment knob with a value the course cannot use; the message says which values it takes."""


def _knob_error(knob: str, value: str, accepted: str) -> KnobError:
    return KnobError(f"{knob}={value!r} is not valid: expected {accepted}. Unset it for the default.")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def _device_available(kind: str) -> bool:
    return {"cpu": True, "cuda": torch.cuda.is_available(), "mps": _mps_available()}[kind]


def get_device() -> torch.device:
    """CUDA if present; Apple MPS only on opt-in (some ops are missing there); else CPU."""
    forced = os.environ.get("GLASSBOX_DEVICE")
    if forced:
        kind = forced.split(":")[0]
        if kind not in ("cpu", "cuda", "mps"):
            raise _knob_error("GLASSBOX_DEVICE", forced, "cpu, cuda, cuda:N or mps")
        if not _device_available(kind):
            raise KnobError(f"GLASSBOX_DEVICE={forced!r}, but this machine has no {kind} device "
                            f"(torch {torch.__version__}). Unset it to let the course pick the device.")
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    allow = os.environ.get("GLASSBOX_ALLOW_MPS", "0")
    if allow not in ("0", "1"):
        raise _knob_error("GLASSBOX_ALLOW_MPS", allow, "0 or 1")
    if allow == "1" and _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def get_dtype(device: torch.device | None = None) -> torch.dtype:
    """float32 everywhere by default: interpretability numbers should not depend on rounding.

    ``GLASSBOX_DTYPE=bfloat16`` (or float16) halves memory for big hub models on a GPU;
    ``GLASSBOX_DTYPE=half`` picks the half precision the device runs natively (see :func:`half_dtype`).
    """
    name = os.environ.get("GLASSBOX_DTYPE", "float32")
    if name == "half":
        return half_dtype(device if device is not None else get_device())
    dtype = getattr(torch, name, None)
    if name not in ("float32", "bfloat16", "float16") or not isinstance(dtype, torch.dtype):
        raise _knob_error("GLASSBOX_DTYPE", name, "float32, bfloat16, float16 or half")
    return dtype


def half_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 where the GPU runs it natively (Ampere and later), float16 on older GPUs (a T4
    emulates bfloat16 slowly), float32 on a CPU (half precision there is slow and inexact)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def current_scale() -> str:
    value = os.environ.get("GLASSBOX_SCALE") or ("full" if torch.cuda.is_available() else "fast")
    if value not in SCALES:
        raise _knob_error("GLASSBOX_SCALE", value, " or ".join(SCALES))
    return value


def smoke_run() -> bool:
    """``GLASSBOX_SMOKE=1``: run the code path with counts capped (see :func:`scale`)."""
    value = os.environ.get("GLASSBOX_SMOKE", "0")
    if value not in ("0", "1"):
        raise _knob_error("GLASSBOX_SMOKE", value, "0 or 1")
    return value == "1"


def scale(fast, full, smoke=None):
    """Pick a size by scale mode: ``n_steps = scale(fast=600, full=20_000, smoke=20)``.

    ``smoke`` caps a count (steps, documents, seeds) under ``GLASSBOX_SMOKE=1``; sizes that shape
    the computation (layers, widths) have no smoke value, so a smoke run of full scale still
    exercises full scale's configuration.
    """
    if smoke is not None and smoke_run():
        return smoke
    return fast if current_scale() == "fast" else full


def default_seed() -> int:
    """``GLASSBOX_SEED`` (default 0): every generator in a chapter derives from it."""
    value = os.environ.get("GLASSBOX_SEED", "0")
    try:
        seed = int(value)
    except ValueError:
        seed = -1
    if seed < 0:
        raise _knob_error("GLASSBOX_SEED", value, "a non-negative integer such as 0, 1 or 2")
    return seed


def seed_everything(seed: int | None = None) -> int:
    """Seed Python, NumPy and torch (all devices). Returns the seed used."""
    seed = default_seed() if seed is None else int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


def where() -> str:
    """``colab``, ``binder``, ``ci`` or ``local``."""
    if "google.colab" in sys.modules:
        return "colab"
    if "BINDER_SERVICE_HOST" in os.environ or "BINDER_REPO_URL" in os.environ:
        return "binder"
    if os.environ.get("CI"):
        return "ci"
    return "local"


def available_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota (Binder, Docker)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    quota = Path("/sys/fs/cgroup/cpu.max")
    try:
        limit, period = quota.read_text().split()[:2]
        if limit != "max":
            cores = min(cores, max(1, int(int(limit) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def busy_cores(window: float = 0.25) -> float:
    """How many cores other work keeps busy *now*: a short sample of ``/proc/stat``.

    The load average would do on an idle machine, but it trails the past minute: a notebook
    started right after another one finished would see the old one's load and take half the
    cores for nothing. Where ``/proc/stat`` is missing, fall back to the load average.
    """
    def sample():
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]          # total, idle + iowait
    try:
        total0, idle0 = sample()
        time.sleep(window)
        total1, idle1 = sample()
        return (os.cpu_count() or 1) * (1 - (idle1 - idle0) / max(1, total1 - total0))
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def threads_knob() -> int | None:
    """``GLASSBOX_THREADS`` as a positive integer, or None when unset."""
    value = os.environ.get("GLASSBOX_THREADS")
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise _knob_error("GLASSBOX_THREADS", value, "a positive integer (the number of CPU threads)")
    return n


def set_threads(n: int | None = None) -> int:
    """Use the cores that are free, not all of them.

    Two kernels each asking for every core on a 2-core machine do not run at half speed:
    they thrash, and a forward pass can become tens of times slower. So by default we
    take the available cores minus those other work keeps busy right now (at least one).
    ``GLASSBOX_THREADS`` overrides.
    """
    if n is None:
        n = threads_knob()
    if n is None:
        cores = available_cores()
        n = max(1, min(cores, round(cores - busy_cores())))
    torch.set_num_threads(n)
    return n


def peak_memory_gb() -> float:
    """Peak resident memory of this process so far, in GB.

    On Linux this reads VmHWM: ``getrusage``'s ru_maxrss survives ``exec``, so a Jupyter
    kernel started by a big process would report its parent's peak instead of its own.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e9
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_bytes = rss if sys.platform == "darwin" else rss * 1024
    return rss_bytes / 1e9


def peak_gpu_memory_gb() -> float:
    return torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else 0.0


class MemoryBudgetError(MemoryError):
    """A heavy step that would not fit in this machine's free memory; the message names the setting to lower."""


def available_memory_gb(device=None) -> float:
    """Free memory where ``device`` keeps tensors, in GB: the GPU's free memory, or the host's available RAM
    (``MemAvailable``: what can be allocated without swapping, cgroup limits aside)."""
    device = torch.device(device if device is not None else "cpu")
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return free / 1e9
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                host = int(line.split()[1]) * 1024 / 1e9
                break
        else:
            return float("inf")
    except OSError:
        return float("inf")
    limit = Path("/sys/fs/cgroup/memory.max")            # Binder and Docker cap the container below the host
    try:
        raw = limit.read_text().strip()
        if raw != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            host = min(host, (int(raw) - used) / 1e9)
    except (OSError, ValueError):
        pass
    return host


def memory_guard(need_gb: float, what: str, settings: str, device=None, share: float = 0.8) -> None:
    """Stop before a step that needs more than ``share`` of the free memory, naming the settings that size it.

    Called before the chapters' heavy steps (collecting activations for every layer, at full scale), so
    a machine that is too small says what to change instead of swapping or being killed.
    """
    have = available_memory_gb(device)
    if need_gb > share * have:
        where_ = "the GPU" if torch.device(device if device is not None else "cpu").type == "cuda" else "this machine"
        raise MemoryBudgetError(f"{what} needs about {need_gb:.1f} GB, but {where_} has {have:.1f} GB free: "
                                f"lower {settings}, or run at GLASSBOX_SCALE=fast.")


@dataclass(frozen=True)
class Setup:
    chapter: str
    device: torch.device
    dtype: torch.dtype
    seed: int
    scale: str
    threads: int

    def __str__(self) -> str:
        return (f"[{self.chapter}] {where()} | device {self.device} | {str(self.dtype).replace('torch.', '')}"
                f" | scale {self.scale}{' (smoke)' if smoke_run() else ''} | seed {self.seed}"
                f" | {self.threads} thread(s)"
                f" | python {_platform.python_version()} torch {torch.__version__}")


_STARTED: float | None = None
_CHAPTER: str | None = None


def current_chapter() -> str | None:
    """The chapter whose :func:`setup` ran last in this process (claims are filed under it)."""
    return _CHAPTER


def validate_environment() -> None:
    """Read every knob once, so a bad value fails here, named, before any work starts."""
    from utils.report import claim_mode
    current_scale(), smoke_run(), default_seed(), get_device(), get_dtype(), threads_knob(), claim_mode()


def seconds_since_setup() -> float | None:
    """Wall time since the chapter's :func:`setup` (None before it): the chapter's run time so far."""
    return None if _STARTED is None else time.perf_counter() - _STARTED


def steady_host_memory(threshold_mb: int = 8) -> bool:
    """Send every host allocation above ``threshold_mb`` to ``mmap``, so that it goes back to the system when freed.

    glibc's ``malloc`` raises its mmap threshold each time a large block is freed; after that, large tensors
    come from the heap, which fragments, and the same notebook's peak RAM varies from run to run (measured in
    chapter 00: 1.70, 2.43 and 2.59 GB over three identical runs; with the threshold fixed, 1.70 to 1.74 GB).
    A fixed threshold also switches that adjustment off. Linux (glibc) only; elsewhere nothing changes.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(-3, threshold_mb << 20))     # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def setup(chapter: str, seed: int | None = None) -> Setup:
    """The first line of every chapter: seeds, threads, steady memory use and a one-line summary."""
    global _STARTED, _CHAPTER
    validate_environment()
    steady_host_memory()
    _STARTED, _CHAPTER = time.perf_counter(), chapter
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    info = Setup(chapter, get_device(), get_dtype(), seed_everything(seed), current_scale(), set_threads())
    print(info)
    return info
