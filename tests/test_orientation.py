"""Chapter 00's learner checks pass on the solution and fail on the stub and on plausible mistakes."""
import pytest
import torch

from tests.notebook_functions import check_rejects as fails, solution_and_stub
from utils.checks import orientation as checks

SLUG = "00_orientation"


def test_residual_norms():
    solution, stub = solution_and_stub(SLUG, "residual_norms")
    checks.check_residual_norms(solution)
    fails(checks.check_residual_norms, stub)

    def squared(cache, n_layers):
        return solution(cache, n_layers) ** 2

    def no_output_row(cache, n_layers):
        return torch.stack([cache[f"blocks.{l}.hook_resid_pre"][0].norm(dim=-1) for l in range(n_layers)])

    def wrong_axis(cache, n_layers):
        return torch.stack([cache[f"blocks.{l}.hook_resid_pre"][0].norm(dim=0) for l in range(n_layers + 1)
                            if l < n_layers] + [cache[f"blocks.{n_layers - 1}.hook_resid_post"][0].norm(dim=0)])

    def whole_batch(cache, n_layers):
        rows = [cache[f"blocks.{l}.hook_resid_pre"].norm(dim=-1).mean(0) for l in range(n_layers)]
        return torch.stack(rows + [cache[f"blocks.{n_layers - 1}.hook_resid_post"].norm(dim=-1).mean(0)])

    fails(checks.check_residual_norms, squared, match="not squared")
    fails(checks.check_residual_norms, no_output_row, match=r"shape \(3, 4\), expected \(4, 4\)")
    fails(checks.check_residual_norms, wrong_axis, match=r"shape .*expected \(4, 4\).*axis")
    fails(checks.check_residual_norms, whole_batch, match="batch element 0")

    def float64_norms(cache, n_layers):                 # a float64 result (e.g. computed via numpy)
        return solution(cache, n_layers).double()

    fails(checks.check_residual_norms, float64_norms, match="dtype torch.float64")


def test_zero_head_hook():
    solution, stub = solution_and_stub(SLUG, "zero_head_hook")
    checks.check_zero_head_hook(solution)
    fails(checks.check_zero_head_hook, stub)

    def position_axis(head):
        def hook_fn(z, hook):
            z = z.clone()
            z[:, head] = 0.0
            return z
        return hook_fn

    def in_place_no_return(head):
        def hook_fn(z, hook):
            z[:, :, head] = 0.0
        return hook_fn

    fails(checks.check_zero_head_hook, position_axis, match="head axis of hook_z is axis 2")
    fails(checks.check_zero_head_hook, in_place_no_return, match="return the edited activation")

    def all_heads_from_it(head):
        def hook_fn(z, hook):
            z = z.clone()
            z[:, :, head:] = 0.0
            return z
        return hook_fn

    fails(checks.check_zero_head_hook, all_heads_from_it, match="other heads changed")


def test_add_vector_hook():
    solution, stub = solution_and_stub(SLUG, "add_vector_hook")
    checks.check_add_vector_hook(solution)
    fails(checks.check_add_vector_hook, stub)

    def last_position_only(vector, coeff):
        def hook_fn(resid, hook):
            resid = resid.clone()
            resid[:, -1] += coeff * vector
            return resid
        return hook_fn

    def coefficient_ignored(vector, coeff):
        return lambda resid, hook: resid + vector

    def nan_vector(vector, coeff):
        return lambda resid, hook: resid + coeff * vector / 0.0 * 0.0

    def no_dtype_cast(vector, coeff):                  # forgets .to(resid.device, resid.dtype)
        return lambda resid, hook: resid + coeff * vector

    fails(checks.check_add_vector_hook, last_position_only, match="only at the last position")
    fails(checks.check_add_vector_hook, coefficient_ignored, match="coeff \\* vector")
    fails(checks.check_add_vector_hook, nan_vector, match="NaN")
    fails(checks.check_add_vector_hook, no_dtype_cast, match="float64 vector.*dtype torch.float64")


@pytest.mark.lm
def test_logit_lens(lm):
    solution, stub = solution_and_stub(SLUG, "logit_lens")
    checks.check_logit_lens(solution, lm)
    fails(checks.check_logit_lens, stub, lm)

    def without_final_norm(cache, model, position=-1):
        n = model.cfg.n_layers
        rows = [cache[f"blocks.{l}.hook_resid_pre"][0, position] for l in range(n)]
        rows.append(cache[f"blocks.{n - 1}.hook_resid_post"][0, position])
        return model.unembed(torch.stack(rows))

    def always_last_position(cache, model, position=-1):
        return solution(cache, model, -1)

    def post_instead_of_pre(cache, model, position=-1):
        n = model.cfg.n_layers
        rows = [cache[f"blocks.{l}.hook_resid_post"][0, position] for l in range(n)]
        rows.append(cache[f"blocks.{n - 1}.hook_resid_post"][0, position])
        return model.unembed(model.ln_final(torch.stack(rows)))

    fails(checks.check_logit_lens, without_final_norm, lm, match="apply model.ln_final")
    fails(checks.check_logit_lens, always_last_position, lm, match="position 2.*read the requested position")
    fails(checks.check_logit_lens, post_instead_of_pre, lm, match="Row 0 reads blocks.0.hook_resid_pre")


def test_replace_head_hook():
    solution, stub = solution_and_stub(SLUG, "replace_head_hook")
    checks.check_replace_head_hook(solution)
    fails(checks.check_replace_head_hook, stub)

    def adds(head, replacement):
        def hook_fn(z, hook):
            z = z.clone()
            z[:, :, head] = z[:, :, head] + replacement.to(z.dtype)
            return z
        return hook_fn

    def every_head(head, replacement):
        def hook_fn(z, hook):
            return replacement.to(z.dtype)[:, :, None].expand_as(z).clone()
        return hook_fn

    def first_row_for_all(head, replacement):         # resample: every batch row gets the first donor
        def hook_fn(z, hook):
            z = z.clone()
            z[:, :, head] = replacement[:1].to(z.dtype)
            return z
        return hook_fn

    def in_place_no_return(head, replacement):
        def hook_fn(z, hook):
            z[:, :, head] = replacement
        return hook_fn

    def keeps_float64(head, replacement):
        def hook_fn(z, hook):
            z = z.clone().to(replacement.dtype)
            z[:, :, head] = replacement
            return z
        return hook_fn

    fails(checks.check_replace_head_hook, adds, match="do not add")
    fails(checks.check_replace_head_hook, every_head, match="other heads changed")
    fails(checks.check_replace_head_hook, first_row_for_all, match="replacement\\[b\\]")
    fails(checks.check_replace_head_hook, in_place_no_return, match="return the edited activation")
    fails(checks.check_replace_head_hook, keeps_float64, match="dtype")


def test_fit_translator():
    solution, stub = solution_and_stub(SLUG, "fit_translator")
    checks.check_fit_translator(solution)
    fails(checks.check_fit_translator, stub)

    def toward_zero(h, target, ridge):                  # the usual ridge: shrinks W toward 0, not the identity
        x, y = h - h.mean(0), target - target.mean(0)
        w = torch.linalg.solve(x.T @ x + ridge * torch.eye(h.shape[1]), x.T @ y)
        return w, target.mean(0) - h.mean(0) @ w

    def uncentred(h, target, ridge):                    # no bias: the offset is absorbed (badly) into W
        eye = torch.eye(h.shape[1])
        return torch.linalg.solve(h.T @ h + ridge * eye, h.T @ target + ridge * eye), torch.zeros(h.shape[1])

    def transposed(h, target, ridge):
        w, b = solution(h, target, ridge)
        return w.T, b

    def bias_zero(h, target, ridge):
        w, _ = solution(h, target, ridge)
        return w, torch.zeros(h.shape[1])

    fails(checks.check_fit_translator, toward_zero, match="toward the identity")
    fails(checks.check_fit_translator, uncentred, match="W for ridge")
    fails(checks.check_fit_translator, transposed, match="transposed")
    fails(checks.check_fit_translator, bias_zero, match="the bias makes the means match")


def test_held_out_selection():
    solution, stub = solution_and_stub(SLUG, "held_out_selection")
    checks.check_held_out_selection(solution)
    fails(checks.check_held_out_selection, stub)

    def chosen_on_held_out(select_effects, held_out_drop, candidates, n_random):
        n_layers, n_heads = select_effects.shape
        scores = {(l, h): held_out_drop(l, h) for l in range(n_layers) for h in range(n_heads)}
        head = max(scores, key=scores.get)
        return {**solution(select_effects, held_out_drop, candidates, n_random), "head": head}

    def wrong_width(select_effects, held_out_drop, candidates, n_random):
        head = divmod(int(select_effects.argmax()), select_effects.shape[0])
        return {**solution(select_effects, held_out_drop, candidates, n_random), "head": head}

    def chosen_kept(select_effects, held_out_drop, candidates, n_random):
        out = solution(select_effects, held_out_drop, candidates, n_random)
        out["random_heads"] = candidates[:n_random]
        out["random"] = [held_out_drop(*lh) for lh in candidates[:n_random]]
        return out

    def peeks(select_effects, held_out_drop, candidates, n_random):
        out = solution(select_effects, held_out_drop, candidates, n_random)
        [held_out_drop(*lh) for lh in candidates]          # reads every candidate's held-out score
        return out

    fails(checks.check_held_out_selection, chosen_on_held_out, match="best on the held-out prompts")
    fails(checks.check_held_out_selection, wrong_width, match="n_heads = select_effects.shape")
    fails(checks.check_held_out_selection, chosen_kept, match="no control")
    fails(checks.check_held_out_selection, peeks, match="selecting on held-out data")
