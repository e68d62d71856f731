"""Chapter 04's learner checks: each passes on the solution, fails on the stub, and fails on
the mistakes learners plausibly make."""
import pytest
import torch

from tests.notebook_functions import check_rejects, solution_and_stub
from utils.checks import CheckFailed
from utils.checks import induction as checks
from utils.induction import per_token_loss, repeated_segment_batch, repeated_tokens

SLUG = "04_induction_heads"


def _run(check, fn):
    check(fn)


# --- plausible wrong implementations -------------------------------------------------------

def prev_score_current_token(pattern):            # reads the main diagonal
    return pattern.diagonal(0, -2, -1).mean((0, -1))


def prev_score_two_back(pattern):                 # wrong offset
    return pattern.diagonal(-2, -2, -1).mean((0, -1))


def prev_score_includes_query0(pattern):          # pads query 0 with a zero and averages over n queries
    diag = pattern.diagonal(-1, -2, -1)
    return diag.sum((0, -1)) / (diag.shape[0] * pattern.shape[-1])


def induction_off_by_one(pattern, seg_len):       # the duplicate-token diagonal
    return pattern.diagonal(-seg_len, -2, -1)[..., -seg_len:].mean((0, -1))


def induction_ignores_prefix(pattern, seg_len):   # assumes the copy starts at position seg_len
    q = torch.arange(seg_len, 2 * seg_len)
    return pattern[:, :, q, q - seg_len + 1].mean((0, 2))


def induction_all_queries(pattern, seg_len):      # averages the whole diagonal, first copy included
    return pattern.diagonal(-(seg_len - 1), -2, -1).mean((0, -1))


def copying_by_columns(full_ov):                  # argmax over the wrong axis
    return (full_ov.argmax(-2) == torch.arange(full_ov.shape[-1])).float().mean(-1)


def copying_diag_positive(full_ov):               # "raises its own logit" without comparing to the others
    return (full_ov.diagonal(0, -2, -1) > 0).float().mean(-1)


def copying_forgets_device(full_ov):             # torch.arange on the CPU while full_ov is on a GPU
    return (full_ov.argmax(-1) == torch.arange(full_ov.shape[-1])).float().mean(-1)


def kcomp_q_side(W_OV, W_QK):                     # Q-composition instead of K
    product = W_OV[:, None] @ W_QK[None]
    norms = torch.linalg.matrix_norm(W_OV)[:, None] * torch.linalg.matrix_norm(W_QK)[None, :]
    return torch.linalg.matrix_norm(product) / norms


def kcomp_unnormalised(W_OV, W_QK):
    return torch.linalg.matrix_norm(W_OV[:, None] @ W_QK[None].transpose(-1, -2))


def clamp_current_token(head):
    def hook_fn(pattern, hook):
        pattern = pattern.clone()
        pattern[:, head] = torch.eye(pattern.shape[-1])
        return pattern
    return hook_fn


def clamp_in_place(head):
    def hook_fn(pattern, hook):
        n = pattern.shape[-1]
        with torch.no_grad():
            pattern[:, head] = 0.0
            pattern[:, head, 0, 0] = 1.0
            pattern[:, head, torch.arange(1, n), torch.arange(n - 1)] = 1.0
        return pattern
    return hook_fn


def clamp_wrong_axis(head):
    def hook_fn(pattern, hook):
        n = pattern.shape[-1]
        previous = torch.zeros(n, n)
        previous[0, 0] = 1.0
        previous[torch.arange(1, n), torch.arange(n - 1)] = 1.0
        pattern = pattern.clone()
        pattern[:, :, head] = previous[head]
        return pattern
    return hook_fn


def clamp_detached(head):
    def hook_fn(pattern, hook):
        n = pattern.shape[-1]
        out = pattern.detach().clone()
        out[:, head] = 0.0
        out[:, head, 0, 0] = 1.0
        out[:, head, torch.arange(1, n), torch.arange(n - 1)] = 1.0
        return out
    return hook_fn


def icl_reversed(loss, early, late):
    return loss[:, early].mean(1) - loss[:, late].mean(1)


def icl_summed(loss, early, late):
    return loss[:, late].sum(1) - loss[:, early].sum(1)


def icl_batch_mean(loss, early, late):             # one number for the whole batch, broadcast back
    return (loss[:, late].mean() - loss[:, early].mean()).expand(loss.shape[0])


def patch_all_heads(head, patched):
    return lambda a, hook: patched.clone()


def patch_wrong_axis(head, patched):
    def fn(a, hook):
        a = a.clone()
        a[:, head] = patched[:, head]
        return a
    return fn


def patch_in_place(head, patched):
    def fn(a, hook):
        a.data[:, :, head] = patched[:, :, head]
        return a
    return fn


# Each plausible mistake with the words its failure message must contain (the mistake, named).
CASES = [
    ("previous_token_score", checks.check_previous_token_score,
     [(prev_score_current_token, "attends to the \\*current\\* token"), (prev_score_two_back, "two tokens back"),
      (prev_score_includes_query0, "query 0 has no previous token")]),
    ("induction_score", checks.check_induction_score,
     [(induction_off_by_one, "duplicate-token head"), (induction_ignores_prefix, "BOS token in front"),
      (induction_all_queries, "queries of the second copy")]),
    ("copying_score", checks.check_copying_score,
     [(copying_by_columns, "maximum down each column"), (copying_diag_positive, "own logit is positive"),
      (copying_forgets_device, "fails on a GPU.*full_ov.device")]),
    ("k_composition", checks.check_k_composition,
     [(kcomp_q_side, "W_QK transposed \\(the key side\\)"), (kcomp_unnormalised, "divide the Frobenius norm")]),
    ("clamp_to_previous", checks.check_clamp_to_previous,
     [(clamp_current_token, "attends to the current token"), (clamp_in_place, "in place: clone it first"),
      (clamp_wrong_axis, "head axis of hook_pattern is axis 1"), (clamp_detached, "gradients no longer reach")]),
    ("icl_score", checks.check_icl_score,
     [(icl_reversed, "signs are reversed"), (icl_summed, "summed the losses"), (icl_batch_mean, "one score per row")]),
    ("patch_head", checks.check_patch_head,
     [(patch_all_heads, "every head was replaced"), (patch_wrong_axis, "the head axis is axis 2"),
      (patch_in_place, "in place")]),
]


@pytest.mark.parametrize("name,check,_", CASES, ids=[c[0] for c in CASES])
def test_check_passes_on_solution(name, check, _, capsys):
    solution, _stub = solution_and_stub(SLUG, name)
    check(solution)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("name,check,_", CASES, ids=[c[0] for c in CASES])
def test_check_fails_on_stub(name, check, _):
    _solution, stub = solution_and_stub(SLUG, name)
    with pytest.raises(CheckFailed, match="not written yet"):
        check(stub)


@pytest.mark.parametrize("name,check,wrong,match", [(n, c, w, m) for n, c, ws in CASES for w, m in ws],
                         ids=[f"{n}-{w.__name__}" for n, _, ws in CASES for w, _ in ws])
def test_check_fails_on_plausible_mistake(name, check, wrong, match):
    check_rejects(check, wrong, match=match)


def test_scores_with_unequal_counts_and_float64():
    """Unequal numbers of rows per head pattern do not exist, but unequal batch sizes and a float64 pattern do:
    the solutions give the per-row mean either way, in the pattern's dtype."""
    prev, _ = solution_and_stub(SLUG, "previous_token_score")
    ind, _ = solution_and_stub(SLUG, "induction_score")
    gen = torch.Generator().manual_seed(0)
    pattern = torch.rand(5, 3, 9, 9, generator=gen, dtype=torch.float64).tril().softmax(-1)
    assert prev(pattern).dtype == torch.float64 and ind(pattern, 4).dtype == torch.float64
    rows = torch.stack([prev(pattern[i:i + 1]) for i in range(5)])
    torch.testing.assert_close(prev(pattern), rows.mean(0))
    torch.testing.assert_close(ind(pattern[:2], 4) * 2 + ind(pattern[2:], 4) * 3, ind(pattern, 4) * 5)


# --- the data helpers --------------------------------------------------------------------------

def test_repeated_segment_batch_marks_exactly_the_copy():
    gen = torch.Generator().manual_seed(0)
    tokens, predictable = repeated_segment_batch(32, 40, 50, 10, 20, generator=gen)
    assert tokens.shape == (32, 40) and predictable.shape == (32, 39)
    for row in range(32):
        targets = torch.nonzero(predictable[row]).flatten() + 1        # positions of predictable tokens
        length = len(targets) + 1
        assert 10 <= length <= 20
        assert torch.equal(targets, torch.arange(targets[0], targets[0] + len(targets)))   # one contiguous run
        start = int(targets[0]) - 1                                    # first token of the copy
        assert torch.equal(tokens[row, start:start + length], tokens[row, start - length:start])
    starts = {int(torch.nonzero(p).flatten()[0]) for p in predictable}
    assert len(starts) > 5, "the copy should start at many different offsets"


def test_repeated_tokens_and_loss():
    gen = torch.Generator().manual_seed(1)
    tokens = repeated_tokens(4, 7, 10, generator=gen, distinct=True, prefix=[99])
    assert tokens.shape == (4, 15) and (tokens[:, 0] == 99).all()
    assert torch.equal(tokens[:, 1:8], tokens[:, 8:])
    assert all(len(set(row[1:8].tolist())) == 7 for row in tokens)
    logits = torch.zeros(4, 15, 100)
    assert torch.allclose(per_token_loss(logits, tokens), torch.full((4, 14), torch.log(torch.tensor(100.0))))
