"""Checks for chapter 04 (induction heads).

Every check builds small inputs whose answer is known by construction (a pattern that puts
all its attention on one known key, a matrix with a known largest entry) and, where a peer
implementation exists, compares with it: TransformerLens's own composition scores and its
head detector.
"""
from __future__ import annotations

import torch

from utils.checks import CheckFailed, call, expect_close, expect_tensor, passed


def _one_hot_pattern(batch: int, n_heads: int, n_pos: int, key_of) -> torch.Tensor:
    """``[batch, head, q, k]`` where head h at query q attends only to ``key_of(h, q)`` (clipped to 0..q)."""
    pattern = torch.zeros(batch, n_heads, n_pos, n_pos)
    for head in range(n_heads):
        for q in range(n_pos):
            k = key_of(head, q)
            pattern[:, head, q, k if 0 <= k <= q else q] = 1.0
    return pattern


def _mixed_pattern(n_pos: int, seed: int) -> torch.Tensor:
    """A random causal pattern ``[2, 3, n_pos, n_pos]`` (rows sum to 1)."""
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(2, 3, n_pos, n_pos, generator=gen) * 2
    mask = torch.ones(n_pos, n_pos).tril().bool()
    return scores.masked_fill(~mask, float("-inf")).softmax(-1)


def check_previous_token_score(previous_token_score) -> None:
    n_pos = 9
    # head 0: perfect previous-token head; head 1: attends to itself; head 2: two back
    pattern = _one_hot_pattern(2, 3, n_pos, lambda h, q: (q - 1, q, q - 2)[h])
    out = expect_tensor(call(previous_token_score, pattern), "previous_token_score(pattern)", shape=(3,),
                        dtype=torch.float32)
    if out[1] > 0.5 and out[0] < 0.5:
        raise CheckFailed("a head that attends to the *current* token scored high: read the key one position "
                          "before the query, pattern[..., q, q - 1].")
    if out[2] > 0.5:
        raise CheckFailed("a head that attends two tokens back scored high: the offset should be exactly 1.")
    expect_close(out, torch.tensor([1.0, 0.0, 0.0]), "scores of three one-hot heads", atol=1e-5,
                 hint="Average pattern[b, h, q, q - 1] over the batch and over queries q = 1 .. n - 1 "
                      "(query 0 has no previous token).")
    mixed = _mixed_pattern(7, seed=1)
    q = torch.arange(1, 7)
    expect_close(call(previous_token_score, mixed), mixed[:, :, q, q - 1].mean((0, 2)), "score of a random pattern",
                 atol=1e-5, hint="Average over batch and queries 1..n-1 only; do not include query 0.")
    passed("previous_token_score", "a perfect previous-token head scores 1, a current-token head 0")


def check_induction_score(induction_score) -> None:
    seg = 5
    for prefix in (0, 1):                      # with and without a BOS token in front
        n_pos = prefix + 2 * seg
        # head 0: perfect induction head (key after the earlier copy);
        # head 1: duplicate-token head (the earlier copy itself);  head 2: previous-token head
        pattern = _one_hot_pattern(2, 3, n_pos, lambda h, q: (q - seg + 1, q - seg, q - 1)[h] if q >= prefix + seg
                                   else q)
        out = expect_tensor(call(induction_score, pattern, seg), f"induction_score(pattern, {seg})", shape=(3,),
                            dtype=torch.float32)
        if out[1] > 0.5:
            raise CheckFailed("a duplicate-token head (attending to the earlier copy of the *same* token) scored high: "
                              "the induction target is one position later, q - seg_len + 1.")
        if out[0] < 0.99 and prefix:
            raise CheckFailed("with a BOS token in front, the perfect induction head no longer scores 1: take the "
                              "queries as the last seg_len positions of the pattern, not positions seg_len..2*seg_len.")
        expect_close(out, torch.tensor([1.0, 0.0, 0.0]), f"scores of three one-hot heads (prefix {prefix})",
                     atol=1e-5, hint="Average pattern[b, h, q, q - seg_len + 1] over the batch and the queries of the "
                                     "second copy (the last seg_len positions).")
    mixed = _mixed_pattern(2 * seg + 1, seed=2)
    q = torch.arange(seg + 1, 2 * seg + 1)
    expect_close(call(induction_score, mixed, seg), mixed[:, :, q, q - seg + 1].mean((0, 2)),
                 "score of a random pattern", atol=1e-5,
                 hint="Use every query of the second copy, and only those.")
    passed("induction_score", "a perfect induction head scores 1; duplicate-token and previous-token heads score 0")


def check_copying_score(copying_score) -> None:
    n_vocab = 6
    eye = torch.eye(n_vocab)
    # head 0: copies every token; head 1: maps each token to the next one; head 2: copies only tokens 0 and 1
    shift = torch.roll(eye, 1, dims=1)
    partial = shift.clone()
    partial[0], partial[1] = eye[0], eye[1]
    full_ov = torch.stack([2 * eye + 0.1, shift, partial])     # row = attended token, column = output logit
    out = expect_tensor(call(copying_score, full_ov), "copying_score(full_ov)", shape=(3,), dtype=torch.float32)
    expect_close(out, torch.tensor([1.0, 0.0, 2 / 6]), "scores of copy / shift / partial-copy heads", atol=1e-5,
                 hint="For each source token t (a row), ask whether the largest logit in that row is t itself; "
                      "return the fraction of rows where it is.")
    # every own logit positive, but never the largest in its row (nor in its column): the score is 0
    positive = torch.tensor([[[1.0, 3.0, 0.5], [0.5, 1.0, 3.0], [3.0, 0.5, 1.0]]])
    got = call(copying_score, positive)
    if torch.is_tensor(got) and got.numel() == 1 and abs(float(got) - 1.0) < 1e-6:
        raise CheckFailed("you counted rows whose own logit is positive: a copying head makes the attended token's "
                          "logit the *largest* in its row; compare row.argmax() with t.")
    # an asymmetric case: rows and columns give different answers
    asym = torch.tensor([[[1.0, 4.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 3.0]]])
    got = call(copying_score, asym)
    if torch.is_tensor(got) and got.numel() == 1 and abs(float(got) - 1.0) < 1e-6:
        raise CheckFailed("you took the maximum down each column: the row of token t holds the logits the head writes "
                          "when it attends to t, so take the argmax along the last axis.")
    expect_close(got, torch.tensor([2 / 3]), "an asymmetric example", atol=1e-5,
                 hint="Row 0's largest entry is in column 1, so token 0 is not copied.")
    # another device: "meta" stands in for a GPU (shapes and devices, no values)
    try:
        on_meta = copying_score(full_ov.to("meta"))
    except Exception as err:
        if "device" in str(err).lower():
            raise CheckFailed("copying_score fails on a GPU: a tensor you create is on the CPU while full_ov is not; "
                              "create it on full_ov.device (torch.arange(n, device=full_ov.device)).") from err
        raise
    expect_tensor(on_meta, "copying_score(full_ov on another device)", shape=(3,), finite=False)
    passed("copying_score", "a copying head scores 1, a shifting head 0")


def check_k_composition(k_composition, model=None) -> None:
    # Hand case: one OV matrix, two QK matrices; the first reads exactly what the OV writes.
    d = 4
    ov = torch.zeros(1, d, d)
    ov[0, 0, 1] = 2.0                         # writes into direction 1
    qk_reads = torch.zeros(d, d)
    qk_reads[0, 1] = 3.0                      # keys read direction 1 (QK[q_dir, k_dir])
    qk_other = torch.zeros(d, d)
    qk_other[1, 0] = 3.0                      # keys read direction 0: nothing the OV writes
    qk = torch.stack([qk_reads, qk_other])
    out = expect_tensor(call(k_composition, ov, qk), "k_composition(W_OV, W_QK)", shape=(1, 2), dtype=torch.float32)
    if out[0, 1] > 0.5 and out[0, 0] < 0.5:
        raise CheckFailed("the head whose *queries* read the OV output scored high, the one whose keys read it scored "
                          "0: K-composition multiplies W_OV by W_QK transposed (the key side).")
    if out.max() > 1.0 + 1e-5:
        raise CheckFailed("scores above 1: divide the Frobenius norm of the product by both matrices' norms.")
    expect_close(out, torch.tensor([[1.0, 0.0]]), "the hand-made example", atol=1e-5,
                 hint="score[i, j] = ||W_OV[i] @ W_QK[j].T||_F / (||W_OV[i]||_F ||W_QK[j]||_F).")
    # Random matrices against TransformerLens's own implementation.
    from transformer_lens import FactoredMatrix
    from transformer_lens.utilities import composition_scores
    gen = torch.Generator().manual_seed(3)
    W_V, W_O = torch.randn(3, 8, 2, generator=gen), torch.randn(3, 2, 8, generator=gen)
    W_Q, W_K = torch.randn(2, 8, 2, generator=gen), torch.randn(2, 8, 2, generator=gen)
    expected = composition_scores(FactoredMatrix(W_V, W_O), FactoredMatrix(W_Q, W_K.transpose(-1, -2)).T)
    got = expect_tensor(call(k_composition, W_V @ W_O, W_Q @ W_K.transpose(-1, -2)), "k_composition on random weights",
                        shape=(3, 2), dtype=torch.float32)
    expect_close(got, expected, "K-composition vs transformer_lens.utilities.composition_scores", atol=1e-4,
                 rtol=1e-3, hint="Rows index the layer-0 (writing) heads, columns the layer-1 (reading) heads.")
    passed("k_composition", "matches TransformerLens's composition_scores")


def _run_hook(factory_call: str, hook_fn, activation: torch.Tensor, what: str) -> torch.Tensor:
    """Call a learner's hook as TransformerLens would, and catch the mistakes every hook can make: not a
    function, returning None, a different shape, editing its input in place."""
    if not callable(hook_fn):
        raise CheckFailed(f"{factory_call} should return a function hook_fn({what}, hook).")
    before = activation.detach().clone()
    out = call(hook_fn, activation, None)
    if out is None:
        raise CheckFailed(f"the hook should return the new {what} (a hook that returns None changes nothing).")
    out = expect_tensor(out, "hook output", shape=activation.shape, dtype=activation.dtype)
    if not torch.equal(activation.detach(), before):
        raise CheckFailed("the hook changed its input in place: clone it first (in-place edits break autograd).")
    return out


def check_clamp_to_previous(clamp_to_previous) -> None:
    gen = torch.Generator().manual_seed(4)
    n_pos = 6
    scores = torch.randn(2, 3, n_pos, n_pos, generator=gen)
    mask = torch.ones(n_pos, n_pos).tril().bool()
    pattern = scores.masked_fill(~mask, float("-inf")).softmax(-1).requires_grad_(True)
    before = pattern.detach().clone()
    out = _run_hook("clamp_to_previous(head)", call(clamp_to_previous, 1), pattern, "pattern")
    expected = torch.zeros(n_pos, n_pos)
    expected[0, 0] = 1.0
    expected[torch.arange(1, n_pos), torch.arange(n_pos - 1)] = 1.0
    head = out[:, 1].detach()
    if torch.allclose(head, torch.eye(n_pos).expand_as(head)):
        raise CheckFailed("head 1 now attends to the current token: put the 1 at key q - 1 (and key 0 for query 0).")
    if torch.allclose(out[:, :, 1].detach(), expected[1].expand(2, 3, n_pos)):
        raise CheckFailed("you clamped query 1 of every head: the head axis of hook_pattern is axis 1 "
                          "([batch, head, query, key]).")
    expect_close(head, expected.expand_as(head), "head 1's clamped pattern", atol=0,
                 hint="Row q is one-hot at key q - 1; row 0 (no previous token) is one-hot at key 0.")
    keep = [0, 2]
    if not torch.equal(out[:, keep].detach(), before[:, keep]):
        raise CheckFailed("other heads changed: only the chosen head's pattern should be replaced.")
    if out.requires_grad:
        out[:, keep].sum().backward()
    if not out.requires_grad or pattern.grad is None or pattern.grad[:, keep].abs().sum() == 0:
        raise CheckFailed("gradients no longer reach the other heads' patterns: build the output from the input "
                          "(clone, then overwrite one head), not from a detached copy.")
    passed("clamp_to_previous", "one head becomes a perfect previous-token head, the others pass through")


def check_icl_score(icl_score) -> None:
    # Two rows, six targets: row 0 gets better later in the context, row 1 worse.
    loss = torch.tensor([[4.0, 4.0, 3.0, 1.0, 1.0, 0.0],
                         [1.0, 1.0, 1.0, 2.0, 3.0, 4.0]])
    early, late = slice(0, 2), slice(3, 6)
    out = expect_tensor(call(icl_score, loss, early, late), "icl_score(loss, early, late)", shape=(2,),
                        dtype=torch.float32)
    if torch.allclose(out, torch.tensor([4 - 2 / 3, 1 - 3.0])):
        raise CheckFailed("the signs are reversed: the score is late minus early, so a model that predicts later "
                          "tokens better (uses its context) gets a negative score.")
    if torch.allclose(out, torch.tensor([2.0 - 8.0, 9.0 - 2.0])):
        raise CheckFailed("you summed the losses: the two windows hold different numbers of tokens, take the mean "
                          "of each.")
    if torch.allclose(out, torch.full((2,), ((2 / 3 - 4) + (3.0 - 1)) / 2), atol=1e-5):
        raise CheckFailed("both rows got the batch's average: keep one score per row (mean over the positions of "
                          "each window, dim 1, not over the batch).")
    expect_close(out, torch.tensor([2 / 3 - 4, 3.0 - 1]), "the ICL score of two hand-made rows", atol=1e-5,
                 hint="Per row: loss[:, late].mean(1) - loss[:, early].mean(1).")
    # Against the per-token mean written out with a loop, on random losses and other windows.
    rows = torch.rand(5, 30, generator=torch.Generator().manual_seed(5)) * 4
    early, late = slice(2, 9), slice(20, 29)
    expected = torch.tensor([sum(r[20:29].tolist()) / 9 - sum(r[2:9].tolist()) / 7 for r in rows])
    expect_close(call(icl_score, rows, early, late), expected, "ICL scores of random losses", atol=1e-5,
                 hint="Keep one score per row (mean over the positions of each window, not over the batch).")
    passed("icl_score", "late minus early, per row, means of windows of different sizes")


def check_patch_head(patch_head) -> None:
    gen = torch.Generator().manual_seed(6)
    clean = torch.randn(2, 5, 4, 3, generator=gen, requires_grad=True)      # [batch, pos, head, d_head]
    patched = torch.randn(2, 5, 4, 3, generator=gen)
    before = clean.detach().clone()
    out = _run_hook("patch_head(heads, patched)", call(patch_head, 2, patched), clean, "activation")
    if torch.equal(out.detach(), patched):
        raise CheckFailed("every head was replaced: only head `head` should take the patched values.")
    if torch.equal(out[:, 2].detach(), patched[:, 2]):
        raise CheckFailed("you replaced position 2 of every head: per-head hooks are [batch, pos, head, d_head], "
                          "the head axis is axis 2.")
    expected = before.clone()
    expected[:, :, 2] = patched[:, :, 2]
    expect_close(out.detach(), expected, "the patched activation", atol=0,
                 hint="Clone the activation, then overwrite [:, :, head] with patched[:, :, head].")
    passed("patch_head", "one head's slice comes from the patched run, the others are untouched")
