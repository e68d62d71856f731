"""Chapter 01's learner checks pass on the solution and fail on the stub and on plausible mistakes."""
import numpy as np
import pytest
import scipy.stats
import torch

from tests.notebook_functions import check_rejects as fails, solution_and_stub
from utils import stats
from utils.behaviours import BEHAVIOURS, split_templates
from utils.checks import steering as checks

SLUG = "01_steering"


def test_equal_norm_random():
    solution, stub = solution_and_stub(SLUG, "equal_norm_random")
    checks.check_equal_norm_random(solution)
    fails(checks.check_equal_norm_random, stub)

    def unit_norm(vector, n, generator):
        draws = torch.randn(n, vector.shape[-1], generator=generator)
        return draws / draws.norm(dim=-1, keepdim=True)

    def raw_randn(vector, n, generator):
        return torch.randn(n, vector.shape[-1], generator=generator)

    def one_draw_repeated(vector, n, generator):
        return solution(vector, 1, generator).repeat(n, 1)

    def uniform_rand(vector, n, generator):
        draws = torch.rand(n, vector.shape[-1], generator=generator)
        return draws / draws.norm(dim=-1, keepdim=True) * vector.norm()

    def uniform_cube(vector, n, generator):
        draws = torch.rand(n, vector.shape[-1], generator=generator) - 0.5
        return draws / draws.norm(dim=-1, keepdim=True) * vector.norm()

    def ignores_generator(vector, n, generator):
        draws = torch.randn(n, vector.shape[-1])
        return draws / draws.norm(dim=-1, keepdim=True) * vector.norm()

    def own_fixed_seed(vector, n, generator):
        return solution(vector, n, torch.Generator().manual_seed(0))

    def transposed(vector, n, generator):
        return solution(vector, n, generator).T

    def float64(vector, n, generator):
        return solution(vector, n, generator).double()

    for mistake, why in ((unit_norm, "norm 1, expected"), (raw_randn, "divide each draw by its own norm"),
                         (one_draw_repeated, "same direction"), (uniform_rand, "torch.rand"),
                         (uniform_cube, "cube"), (ignores_generator, "seeded the same"),
                         (own_fixed_seed, "different seeds"), (transposed, "shape"),
                         (float64, "dtype torch.float64")):
        fails(checks.check_equal_norm_random, mistake, match=why)


def test_choose_setting():
    solution, stub = solution_and_stub(SLUG, "choose_setting")
    checks.check_choose_setting(solution)
    fails(checks.check_choose_setting, stub)

    def ignores_budget(effect, cost, kl_budget, chosen_on):
        return stats.choose(effect, chosen_on=chosen_on)

    def cheapest(effect, cost, kl_budget, chosen_on):
        return stats.choose(cost, chosen_on=chosen_on, higher_is_better=False)

    def smallest_effect(effect, cost, kl_budget, chosen_on):
        affordable = {s: e for s, e in effect.items() if cost[s] <= kl_budget}
        return stats.choose(affordable, chosen_on=chosen_on, higher_is_better=False)

    def returns_option(effect, cost, kl_budget, chosen_on):
        return solution(effect, cost, kl_budget, chosen_on).option

    def returns_tuple(effect, cost, kl_budget, chosen_on):
        choice = solution(effect, cost, kl_budget, chosen_on)
        return choice.option, choice.score

    def no_units(effect, cost, kl_budget, chosen_on):
        return solution(effect, cost, kl_budget, chosen_on=[])

    def no_error(effect, cost, kl_budget, chosen_on):           # falls back to the cheapest setting
        try:
            return solution(effect, cost, kl_budget, chosen_on)
        except ValueError:
            return stats.choose(cost, chosen_on=chosen_on, higher_is_better=False)

    def strict_budget(effect, cost, kl_budget, chosen_on):
        return stats.choose({s: e for s, e in effect.items() if cost[s] < kl_budget}, chosen_on=chosen_on)

    for mistake, why in ((ignores_budget, "over the budget"), (cheapest, "cheapest"),
                         (smallest_effect, "smallest effect"), (returns_option, "returned a tuple.*stats.Choice"),
                         (returns_tuple, "returned a tuple.*stats.Choice"), (no_units, "chosen_on"),
                         (no_error, "raise ValueError"), (strict_budget, "costs exactly the budget")):
        fails(checks.check_choose_setting, mistake, match=why)


@pytest.mark.lm
def test_pair_differences(lm):
    solution, stub = solution_and_stub(SLUG, "pair_differences")
    checks.check_pair_differences(solution, lm)
    fails(checks.check_pair_differences, stub, lm)

    def last_token(model, texts, layers, padding_side="right", index=-1, mean=False):
        """resid_pre of each text, batched and padded, read at ``index`` (or averaged over real positions)."""
        names = [f"blocks.{layer}.hook_resid_pre" for layer in layers]
        _, cache = model.run_with_cache(model.to_tokens(texts, padding_side=padding_side), names_filter=names)
        if mean:
            return {layer: torch.stack([cache[name][i, : len(model.to_tokens(t)[0])].mean(0)
                                        for i, t in enumerate(texts)]).float()
                    for layer, name in zip(layers, names)}
        return {layer: cache[name][:, index].float() for layer, name in zip(layers, names)}

    def batched(read):
        def fn(model, pairs, layers):
            towards, away = read(model, [t for t, _ in pairs], layers), read(model, [a for _, a in pairs], layers)
            return {layer: towards[layer] - away[layer] for layer in layers}
        return fn

    def prompt_last_token(model, pairs, layers):               # the token before the completion
        return batched(lambda m, texts, ls: last_token(m, texts, ls, padding_side="left", index=-2))(
            model, pairs, layers)

    def resid_post(model, pairs, layers):
        out = solution(model, pairs, [layer + 1 for layer in layers])
        return {layer: out[layer + 1] for layer in layers}

    def reversed_sign(model, pairs, layers):
        return {layer: -d for layer, d in solution(model, pairs, layers).items()}

    def mean_of_pairs(model, pairs, layers):
        return {layer: d.mean(0) for layer, d in solution(model, pairs, layers).items()}

    def keys_by_position(model, pairs, layers):
        out = solution(model, pairs, layers)
        return {i: out[layer] for i, layer in enumerate(layers)}

    def returns_list(model, pairs, layers):
        return list(solution(model, pairs, layers).values())

    for mistake, why in ((batched(last_token), "padding"),
                         (batched(lambda m, texts, ls: last_token(m, texts, ls, mean=True)), "mean over positions"),
                         (prompt_last_token, "prompt's last token"), (resid_post, "resid_post"),
                         (reversed_sign, "sign is reversed"), (mean_of_pairs, "one row per pair"),
                         (keys_by_position, "keyed by the layers"), (returns_list, "keyed by the layers")):
        fails(checks.check_pair_differences, mistake, lm, match=why)


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


def test_anti_steerable_fraction():
    solution, stub = solution_and_stub(SLUG, "anti_steerable_fraction")
    checks.check_anti_steerable_fraction(solution)
    fails(checks.check_anti_steerable_fraction, stub)

    def bootstrap(slopes):
        negative = (slopes < 0).numpy()
        rng = np.random.default_rng(0)
        resampled = negative[rng.integers(0, len(negative), size=(2000, len(negative)))].mean(1)
        return float(negative.mean()), tuple(float(q) for q in np.percentile(resampled, [2.5, 97.5]))

    def counts_ties(slopes):
        return solution(slopes - 1e-9 * (slopes == 0))

    def steerable_fraction(slopes):
        f, (low, high) = solution(slopes)
        return 1 - f, (1 - high, 1 - low)

    def wald(slopes):
        f, n = float((slopes < 0).float().mean()), len(slopes)
        half = 1.96 * (f * (1 - f) / n) ** 0.5
        return f, (max(0.0, f - half), min(1.0, f + half))

    def wilson(slopes):
        k, n = int((slopes < 0).sum()), len(slopes)
        ci = scipy.stats.binomtest(k, n).proportion_ci(method="wilson")
        return k / n, (ci.low, ci.high)

    def percentages(slopes):
        f, (low, high) = solution(slopes)
        return 100 * f, (100 * low, 100 * high)

    def fraction_only(slopes):
        return solution(slopes)[0]

    for mistake, why in ((bootstrap, "bootstrap"), (counts_ties, "equal to 0"), (steerable_fraction, "1 − f"),
                         (wald, "Wald"), (wilson, "Wilson"), (percentages, "percentages"),
                         (fraction_only, r"\(fraction, \(low, high\)\)")):
        fails(checks.check_anti_steerable_fraction, mistake, match=why)


@pytest.mark.lm
def test_behaviours_are_single_token_disjoint_and_split_cleanly(lm):
    def token_ids(words):
        ids = {w: lm.tokenizer(w, add_special_tokens=False).input_ids for w in words}
        several = {w: i for w, i in ids.items() if len(i) != 1}
        assert not several, f"not single tokens: {several}"
        return {i[0] for i in ids.values()}

    for name, b in BEHAVIOURS.items():
        towards, away = b.construction_words()
        built_from, scored = token_ids(towards | away), token_ids(b.towards + b.away)
        assert not built_from & scored, f"{name}: construction and scored words share tokens"
        assert len(b.templates) >= 16, name
        split = split_templates(b, (0.5, 0.25, 0.25), seed=3)
        parts = [set(split.train.tolist()), set(split.val.tolist()), set(split.test.tolist())]
        assert all(parts), f"{name}: an empty split"
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2]), name
        assert set().union(*parts) == set(range(len(b.templates))), name
        again = split_templates(b, (0.5, 0.25, 0.25), seed=3)
        assert all(np.array_equal(x, y) for x, y in zip((split.train, split.val, split.test),
                                                        (again.train, again.val, again.test))), name
        other = split_templates(b, (0.5, 0.25, 0.25), seed=4)
        assert not np.array_equal(split.train, other.train), f"{name}: the split ignores the seed"
