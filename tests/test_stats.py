"""utils.stats against scipy and numpy on cases with known answers."""
import numpy as np
import pytest
import scipy.stats

from utils import stats


def test_bootstrap_ci_matches_scipy_percentile():
    x = np.random.default_rng(1).normal(2.0, 1.0, 80)
    ours = stats.bootstrap_ci(x, np.mean, n_boot=4000, seed=3)
    theirs = scipy.stats.bootstrap((x,), np.mean, n_resamples=4000, method="percentile",
                                   random_state=np.random.default_rng(3)).confidence_interval
    assert ours[0] < x.mean() < ours[1]
    assert abs(ours[0] - theirs.low) < 0.05 and abs(ours[1] - theirs.high) < 0.05
    # the normal-theory interval of a mean: ±1.96 s/√n
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    assert abs((ours[1] - ours[0]) / 2 - half) < 0.05


def test_bootstrap_ci_resamples_whole_groups():
    # two groups with very different means and many rows each: row resampling underestimates
    # the spread, group resampling sees that there are only 4 independent units.
    groups = np.repeat(np.arange(4), 50)
    x = np.repeat([0.0, 1.0, 0.0, 1.0], 50) + np.random.default_rng(0).normal(0, 0.01, 200)
    rows = stats.bootstrap_ci(x, seed=0)
    units = stats.bootstrap_ci(x, groups=groups, seed=0)
    assert (units[1] - units[0]) > 3 * (rows[1] - rows[0])


def test_bootstrap_ci_of_a_paired_statistic_and_undefined_resamples():
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(10), np.ones(10)]
    scores = labels + rng.normal(0, 0.8, 20)
    assert abs(stats.auc(scores, labels) - roc_auc_score(labels, scores)) < 1e-12
    tied, classes = np.r_[np.zeros(5), np.ones(5), np.zeros(5), np.ones(5)], np.r_[np.zeros(10), np.ones(10)]
    assert stats.auc(tied, classes) == roc_auc_score(classes, tied)
    low, high = stats.bootstrap_ci((scores, labels), stats.auc, seed=0)
    assert 0 <= low < roc_auc_score(labels, scores) < high <= 1
    assert np.isnan(stats.auc(scores[:10], labels[:10]))             # one class: undefined, not an error
    with pytest.raises(ValueError, match="at least 2"):
        stats.bootstrap_ci(np.array([1.0]))


def test_paired_bootstrap_cancels_what_units_share():
    rng = np.random.default_rng(0)
    unit_effect = rng.normal(0, 5, 60)                  # big differences between units ...
    a, b = unit_effect + 0.3 + rng.normal(0, 0.1, 60), unit_effect   # ... and a small paired shift
    value, (low, high) = stats.paired_bootstrap(a, b, seed=0)
    assert abs(value - 0.3) < 0.05 and 0.2 < low < 0.3 < high < 0.4
    unpaired = stats.bootstrap_ci(a, seed=0)
    assert (high - low) < 0.1 * (unpaired[1] - unpaired[0])


def test_permutation_test_matches_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    y = x + 0.7 * rng.normal(size=30)
    ours = stats.permutation_test(x, y, kind="pearson", n_perm=4000, alternative="greater", seed=1)
    theirs = scipy.stats.permutation_test((y,), lambda yy: np.corrcoef(x, yy)[0, 1], permutation_type="pairings",
                                          n_resamples=4000, alternative="greater", random_state=1)
    assert abs(ours.value - theirs.statistic) < 1e-9
    assert abs(ours.p_value - theirs.pvalue) < 0.01
    spearman = stats.permutation_test(x, y, kind="spearman", seed=1)
    assert abs(spearman.value - scipy.stats.spearmanr(x, y).statistic) < 1e-9
    assert spearman.percentile(95) < spearman.value


def test_permutation_test_difference_and_null():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1, 40), rng.normal(0.0, 1, 40)
    res = stats.permutation_test(a, b, kind="difference", alternative="greater", seed=0)
    expected = scipy.stats.permutation_test((a, b), lambda u, v: u.mean() - v.mean(), n_resamples=2000,
                                            alternative="greater", random_state=0).pvalue
    assert res.p_value < 0.01 and expected < 0.01
    same = stats.permutation_test(a, a + rng.normal(0, 1e-9, 40), kind="difference", seed=0)
    assert same.p_value > 0.5
    with pytest.raises(ValueError, match="kind"):
        stats.permutation_test(a, b, kind="kendall")


def test_split_units_keeps_units_whole_and_disjoint():
    units = np.repeat([f"doc{i}" for i in range(10)], 3)
    split = stats.split_units(units, (0.6, 0.2, 0.2), seed=0)
    seen = [set(units[idx]) for idx in (split.train, split.val, split.test)]
    assert [len(s) for s in seen] == [6, 2, 2]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert sorted(np.concatenate([split.train, split.val, split.test]).tolist()) == list(range(30))
    assert stats.split_units(units, seed=1).test.tolist() != split.test.tolist()
    with pytest.raises(ValueError, match="sum to 1"):
        stats.split_units(units, (0.5, 0.5, 0.5))


def test_choose_remembers_its_units():
    choice = stats.choose({4: 0.2, 10: 0.9, 16: 0.5}, chosen_on=np.array([1, 2, 3]))
    assert choice.option == 10 and choice.score == 0.9 and choice.chosen_on == {1, 2, 3}
    assert stats.choose({"a": 1.0, "b": 0.5}, [0], higher_is_better=False).option == "b"
