"""Checks for chapter 01 (steering): hand-computed values, numpy/torch peers, the HF model itself."""
from __future__ import annotations

import math

import numpy as np
import torch

from utils.checks import CheckFailed, call, expect_close, expect_tensor, passed


def check_kl_from_clean(kl_from_clean) -> None:
    clean = torch.zeros(3, 2)                                        # P = (0.5, 0.5) at every position
    steered = torch.log(torch.tensor([[0.9, 0.1]])).repeat(3, 1)     # Q = (0.9, 0.1)
    by_hand = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)  # KL(P||Q) = 0.511; KL(Q||P) would be 0.368
    out = expect_tensor(call(kl_from_clean, clean, steered), "kl_from_clean(...)", shape=(), dtype=torch.float32)
    known = {0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5):
             "that is KL(steered || clean), the reversed direction: weight by the clean model's probabilities.",
             3 * by_hand: "that is the KL summed over the 3 positions: average over positions instead.",
             -0.5 * math.log(0.9) - 0.5 * math.log(0.1):
             "that uses raw logits: normalise both with log_softmax before taking differences."}
    for value, why in known.items():
        if abs(out.item() - value) < 1e-3:
            raise CheckFailed(f"KL on a hand-computed case is {out.item():.3f}, expected {by_hand:.3f}: {why}")
    expect_close(out, by_hand, "KL on a hand-computed case", atol=1e-4,
                 hint="Use KL(clean || steered) = Σ P_clean (log P_clean − log P_steered), "
                      "averaged (not summed) over positions.")
    torch.manual_seed(0)
    a, b = torch.randn(5, 7), torch.randn(5, 7)
    peer = torch.nn.functional.kl_div(b.log_softmax(-1), a.log_softmax(-1), log_target=True, reduction="batchmean")
    expect_close(call(kl_from_clean, a, b), peer, "KL on random logits (vs torch.nn.functional.kl_div)", atol=1e-4)
    expect_close(call(kl_from_clean, a + 3.0, b - 2.0), peer, "KL after shifting the logits", atol=1e-4,
                 hint="Logits are defined up to a constant: normalise them with log_softmax first.")
    passed("kl_from_clean")


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


def check_readout_directions(readout_directions) -> None:
    torch.manual_seed(0)
    D = torch.nn.functional.normalize(torch.randn(8, 3) + torch.randn(8, 1), dim=0)    # overlapping columns
    R = expect_tensor(call(readout_directions, D), "readout_directions(D)", shape=(3, 8), dtype=torch.float32)
    expect_close(R @ D, torch.eye(3), "R @ D", atol=1e-4,
                 hint="Each r_i must read exactly feature i: r_i · D[:, j] = 1 if i == j else 0. "
                      "D.T only works for orthonormal D.")
    expect_close(R, np.linalg.pinv(D.numpy()), "R (vs numpy.linalg.pinv)", atol=1e-4,
                 hint="Among all readouts, take the one inside the span of D's columns: the pseudo-inverse.")
    passed("readout_directions")


def check_resid_at_last_token(resid_at_last_token, model) -> None:
    """Compare with the Hugging Face model's own hidden states, text by text, without padding."""
    texts = ["The cat sat on the mat", "Hello", "A much longer sentence, with a comma and more words in it"]
    for layer in (0, 4):
        out = expect_tensor(call(resid_at_last_token, model, texts, layer), f"resid_at_last_token(..., layer={layer})",
                            shape=(len(texts), model.cfg.d_model), dtype=torch.float32)
        hf = model.original_model
        with torch.no_grad():
            expected = torch.stack([hf(model.to_tokens(t), output_hidden_states=True).hidden_states[layer][0, -1]
                                    for t in texts])
        rows_ok = [torch.allclose(out[i], expected[i], atol=1e-3, rtol=1e-3) for i in range(len(texts))]
        longest = max(range(len(texts)), key=lambda i: len(texts[i]))
        if rows_ok[longest] and not all(rows_ok):
            raise CheckFailed("only the longest text's row is right: with right padding, each text's last real token "
                              "sits at its own length − 1, not at position −1.")
        expect_close(out, expected, f"activations at layer {layer} (vs the HF model's hidden_states)", atol=1e-3,
                     rtol=1e-3, hint="Read blocks.{layer}.hook_resid_pre (the stream entering the layer) at each "
                                     "text's last real token.")
    passed("resid_at_last_token", "matches the Hugging Face hidden states")
