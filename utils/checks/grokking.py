"""Checks for chapter 05 (grokking). Each compares with facts computed independently of the
solution: numpy's FFT, sums of cosines written out by hand, Parseval's identity, closed-form
losses, and least-squares projections onto explicitly built functions of ``a + b``."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from utils.checks import CheckFailed, call, expect_close, expect_tensor, passed


def _cos(k: int, p: int) -> torch.Tensor:
    return torch.cos(2 * math.pi * k * torch.arange(p, dtype=torch.float64) / p)


def _sin(k: int, p: int) -> torch.Tensor:
    return torch.sin(2 * math.pi * k * torch.arange(p, dtype=torch.float64) / p)


def _reference_basis(p: int) -> torch.Tensor:
    """Rows: constant, then cos/sin of frequency 1, cos/sin of frequency 2, ... (unit length)."""
    rows = [torch.ones(p, dtype=torch.float64)]
    for k in range(1, p // 2 + 1):
        rows += [_cos(k, p), _sin(k, p)]
    basis = torch.stack(rows)
    return (basis / basis.norm(dim=1, keepdim=True)).float()


# ----------------------------------------------------------------------------- exercise 1
def check_fourier_basis(fourier_basis) -> None:
    for p in (5, 13):
        basis = expect_tensor(call(fourier_basis, p), f"fourier_basis({p})", shape=(p, p), dtype=torch.float32)
        gram = basis.double() @ basis.double().T
        if torch.allclose(gram - torch.diag(torch.diagonal(gram)), torch.zeros_like(gram), atol=1e-4) and \
                not torch.allclose(torch.diagonal(gram), torch.ones(p, dtype=torch.float64), atol=1e-4):
            raise CheckFailed(f"the rows of fourier_basis({p}) are orthogonal but not of unit length "
                              f"(squared lengths {torch.diagonal(gram)[:3].tolist()} ...): "
                              "divide each row by its norm.")
        expect_close(gram, torch.eye(p), f"fourier_basis({p}) @ fourier_basis({p}).T", atol=1e-4,
                     hint="The rows must be orthonormal: a constant row, then cos and sin of each frequency "
                          "k = 1 .. (p-1)//2 "
                          "(an off-by-one in k repeats or aliases a frequency).")
        expect_close(basis[0], torch.full((p,), p ** -0.5), "row 0", atol=1e-5, hint="Row 0 is the constant 1/sqrt(p).")
        # Independent fact: projecting onto the basis is the real DFT (numpy.fft), rescaled.
        signal = np.random.default_rng(p).normal(size=p)
        spectrum = np.fft.fft(signal)
        k = np.arange(1, p // 2 + 1)
        expected = np.zeros(p)
        expected[0] = spectrum[0].real / np.sqrt(p)
        expected[2 * k - 1] = np.sqrt(2 / p) * spectrum[k].real       # sum f(x) cos(2 pi k x / p)
        expected[2 * k] = -np.sqrt(2 / p) * spectrum[k].imag          # sum f(x) sin(2 pi k x / p)
        got = basis.double() @ torch.from_numpy(signal)
        wrong_rows = (got - torch.from_numpy(expected)).abs() > 1e-4
        if wrong_rows.any():
            row = int(wrong_rows.nonzero()[0])
            raise CheckFailed(f"fourier_basis({p}) row {row} is not {'cos' if row % 2 else 'sin'} of frequency "
                              f"{(row + 1) // 2} (compared with numpy.fft). Row 2k-1 is cos(2*pi*k*x/p), row 2k is "
                              "sin(2*pi*k*x/p), for k = 1 .. (p-1)//2: check the order of cos and sin, "
                              "and for an off-by-one in k.")
    passed("fourier_basis", "orthonormal, and matches numpy.fft for p = 5 and 13")


# ----------------------------------------------------------------------------- exercise 2
def check_freq_norms(freq_norms) -> None:
    p, d = 11, 6
    basis = _reference_basis(p)
    direction = torch.linspace(-1, 1, d, dtype=torch.float64)
    # A constant embedding has no frequency at all.
    constant = call(freq_norms, (torch.ones(p, dtype=torch.float64)[:, None] * direction[None, :]).float(), basis)
    if torch.is_tensor(constant) and constant.shape == (p // 2,) and constant.abs().max() > 1e-3:
        raise CheckFailed("a constant embedding (no wave at all) got a frequency norm: leave out row 0 (the constant) "
                          "of basis @ W, then pair rows (2k-1, 2k).")
    # One pure frequency: cos(2 pi 3 x / p) times a fixed vector. Its norm is sqrt(p/2) * |direction|.
    W = (_cos(3, p)[:, None] * direction[None, :]).float()
    out = expect_tensor(call(freq_norms, W, basis), "freq_norms(W, basis)", shape=(p // 2,), dtype=torch.float32)
    expected = torch.zeros(p // 2, dtype=torch.float64)
    expected[2] = math.sqrt(p / 2) * direction.norm()
    if out.argmax().item() != 2:
        raise CheckFailed(f"for W = cos(2*pi*3*x/p) (x) v the largest entry should be index 2 (frequency 3), got index "
                          f"{out.argmax().item()}. Index i holds frequency i + 1; the constant row 0 is left out.")
    expect_close(out, expected, "freq_norms on a pure frequency-3 embedding", atol=1e-4, rtol=1e-4,
                 hint="Return the L2 norm (not its square) over the cos and sin rows of each frequency "
                      "and all columns.")
    # A pure sine must count too.
    W = (_sin(4, p)[:, None] * direction[None, :]).float()
    out = call(freq_norms, W, basis)
    expected = torch.zeros(p // 2, dtype=torch.float64)
    expected[3] = math.sqrt(p / 2) * direction.norm()
    expect_close(out, expected, "freq_norms on a pure frequency-4 sine", atol=1e-4, rtol=1e-4,
                 hint="Combine the cos row (2k-1) and the sin row (2k) of frequency k.")
    # Parseval: a random W's squared norm splits into the constant part plus every frequency's share.
    W = torch.randn(p, d, generator=torch.Generator().manual_seed(0))
    out = call(freq_norms, W, basis).double()
    constant = (W.double().mean(0) ** 2).sum() * p
    expect_close((out ** 2).sum() + constant, (W.double() ** 2).sum(), "sum of squared frequency norms + constant part",
                 atol=1e-3, hint="Every frequency 1 .. (p-1)//2 must appear exactly once.")
    passed("freq_norms", "pure cosines and sines land on the right frequency; Parseval holds")


# ----------------------------------------------------------------------------- exercise 3
def _grid(fa, fb):
    return fa[:, None] * fb[None, :]


def check_neuron_freq_fractions(neuron_freq_fractions) -> None:
    p = 11
    basis = _reference_basis(p)
    ones = torch.ones(p, dtype=torch.float64)
    neurons = torch.stack([
        _grid(_cos(3, p), ones),                                   # a pure frequency-3 function of a
        _grid(_cos(2, p), ones) + 2 * _grid(ones, _sin(5, p)),     # 1/5 at frequency 2, 4/5 at frequency 5
        _grid(_cos(3, p), _sin(3, p)) + 7.0,                       # a product term of frequency 3, plus an offset
        _grid(_cos(2, p), _cos(5, p)),                             # mixes two frequencies: belongs to neither
        _grid(_cos(1, p), _cos(1, p)) - _grid(_sin(1, p), _sin(1, p)),   # cos(w (a + b)) at frequency 1
    ], dim=-1).float()                                            # [p, p, 5]
    out = expect_tensor(call(neuron_freq_fractions, neurons, basis), "neuron_freq_fractions(acts, basis)",
                        shape=(5, p // 2), dtype=torch.float32)
    expected = torch.zeros(5, p // 2)
    expected[0, 2] = 1.0
    expected[1, 1], expected[1, 4] = 0.2, 0.8
    expected[2, 2] = 1.0
    expected[4, 0] = 1.0
    names = ["cos(3a)", "cos(2a) + 2 sin(5b)", "cos(3a) sin(3b) + 7", "cos(2a) cos(5b)", "cos(1 (a+b))"]
    for i, name in enumerate(names):
        if not torch.allclose(out[i].double(), expected[i].double(), atol=1e-3):
            hints = {0: "Index i is frequency i + 1, and terms in a alone (coefficients (2k-1, 0), (2k, 0)) count for "
                        "frequency k, as do terms in b alone.",
                     1: "The fraction is the squared Fourier coefficients of frequency k over the total, "
                        "not their norm.",
                     2: "Leave the constant (0, 0) coefficient out of the total: an offset is not variance. And count "
                        "the product terms (cos_k x sin_k etc.), not only the terms in a or b alone.",
                     3: "A product of two different frequencies belongs to neither.",
                     4: "Count the product terms cos_k(a)cos_k(b), sin_k(a)sin_k(b) ... too."}
            raise CheckFailed(f"neuron {i} = {name}: fractions {out[i].tolist()} but expected {expected[i].tolist()}. "
                              + hints[i])
    passed("neuron_freq_fractions", "hand-built neurons get the fractions of variance they should")


# ----------------------------------------------------------------------------- exercise 4
def _sum_directions(p: int, freqs) -> torch.Tensor:
    """Unit-norm functions cos(w(a+b)) and sin(w(a+b)) on the p x p grid, built directly: [2 * len(freqs), p * p]."""
    a = torch.arange(p, dtype=torch.float64)[:, None]
    b = torch.arange(p, dtype=torch.float64)[None, :]
    rows = []
    for k in freqs:
        for trig in (torch.cos, torch.sin):
            u = trig(2 * math.pi * k * (a + b) / p).flatten()
            rows.append(u / u.norm())
    return torch.stack(rows)


def _project(logits: torch.Tensor, p: int, freqs) -> torch.Tensor:
    """Least-squares projection of each output column onto span{cos/sin(w_k (a+b))}: [p, p, c]."""
    U = _sum_directions(p, freqs).T                                        # [p*p, 2K]
    flat = logits.double().reshape(p * p, -1)
    coef = torch.linalg.lstsq(U, flat).solution
    return (U @ coef).reshape(logits.shape)


def check_key_freq_component(key_freq_component) -> None:
    p = 13
    basis = _reference_basis(p)
    a = torch.arange(p, dtype=torch.float64)[:, None, None]
    b = torch.arange(p, dtype=torch.float64)[None, :, None]
    c = torch.arange(p, dtype=torch.float64)[None, None, :]
    w = 2 * math.pi / p
    clock = torch.cos(w * 3 * (a + b - c)).float()                       # the algorithm's logits at frequency 3
    out = expect_tensor(call(key_freq_component, clock, [3], basis), "key_freq_component(logits, [3], basis)",
                        shape=(p, p, p), dtype=torch.float32)
    if torch.allclose(out.double(), 2 * clock.double(), atol=1e-3) or torch.allclose(out.double(), 0.5 * clock.double(),
                                                                                      atol=1e-3):
        raise CheckFailed("cos(3w(a+b-c)) comes back scaled by 2 or 1/2: the directions cos(w(a+b)) and sin(w(a+b)) "
                          "must have unit length; (cos_a cos_b - sin_a sin_b) has length sqrt(2).")
    expect_close(out, clock, "the frequency-3 component of cos(3w(a+b-c))", atol=1e-3,
                 hint="cos(w(a+b-c)) lies entirely in span{cos(w(a+b)), sin(w(a+b))} for each c: keep both "
                      "directions, built with the a+b identities from basis rows 2k-1 (cos) and 2k (sin).")
    expect_close(call(key_freq_component, clock, [4], basis), torch.zeros(p, p, p), "its frequency-4 component",
                 atol=1e-3, hint="Frequency k uses rows 2k-1 (cos) and 2k (sin) of the basis.")
    difference = torch.cos(w * 3 * (a - b - c)).float()
    expect_close(call(key_freq_component, difference, [3], basis), torch.zeros(p, p, p),
                 "the frequency-3 component of cos(3w(a-b-c))", atol=1e-3,
                 hint="Project onto functions of a + b: cos(w(a+b)) = cos(wa)cos(wb) - sin(wa)sin(wb), "
                      "sin(w(a+b)) = sin(wa)cos(wb) + cos(wa)sin(wb).")
    logits = torch.randn(p, p, p, generator=torch.Generator().manual_seed(1))
    expect_close(call(key_freq_component, logits, [2, 5], basis), _project(logits, p, [2, 5]),
                 "the projection of random logits onto frequencies 2 and 5", atol=1e-3,
                 hint="Sum the projections over all the frequencies you are given.")
    # float64 logits (as a stand-in for logits on another device): the result must follow them
    out64 = call(key_freq_component, clock.double(), [3], basis.double())
    if torch.is_tensor(out64) and out64.dtype != torch.float64:
        raise CheckFailed(f"float64 logits came back as {out64.dtype}: a tensor you created has its own dtype (and "
                          "device); build it from the logits, e.g. torch.zeros_like(logits).")
    passed("key_freq_component", "keeps cos(w(a+b-c)), drops other frequencies and a-b, matches least squares")


# ----------------------------------------------------------------------------- exercise 5
def check_progress_measures(progress_measures) -> None:
    p = 13
    basis = _reference_basis(p)
    a = torch.arange(p)[:, None]
    b = torch.arange(p)[None, :]
    labels = ((a + b) % p).flatten()
    train_mask = torch.rand(p * p, generator=torch.Generator().manual_seed(2)) < 0.4
    w = 2 * math.pi / p
    c = torch.arange(p, dtype=torch.float64)
    clock = 10 * torch.cos(w * 3 * ((a + b).flatten()[:, None].double() - c[None, :])).float().reshape(p, p, p)
    out = call(progress_measures, clock, labels, [3], basis, train_mask)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise CheckFailed("progress_measures should return a tuple (restricted_loss, excluded_loss).")
    restricted, excluded = (float(v) for v in out)
    # Closed forms: each row's restricted logits are 10 cos(3 w (s - c)); the excluded logits are all 0.
    closed = math.log(sum(math.exp(10 * math.cos(w * 3 * j)) for j in range(p))) - 10
    expect_close(restricted, closed, "restricted loss of pure frequency-3 logits", atol=1e-4,
                 hint="Keep only the key-frequency component, then take the cross-entropy of the correct answers.")
    expect_close(excluded, math.log(p), "excluded loss of pure frequency-3 logits", atol=1e-4,
                 hint="Remove the key-frequency component: nothing is left, so the loss is log(p).")
    # Random logits: train and test differ, so the split matters.
    logits = 3 * torch.randn(p, p, p, generator=torch.Generator().manual_seed(3))
    out = tuple(float(v) for v in call(progress_measures, logits, labels, [2, 5], basis, train_mask))
    kept = _project(logits, p, [2, 5]).reshape(p * p, p)
    removed = logits.double().reshape(p * p, p) - kept
    expected = {
        "restricted (test rows)": F.cross_entropy(kept[~train_mask], labels[~train_mask]).item(),
        "excluded (train rows)": F.cross_entropy(removed[train_mask], labels[train_mask]).item(),
    }
    swapped = (F.cross_entropy(kept[train_mask], labels[train_mask]).item(),
               F.cross_entropy(removed[~train_mask], labels[~train_mask]).item())
    if abs(out[0] - swapped[0]) < 1e-4 or abs(out[1] - swapped[1]) < 1e-4:
        raise CheckFailed("a loss was computed on the wrong split: the restricted loss asks whether the key "
                          "frequencies "
                          "alone already *generalise*, so it is measured on the test rows (~train_mask); the excluded "
                          "loss asks whether the model still needs them on the *training* rows (train_mask).")
    for (name, value), got in zip(expected.items(), out):
        expect_close(got, value, f"the {name} loss of random logits", atol=1e-4,
                     hint="restricted: key component on the test rows; excluded: logits minus the key component on "
                          "the training rows.")
    passed("progress_measures", "closed-form values on a pure clock; right split on random logits")


# ----------------------------------------------------------------------------- exercise 6
def check_remove_frequencies(remove_frequencies) -> None:
    p = 13
    basis = _reference_basis(p)
    cos3, sin3, cos5, sin5 = _cos(3, p), _sin(3, p), _cos(5, p), _sin(5, p)
    W = torch.stack([cos3, sin3, 2 + cos5, cos3 + sin5], 1).float()          # [p, 4]: columns are functions of x
    before = W.clone()
    out = expect_tensor(call(remove_frequencies, W, [3], basis), "remove_frequencies(W, [3], basis)",
                        shape=(p, 4), dtype=torch.float32)
    if not torch.equal(W, before):
        raise CheckFailed("remove_frequencies changed W in place: return a new tensor, the model's weights must not "
                          "change when you only meant to look at an ablated copy.")
    if out[:, 0].abs().max() < 1e-3 and (out[:, 1].double() - sin3).abs().max() < 1e-3:
        raise CheckFailed("sin(3wx) survived while cos(3wx) was removed: a frequency k is two basis rows, "
                          "2k-1 (cos) and 2k (sin); remove both.")
    if (out[:, 2].double().mean() - 2).abs() > 1e-3 and (out[:, 2].double() - cos5).abs().max() < 1e-3:
        raise CheckFailed("the constant (mean over x) was removed too: row 0 of the basis is not a frequency, keep it.")
    expected = torch.stack([torch.zeros(p), torch.zeros(p), 2 + cos5, sin5], 1)
    expect_close(out, expected, "W without frequency 3", atol=1e-3,
                 hint="coefficients = basis @ W; zero rows 2k-1 and 2k for every k in freqs; map back with basis.T "
                      "(the basis is orthonormal, so its inverse is its transpose).")
    # Random W, two frequencies: the residual of a least-squares fit on explicit cos/sin columns.
    W = torch.randn(p, 6, generator=torch.Generator().manual_seed(4))
    explicit = torch.stack([_cos(2, p), _sin(2, p), _cos(4, p), _sin(4, p)], 1)   # [p, 4]
    fit = torch.linalg.lstsq(explicit, W.double()).solution
    expect_close(call(remove_frequencies, W, [2, 4], basis), W.double() - explicit @ fit,
                 "random W without frequencies 2 and 4", atol=1e-3,
                 hint="Remove every frequency in freqs, and only those (frequency k is rows 2k-1 and 2k).")
    passed("remove_frequencies", "removes cos and sin of each frequency, keeps the constant, matches least squares")
