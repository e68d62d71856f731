"""Checks for chapter 00 (orientation). Each compares with hand-built cases or with the model itself."""
from __future__ import annotations

import torch

from utils.checks import CheckFailed, call, expect_close, expect_tensor, passed


def _toy_cache(n_layers=3, batch=2, positions=4, d_model=5):
    """A fake cache whose norms are known by construction: row l, position p has norm (l+1)*(p+1)."""
    cache = {}
    scale = torch.arange(1, positions + 1, dtype=torch.float32)[:, None]
    unit = torch.zeros(positions, d_model)
    unit[:, 0] = 0.6
    unit[:, 1] = 0.8                                  # a unit vector, spread over two coordinates
    for layer in range(n_layers):
        first = (layer + 1) * scale * unit
        cache[f"blocks.{layer}.hook_resid_pre"] = torch.stack([first, -7 * first])   # batch 1 is a decoy
        cache[f"blocks.{layer}.hook_resid_post"] = torch.stack([(layer + 2) * scale * unit, first])
    expected = torch.tensor([[(row + 1) * (p + 1) for p in range(positions)] for row in range(n_layers + 1)],
                            dtype=torch.float32)
    return cache, expected


def check_residual_norms(residual_norms) -> None:
    cache, expected = _toy_cache()
    out = expect_tensor(call(residual_norms, cache, 3), "residual_norms(cache, 3)", shape=expected.shape,
                        dtype=torch.float32)
    expect_close(out, expected, "residual_norms", hint="Row l is the L2 norm (not squared) of resid_pre of layer l "
                 "for batch element 0; the last row is resid_post of the last layer.")
    passed("residual_norms", "rows = layers (+ output), columns = positions")


def check_zero_head_hook(zero_head_hook) -> None:
    torch.manual_seed(0)
    z = torch.randn(2, 5, 4, 3)                       # [batch, position, head, d_head]
    hook_fn = call(zero_head_hook, 2)
    if not callable(hook_fn):
        raise CheckFailed("zero_head_hook(head) should return a function hook_fn(z, hook).")
    out = call(hook_fn, z.clone(), None)
    if out is None:
        raise CheckFailed("the hook should return the edited activation.")
    out = expect_tensor(out, "hook output", shape=z.shape, dtype=z.dtype)
    if out[:, :, 2].abs().sum() != 0:
        raise CheckFailed("head 2 is not zeroed everywhere: the head axis of hook_z is axis 2 "
                          "(batch, position, head, d_head).")
    keep = [0, 1, 3]
    if not torch.equal(out[:, :, keep], z[:, :, keep]):
        raise CheckFailed("other heads changed: only head 2's slice should be zeroed.")
    from utils.activations import head_ablation_hooks
    expect_close(out, head_ablation_hooks([(0, 2)], how="zero")[0][1](z.clone(), None), "hook output vs the course's "
                 "head_ablation_hooks", atol=0, hint="Zero head 2 at every batch row and position, nothing else.")
    passed("zero_head_hook", "matches utils.activations.head_ablation_hooks")


def check_add_vector_hook(add_vector_hook) -> None:
    torch.manual_seed(1)
    resid, vector = torch.randn(2, 5, 6), torch.randn(6)
    out = call(call(add_vector_hook, vector, 2.5), resid.clone(), None)
    if out is None:
        raise CheckFailed("the hook should return the edited residual stream.")
    out = expect_tensor(out, "hook output", shape=resid.shape, dtype=resid.dtype)
    added = out - resid
    if (torch.allclose(added[:, :-1], torch.zeros_like(added[:, :-1]))
            and not torch.allclose(added, torch.zeros_like(added))):
        raise CheckFailed("the vector was added only at the last position: add it at every position.")
    expect_close(added, (2.5 * vector).expand_as(resid), "the added amount", atol=1e-5,
                 hint="Add coeff * vector at every batch row and position.")
    from utils.activations import steering_hook
    expect_close(out, steering_hook(vector, 2.5)(resid.clone(), None), "hook output vs the course's steering_hook",
                 atol=1e-5)
    # a float64 vector (as a learner may build one) must not turn a float32 residual stream into float64
    out = call(call(add_vector_hook, vector.double(), 2.5), resid.clone(), None)
    expect_tensor(out, "hook output for a float64 vector", shape=resid.shape, dtype=resid.dtype)
    passed("add_vector_hook", "matches utils.activations.steering_hook, keeps the stream's dtype")


def check_logit_lens(logit_lens, model) -> None:
    """Independent fact: the lens applied to the final residual stream must give the model's own logits."""
    tokens = model.to_tokens("Water freezes at zero degrees")
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens)
        for position in (-1, 2):
            out = expect_tensor(call(logit_lens, cache, model, position), f"logit_lens(..., position={position})",
                                shape=(model.cfg.n_layers + 1, model.cfg.d_vocab))
            expect_close(out[-1], logits[0, position], f"the last row at position {position}", atol=1e-3, rtol=1e-4,
                         hint="The final row must equal the model's logits: apply model.ln_final before model.unembed, "
                              "and read the requested position.")
            first = model.unembed(model.ln_final(cache["blocks.0.hook_resid_pre"][0, position]))
            expect_close(out[0], first, "the first row", atol=1e-3, rtol=1e-4,
                         hint="Row 0 reads blocks.0.hook_resid_pre (the embeddings).")
    passed("logit_lens", "its last row reproduces the model's logits")


def check_replace_head_hook(replace_head_hook) -> None:
    """Against the course's mean and resample ablations (utils.activations.head_ablation_hooks)."""
    from utils.activations import head_ablation_hooks
    torch.manual_seed(2)
    z = torch.randn(3, 5, 4, 6)                       # [batch, position, head, d_head]
    other = torch.randn(3, 5, 4, 6)                   # the same hook on three other inputs
    means = other.mean(0)                             # [position, head, d_head]
    for what, replacement, reference in [
            ("a resampled output [batch, position, d_head]", other[:, :, 1],
             head_ablation_hooks([(0, 1)], how="resample", resample_from={0: other})[0][1]),
            ("a mean output [1, position, d_head]", means[None, :, 1],
             head_ablation_hooks([(0, 1)], how="mean", means={0: means})[0][1])]:
        hook_fn = call(replace_head_hook, 1, replacement)
        if not callable(hook_fn):
            raise CheckFailed("replace_head_hook(head, replacement) should return a function hook_fn(z, hook).")
        original = z.clone()
        out = call(hook_fn, z.clone(), None)
        if out is None:
            raise CheckFailed("the hook should return the edited activation.")
        out = expect_tensor(out, "hook output", shape=z.shape, dtype=z.dtype)
        if torch.allclose(out[:, :, 1], original[:, :, 1] + replacement.expand_as(original[:, :, 1])):
            raise CheckFailed("the replacement was added to head 1's output: replace the slice, do not add to it.")
        keep = [0, 2, 3]
        if not torch.equal(out[:, :, keep], original[:, :, keep]):
            raise CheckFailed("other heads changed: only head 1's slice [:, :, 1] should be replaced.")
        expect_close(out, reference(original.clone(), None), f"hook output for {what}", atol=1e-6,
                     hint="Row b of head 1 becomes replacement[b] (or replacement[0] when it has one row), at every "
                          "position.")
    out = call(call(replace_head_hook, 1, means[None, :, 1].double()), z.clone(), None)
    expect_tensor(out, "hook output for a float64 replacement", shape=z.shape, dtype=z.dtype)
    passed("replace_head_hook", "matches the course's mean and resample ablations")


def check_fit_translator(fit_translator) -> None:
    """Against an independent solve: least squares on the data stacked with ``sqrt(ridge) · I`` rows."""
    generator = torch.Generator().manual_seed(3)
    n, d = 200, 6
    h = torch.randn(n, d, generator=generator) * torch.linspace(0.5, 3.0, d) + 4.0     # an offset: a bias is needed
    true_w = torch.randn(d, d, generator=generator)                                   # not symmetric: W vs Wᵀ shows
    target = h @ true_w - 2.0 + 0.1 * torch.randn(n, d, generator=generator)
    for ridge in (0.0, 50.0):
        out = call(fit_translator, h, target, ridge)
        if not isinstance(out, tuple) or len(out) != 2:
            raise CheckFailed("fit_translator should return a tuple (W, b).")
        w = expect_tensor(out[0], "W", shape=(d, d), dtype=h.dtype)
        b = expect_tensor(out[1], "b", shape=(d,), dtype=h.dtype)
        x, y = (h - h.mean(0)).double(), (target - target.mean(0)).double()
        stacked_x = torch.cat([x, ridge ** 0.5 * torch.eye(d, dtype=torch.float64)])
        stacked_y = torch.cat([y, ridge ** 0.5 * torch.eye(d, dtype=torch.float64)])
        expected_w = torch.linalg.lstsq(stacked_x, stacked_y).solution.float()
        if torch.allclose(w.T, expected_w, atol=1e-3) and not torch.allclose(w, expected_w, atol=1e-3):
            raise CheckFailed("W is transposed: the translated stream is h @ W, so W is [d_in, d_out].")
        expect_close(w, expected_w, f"W for ridge={ridge}", atol=1e-3, rtol=1e-3,
                     hint="Centre h and target, then solve (XᵀX + ridge·I) W = XᵀY + ridge·I: the penalty pulls W "
                          "toward the identity, not toward 0, and the bias is not penalised.")
        expect_close(b, target.mean(0) - h.mean(0) @ w, f"b for ridge={ridge}", atol=1e-3, rtol=1e-3,
                     hint="b = mean(target) − mean(h) @ W: the bias makes the means match.")
    w, b = call(fit_translator, h, target, 1e9)
    expect_close(w, torch.eye(d), "W for an enormous ridge", atol=1e-3,
                 hint="An enormous ridge must give back the identity (the logit lens), not 0.")
    passed("fit_translator", "matches an independent least-squares solve, and becomes the identity as ridge grows")


# ---------------------------------------------------------------------------------------------
# Exercise 6: select on one half of the prompts, measure on the other
def check_held_out_selection(held_out_selection) -> None:
    import numpy as np

    # 3 layers x 4 heads, not square: a flat index split with the wrong width lands on another head
    select = torch.tensor([[0.1, 0.3, 0.0, 0.2],
                           [0.2, 0.1, 2.5, 0.0],
                           [0.4, 0.1, 0.2, 0.3]])
    held = {(l, h): 0.01 * (4 * l + h) for l in range(3) for h in range(4)}
    held[(1, 2)] = 0.9                                 # the chosen head keeps part of its effect
    held[(0, 1)] = 1.7                                 # a head that only the held-out prompts favour
    measured = []

    def held_out_drop(layer, head):
        measured.append((int(layer), int(head)))
        return held[(int(layer), int(head))]

    candidates = [(0, 3), (1, 2), (2, 1), (0, 0), (2, 3), (1, 1), (0, 2)]
    out = call(held_out_selection, select, held_out_drop, candidates, 4)
    if not isinstance(out, dict) or not {"head", "selected", "held_out", "random_heads", "random"} <= set(out):
        raise CheckFailed("held_out_selection should return a dict with keys 'head', 'selected', 'held_out', "
                          "'random_heads' and 'random'.")
    head = tuple(int(x) for x in out["head"])
    if head == (0, 1):
        raise CheckFailed("you chose the head that is best on the held-out prompts: choose on select_effects only, "
                          "or the held-out number is no longer held out.")
    if head != (1, 2):
        raise CheckFailed(f"chose head {head}, expected (1, 2), the argmax of select_effects: a flat index f is "
                          "(f // n_heads, f % n_heads), with n_heads = select_effects.shape[1].")
    expect_close(torch.tensor([float(out["selected"]), float(out["held_out"])]), torch.tensor([2.5, 0.9]),
                 "[selected, held_out]", atol=1e-6,
                 hint="'selected' is the chosen head's score on the selection prompts, 'held_out' its held_out_drop.")
    controls = [(0, 3), (2, 1), (0, 0), (2, 3)]
    random = np.asarray(out["random"], dtype=float)
    if len(random) != 4:
        raise CheckFailed(f"'random' holds {len(random)} drops, expected n_random = 4.")
    if np.isclose(random, 0.9).any():
        raise CheckFailed("the chosen head is among the random heads: skip it, it is no control.")
    if [tuple(int(x) for x in lh) for lh in out["random_heads"]] != controls or not np.allclose(
            random, [held[lh] for lh in controls]):
        raise CheckFailed(f"'random' should be the held-out drops of the first n_random candidates other than the "
                          f"chosen head, {controls}, in that order ('random_heads' lists them).")
    if set(measured) - set(controls) - {(1, 2)}:
        raise CheckFailed("held_out_drop was called on heads that are neither the chosen one nor a random control: "
                          "looking at held-out scores of other heads is selecting on held-out data.")
    passed("held_out_selection", "chosen on the selection half, measured with random heads on the held-out half")
