"""Checks for chapter 02 (probes). Each compares with hand-computed cases, invariants, or numpy."""
from __future__ import annotations

import numpy as np
import torch

from utils.checks import CheckFailed, call, expect_close, expect_tensor, passed


def _expect_array(x, name: str, length: int) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise CheckFailed(f"{name} should be a numpy array, got {type(x).__name__}.")
    if x.shape != (length,):
        raise CheckFailed(f"{name} has shape {x.shape}, expected ({length},): one value per input element.")
    if not np.issubdtype(x.dtype, np.integer):
        raise CheckFailed(f"{name} has dtype {x.dtype}; labels are integers (use dtype=np.int64).")
    return x


# ---------------------------------------------------------------------------------------------
# Exercise 1: bracket depth from Python's own tokenizer
_DEPTH_CASES = [
    # (source, depth of every character), computed by hand
    ("f(x)", [0, 0, 1, 0]),
    ("a[(b)]\n", [0, 0, 1, 2, 1, 0, 0]),
    ("foo(1,\n  2)\n", [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0]),
    ("s = '(' + t  # ]\n", [0] * 17),
    ("d = {'(': [1]}\n", [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 1, 0, 0]),
]


def check_bracket_depths(bracket_depths) -> None:
    for source, expected in _DEPTH_CASES:
        out = _expect_array(call(bracket_depths, source), f"bracket_depths({source!r})", len(source))
        if not np.array_equal(out, expected):
            hint = ""
            if "'" in source or "#" in source:
                hint = " Brackets inside strings and comments are text, not syntax: count only OP tokens."
            elif out[source.index("(") if "(" in source else 0] != expected[source.index("(") if "(" in source else 0]:
                hint = " A bracket belongs to the level outside it: in f(x), '(' and ')' have depth 0 and x depth 1."
            raise CheckFailed(f"bracket_depths({source!r}) = {out.tolist()}, expected {expected}.{hint}")
    passed("bracket_depths", f"{len(_DEPTH_CASES)} hand-labelled snippets, strings and comments included")


# ---------------------------------------------------------------------------------------------
# Exercise 2: the Hewitt & Liang control task
def _control_data(seed=2024, n_types=3000):
    """Types of unequal frequency: half occur 8 times and are mostly label 0, half occur once and are mostly
    labels 1 and 2. Over tokens the labels are about 0.73 / 0.19 / 0.08, over types 0.5 / 0.33 / 0.17."""
    rng = np.random.default_rng(seed)
    frequent = np.arange(n_types) < n_types // 2
    occurrences = np.where(frequent, 8, 1)
    types = np.repeat(np.arange(n_types), occurrences)
    type_labels = np.where(frequent, rng.choice(3, size=n_types, p=[0.8, 0.15, 0.05]),
                           rng.choice(3, size=n_types, p=[0.2, 0.5, 0.3]))
    labels = type_labels[types]                            # real labels: a function of the type for most tokens
    labels[rng.random(len(types)) < 0.05] = -1            # some tokens have no label
    order = rng.permutation(len(types))
    return types[order] + 1000, labels[order]


def check_control_task(control_task) -> None:
    types, labels = _control_data()
    out = _expect_array(call(control_task, types, labels, 0), "control_task(types, labels, seed)", len(types))
    if not np.array_equal(out == -1, labels == -1):
        raise CheckFailed("tokens without a label (-1) must stay -1, and every labelled token needs a control label.")
    valid = labels >= 0
    if not set(np.unique(out[valid])) <= set(np.unique(labels[valid])):
        raise CheckFailed(f"control labels {sorted(set(np.unique(out[valid])))} should come from the task's own "
                          f"labels {sorted(set(np.unique(labels[valid])))}.")
    per_type = {}
    for t, c in zip(types[valid], out[valid]):
        if per_type.setdefault(t, c) != c:
            raise CheckFailed("the same token type got different control labels. The control task draws one label per "
                              "*type* and gives it to every occurrence; relabelling each occurrence is just noise that "
                              "no probe can learn.")
    agree = (out[valid] == labels[valid]).mean()
    empirical = np.bincount(labels[valid], minlength=3) / valid.sum()
    chance = (empirical ** 2).sum()
    if agree > chance + 0.05:
        raise CheckFailed(f"control labels agree with the real labels on {agree:.0%} of tokens (independent "
                          f"draws would agree on about {chance:.0%}): the control must be random, not derived from "
                          "the real label.")
    drawn = np.bincount(np.array(list(per_type.values())), minlength=3) / len(per_type)
    if np.abs(drawn - empirical).max() > 0.04:
        raise CheckFailed(f"the fraction of types given each control label is {np.round(drawn, 2).tolist()}, "
                          "but labels should be drawn from the task's empirical distribution "
                          f"{np.round(empirical, 2).tolist()} over labelled *tokens* (not over types, not uniform).")
    again = call(control_task, types, labels, 0)
    if not np.array_equal(again, out):
        raise CheckFailed("control_task is not reproducible: use a generator seeded with `seed` "
                          "(np.random.default_rng(seed)).")
    other = call(control_task, types, labels, 1)
    if np.array_equal(other, out):
        raise CheckFailed("a different seed gave the same control labels: the seed should drive the random draw.")
    passed("control_task", f"one label per type, drawn from {np.round(empirical, 2).tolist()}")


# ---------------------------------------------------------------------------------------------
# Exercise 3: the token-identity baseline
def check_token_identity_baseline(token_identity_baseline) -> None:
    train_types = np.array([5, 5, 5, 7, 7, 9, 9, 9, 9, 11])
    train_labels = np.array([1, 1, 0, 2, 2, 0, 0, 0, 3, 0])
    test_types = np.array([5, 7, 9, 42, 11, 5])
    expected = np.array([1, 2, 0, 0, 0, 1])   # 42 was never seen: the majority label 0
    out = _expect_array(call(token_identity_baseline, train_types, train_labels, test_types),
                        "token_identity_baseline(...)", len(test_types))
    if not np.array_equal(out, expected):
        hint = ""
        if out[3] != 0:
            hint = " A type never seen in training gets the most frequent training label overall."
        elif out[0] != 1:
            hint = " Use the *most frequent* label of each type, not the first or last one seen."
        raise CheckFailed(f"predictions {out.tolist()}, expected {expected.tolist()}.{hint}")
    # a second case where the overall majority is not label 0
    out = _expect_array(call(token_identity_baseline, np.array([1, 1, 2]), np.array([4, 4, 3]), np.array([3, 2])),
                        "token_identity_baseline(...)", 2)
    if not np.array_equal(out, [4, 3]):
        raise CheckFailed(f"predictions {out.tolist()}, expected [4, 3]: unseen types get the training majority label, "
                          "whatever its value.")
    passed("token_identity_baseline", "most frequent label per type, majority for unseen types")


# ---------------------------------------------------------------------------------------------
# Exercise 4: selectivity on held-out data
def _memoriser():
    """A probe that memorises its training rows exactly and answers 0 for any row it has not seen.

    It also records which labels it was trained on, so the check can see two separate probes.
    """
    seen = []

    def fit(X, y):
        X, y = np.asarray(X), np.asarray(y)
        table = {tuple(row): label for row, label in zip(X.tolist(), y.tolist())}
        seen.append(tuple(y.tolist()))

        def predict(Z):
            return np.array([table.get(tuple(row), 0) for row in np.asarray(Z).tolist()], dtype=np.int64)
        return predict
    return fit, seen


def check_selectivity(selectivity) -> None:
    X_train = np.arange(12, dtype=np.float32).reshape(6, 2)
    y_train = np.array([1, 2, 1, 2, 1, 2])
    c_train = np.array([2, 2, 1, 1, 2, 1])
    # test: rows 0-3 repeat training rows (memorised), rows 4-7 are new (predicted 0)
    X_test = np.concatenate([X_train[:4], 100 + X_train[:4]])
    y_test = np.array([1, 2, 1, 1, 0, 0, 0, 2])     # memoriser right on 3 + 3 = 6 of 8
    c_test = np.array([2, 1, 1, 1, 0, 2, 2, 2])     # memoriser right on 3 + 1 = 4 of 8
    fit, seen = _memoriser()
    out = call(selectivity, fit, X_train, y_train, c_train, X_test, y_test, c_test)
    if not isinstance(out, dict) or not {"task", "control", "selectivity"} <= set(out):
        raise CheckFailed("selectivity should return a dict with keys 'task', 'control' and 'selectivity'.")
    if tuple(y_train.tolist()) not in seen or tuple(c_train.tolist()) not in seen:
        raise CheckFailed("train two probes: one on the task labels, one on the control labels (same inputs).")
    got = {k: float(out[k]) for k in ("task", "control", "selectivity")}
    if abs(got["task"] - 1.0) < 1e-6 and abs(got["control"] - 1.0) < 1e-6:
        raise CheckFailed("both accuracies are 1.0: they were measured on the training data, which a memorising probe "
                          "fits perfectly. Measure on the held-out (test) tokens.")
    expect_close(torch.tensor([got["task"], got["control"], got["selectivity"]]), torch.tensor([0.75, 0.5, 0.25]),
                 "[task, control, selectivity]", atol=1e-6,
                 hint="Accuracy is the fraction of test tokens predicted right; selectivity = task − control.")
    passed("selectivity", "two probes, scored on held-out tokens")


# ---------------------------------------------------------------------------------------------
# Exercise 6: a random matrix with the same singular values
def check_spectrum_matched(spectrum_matched) -> None:
    gen = torch.Generator().manual_seed(0)
    for shape in [(48, 20), (20, 48), (32, 32)]:
        weight = torch.randn(*shape, generator=gen) @ torch.diag(torch.linspace(0.1, 3.0, shape[1]))
        out = expect_tensor(call(spectrum_matched, weight, torch.Generator().manual_seed(1)),
                            f"spectrum_matched(W {shape})", shape=shape, dtype=weight.dtype)
        expected = np.linalg.svd(weight.double().numpy(), compute_uv=False)
        got = np.linalg.svd(out.double().numpy(), compute_uv=False)
        expect_close(torch.tensor(got), torch.tensor(expected), f"singular values of spectrum_matched(W {shape})",
                     atol=1e-4, rtol=1e-4, hint="Build Q1 @ diag(S) @ Q2.T with orthonormal Q1 [m, r] and Q2 "
                     "[n, r], r = min(m, n), and S the singular values of W. A Gaussian matrix of the same norm does "
                     "not keep them.")
        u, _, vh = np.linalg.svd(weight.double().numpy(), full_matrices=False)
        u2, _, vh2 = np.linalg.svd(out.double().numpy(), full_matrices=False)
        if abs(u[:, 0] @ u2[:, 0]) > 0.9 or abs(vh[0] @ vh2[0]) > 0.9:
            raise CheckFailed(f"for W {shape} the top singular vectors survived (left overlap "
                              f"{abs(u[:, 0] @ u2[:, 0]):.2f}, right {abs(vh[0] @ vh2[0]):.2f}): rotate *both* sides "
                              "with random orthogonal matrices.")
    weight = torch.randn(30, 10, generator=gen)
    a = call(spectrum_matched, weight, torch.Generator().manual_seed(3))
    b = call(spectrum_matched, weight, torch.Generator().manual_seed(3))
    c = call(spectrum_matched, weight, torch.Generator().manual_seed(4))
    if not torch.allclose(a, b):
        raise CheckFailed("the same generator seed gave different matrices: draw all randomness from `generator`.")
    if torch.allclose(a, c):
        raise CheckFailed("different generator seeds gave the same matrix: draw the random factors from `generator`.")
    out = call(spectrum_matched, weight.double(), torch.Generator().manual_seed(3))
    if not isinstance(out, torch.Tensor) or out.dtype != torch.float64:
        raise CheckFailed(f"a float64 weight came back as {getattr(out, 'dtype', type(out).__name__)}: "
                          "return the result in the weight's own dtype (.to(weight.dtype)).")
    # Uniformly random (Haar) factors: W's top singular pair becomes (Q1[:, 0], Q2[:, 0]) up to a joint sign, and
    # the product of their first entries is positive in half of the draws. Q from a plain QR is not uniform:
    # LAPACK fixes the signs of R's diagonal, so Q's first column always starts with the same sign.
    diagonal = torch.zeros(12, 8)
    diagonal[range(8), range(8)] = torch.linspace(3.0, 1.0, 8)
    same_sign = []
    for seed in range(40):
        u, _, vh = torch.linalg.svd(call(spectrum_matched, diagonal, torch.Generator().manual_seed(seed)).double(),
                                    full_matrices=False)
        same_sign.append(float(u[0, 0] * vh[0, 0]) > 0)
    share = float(np.mean(same_sign))
    if not 0.15 <= share <= 0.85:
        raise CheckFailed(f"the random factors are not uniformly random: in {share:.0%} of 40 draws Q1[:, 0] and "
                          "Q2[:, 0] start with the same sign (uniform: about half). QR fixes the signs of R's "
                          "diagonal; fold them into Q: q * torch.sign(torch.diagonal(r)).")
    passed("spectrum_matched", "same singular values as numpy's SVD, uniformly random singular vectors on both sides")


# ---------------------------------------------------------------------------------------------
# Exercise 5: LEACE, linear concept erasure in closed form
def _erasure_data(seed=0, n=3000, d=6):
    """Correlated features of unequal scale; three classes whose means differ along mixed directions."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    mixing = rng.normal(size=(d, d)) * np.array([3.0, 1.0, 0.5, 0.2, 2.0, 1.0])
    X = rng.normal(size=(n, d)) @ mixing + np.eye(3, d)[labels] @ rng.normal(size=(d, d)) * 1.5 + 4.0
    return torch.tensor(X, dtype=torch.float32), labels


def _class_mean_gap(X: torch.Tensor, labels: np.ndarray) -> float:
    """Largest difference between a class mean and the overall mean, in units of the overall std."""
    X = X.double()
    scale = X.std(0)
    return max(float(((X[labels == c].mean(0) - X.mean(0)) / scale).abs().max()) for c in np.unique(labels))


def check_leace(leace) -> None:
    from utils.erasure import Eraser

    X, labels = _erasure_data()
    eraser = call(leace, X, labels)
    if not isinstance(eraser, Eraser):
        raise CheckFailed(f"leace should return an Eraser(mean, whiten, unwhiten, basis), got {type(eraser).__name__}.")
    erased = expect_tensor(call(eraser.erase, X), "eraser.erase(X)", shape=X.shape)
    if eraser.rank != 2:
        raise CheckFailed(f"the basis has rank {eraser.rank}; with 3 classes the centred cross-covariance has rank 2. "
                          "Centre X (subtract its mean) before computing the cross-covariance.")
    gap = _class_mean_gap(erased, labels)
    if gap > 1e-3:
        raise CheckFailed(f"after erasure the class means still differ (by {gap:.3f} std): a linear probe can still "
                          "read the labels. The basis must span whiten @ cross_cov, and unwhiten must be the "
                          "(pseudo-)inverse of whiten: Σ^(1/2) and Σ^(-1/2).")
    shift = float((erased.double().mean(0) - X.double().mean(0)).abs().max())
    if shift > 1e-3:
        raise CheckFailed(f"the erasure moved the mean of the data by {shift:.3f}: edit x − mean, not x "
                          "(store the mean and subtract it inside the edit).")
    twice = call(eraser.erase, erased)
    expect_close(twice, erased, "erase(erase(X))", atol=1e-3, hint="Erasing twice should change nothing: B must have "
                 "orthonormal columns (take them from an SVD or QR).")
    # the independent yardstick: the orthogonal projection onto the raw cross-covariance also erases, with a larger edit
    Xd = X.double()
    onehot = torch.nn.functional.one_hot(torch.as_tensor(labels)).double()
    cross = (Xd - Xd.mean(0)).T @ (onehot - onehot.mean(0)) / len(Xd)
    u = torch.linalg.svd(cross, full_matrices=False)[0][:, :2]
    orthogonal_edit = float((((Xd - Xd.mean(0)) @ u) ** 2).sum(1).mean())
    edit = float(((erased.double() - Xd) ** 2).sum(1).mean())
    if edit > 0.8 * orthogonal_edit:
        raise CheckFailed(f"your erasure moves the data by {edit:.2f} (mean squared distance), the plain orthogonal "
                          f"projection by {orthogonal_edit:.2f}: LEACE is the smallest edit that erases, which needs "
                          "the whitening (remove the subspace in whitened coordinates, then map back).")
    passed("leace", f"class means equal after erasure, rank 2, edit {edit:.2f} vs {orthogonal_edit:.2f} for a plain "
           "projection")
