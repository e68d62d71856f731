"""Chapter 01's learner checks pass on the solution and fail on the stub and on plausible mistakes."""
import pytest
import torch

from tests.notebook_functions import check_rejects as fails, solution_and_stub
from utils.checks import steering as checks
from utils.contrast_pairs import DATASETS, split

SLUG = "01_steering"


def test_kl_from_clean():
    solution, stub = solution_and_stub(SLUG, "kl_from_clean")
    checks.check_kl_from_clean(solution)
    fails(checks.check_kl_from_clean, stub)

    def reversed_direction(clean, steered):
        return solution(steered, clean)

    def summed_over_positions(clean, steered):
        return solution(clean, steered) * clean.shape[0]

    def raw_logits(clean, steered):
        p = clean.softmax(-1)
        return (p * (clean - steered)).sum(-1).mean()

    def float64(clean, steered):                # a learner's code that promotes to float64 and never comes back
        return solution(clean.double(), steered.double())

    for mistake, why in ((reversed_direction, "reversed direction"), (summed_over_positions, "summed over"),
                         (raw_logits, "raw logits"), (float64, "dtype torch.float64")):
        fails(checks.check_kl_from_clean, mistake, match=why)


def test_steerability_slopes():
    solution, stub = solution_and_stub(SLUG, "steerability_slopes")
    checks.check_steerability_slopes(solution)
    fails(checks.check_steerability_slopes, stub)

    def through_origin(m, s):
        return (m[:, None] * s).sum(0) / (m ** 2).sum()

    def centred_across_examples(m, s):
        mc = m - m.mean()
        return (mc[:, None] * (s - s.mean(1, keepdim=True))).sum(0) / (mc ** 2).sum()

    def endpoints_only(m, s):
        return (s[-1] - s[0]) / (m[-1] - m[0])

    for mistake, why in ((through_origin, "through the origin"), (centred_across_examples, "across examples"),
                         (endpoints_only, "end points")):
        fails(checks.check_steerability_slopes, mistake, match=why)


def test_readout_directions():
    solution, stub = solution_and_stub(SLUG, "readout_directions")
    checks.check_readout_directions(solution)
    fails(checks.check_readout_directions, stub)
    fails(checks.check_readout_directions, lambda D: D.T.contiguous(), match="orthonormal")
    fails(checks.check_readout_directions, lambda D: torch.linalg.pinv(D).T, match="shape")      # transposed
    fails(checks.check_readout_directions, lambda D: torch.linalg.pinv(D.double()), match="float64")


@pytest.mark.lm
def test_resid_at_last_token(lm):
    solution, stub = solution_and_stub(SLUG, "resid_at_last_token")
    checks.check_resid_at_last_token(solution, lm)
    fails(checks.check_resid_at_last_token, stub, lm)

    def index_minus_one(model, texts, layer):   # ignores right padding
        name = f"blocks.{layer}.hook_resid_pre"
        _, cache = model.run_with_cache(model.to_tokens(texts, padding_side="right"), names_filter=name)
        return cache[name][:, -1]

    def resid_post(model, texts, layer):        # the stream leaving the layer, not entering it
        return solution(model, texts, layer + 1)

    def mean_over_positions(model, texts, layer):
        name = f"blocks.{layer}.hook_resid_pre"
        return torch.stack([model.run_with_cache(model.to_tokens(t), names_filter=name)[1][name][0, 1:].mean(0)
                            for t in texts])

    for mistake, why in ((index_minus_one, "some rows|padding"), (resid_post, "resid_pre|entering"),
                         (mean_over_positions, "last real token|entering")):
        fails(checks.check_resid_at_last_token, mistake, lm, match=why)


@pytest.mark.lm
def test_contrast_datasets_are_single_token_and_split_cleanly(lm):
    for name, items in DATASETS.items():
        assert len(items) >= 24, name
        for item in items:
            lm.to_single_token(item.positive), lm.to_single_token(item.negative)
        train, test = split(items, 12, seed=3)
        assert not set(train) & set(test) and len(train) + len(test) == len(items)
        assert split(items, 12, seed=3) == (train, test)
