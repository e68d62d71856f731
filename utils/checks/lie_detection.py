"""Checks for chapter 06 (lie detection): hand-computed cases, invariants and data built to expose leaks."""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from utils.checks import CheckFailed, call, expect_close, expect_number, expect_tensor, passed


# ---------------------------------------------------------------------------------------------
# Exercise 1: what counts as a lie
_TOPIC_A, _TOPIC_B = {10, 11, 12}, {20, 21, 22}
# (answer, honest, truth, on_topic, label): the model knows a question when honest == truth
_LIE_CASES = [(10, 10, 10, _TOPIC_A, 0),      # knows, gives the truth
              (11, 10, 10, _TOPIC_A, 1),      # knows, gives another on-topic answer: a lie
              (99, 10, 10, _TOPIC_A, -1),     # knows, gives an off-topic token: noise
              (11, 12, 10, _TOPIC_A, -1),     # does not know, gives a wrong answer: a mistake
              (10, 12, 10, _TOPIC_A, -1),     # does not know, gives the true answer: luck
              (12, 12, 10, _TOPIC_A, -1),     # does not know, repeats its own wrong answer
              (22, 20, 20, _TOPIC_B, 1),
              (20, 20, 20, _TOPIC_B, 0)]


def _expect_labels(out, n: int) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise CheckFailed(f"lie_labels should return a numpy array, got {type(out).__name__}. "
                          "Convert with np.asarray(...) (or .numpy()).")
    if out.shape != (n,):
        raise CheckFailed(f"lie_labels returned shape {out.shape} for {n} questions: return one label per question.")
    if out.dtype == bool:
        raise CheckFailed("lie_labels returned booleans, which have only two classes: return integers 1 (lie), "
                          "0 (truth) and -1 (neither), e.g. starting from np.full(n, -1).")
    if not np.issubdtype(out.dtype, np.integer):
        raise CheckFailed(f"lie_labels returned dtype {out.dtype}: return integer labels 1, 0, -1 "
                          "(np.full(n, -1) is an integer array).")
    odd = sorted(set(out.tolist()) - {-1, 0, 1})
    if odd:
        raise CheckFailed(f"lie_labels returned the labels {odd}: use only 1 (lie), 0 (truth) and -1 (neither).")
    return out


def check_lie_labels(lie_labels) -> None:
    answers, honest, truths, on_topic, expected = (list(column) for column in zip(*_LIE_CASES))
    expected = np.array(expected)
    n = len(expected)
    got = _expect_labels(call(lie_labels, torch.tensor(answers), torch.tensor(honest), torch.tensor(truths),
                              on_topic), n)
    named = expected >= 0
    if -1 not in got:
        raise CheckFailed("lie_labels gave no -1: questions the model does not know (honest != truth) and "
                          "off-topic answers are neither a lie nor the truth, label -1.")
    if np.array_equal(got[named], 1 - expected[named]):
        raise CheckFailed("The labels are swapped: 1 is a lie (knows the truth, says something else), 0 the truth.")
    if got[1] != 1 and got[6] != 1:
        raise CheckFailed("No lie was found: a lie is an on-topic answer other than the truth when honest == truth. "
                          "`answers[i] in on_topic[i]` is always False for a tensor element: test int(answers[i]).")
    if got[2] == 1:
        raise CheckFailed("An off-topic answer (not in on_topic[i]) was labelled a lie: it is noise, not a fluent "
                          "falsehood, so label it -1.")
    if (got[3:6] != -1).any():
        raise CheckFailed("When the model does not know the answer (honest != truth), label -1 whatever it says: "
                          "a wrong answer is a mistake, not a lie, and a right one is luck, not the truth.")
    if not np.array_equal(got, expected):
        raise CheckFailed(f"lie_labels on the hand-computed case gave {got.tolist()}, expected {expected.tolist()}.")
    # the same questions as python lists
    try:
        from_lists = lie_labels(answers, honest, truths, on_topic)
    except Exception as err:
        raise CheckFailed(f"lie_labels raised {type(err).__name__} on python lists: convert the inputs first "
                          "(np.asarray or torch.as_tensor).") from err
    if not (isinstance(from_lists, np.ndarray) and np.array_equal(from_lists, expected)):
        raise CheckFailed("lie_labels gave other labels for python lists than for tensors: convert the inputs "
                          "first (np.asarray or torch.as_tensor).")
    passed("lie_labels", "lies, truths, off-topic answers and unknown questions, from tensors and from lists")


# ---------------------------------------------------------------------------------------------
# Exercise 2: log-odds of yes against no at the last real token
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
# Exercise 3: held-out AUC split by group
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
# Exercise 4: the 2×2 grid's main effects
# cell means m(t, f): m(0,0) = 0, m(1,0) = 1, m(0,1) = 3, m(1,1) = 6, with 1, 3, 3 and 1 rows.
# Trigger effect ((1 - 0) + (6 - 3)) / 2 = 2, falsity effect ((3 - 0) + (6 - 1)) / 2 = 4. The marginal means
# differ by 0 (trigger: 9/4 against 9/4) and 3 (falsity: 15/4 against 3/4): unequal cells mix the factors.
_GRID_CELLS = {(0, 0): [0.0], (1, 0): [0.5, 1.0, 1.5], (0, 1): [2.0, 3.0, 4.0], (1, 1): [6.0]}


def _grid(cells):
    rows = [(t, f, s) for (t, f), scores in cells.items() for s in scores]
    rows = [rows[k] for k in np.random.default_rng(0).permutation(len(rows))]       # cells interleaved
    trigger, false, scores = (np.array(column) for column in zip(*rows))
    return scores.astype(float), trigger.astype(int), false.astype(int)


def check_grid_effects(grid_effects) -> None:
    result = call(grid_effects, *_grid(_GRID_CELLS))
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise CheckFailed("grid_effects should return a tuple (trigger effect, falsity effect).")
    for value, name in zip(result, ("The trigger effect", "The falsity effect")):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CheckFailed(f"{name} should be a Python float, got {type(value).__name__}: return float(...).")
        expect_number(value, name)
    got = np.array(result, dtype=float)

    def gave(trigger_effect, falsity_effect):
        return np.allclose(got, [trigger_effect, falsity_effect], atol=1e-6)
    if gave(4.0, 2.0):
        raise CheckFailed("grid_effects returned (falsity, trigger): return (trigger effect, falsity effect).")
    if np.isclose(got[0], -2.0) or np.isclose(got[1], -4.0):
        raise CheckFailed("The sign is reversed: an effect is the score with the factor minus without it, "
                          "e.g. cell(1, f) − cell(0, f) for the trigger.")
    if gave(0.0, 3.0):
        raise CheckFailed("You took differences of marginal means; with unequal cell sizes they mix the two "
                          "factors. Average the within-level differences of cell means instead.")
    expect_close(got, [2.0, 4.0], "(trigger effect, falsity effect) on the hand-computed grid",
                 hint="Cell means 0, 1, 3, 6 for (t, f) = (0,0), (1,0), (0,1), (1,1): expected (2, 4).")
    empty = {cell: scores for cell, scores in _GRID_CELLS.items() if cell != (1, 1)}
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            result = grid_effects(*_grid(empty))
    except ValueError:
        pass
    except Exception as err:
        raise CheckFailed(f"With the cell trigger=1, false=1 empty, grid_effects raised {type(err).__name__}: "
                          "raise ValueError (an empty cell has no mean).") from err
    else:
        raise CheckFailed(f"With the cell trigger=1, false=1 empty, grid_effects returned {result!r}: "
                          "raise ValueError, an empty cell has no mean.")
    passed("grid_effects", "cell-balanced effects (2, 4) on unequal cells, and ValueError on an empty cell")


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
