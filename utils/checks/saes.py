"""Checks for chapter 03 (sparse autoencoders). Each compares with values worked out by hand or
computed here from first principles (explicit loops, closed forms, invariants), never with the
chapter's own code."""
from __future__ import annotations

import functools
import math

import torch

from utils.checks import CheckFailed, call, expect_close, expect_number, expect_tensor, passed



# ----------------------------------------------------------------------------- exercise 1
def check_topk_activation(topk_activation) -> None:
    pre = torch.tensor([[0.5, -1.0, 2.0, 0.1, 3.0],
                        [-2.0, -1.0, -3.0, -0.5, -4.0],
                        [1.0, 1.5, 0.2, 0.3, 0.9]])
    expected = torch.tensor([[0.0, 0.0, 2.0, 0.0, 3.0],
                             [0.0, 0.0, 0.0, 0.0, 0.0],
                             [1.0, 1.5, 0.0, 0.0, 0.0]])
    out = expect_tensor(call(topk_activation, pre.clone(), 2), "topk_activation(pre, k=2)", shape=pre.shape,
                        dtype=torch.float32)
    if not torch.equal(out, expected):
        hint = ""
        if (out < 0).any():
            hint = (" Negative values survived: a latent cannot fire negatively, so apply a ReLU to the kept values "
                    "(row 1 has no positive entry at all and must come out all zero).")
        elif out[1].ne(0).any() or out[0, 4] == 0:
            hint = " Choose the k largest *values*, not the largest magnitudes."
        elif (out != 0).sum(0).max() > 0 and (out != 0).sum(1).max() > 2:
            hint = " Keep k entries per row (per input, along the latent axis), not per column."
        shown = [[round(v, 2) for v in row] for row in out.tolist()]
        raise CheckFailed(f"topk_activation(pre, k=2) = {shown}, expected {expected.tolist()}.{hint}")
    # Random case: per row, exactly the k largest positive entries survive with their values.
    generator = torch.Generator().manual_seed(0)
    pre = torch.randn(7, 40, generator=generator)
    out = expect_tensor(call(topk_activation, pre.clone(), 5), "topk_activation(pre [7, 40], k=5)", shape=(7, 40),
                        dtype=torch.float32)
    for row in range(7):
        keep = pre[row].topk(5).indices
        want = torch.zeros(40)
        want[keep] = pre[row, keep].relu()
        if not torch.equal(out[row], want):
            raise CheckFailed(f"row {row} of topk_activation(pre [7, 40], k=5) is wrong: it should keep the 5 largest "
                              "entries of that row (along the last axis, the latents) and zero the rest.")
    passed("topk_activation", "k largest per input along the latent axis, ReLU-ed, zeros elsewhere")


# ----------------------------------------------------------------------------- exercise 2
def _metrics_case():
    """A TopK SAE (k=2) on 4-d inputs with a large common offset; most pre-activations are positive."""
    from utils.sae import SAE
    sae = SAE(4, 6, k=2, seed=0)
    with torch.no_grad():
        sae.W_enc.copy_(torch.tensor([[[1.0, 0.0, 0.0, 0.5, -0.2, 0.0],
                                       [0.0, 1.0, 0.0, 0.5, -0.2, 0.0],
                                       [0.0, 0.0, 1.0, 0.0, -0.2, 0.0],
                                       [0.0, 0.0, 0.0, 0.0, 0.0, -1.0]]]))
        sae.W_dec.copy_(torch.tensor([[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0],
                                       [0.6, 0.8, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5], [0.0, 0.0, 0.0, -1.0]]]))
        sae.b_enc.copy_(torch.tensor([[0.11, 0.12, 0.13, 0.14, 0.15, 0.16]]))
        sae.b_dec.copy_(torch.tensor([[0.0, 0.0, 0.0, 10.0]]))
    x = torch.tensor([[3.0, 0.2, 0.0, 10.0],
                      [0.0, 2.0, 1.0, 10.5],
                      [1.0, 1.0, 0.0, 9.0],
                      [0.0, 0.0, 4.0, 10.0],
                      [2.0, 0.0, 0.0, 11.0]])
    return sae, x


def _reference_metrics(sae, x) -> dict:
    """Written out by hand: explicit loops over inputs and latents."""
    with torch.no_grad():
        pre = (x - sae.b_dec[0]) @ sae.W_enc[0] + sae.b_enc[0]
        z = torch.zeros_like(pre)
        for i in range(len(x)):
            order = sorted(range(pre.shape[1]), key=lambda j: -float(pre[i, j]))[: int(sae.k[0])]
            for j in order:
                z[i, j] = max(float(pre[i, j]), 0.0)
        x_hat = z @ sae.W_dec[0] + sae.b_dec[0]
    l0 = sum(int((z[i] > 0).sum()) for i in range(len(x))) / len(x)
    mean = x.mean(0)
    fvu = float(((x - x_hat) ** 2).sum() / ((x - mean) ** 2).sum())
    dead = sum(1 for j in range(z.shape[1]) if (z[:, j] == 0).all()) / z.shape[1]
    return {"l0": l0, "fvu": fvu, "dead_fraction": dead, "pre": pre}


def check_sae_metrics(sae_metrics) -> None:
    sae, x = _metrics_case()
    ref = _reference_metrics(sae, x)
    out = call(sae_metrics, sae, x.clone())
    if not isinstance(out, dict) or not {"l0", "fvu", "dead_fraction"} <= set(out):
        raise CheckFailed("sae_metrics should return a dict with keys 'l0', 'fvu' and 'dead_fraction'.")
    got = {key: expect_number(out[key], f"sae_metrics(...)['{key}']") for key in ("l0", "fvu", "dead_fraction")}
    pre_l0 = float((ref["pre"] > 0).sum(1).float().mean())
    if abs(got["l0"] - ref["l0"]) > 1e-5:
        hint = ""
        if abs(got["l0"] - pre_l0) < 1e-5:
            hint = (" That is the number of positive *pre-activations*; L0 counts the latents that are active after "
                    "the TopK (sae.encode), at most k per input.")
        elif abs(got["l0"] - ref["l0"] / sae.d_sae) < 1e-5:
            hint = " L0 is a count of active latents per input, not a fraction."
        raise CheckFailed(f"l0 = {got['l0']:.4f}, expected {ref['l0']:.4f} (mean number of active latents per "
                          f"input).{hint}")
    if abs(got["fvu"] - ref["fvu"]) > 1e-4 * max(1.0, ref["fvu"]):
        with torch.no_grad():
            x_hat = sae.decode(sae.encode(x))
        err = float(((x - x_hat) ** 2).sum())
        hint = ""
        if abs(got["fvu"] - err / float((x ** 2).sum())) < 1e-5:
            hint = (" You divided by the raw second moment Σ‖x‖². The variance is measured around the mean: "
                    "Σ‖x − mean(x)‖², otherwise a constant offset (common in real activations) makes any SAE look "
                    "good.")
        elif abs(got["fvu"] - float((((x - x_hat) ** 2).mean(0) / x.var(0, unbiased=False)).mean())) < 1e-5:
            hint = (" You averaged per-dimension ratios. Use the total: Σ over inputs and dimensions of the squared "
                    "error, over Σ of the squared deviations from the mean.")
        raise CheckFailed(f"fvu = {got['fvu']:.5f}, expected {ref['fvu']:.5f}.{hint}")
    if abs(got["dead_fraction"] - ref["dead_fraction"]) > 1e-6:
        raise CheckFailed(f"dead_fraction = {got['dead_fraction']:.4f}, expected {ref['dead_fraction']:.4f}: the "
                          f"share of "
                          "latents that are zero on *every* input of x.")
    passed("sae_metrics", f"L0 {ref['l0']:.1f}, FVU {ref['fvu']:.3f}, dead {ref['dead_fraction']:.2f} on a "
                          f"hand-made SAE")


# ----------------------------------------------------------------------------- exercise 3
def check_feature_recovery(feature_recovery) -> None:
    true = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    # Learned directions, deliberately not unit length (a decoder whose rows were never re-normalised):
    # a scaled copy of feature 0, a direction between features 1 and 2, and the *negative* of feature 2.
    learned = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.3, 0.4], [0.0, 0.0, -2.0], [0.2, 0.05, 0.0]])
    true[1] *= 2.0                                     # true features need not be unit length either
    expected = torch.tensor([1.0, 0.6, 0.8])
    out = expect_tensor(call(feature_recovery, learned.clone(), true.clone()), "feature_recovery(learned [4, 3], "
                                                                               "true [3, 3])",
                        shape=(3,), dtype=torch.float32)
    if out.max() > 1.0 + 1e-5:
        raise CheckFailed(f"feature_recovery gave {out.tolist()}: a cosine similarity is at most 1. Normalise both the "
                          "learned directions and the true features to unit length before taking dot products.")
    if abs(float(out[2]) - 1.0) < 1e-4:
        raise CheckFailed("feature 2 scored 1.0, but the only direction near it points the *opposite* way. Take the "
                          "signed cosine (no abs): a ReLU latent fires with positive coefficients only.")
    expect_close(out, expected, "feature_recovery on a hand-made case", atol=1e-4,
                 hint="Return, for each TRUE feature, the largest cosine similarity with any learned direction.")
    # m == f: the maximum over the wrong axis gives a tensor of the right shape and the wrong values.
    learned = torch.tensor([[1.0, 0.0], [1.0, 0.1]])
    true = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    out = expect_tensor(call(feature_recovery, learned, true), "feature_recovery(learned [2, 2], true [2, 2])",
                        shape=(2,), dtype=torch.float32)
    expect_close(out, torch.tensor([1.0, 0.1 / math.sqrt(1.01)]), "feature_recovery(learned [2, 2], true [2, 2])",
                 atol=1e-4, hint="The maximum runs over the learned directions, one value per true feature "
                                 "(here feature 1 is barely found, although every learned direction has a close "
                                 "true feature).")
    passed("feature_recovery", "signed cosine of each true feature with its closest learned direction")


# ----------------------------------------------------------------------------- exercise 4
def check_mfr_penalty(mfr_penalty) -> None:
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(6, 8, generator=generator)
    same = torch.stack([base, base[torch.randperm(6, generator=generator)] * 3.0, base * 0.5])   # same directions
    out = expect_number(call(mfr_penalty, same), "mfr_penalty(three SAEs with the same directions)")
    if abs(out) > 1e-5:
        raise CheckFailed(f"three SAEs whose decoder rows are the same directions (permuted, rescaled) should have "
                          f"penalty 0, got {out:.4f}. Compare *directions* (cosine similarity) and match each "
                          f"latent to "
                          "its most similar latent in the other SAE, whatever their order.")
    eye = torch.eye(6)
    disjoint = torch.stack([eye[:2], eye[2:4], eye[4:6]])                                 # mutually orthogonal
    out = expect_number(call(mfr_penalty, disjoint), "mfr_penalty(three mutually orthogonal SAEs)")
    if abs(out - 1.0) > 1e-5:
        self_pairs = abs(out - 2 / 3) < 1e-4
        hint = " Leave out the pairs of an SAE with itself: its cosine with itself is 1." if self_pairs else ""
        raise CheckFailed(f"three SAEs with mutually orthogonal decoders should have penalty 1, got {out:.4f}.{hint}")
    # Two SAEs, hand-computed. SAE 0 = {e0, e1}; SAE 1 = {e0, e0}: every latent of SAE 1 finds e0 (cos 1),
    # while e1 in SAE 0 finds nothing (cos 0). Mean over the ordered pairs (0→1: 0.5, 1→0: 1.0) = 0.75.
    pair = torch.stack([torch.eye(2), torch.tensor([[1.0, 0.0], [2.0, 0.0]])])
    out = expect_number(call(mfr_penalty, pair), "mfr_penalty(hand-made pair)")
    if abs(out - 0.25) > 1e-5:
        raise CheckFailed(f"for SAE 0 = {{e0, e1}} and SAE 1 = {{e0, 2·e0}} the penalty is 1 − mean(0.5, 1.0) = 0.25, "
                          f"got {out:.4f}. For each latent of SAE a take its maximum cosine over the latents of SAE b, "
                          "average over latents, then average over all ordered pairs (a, b) with a ≠ b.")
    W = torch.randn(3, 5, 4, generator=generator, requires_grad=True)
    value = call(mfr_penalty, W)
    if not isinstance(value, torch.Tensor) or value.grad_fn is None:
        raise CheckFailed("mfr_penalty must return a tensor that carries gradients (it is added to the training loss): "
                          "avoid .item(), numpy and torch.no_grad().")
    value.backward()
    if W.grad is None or not torch.isfinite(W.grad).all() or W.grad.abs().sum() == 0:
        raise CheckFailed("the gradient of mfr_penalty with respect to the decoders is missing, zero or not finite.")
    passed("mfr_penalty", "0 for shared directions, 1 for orthogonal dictionaries, differentiable")


# ----------------------------------------------------------------------------- exercise 5
@functools.lru_cache(maxsize=1)
def _tiny_lm():
    """A 2-layer attention-only transformer trained for a few steps on "next token = this token + 1"
    (mod 20) after a fixed first token, so that deleting or damaging the residual visibly costs loss."""
    from utils.models import tiny_transformer
    torch.manual_seed(0)
    model = tiny_transformer(n_layers=2, d_model=32, n_heads=4, d_vocab=20, n_ctx=16, seed=0, device="cpu")
    generator = torch.Generator().manual_seed(1)

    def batch(n):
        start = torch.randint(1, 20, (n, 1), generator=generator)
        tokens = (start + torch.arange(12)) % 19 + 1                  # runs 1..19, wrapping around
        tokens[:, 0] = 0                                               # a fixed first token, like BOS
        return tokens

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        tokens = batch(16)
        loss = _next_token_loss(model(tokens), tokens, as_float=False)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval(), batch(3)


def _next_token_loss(logits, tokens, as_float: bool = True):
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
    return float(loss) if as_float else loss


def _reference_ce(model, tokens, hook_name, reconstruct) -> dict:
    def replace(fn):
        def hook(resid, hook):
            out = resid.clone()
            out[:, 1:] = fn(resid[:, 1:])
            return out
        return hook
    with torch.no_grad():
        clean = _next_token_loss(model(tokens), tokens)
        spliced = _next_token_loss(model.run_with_hooks(tokens, fwd_hooks=[(hook_name, replace(reconstruct))]),
                                   tokens)
        ablated = _next_token_loss(model.run_with_hooks(tokens, fwd_hooks=[(hook_name, replace(torch.zeros_like))]),
                                   tokens)
    recovered = (ablated - spliced) / (ablated - clean)
    return {"clean": clean, "spliced": spliced, "ablated": ablated, "recovered": recovered}


def check_ce_loss_recovered(ce_loss_recovered) -> None:
    model, tokens = _tiny_lm()            # trained once, then shared by every call (it is only read)
    name = "blocks.1.hook_resid_pre"
    generator = torch.Generator().manual_seed(2)
    noise = torch.randn(32, 32, generator=generator) * 0.3

    def keep(r):
        return r

    def damage(r):
        return 0.6 * r + r @ noise

    for label, fn in [("an identity reconstruction", keep), ("a damaged reconstruction", damage)]:
        ref = _reference_ce(model, tokens, name, fn)
        out = call(ce_loss_recovered, model, tokens.clone(), name, fn)
        if not isinstance(out, dict) or not {"clean", "spliced", "ablated", "recovered"} <= set(out):
            raise CheckFailed("ce_loss_recovered should return a dict with keys 'clean', 'spliced', 'ablated', "
                              "'recovered'.")
        got = {k: expect_number(out[k], f"['{k}']") for k in ("clean", "spliced", "ablated", "recovered")}
        if abs(got["clean"] - ref["clean"]) > 1e-4:
            raise CheckFailed(f"clean loss {got['clean']:.4f}, expected {ref['clean']:.4f}: the mean cross-entropy of "
                              "predicting tokens[:, 1:] from logits[:, :-1], with no hook.")
        if abs(got["ablated"] - ref["ablated"]) > 1e-4:
            raise CheckFailed(f"zero-ablated loss {got['ablated']:.4f}, expected {ref['ablated']:.4f}: set the "
                              f"residual "
                              "to zero at positions 1: only, and leave position 0 (the attention sink) as it is.")
        if abs(got["spliced"] - ref["spliced"]) > 1e-4:
            raise CheckFailed(f"with {label} the spliced loss is {got['spliced']:.4f}, expected {ref['spliced']:.4f}: "
                              "replace the residual at positions 1: by reconstruct(residual[:, 1:]) and leave "
                              "position 0.")
        if abs(got["recovered"] - ref["recovered"]) > 1e-4:
            hint = ""
            if abs(got["recovered"] - (1 - ref["recovered"])) < 1e-4:
                hint = " That is one minus the answer: the formula is inverted."
            raise CheckFailed(f"with {label}, recovered = {got['recovered']:.4f}, expected {ref['recovered']:.4f} = "
                              f"(ablated − spliced) / (ablated − clean): 1 when splicing costs nothing, 0 when it "
                              f"is as bad "
                              f"as deleting the residual.{hint}")
    passed("ce_loss_recovered", "clean, spliced and zero-ablated losses with position 0 untouched")


# ----------------------------------------------------------------------------- exercise 6
def _reference_gain(top_labels, top_types, counts) -> torch.Tensor:
    """Explicit double loop over pairs of top activations."""
    counts = counts.double()
    n = counts.sum(1)
    out = []
    for labels, types in zip(top_labels.tolist(), top_types.tolist()):
        N = len(labels)
        observed = expected = 0.0
        for i in range(N):
            for j in range(N):
                if i == j:
                    continue
                observed += labels[i] == labels[j]
                a, b = types[i], types[j]
                if a == b:
                    expected += float((counts[a] * (counts[a] - 1)).sum() / (n[a] * (n[a] - 1)))
                else:
                    expected += float((counts[a] / n[a] * counts[b] / n[b]).sum())
        out.append((observed - expected) / (N * (N - 1)))
    return torch.tensor(out, dtype=torch.float64)


def _gain_case():
    # 4 token types, 3 labels. counts[v, c]: how often type v carries label c in the whole evaluation set.
    counts = torch.tensor([[4.0, 0.0, 0.0],      # type 0 always has label 0
                           [2.0, 2.0, 0.0],      # type 1: half label 0, half label 1
                           [1.0, 1.0, 2.0],
                           [0.0, 3.0, 3.0]])
    top_types = torch.tensor([[0, 0, 0, 0],      # a pure token-identity latent: its labels are forced
                              [1, 1, 1, 1],      # all four occurrences of type 1 (2 of each label): nothing beyond type
                              [1, 2, 3, 3],      # mixed types...
                              [1, 1, 3, 3]])
    top_labels = torch.tensor([[0, 0, 0, 0],
                               [0, 0, 1, 1],
                               [1, 1, 1, 1],     # ...that all carry label 1: context beyond token identity
                               [1, 1, 1, 1]])
    return top_labels, top_types, counts


def check_purity_gain(purity_gain) -> None:
    top_labels, top_types, counts = _gain_case()
    expected = _reference_gain(top_labels, top_types, counts)
    out = expect_tensor(call(purity_gain, top_labels.clone(), top_types.clone(), counts.clone()),
                        "purity_gain(top_labels [4, 4], top_types [4, 4], counts [4, 3])", shape=(4,))
    if not out.is_floating_point():
        raise CheckFailed("purity_gain should return floating-point gains.")
    out = out.double()
    if abs(float(out[0])) > 1e-6:
        raise CheckFailed(f"a latent whose top activations are all one token type (whose label never varies) gained "
                          f"{float(out[0]):.3f}; it should gain 0. Compare with the labels each top activation's "
                          f"*own type* "
                          "would give, not with the label distribution of the whole data set.")
    if abs(float(out[1])) > 1e-6:
        q = counts / counts.sum(1, keepdim=True)
        with_replacement = float((q[1] ** 2).sum())
        hint = " Count pairs of *different* top activations (i ≠ j) only, for the observed and the expected agreement."
        if abs(float(out[1]) - (1 / 3 - with_replacement)) < 1e-6:
            hint = (" Two different occurrences of the same type are drawn *without* replacement: their chance of "
                    "sharing a label is Σ_c n_c (n_c − 1) / (n (n − 1)), not Σ_c q_c².")
        raise CheckFailed(f"the four occurrences of type 1 (two of each label) gained {float(out[1]):.3f}; it "
                          f"should gain 0: "
                          f"their labels are exactly what the type allows.{hint}")
    expect_close(out, expected, "purity_gain on a hand-made case", atol=1e-6,
                 hint="gain = (share of pairs i ≠ j with the same label) − (the same share expected when labels are "
                      "shuffled among the occurrences of each type).")
    passed("purity_gain", f"gains {[round(v, 3) for v in expected.tolist()]} on a hand-made case")


# ----------------------------------------------------------------------------- exercises 2, 3 and 6: your own SAE
def _toy_sae(seed: int = 0, d: int = 3, m: int = 5, k: int = 2):
    """A small SAE with non-zero biases, as a plain namespace of tensors (the learner's functions read attributes)."""
    from types import SimpleNamespace
    g = torch.Generator().manual_seed(seed)
    W_dec = torch.randn(m, d, generator=g)
    return SimpleNamespace(W_enc=torch.randn(d, m, generator=g), W_dec=W_dec / W_dec.norm(dim=-1, keepdim=True),
                           b_enc=-0.2 - 0.3 * torch.randn(m, generator=g).abs(),      # the row x = b_dec: all < 0
                           b_dec=torch.tensor([2.0, -1.0, 0.5])[:d], k=k)


def _encode_by_hand(sae, x, relu=True, centre=True):
    """TopK of (x - b_dec) W_enc + b_enc, row by row, with explicit loops."""
    out = torch.zeros(x.shape[0], sae.W_enc.shape[1])
    for i in range(x.shape[0]):
        xi = x[i] - sae.b_dec if centre else x[i]
        pre = [float(sum(xi[a] * sae.W_enc[a, j] for a in range(x.shape[1])) + sae.b_enc[j])
               for j in range(sae.W_enc.shape[1])]
        for j in sorted(range(len(pre)), key=lambda j: -pre[j])[: sae.k]:
            out[i, j] = max(pre[j], 0.0) if relu else pre[j]
    return out


def check_topk_sae(encode, decode, sae_loss) -> None:
    sae = _toy_sae()
    x = torch.tensor([[1.0, 0.5, -0.2], [-3.0, 1.0, 2.0], [2.0, -1.0, 0.5], [0.3, 0.3, 0.3]])   # row 2 is b_dec
    z = expect_tensor(call(encode, sae, x), "encode(sae, x)", shape=(4, 5))
    expected = _encode_by_hand(sae, x)
    if not torch.allclose(z, expected, atol=1e-5):
        if torch.allclose(z, _encode_by_hand(sae, x, centre=False), atol=1e-5):
            raise CheckFailed("encode does not subtract the decoder bias first: pre-activations are "
                              "(x - b_dec) @ W_enc + b_enc.")
        if torch.allclose(z, _encode_by_hand(sae, x, relu=False), atol=1e-5):
            raise CheckFailed("encode keeps negative values among the top k: put them through a ReLU "
                              "(your topk_activation does).")
        expect_close(z, expected, "encode(sae, x)", atol=1e-5,
                     hint="Keep the k largest of (x - b_dec) @ W_enc + b_enc per row, through a ReLU.")
    x_hat = expect_tensor(call(decode, sae, expected), "decode(sae, z)", shape=(4, 3))
    by_hand = torch.stack([sum(expected[i, j] * sae.W_dec[j] for j in range(5)) + sae.b_dec for i in range(4)])
    expect_close(x_hat, by_hand, "decode(sae, z)", atol=1e-5,
                 hint="decode(z) = z @ W_dec + b_dec (W_dec is [d_sae, d_in]: one row per latent).")
    out = call(sae_loss, sae, x)
    if not isinstance(out, tuple) or len(out) != 3:
        raise CheckFailed("sae_loss should return (loss, x_hat, z).")
    loss = expect_number(out[0], "the loss")
    per_input = [float(((by_hand_i - xi) ** 2).sum()) for by_hand_i, xi in
                 zip(torch.stack([sum(e[j] * sae.W_dec[j] for j in range(5)) + sae.b_dec for e in expected]), x)]
    target = sum(per_input) / len(per_input)
    if abs(loss - target / 3) < 1e-4:
        raise CheckFailed("the loss is averaged over dimensions too: sum the squared error over d, then average "
                          "over the batch.")
    if abs(loss - target) > 1e-4:
        raise CheckFailed(f"loss {loss:.5f}, expected {target:.5f}: the squared error summed over dimensions, "
                          "averaged over the batch.")
    passed("your TopK SAE", "encode, decode and loss agree with a hand computation, biases included")


def check_decoder_constraint(remove_parallel_grad_, normalise_decoder_) -> None:
    from types import SimpleNamespace
    g = torch.Generator().manual_seed(0)
    W = torch.randn(6, 4, generator=g)
    W = torch.nn.Parameter(W / W.norm(dim=-1, keepdim=True))
    W.grad = torch.randn(6, 4, generator=g)
    before = W.grad.clone()
    sae = SimpleNamespace(W_dec=W)
    call(remove_parallel_grad_, sae)
    after = W.grad
    if torch.allclose(after, before):
        raise CheckFailed("the gradient did not change: modify sae.W_dec.grad in place (-=), do not return a copy.")
    along = (after * W.detach()).sum(-1)
    if along.abs().max() > 1e-5:
        raise CheckFailed(f"each row's gradient still has a component along its row (up to {along.abs().max():.3f}): "
                          "a latent is a row W_dec[j] (length d_in); project along dim=-1.")
    change = before - after
    parallel = (change * W.detach()).sum(-1, keepdim=True) * W.detach()
    expect_close(change, parallel, "the removed part of the gradient", atol=1e-5,
                 hint="Remove only the component along each row: g -= (g · w) w; keep the rest of the gradient.")
    with torch.no_grad():
        W.mul_(torch.tensor([0.5, 2.0, 1.0, 3.0, 0.1, 1.5]).unsqueeze(1))
    directions = W.detach() / W.detach().norm(dim=-1, keepdim=True)
    call(normalise_decoder_, sae)
    norms = sae.W_dec.detach().norm(dim=-1)
    if not torch.allclose(norms, torch.ones(6), atol=1e-5):
        raise CheckFailed(f"after normalise_decoder_ the rows have lengths {[round(v, 2) for v in norms.tolist()]}: "
                          "divide each row (dim=-1) by its own norm, in place.")
    expect_close(sae.W_dec.detach(), directions, "the normalised rows", atol=1e-5,
                 hint="Normalising must keep each row's direction.")
    passed("decoder constraint", "gradient along each row removed, rows back to unit length, in place")


def _auxk_by_hand(sae, x, x_hat, dead, aux_k, relu=False, all_latents=False, with_bias=False):
    total = 0.0
    for i in range(x.shape[0]):
        pre = (x[i] - sae.b_dec) @ sae.W_enc + sae.b_enc
        pool = range(len(pre)) if all_latents else [j for j in range(len(pre)) if dead[j]]
        chosen = sorted(pool, key=lambda j: -float(pre[j]))[:aux_k]
        recon = sum((max(float(pre[j]), 0.0) if relu else float(pre[j])) * sae.W_dec[j] for j in chosen)
        if with_bias:
            recon = recon + sae.b_dec
        total += float(((recon - (x[i] - x_hat[i])) ** 2).sum())
    return total / x.shape[0]


def check_auxk_loss(auxk_loss) -> None:
    sae = _toy_sae(seed=1, m=6, k=1)
    x = torch.tensor([[1.0, 0.5, -0.2], [-3.0, 1.0, 2.0], [0.2, -2.0, 1.5]])
    x_hat = (0.5 * x + 0.1).requires_grad_(True)
    dead = torch.tensor([False, True, True, False, True, True])
    params = {name: torch.nn.Parameter(getattr(sae, name).clone()) for name in ("W_enc", "W_dec", "b_enc", "b_dec")}
    for name, p in params.items():
        setattr(sae, name, p)
    loss = call(auxk_loss, sae, x, x_hat, dead, 2)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise CheckFailed("auxk_loss should return a scalar tensor (a loss to add to the training loss).")
    value = loss.item()
    with torch.no_grad():
        expected = _auxk_by_hand(sae, x, x_hat, dead, 2)
        variants = {"relu": _auxk_by_hand(sae, x, x_hat, dead, 2, relu=True),
                    "all": _auxk_by_hand(sae, x, x_hat, dead, 2, all_latents=True),
                    "bias": _auxk_by_hand(sae, x, x_hat, dead, 2, with_bias=True)}
    if abs(value - expected) > 1e-4:
        if abs(value - variants["relu"]) < 1e-4:
            raise CheckFailed("negative pre-activations were zeroed: AuxK keeps them as they are (no ReLU), or dead "
                              "latents with negative pre-activations get no gradient.")
        if abs(value - variants["all"]) < 1e-4:
            raise CheckFailed("the auxiliary latents were chosen among all latents: choose only among the dead ones "
                              "(pre[:, dead]).")
        if abs(value - variants["bias"]) < 1e-4:
            raise CheckFailed("the auxiliary reconstruction adds b_dec: it reconstructs the residual x - x_hat, which "
                              "has no offset; use the decoder rows alone.")
        raise CheckFailed(f"auxk_loss = {value:.5f}, expected {expected:.5f}: the aux_k largest pre-activations of "
                          "dead latents, times their decoder rows, against the residual x - x_hat.")
    loss.backward()
    if x_hat.grad is not None and x_hat.grad.abs().max() > 0:
        raise CheckFailed("the gradient flows into x_hat: the residual is a target, use (x - x_hat).detach().")
    alive_grad = params["W_dec"].grad[~dead].abs().max() if params["W_dec"].grad is not None else 0.0
    if alive_grad > 0:
        raise CheckFailed("live latents' decoder rows get a gradient from AuxK: only dead latents take part.")
    few = call(auxk_loss, sae, x, x_hat.detach(), torch.tensor([False, False, True, False, False, False]), 4)
    with torch.no_grad():
        expected_few = _auxk_by_hand(sae, x, x_hat, torch.tensor([False, False, True, False, False, False]), 4)
    if abs(expect_number(few, "auxk_loss with one dead latent") - expected_few) > 1e-4:
        raise CheckFailed("with fewer dead latents than aux_k, use all the dead latents (topk of min(aux_k, n_dead)).")
    passed("auxk_loss", "dead latents only, no ReLU, residual as a fixed target, fewer dead than aux_k handled")
