"""The course's statistics: intervals over what was sampled, nulls by permutation, held-out choices.

Every number a chapter claims was measured on a sample — of documents, prompts, questions,
heads or seeds — and would come out differently on another. This module turns a sample into
an interval or a null distribution, always over the unit that was sampled:

* :func:`bootstrap_ci` — a percentile bootstrap interval for any statistic; ``groups`` makes
  it resample whole units (documents, not the tokens inside them).
* :func:`paired_bootstrap` — the difference of a statistic between two measurements of the
  *same* units (a method and its control on the same prompts), resampled in pairs.
* :func:`permutation_test` — a permutation null for a correlation or for a difference of two
  groups; returns the observed value, the null draws and a p-value.
* :func:`split_units` — train / validation / test index sets split by unit, so that every
  choice (layer, coefficient, threshold, hyper-parameter) is made on validation data and
  reported on test data. :func:`choose` makes such a choice and remembers which split made it.

Conventions: ``seed`` defaults to ``GLASSBOX_SEED``; intervals are ``(low, high)`` floats;
``level`` is the two-sided coverage (0.95).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from utils.env import default_seed

N_BOOT = 2000
N_PERM = 2000


def _as_arrays(data) -> tuple[tuple[np.ndarray, ...], bool]:
    """``data`` as a tuple of arrays sharing their first axis (one array is a tuple of one)."""
    single = not isinstance(data, tuple)
    arrays = tuple(np.asarray(a.detach().cpu() if hasattr(a, "detach") else a) for a in ((data,) if single else data))
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"all arrays must share their first axis; lengths {[len(a) for a in arrays]}")
    if n < 2:
        raise TooFewUnits(f"an interval needs at least 2 sampled units, got {n}")
    return arrays, single


class TooFewUnits(ValueError):
    """An interval asked of data that cannot give one (fewer than 2 units, or undefined on every resample)."""


def _undefined(err: TooFewUnits) -> tuple[float, float]:
    """On another model or in a smoke run (claims reported), degenerate data is a finding: the interval is
    NaN and the claim it goes with fails and is listed. On the embedded model it stays an error."""
    from utils.report import claim_mode
    if claim_mode() == "strict":
        raise err
    print(f"interval undefined ({err}): the claim it belongs to is reported as failed")
    return float("nan"), float("nan")


def _resampled_indices(n: int, groups, rng: np.random.Generator) -> np.ndarray:
    """Row indices of one bootstrap sample: rows drawn with replacement, or whole groups drawn."""
    if groups is None:
        return rng.integers(0, n, n)
    groups = np.asarray(groups)
    units, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == u) for u in range(len(units))]
    drawn = rng.integers(0, len(units), len(units))
    return np.concatenate([members[u] for u in drawn])


def bootstrap_ci(data, statistic: Callable = np.mean, groups=None, n_boot: int = N_BOOT, level: float = 0.95,
                 seed: int | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(data)``.

    ``data``: an array (rows are sampled units) or a tuple of arrays resampled together by row
    (``(scores, labels)`` for an AUC). ``statistic`` takes what ``data`` is — an array, or the
    arrays of the tuple as separate arguments — and returns a number. ``groups``: one label per
    row; whole groups are resampled (rows of a document stay together). Resamples on which the
    statistic is undefined (NaN, e.g. an AUC with one class) are dropped.
    """
    try:
        arrays, single = _as_arrays(data)
        rng = np.random.default_rng(default_seed() if seed is None else seed)
        draws = []
        for _ in range(n_boot):
            idx = _resampled_indices(len(arrays[0]), groups, rng)
            draws.append(_call(statistic, tuple(a[idx] for a in arrays), single))
        return _percentile_interval(np.asarray(draws, dtype=float), level)
    except TooFewUnits as err:
        return _undefined(err)


def _call(statistic, arrays, single):
    with np.errstate(all="ignore"):
        try:
            return float(statistic(arrays[0]) if single else statistic(*arrays))
        except ValueError:       # e.g. scikit-learn's AUC on a resample with one class
            return float("nan")


def _percentile_interval(draws: np.ndarray, level: float) -> tuple[float, float]:
    draws = draws[np.isfinite(draws)]
    if len(draws) == 0:
        raise TooFewUnits("the statistic was undefined on every bootstrap sample")
    alpha = (1 - level) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return float(low), float(high)


def auc(scores, labels) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (1 = positive); NaN with one class.

    The Mann–Whitney form (ties count one half), equal to scikit-learn's ``roc_auc_score`` and
    fast enough to bootstrap.
    """
    from scipy.stats import rankdata
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels).astype(bool)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True)
class Difference:
    """A paired difference ``statistic(a) - statistic(b)`` with its bootstrap interval."""
    value: float
    ci: tuple[float, float]

    def __iter__(self):                 # value, (low, high) = paired_bootstrap(...)
        return iter((self.value, self.ci))


def paired_bootstrap(a, b, statistic: Callable = np.mean, groups=None, n_boot: int = N_BOOT, level: float = 0.95,
                     seed: int | None = None) -> Difference:
    """``statistic(a) - statistic(b)`` for two measurements of the same units, resampled in pairs.

    Row ``i`` of ``a`` and row ``i`` of ``b`` belong to the same unit (prompt, document, seed);
    each bootstrap sample draws the same rows from both, so what the units share cancels.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"paired samples must have the same number of units: {a.shape[0]} vs {b.shape[0]}")
    value = float(statistic(a) - statistic(b))
    ci = bootstrap_ci((a, b), lambda x, y: statistic(x) - statistic(y), groups=groups, n_boot=n_boot,
                      level=level, seed=seed)
    return Difference(value, ci)


@dataclass(frozen=True)
class PermutationResult:
    value: float              # the observed statistic
    null: np.ndarray          # the statistic under each permutation
    p_value: float            # one- or two-sided, with the +1 correction (never exactly 0)

    def percentile(self, q: float = 95) -> float:
        return float(np.percentile(self.null, q))


def _rank(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata
    return rankdata(x)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x, y)[0, 1])


def permutation_test(x, y, kind: str = "spearman", n_perm: int = N_PERM, alternative: str = "two-sided",
                     seed: int | None = None) -> PermutationResult:
    """A permutation null for a correlation or a difference of means.

    ``kind="spearman"`` or ``"pearson"``: ``x`` and ``y`` are paired measurements of the same
    units; ``y`` is permuted, breaking the pairing. ``kind="difference"``: ``x`` and ``y`` are
    two groups; the group labels are permuted and the statistic is ``mean(x) - mean(y)``.
    ``alternative``: ``"greater"``, ``"less"`` or ``"two-sided"``.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rng = np.random.default_rng(default_seed() if seed is None else seed)
    if kind in ("spearman", "pearson"):
        if len(x) != len(y):
            raise ValueError(f"a correlation needs paired samples: {len(x)} vs {len(y)}")
        if kind == "spearman":
            x, y = _rank(x), _rank(y)
        value = _corr(x, y)
        null = np.array([_corr(x, rng.permutation(y)) for _ in range(n_perm)])
    elif kind == "difference":
        pooled, n_x = np.concatenate([x, y]), len(x)
        value = float(x.mean() - y.mean())
        null = np.empty(n_perm)
        for i in range(n_perm):
            shuffled = rng.permutation(pooled)
            null[i] = shuffled[:n_x].mean() - shuffled[n_x:].mean()
    else:
        raise ValueError(f"kind={kind!r}; expected 'spearman', 'pearson' or 'difference'")
    extreme = {"greater": null >= value, "less": null <= value,
               "two-sided": np.abs(null) >= abs(value)}.get(alternative)
    if extreme is None:
        raise ValueError(f"alternative={alternative!r}; expected 'greater', 'less' or 'two-sided'")
    return PermutationResult(value, null, float((extreme.sum() + 1) / (n_perm + 1)))


@dataclass(frozen=True)
class Split:
    """Index sets of a split by unit: rows whose unit went to train, validation or test."""
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_units(units: Sequence, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
                seed: int | None = None) -> Split:
    """Split rows into train / validation / test so that every unit lands in exactly one set.

    ``units``: one label per row (a document name, a subject, a prompt id). Each distinct
    unit is assigned whole, so no unit is seen in two sets. ``fractions`` are of the units
    (a fraction may be 0: e.g. ``(0, 0.5, 0.5)`` for a selection/evaluation split).
    """
    if not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise ValueError(f"fractions must be non-negative and sum to 1, got {fractions}")
    units = np.asarray(units)
    distinct = np.unique(units)
    order = np.random.default_rng(default_seed() if seed is None else seed).permutation(len(distinct))
    n_train = int(round(fractions[0] * len(distinct)))
    n_val = int(round(fractions[1] * len(distinct)))
    parts = np.split(distinct[order], [n_train, n_train + n_val])
    index = [np.flatnonzero(np.isin(units, part)) for part in parts]
    return Split(*index)


@dataclass(frozen=True)
class Choice:
    """A choice made on validation data: the option picked, its score, and the units that picked it."""
    option: object
    score: float
    chosen_on: frozenset


def choose(scores: dict, chosen_on, higher_is_better: bool = True) -> Choice:
    """Pick the option with the best validation score, and remember which units were used.

    ``scores``: ``{option: score on the validation units}``; ``chosen_on``: those units (indices,
    prompt ids, subjects). Pass the returned :class:`Choice` to
    :func:`utils.controls.require_disjoint` with the units you then report on.
    """
    if not scores:
        raise ValueError("nothing to choose from: scores is empty")
    pick = (max if higher_is_better else min)(scores, key=lambda k: scores[k])
    units = chosen_on.tolist() if hasattr(chosen_on, "tolist") else list(chosen_on)
    return Choice(pick, float(scores[pick]), frozenset(units))
