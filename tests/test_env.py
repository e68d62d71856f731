import json
import os

import pytest
import torch

from utils import env, report


def test_scale_follows_the_environment(monkeypatch):
    monkeypatch.setenv("GLASSBOX_SCALE", "fast")
    assert env.scale(fast=1, full=2) == 1
    monkeypatch.setenv("GLASSBOX_SCALE", "full")
    assert env.scale(fast=1, full=2) == 2
    monkeypatch.setenv("GLASSBOX_SCALE", "huge")
    with pytest.raises(ValueError, match="fast"):
        env.scale(fast=1, full=2)


def test_seed_defaults_to_glassbox_seed_and_reproduces(monkeypatch):
    monkeypatch.setenv("GLASSBOX_SEED", "7")
    assert env.seed_everything() == 7
    first = torch.rand(3)
    env.seed_everything(7)
    assert torch.equal(first, torch.rand(3))


def test_device_and_dtype(monkeypatch):
    monkeypatch.delenv("GLASSBOX_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert env.get_device().type == expected
    monkeypatch.setenv("GLASSBOX_DEVICE", "cpu")
    assert env.get_device().type == "cpu"
    assert env.get_dtype() == torch.float32
    monkeypatch.setenv("GLASSBOX_DTYPE", "notatype")
    with pytest.raises(ValueError, match="GLASSBOX_DTYPE"):
        env.get_dtype()


def test_thread_policy_never_below_one(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("GLASSBOX_THREADS", "1")
        assert env.set_threads() == 1 == torch.get_num_threads()
        monkeypatch.delenv("GLASSBOX_THREADS")
        assert 1 <= env.set_threads() <= env.available_cores()
        monkeypatch.setattr(env, "busy_cores", lambda: 0.0)          # an idle machine: every core
        assert env.set_threads() == env.available_cores()
        monkeypatch.setattr(env, "busy_cores", lambda: 64.0)         # a saturated one: still one thread
        assert env.set_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_busy_cores_is_a_share_of_the_machine():
    assert 0.0 <= env.busy_cores(window=0.05) <= (os.cpu_count() or 1) + 1e-6


def test_setup_prints_one_line_summary(capsys):
    info = env.setup("99_test")
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "99_test" in line and f"seed {info.seed}" in line
    assert env.peak_memory_gb() > 0


def test_record_prints_and_writes_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GLASSBOX_RESULTS_DIR", str(tmp_path))
    report.record("99_test", accuracy=torch.tensor(0.912345), heads=[1, 2])
    report.record("99_test", auc=0.5)
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "auc" in printed
    saved = json.loads((tmp_path / "99_test.json").read_text())
    assert saved["accuracy"] == pytest.approx(0.9123) and saved["heads"] == [1, 2] and saved["auc"] == 0.5
    assert saved["threads"] == torch.get_num_threads() and saved["peak_ram_gb"] > 0


@pytest.mark.parametrize("knob, value, accepted", [
    ("GLASSBOX_SEED", "abc", "non-negative integer"),
    ("GLASSBOX_SEED", "-1", "non-negative integer"),
    ("GLASSBOX_THREADS", "-3", "positive integer"),
    ("GLASSBOX_THREADS", "two", "positive integer"),
    ("GLASSBOX_DEVICE", "tpu", "cpu, cuda"),
    ("GLASSBOX_ALLOW_MPS", "yes", "0 or 1"),
    ("GLASSBOX_SCALE", "huge", "fast or full"),
    ("GLASSBOX_DTYPE", "float8", "float32"),
    ("GLASSBOX_CLAIMS", "lenient", "strict"),
])
def test_every_knob_fails_clearly_at_setup(monkeypatch, knob, value, accepted):
    monkeypatch.delenv("GLASSBOX_DEVICE", raising=False)
    monkeypatch.setenv(knob, value)
    with pytest.raises(ValueError) as err:
        env.setup("99_test")
    message = str(err.value)
    assert knob in message and repr(value) in message and accepted in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_the_machine_lacks_is_refused(monkeypatch):
    monkeypatch.setenv("GLASSBOX_DEVICE", "cuda")
    with pytest.raises(env.KnobError, match="no cuda device"):
        env.get_device()


def test_half_precision_follows_the_device(monkeypatch):
    assert env.half_dtype(torch.device("cpu")) == torch.float32          # no slow, inexact half on a CPU
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert env.half_dtype(torch.device("cuda")) == torch.float16         # a T4: float16, not emulated bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert env.half_dtype(torch.device("cuda")) == torch.bfloat16
    monkeypatch.setenv("GLASSBOX_DTYPE", "half")
    assert env.get_dtype(torch.device("cpu")) == torch.float32


def test_smoke_caps_counts_and_reports_claims(monkeypatch):
    from utils.env import scale, smoke_run
    from utils.report import claim_mode
    monkeypatch.setenv("GLASSBOX_SCALE", "full")
    monkeypatch.delenv("GLASSBOX_SMOKE", raising=False)
    monkeypatch.delenv("GLASSBOX_CLAIMS", raising=False)
    monkeypatch.delenv("GLASSBOX_MODEL", raising=False)
    assert not smoke_run() and scale(fast=1, full=2, smoke=3) == 2 and claim_mode() == "strict"
    monkeypatch.setenv("GLASSBOX_SMOKE", "1")
    assert scale(fast=1, full=2, smoke=3) == 3, "a count with a smoke value is capped"
    assert scale(fast=[0.5], full=[0.25, 0.5]) == [0.25, 0.5], "a configuration without one stays full scale's"
    assert claim_mode() == "report", "capped counts measure nothing: claims are reported, not asserted"
    monkeypatch.setenv("GLASSBOX_SMOKE", "yes")
    with pytest.raises(ValueError, match="GLASSBOX_SMOKE"):
        smoke_run()


def test_memory_guard_names_the_setting_before_a_step_that_does_not_fit(monkeypatch):
    import utils.env as env
    from utils import activations as act
    assert env.available_memory_gb() > 0
    env.memory_guard(0.001, "a small step", "nothing")
    monkeypatch.setattr(env, "available_memory_gb", lambda device=None: 0.5)
    with pytest.raises(env.MemoryBudgetError, match="lower N_DOCS"):
        env.memory_guard(1.0, "collecting activations", "N_DOCS")
    tiny = type("Tiny", (), {"cfg": type("Cfg", (), {"d_model": 10**6, "n_layers": 2})(),
                             "run_with_cache": None})()
    with pytest.raises(env.MemoryBudgetError, match="tokens per document"):
        act.resid(tiny, [list(range(200))] * 10, [0, 1])
