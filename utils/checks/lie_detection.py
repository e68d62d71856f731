"""Checks for chapter 06 (lie detection): hand-computed cases, invariants and data built to expose leaks."""
from __future__ import annotations

import math

import numpy as np
import torch

from utils.checks import CheckFailed, call, expect_close, expect_tensor, passed


# ---------------------------------------------------------------------------------------------
# Exercises 1 and 2: low-rank adapters
def check_lora_init(lora_init) -> None:
    linear = torch.nn.Linear(400, 30)
    rank = 16
    a, b = call(lora_init, linear, rank, torch.Generator().manual_seed(0))
    expect_tensor(a, "A", shape=(rank, 400), dtype=torch.float32, device="cpu")
    expect_tensor(b, "B", shape=(30, rank), dtype=torch.float32, device="cpu")
    if b.abs().max() > 0:
        raise CheckFailed("B should start at exactly zero, so the adapted model starts as the original model "
                          "(ΔW = B A = 0) and training moves it away smoothly.")
    std = a.std().item()
    if not 0.9 / math.sqrt(400) < std < 1.1 / math.sqrt(400):
        raise CheckFailed(f"A has standard deviation {std:.4f}, expected 1/sqrt(d_in) = {1 / math.sqrt(400):.4f}. "
                          "Zero A would leave B without gradient; unit A makes the first updates too large.")
    a2, _ = call(lora_init, linear, rank, torch.Generator().manual_seed(0))
    if not torch.equal(a, a2):
        raise CheckFailed("Two calls with identically seeded generators gave different A: "
                          "draw with generator=generator.")
    # the layer's device and dtype: a float64 layer on the "meta" device stands in for a GPU model
    far = torch.nn.Linear(40, 6, device="meta", dtype=torch.float64)
    a, b = call(lora_init, far, 4, torch.Generator().manual_seed(0))
    expect_tensor(a, "A for a layer on the meta device", shape=(4, 40), dtype=torch.float32, device="meta",
                  finite=False)
    expect_tensor(b, "B for a layer on the meta device", shape=(6, 4), dtype=torch.float32, device="meta", finite=False)
    passed("lora_init", "A ~ N(0, 1/d_in) from the generator, B = 0, shapes [r, d_in] and [d_out, r], "
           "on the layer's device")


def check_lora_delta(lora_delta) -> None:
    # hand-computed: x A^T = [1, 2, 3], then B (x A^T) = [1+2, 3], times alpha / r = 6 / 3 = 2
    x = torch.tensor([[1.0, 2.0]])
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    out = expect_tensor(call(lora_delta, x, a, b, 6.0), "lora_delta(x, A, B, alpha=6)", shape=(1, 2))
    known_mistakes = {"scaled by alpha instead of alpha / r": [[18.0, 18.0]],
                      "did not scale by alpha / r": [[3.0, 3.0]]}
    for mistake, value in known_mistakes.items():
        if torch.allclose(out.double(), torch.tensor(value, dtype=torch.float64), atol=1e-4):
            raise CheckFailed(f"lora_delta on the hand-computed case gave {out.tolist()}: you {mistake}. "
                              "Expected (alpha / r) x Aᵀ Bᵀ with r = A.shape[0] = 3, i.e. 2 · [3, 3].")
    expect_close(out, [[6.0, 6.0]], "lora_delta on the hand-computed case", hint="Expected (alpha / r) x Aᵀ Bᵀ with "
                 "r = A.shape[0] = 3, i.e. 2 · [3, 3].")
    # invariant: the adapter equals a linear layer whose weight is (alpha / r) B A, on batched inputs
    g = torch.Generator().manual_seed(1)
    x, a, b = torch.randn(2, 5, 12, generator=g), torch.randn(4, 12, generator=g), torch.randn(7, 4, generator=g)
    try:
        out = call(lora_delta, x, a, b, 8.0)
    except CheckFailed as err:
        if "cannot be multiplied" not in str(err):
            raise
        raise CheckFailed("lora_delta failed on x [2, 5, 12], A [4, 12], B [7, 4] (d_in, r and d_out all differ): "
                          "multiply in the order x Aᵀ (→ [..., r]), then Bᵀ (→ [..., d_out]).") from None
    out = expect_tensor(out, "lora_delta on a [2, 5, 12] batch", shape=(2, 5, 7))
    expect_close(out, torch.nn.functional.linear(x, (8.0 / 4) * b @ a), "lora_delta on a batch", atol=1e-4,
                 hint="It should equal x @ ((alpha / r) B A)ᵀ for every position.")
    passed("lora_delta", "hand-computed case and the merged-weight identity on a batch")


# ---------------------------------------------------------------------------------------------
# Exercise 3: log-odds of yes against no at the last real token
def _reference_logodds(logits, lengths, yes_ids, no_ids) -> np.ndarray:
    out = []
    for row, length in zip(logits.double().numpy(), lengths.tolist()):
        p = np.exp(row[length - 1] - row[length - 1].max())
        p /= p.sum()
        out.append(math.log(p[yes_ids].sum()) - math.log(p[no_ids].sum()))
    return np.array(out)


def check_yes_no_logodds(yes_no_logodds) -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 10, generator=g) * 3
    lengths = torch.tensor([4, 2, 3])
    yes_ids, no_ids = [1, 5], [2, 7]
    out = expect_tensor(call(yes_no_logodds, logits, lengths, yes_ids, no_ids), "yes_no_logodds(...)", shape=(3,),
                        dtype=torch.float32)
    expected = _reference_logodds(logits, lengths, yes_ids, no_ids)
    last = _reference_logodds(logits, torch.tensor([4, 4, 4]), yes_ids, no_ids)
    got = out.double().numpy()
    if not np.allclose(got, expected, atol=1e-4) and np.allclose(got, last, atol=1e-4):
        raise CheckFailed("You read the last position of every row. Rows are right-padded: the answer is predicted "
                          "at position lengths[i] - 1.")
    at_last = logits[torch.arange(3), lengths - 1].double()
    logprobs = at_last.log_softmax(-1)
    known_mistakes = {
        "summed log-probabilities over the spellings; P(yes) is the sum of the probabilities (use logsumexp)":
            logprobs[:, yes_ids].sum(-1) - logprobs[:, no_ids].sum(-1),
        "kept only the first spelling; P(yes) sums every yes spelling (same for no)":
            logprobs[:, yes_ids[0]] - logprobs[:, no_ids[0]],
        "subtracted probabilities; return the difference of log-probabilities":
            logprobs.exp()[:, yes_ids].sum(-1) - logprobs.exp()[:, no_ids].sum(-1),
    }
    for mistake, value in known_mistakes.items():
        if torch.allclose(out.double(), value, atol=1e-4):
            raise CheckFailed(f"yes_no_logodds: you {mistake}.")
    expect_close(out, expected, "yes_no_logodds", hint="log P(yes) is the log of the *sum* of the probabilities of "
                 "every yes spelling (logsumexp of log-probabilities), minus the same for no.")
    # float64 logits (a second dtype): the answer is still float32
    out64 = call(yes_no_logodds, logits.double(), lengths, yes_ids, no_ids)
    expect_tensor(out64, "yes_no_logodds on float64 logits", shape=(3,), dtype=torch.float32)
    # invariant: one spelling each, equal logits for yes and no -> exactly 0
    flat = torch.zeros(1, 2, 6)
    expect_close(call(yes_no_logodds, flat, torch.tensor([2]), [0], [1]), [0.0], "yes_no_logodds on uniform logits")
    passed("yes_no_logodds", "right-padded rows, several spellings, against a numpy softmax")


# ---------------------------------------------------------------------------------------------
# Exercise 4: held-out AUC split by group
def _signal_data(seed=0, n_groups=60):
    rng = np.random.default_rng(seed)
    y = np.tile([1, 0], n_groups)
    X = rng.normal(size=(2 * n_groups, 5)) + 1.5 * y[:, None] * np.array([1, 0.5, 0, 0, 0])
    return X, y, np.repeat(np.arange(n_groups), 2)


def _leaky_data(seed=0, n_groups=80, dim=50):
    """Labels are constant within a group and features only identify the group: no real signal."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), 2)
    y = np.repeat(rng.permutation(np.arange(n_groups) % 2), 2)
    X = rng.normal(size=(n_groups, dim))[groups] + 0.05 * rng.normal(size=(2 * n_groups, dim))
    return X, y, groups


def _auc(heldout_auc, X, y, groups, seed) -> float:
    value = call(heldout_auc, X, y, groups, seed)
    if not isinstance(value, (float, np.floating)) or not 0.0 <= float(value) <= 1.0:
        raise CheckFailed(f"heldout_auc should return a float in [0, 1], got {value!r}.")
    return float(value)


def check_heldout_auc(heldout_auc) -> None:
    real = np.mean([_auc(heldout_auc, *_signal_data(s), seed=s) for s in range(3)])
    if real < 0.8:
        raise CheckFailed(f"On data with a real signal the held-out AUC is {real:.2f}; expected about 0.9. "
                          "Check the sign: score the test rows with decision_function (or P(class 1)).")
    leak = np.mean([_auc(heldout_auc, *_leaky_data(s), seed=s) for s in range(4)])
    if leak > 0.72:
        raise CheckFailed(f"On data whose features only identify the group, the AUC is {leak:.2f}; it should be "
                          "about 0.5. Either the score comes from training rows, or rows of one group landed on "
                          "both sides of the split: split the group names, then select rows with np.isin.")
    passed("heldout_auc", f"real signal {real:.2f}, group-identity-only data {leak:.2f} (chance 0.5)")


# ---------------------------------------------------------------------------------------------
# Exercise 5: the mass-mean probe
def check_mass_mean_probe(mass_mean_probe) -> None:
    acts = torch.tensor([[3.0, 0.0], [1.0, 2.0], [-1.0, 0.0], [1.0, -2.0]])
    labels = torch.tensor([True, True, False, False])
    result = call(mass_mean_probe, acts, labels)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise CheckFailed("mass_mean_probe should return a tuple (direction, threshold).")
    direction, threshold = result
    expect_tensor(direction, "direction", shape=(2,))
    if torch.allclose(direction.double(), torch.tensor([-2.0, -2.0], dtype=torch.float64)):
        raise CheckFailed("The direction points from true to false: use μ_true − μ_false, "
                          "so a larger projection means true.")
    if torch.allclose(direction.double().abs(), torch.full((2,), 0.5 ** 0.5, dtype=torch.float64), atol=1e-4):
        raise CheckFailed("The direction has norm 1: return μ_true − μ_false itself, unnormalised "
                          "(the threshold is a projection on that vector).")
    expect_close(direction, [2.0, 2.0], "direction on the hand-computed case (μ_true = [2, 1], μ_false = [0, -1])")
    if abs(float(threshold) - 2.0) > 1e-4:
        raise CheckFailed(f"threshold = {float(threshold):.3f}, expected 2.0: the midpoint of the means, [1, 0], "
                          "projected on the direction [2, 2]. A threshold of 0 only works for centred data.")
    # unequal class counts: 3 true, 1 false. The midpoint of the class means is not the overall mean.
    acts = torch.tensor([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    labels = torch.tensor([True, True, True, False])
    direction, threshold = call(mass_mean_probe, acts, labels)
    expect_close(direction, [2.0, 0.0], "direction with 3 true and 1 false statement")
    if abs(float(threshold) - 3.0) < 1e-4:
        raise CheckFailed("With 3 true and 1 false statement the threshold is 3.0 = overall mean · direction: "
                          "use the midpoint of the two class means, not the mean of all rows (expected 2.0).")
    if abs(float(threshold) - 2.0) > 1e-4:
        raise CheckFailed(f"threshold = {float(threshold):.3f} with 3 true and 1 false statement, expected 2.0 "
                          "(the midpoint of the class means [2, 0] and [0, 0], projected on [2, 0]).")
    g = torch.Generator().manual_seed(0)
    shifted = torch.randn(200, 8, generator=g) + 10.0               # far from the origin
    truth = torch.arange(200) % 2 == 0
    shifted[truth, 0] += 3.0
    direction, threshold = call(mass_mean_probe, shifted, truth)
    accuracy = ((shifted @ direction > threshold) == truth).float().mean().item()
    if accuracy < 0.85:
        raise CheckFailed(f"On separable data far from the origin the probe's accuracy is {accuracy:.2f}; "
                          "the threshold must sit between the projected class means.")
    passed("mass_mean_probe", "hand-computed cases (balanced and 3:1 classes) and uncentred separable data")
