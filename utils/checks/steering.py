"""Checks for chapter 01 (steering): hand-computed values, numpy/scipy peers, the HF model itself."""
from __future__ import annotations

import math

import numpy as np
import scipy.stats
import torch

from utils import stats
from utils.checks import CheckFailed, call, expect_close, expect_number, expect_tensor, passed



# ----------------------------------------------------------------------------- exercise 1
def check_equal_norm_random(equal_norm_random) -> None:
    d, n = 64, 500
    vector = torch.full((d,), 0.625)                                  # norm 5: neither 1 nor the norm of a randn draw
    name = f"equal_norm_random(vector [{d}], n={n}, generator)"
    out = expect_tensor(call(equal_norm_random, vector, n, torch.Generator().manual_seed(0)), name,
                        shape=(n, d), dtype=torch.float32)
    units = out / out.norm(dim=-1, keepdim=True)
    cos = units @ units.T - 2 * torch.eye(n)
    if cos.max() > 0.999:
        raise CheckFailed("some rows are the same direction (one draw repeated?): draw all n directions at once, "
                          "torch.randn(n, d_model, generator=generator), one independent row each.")
    norms = out.norm(dim=-1)
    if not torch.allclose(norms, vector.norm().expand(n), rtol=1e-4, atol=1e-4):
        if torch.allclose(norms, torch.ones(n), atol=1e-3):
            raise CheckFailed(f"every row has norm 1, expected {vector.norm():.2f} (the vector's norm): multiply "
                              "the unit directions by vector.norm().")
        raise CheckFailed(f"row norms range from {norms.min():.2f} to {norms.max():.2f}, expected all "
                          f"{vector.norm():.2f} (the vector's norm): divide each draw by its own norm, then "
                          "multiply by vector.norm().")
    if (out >= 0).all():
        raise CheckFailed("every coordinate is ≥ 0: all directions lie in one orthant, as torch.rand (uniform on "
                          "[0, 1)) gives. Use torch.randn: a normal draw, normalised, is uniform on the sphere.")
    towards_ones = (units @ torch.ones(d) / math.sqrt(d)).mean()
    if towards_ones.abs() > 0.2:
        raise CheckFailed(f"the directions lean towards the all-ones direction (mean cosine {towards_ones:+.2f}, "
                          "≈ 0 on the sphere): draw from torch.randn (mean 0), not torch.rand.")
    kurtosis = scipy.stats.kurtosis((units * math.sqrt(d)).flatten().numpy(), fisher=False)
    if kurtosis < 2.4:                                                # ≈ 3d/(d+2) = 2.9 on the sphere, 1.8 on a cube
        raise CheckFailed(f"the coordinates have kurtosis {kurtosis:.2f}, expected ≈ 2.9: uniform draws in a cube, "
                          "normalised, are not uniform on the sphere. Use torch.randn.")
    again = call(equal_norm_random, vector, n, torch.Generator().manual_seed(0))
    if not torch.equal(torch.as_tensor(again), out):
        raise CheckFailed("two calls with generators seeded the same gave different draws: pass "
                          "generator=generator to torch.randn (the global random state is not reproducible).")
    other = call(equal_norm_random, vector, n, torch.Generator().manual_seed(1))
    if torch.equal(torch.as_tensor(other), out):
        raise CheckFailed("generators with different seeds gave the same draws: draw from the generator "
                          "passed in, not from one you seed yourself.")
    passed("equal_norm_random", f"{n} distinct directions, each of the vector's norm, reproducible from the generator")


# ----------------------------------------------------------------------------- exercise 2
def check_choose_setting(choose_setting) -> None:
    # setting: (effect, cost). Budget 1.0: B costs exactly the budget and has the largest affordable effect.
    table = {(2, 0.25): (0.8, 0.5),       # the best if cost must be *below* the budget
             (2, 0.5): (1.2, 1.0),        # B: the answer
             (4, 0.25): (0.3, 0.4),       # the smallest effect
             (4, 0.5): (2.0, 3.0),        # the largest effect, over the budget
             (6, 0.125): (0.4, 0.05)}     # the cheapest
    effect = {s: e for s, (e, _) in table.items()}
    cost = {s: c for s, (_, c) in table.items()}
    units = np.array([3, 5, 8])
    out = call(choose_setting, effect, cost, 1.0, chosen_on=units)
    if not isinstance(out, stats.Choice):
        raise CheckFailed(f"choose_setting returned a {type(out).__name__}, expected a stats.Choice: return "
                          "stats.choose(affordable, chosen_on=chosen_on), which remembers the units.")
    wrong = {(4, 0.5): "it costs 3.0, over the budget of 1.0: keep only settings with cost <= kl_budget.",
             (6, 0.125): "that is the cheapest setting: among those within the budget, take the largest effect.",
             (4, 0.25): "that has the smallest effect: take the largest (stats.choose maximises by default).",
             (2, 0.25): "(2, 0.5) costs exactly the budget, 1.0, and has a larger effect: the budget allows "
                        "cost <= kl_budget, not <."}
    if out.option != (2, 0.5):
        why = wrong.get(out.option, "take the largest effect among the settings with cost <= kl_budget.")
        raise CheckFailed(f"chose {out.option!r}, expected (2, 0.5): {why}")
    if not math.isclose(out.score, 1.2, abs_tol=1e-9):
        raise CheckFailed(f"the Choice's score is {out.score}, expected 1.2, the chosen setting's effect: "
                          "pass the effects (not the costs) to stats.choose.")
    if out.chosen_on != frozenset({3, 5, 8}):
        raise CheckFailed(f"chosen_on is {set(out.chosen_on) or '{}'}, expected the units passed in, {{3, 5, 8}}: "
                          "pass chosen_on=chosen_on to stats.choose.")
    units = [("size", 1), ("size", 4)]
    out = call(choose_setting, {"a": -1.0, "b": -0.5}, {"a": 0.0, "b": 0.2}, 0.5, chosen_on=units)
    if not isinstance(out, stats.Choice) or out.option != "b" or out.chosen_on != frozenset(units):
        raise CheckFailed(f"on effects {{'a': -1.0, 'b': -0.5}}, both within the budget, got {out!r}: expected "
                          f"Choice('b', -0.5, {set(units)}) (negative effects and tuple units too).")
    try:
        result = choose_setting(effect, cost, 0.01, chosen_on=units)
    except ValueError:
        pass
    except Exception as err:
        raise CheckFailed(f"with no setting within the budget choose_setting raised {type(err).__name__}: {err}; "
                          "raise ValueError instead.") from err
    else:
        shown = result.option if isinstance(result, stats.Choice) else result
        raise CheckFailed(f"no setting costs at most 0.01, yet choose_setting returned {shown!r}: raise ValueError "
                          "instead of choosing a setting over the budget.")
    passed("choose_setting", "the largest effect within the budget (cost == budget allowed), as a stats.Choice")


# ----------------------------------------------------------------------------- exercise 3
# Token lengths 8, 6 and 4 (no BOS): right padding puts padding under the shorter texts' last positions.
_PAIRS = [("Honestly, the concert was wonderful", "Honestly, the concert was terrible"),
          ("My brother spends every weekend running", "My brother spends every weekend baking"),
          ("The food was good", "The food was bad")]


def _hidden_states(model, text: str) -> tuple[torch.Tensor, ...]:
    """The Hugging Face model's own hidden states for one text, no padding: ``hidden_states[l]`` = resid_pre l."""
    with torch.no_grad():
        out = model.original_model(model.to_tokens(text), output_hidden_states=True)
    return tuple(h[0].float().cpu() for h in out.hidden_states)


def _close(x: torch.Tensor, y: torch.Tensor) -> bool:
    return torch.allclose(x, y, atol=1e-3, rtol=1e-3)


def check_pair_differences(pair_differences, model) -> None:
    """Compare with the Hugging Face model's own hidden states, text by text, without padding."""
    layers, d_model = [0, max(1, model.cfg.n_layers // 6)], model.cfg.d_model   # SmolLM2: 0 and 5
    out = call(pair_differences, model, _PAIRS, layers)
    if not isinstance(out, dict) or set(out) != set(layers):
        got = f"keys {sorted(out, key=str)}" if isinstance(out, dict) else f"a {type(out).__name__}"
        raise CheckFailed(f"pair_differences(..., layers={layers}) gave {got}, expected a dict keyed by the "
                          f"layers themselves, {layers}: {{layer: differences}}.")
    hidden = {text: _hidden_states(model, text) for pair in _PAIRS for text in pair}

    def differences(read) -> torch.Tensor:      # read(hidden_states of one text) -> [d_model]
        return torch.stack([read(hidden[t]) - read(hidden[a]) for t, a in _PAIRS])

    for layer in layers:
        got = out[layer]
        if isinstance(got, torch.Tensor) and tuple(got.shape) == (d_model,):
            raise CheckFailed(f"layer {layer} gave one vector of shape ({d_model},): return one row per pair, "
                              "[n_pairs, d_model]; the notebook takes the mean itself.")
        got = expect_tensor(got, f"pair_differences(...)[{layer}]", shape=(len(_PAIRS), d_model),
                            dtype=torch.float32).detach().cpu()
        expected = differences(lambda h: h[layer][-1])
        if got.norm(dim=-1).max() < 0.01 * expected.norm(dim=-1).min():
            raise CheckFailed("the differences are zero: you read a position the two texts share (the prompt's "
                              "last token). Read each text's last real token, the completion.")
        if _close(got, -expected):
            raise CheckFailed("the sign is reversed: return towards − away (the first text of each pair minus the "
                              "second), so the vector points towards the behaviour.")
        if _close(got, differences(lambda h: h[layer + 1][-1])):
            raise CheckFailed(f"that is resid_post, the stream leaving layer {layer} (hidden_states[{layer + 1}]): "
                              f"read resid_pre, the stream entering it (blocks.{layer}.hook_resid_pre).")
        if _close(got, differences(lambda h: h[layer].mean(0))) or \
                _close(got, differences(lambda h: h[layer][1:].mean(0))):
            raise CheckFailed("that is the mean over positions: read only each text's last real token (the "
                              "completion).")
        rows_ok = [_close(got[i], expected[i]) for i in range(len(_PAIRS))]
        if rows_ok[0] and not all(rows_ok):
            raise CheckFailed("only the longest pair's row is right: with right padding, a shorter text's last real "
                              "token sits at its own length − 1, not at position −1 (that is padding).")
        expect_close(got, expected, f"differences at layer {layer} (vs the HF model's hidden_states)", atol=1e-3,
                     rtol=1e-3, hint=f"Read blocks.{layer}.hook_resid_pre at each text's last real token, "
                                     "towards − away.")
    passed("pair_differences", "matches the Hugging Face hidden states at layers 0 and 4")


# ----------------------------------------------------------------------------- exercise 4
def check_steerability_slopes(steerability_slopes) -> None:
    multipliers = torch.tensor([0.0, 1.0, 2.0, 4.0])                 # not centred: an intercept matters
    scores = torch.tensor([[3.0, 1.0], [4.0, 1.0], [5.0, 1.0], [7.0, 1.0]])   # slopes 1 and 0, by construction
    out = expect_tensor(call(steerability_slopes, multipliers, scores), "steerability_slopes(...)", shape=(2,),
                        dtype=torch.float32)
    through_origin = (multipliers[:, None] * scores).sum(0) / (multipliers ** 2).sum()
    if torch.allclose(out, through_origin, atol=1e-4):
        raise CheckFailed("the slopes are those of a line through the origin: fit an intercept too "
                          "(centre the multipliers and each example's scores).")
    mc = multipliers - multipliers.mean()
    across = (mc[:, None] * (scores - scores.mean(1, keepdim=True))).sum(0) / (mc ** 2).sum()
    if torch.allclose(out, across, atol=1e-4):
        raise CheckFailed("the scores were centred across examples (axis 1): centre each example over its "
                          "multipliers (axis 0).")
    expect_close(out, [1.0, 0.0], "slopes on a hand-made case", atol=1e-5,
                 hint="Fit score = a + b·multiplier per example (axis 1 indexes examples); return b.")
    rng = np.random.default_rng(0)
    m, s = rng.normal(size=6) + 1.0, rng.normal(size=(6, 9))
    peer = np.polyfit(m, s, 1)[0]
    out = call(steerability_slopes, torch.tensor(m, dtype=torch.float32), torch.tensor(s, dtype=torch.float32))
    expect_close(out, peer, "slopes vs numpy.polyfit", atol=1e-4,
                 hint="Least squares over every multiplier, not only the end points: cov(m, s) / var(m).")
    passed("steerability_slopes")


# ----------------------------------------------------------------------------- exercise 5
def _fraction_and_interval(out, name: str) -> tuple[float, float, float]:
    try:
        fraction, (low, high) = out
    except (TypeError, ValueError):
        raise CheckFailed(f"{name} returned {out!r}: return (fraction, (low, high)).") from None
    return tuple(expect_number(value, f"{name}'s {part}")
                 for value, part in ((fraction, "fraction"), (low, "low"), (high, "high")))


def check_anti_steerable_fraction(anti_steerable_fraction) -> None:
    # 6 negative, 4 exactly zero (not anti-steerable), 20 positive: 6 / 30 = 0.2.
    slopes = torch.tensor([-0.7, -0.3, -0.2, -0.1, -0.05, -0.01] + [0.0] * 4 + [0.1 * i for i in range(1, 21)])
    slopes = slopes[torch.randperm(30, generator=torch.Generator().manual_seed(0))]
    k, n = 6, 30
    f, low, high = _fraction_and_interval(call(anti_steerable_fraction, slopes), "anti_steerable_fraction(slopes)")
    if f > 1 or high > 1:
        raise CheckFailed(f"got {f:g} with interval ({low:g}, {high:g}): those look like percentages. Return "
                          "fractions between 0 and 1 (format them with :.0% when printing).")
    if math.isclose(f, 10 / n, abs_tol=1e-6):
        raise CheckFailed("the fraction counts the slopes equal to 0: a flat prompt is not anti-steerable. Count "
                          "slope < 0 only.")
    if math.isclose(f, 1 - k / n, abs_tol=1e-6) or math.isclose(f, 20 / n, abs_tol=1e-6):
        raise CheckFailed(f"the fraction is {f:.3f}: that is the steerable share, 1 − f. Return the share of "
                          "slopes < 0.")
    expect_close(f, k / n, "the anti-steerable fraction (6 of 30 slopes < 0)", atol=1e-6,
                 hint="Count slopes < 0 and divide by the number of slopes.")
    exact = (scipy.stats.beta.ppf(0.025, k, n - k + 1), scipy.stats.beta.ppf(0.975, k + 1, n - k))  # Clopper-Pearson
    half = scipy.stats.norm.ppf(0.975) * math.sqrt(f * (1 - f) / n)
    if np.allclose([low, high], [f - half, f + half], atol=1e-3):
        raise CheckFailed("that is the normal (Wald) interval f ± 1.96·se, which fails for small counts: use the "
                          "exact one, scipy.stats.binomtest(k, n).proportion_ci(method='exact').")
    wilson = scipy.stats.binomtest(k, n).proportion_ci(method="wilson")
    if np.allclose([low, high], [wilson.low, wilson.high], atol=1e-4):
        raise CheckFailed("that is the Wilson interval: use the exact (Clopper–Pearson) one, method='exact'.")
    positive = torch.linspace(0.1, 2.4, 24)                           # no anti-steerable prompt among 24
    f0, low0, high0 = _fraction_and_interval(call(anti_steerable_fraction, positive),
                                             "anti_steerable_fraction(24 positive slopes)")
    if f0 == 0 and high0 < 1e-6:
        raise CheckFailed("with 0 of 24 slopes negative the interval is [0, 0] (a bootstrap's answer: no resample "
                          "can contain a negative slope). The exact interval's upper end is 1 − 0.025^(1/24) ≈ 0.142.")
    expect_close([f0, low0, high0], [0.0, 0.0, 1 - 0.025 ** (1 / 24)], "(fraction, low, high) for 0 of 24",
                 atol=1e-4, hint="Use scipy.stats.binomtest(k, n).proportion_ci(confidence_level=0.95, "
                                 "method='exact').")
    expect_close([low, high], exact, "the interval for 6 of 30 (vs the beta quantiles of Clopper–Pearson)",
                 atol=1e-4, hint="Use scipy.stats.binomtest(k, n).proportion_ci(confidence_level=0.95, "
                                 "method='exact').")
    passed("anti_steerable_fraction", "slope < 0 counted, exact 95% interval (≈ 0.142 at most for 0 of 24)")
