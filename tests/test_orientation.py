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

    for mistake in (squared, no_output_row, wrong_axis, whole_batch):
        fails(checks.check_residual_norms, mistake)


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

    for mistake in (position_axis, in_place_no_return):
        fails(checks.check_zero_head_hook, mistake)


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

    for mistake in (last_position_only, coefficient_ignored, nan_vector):
        fails(checks.check_add_vector_hook, mistake)


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

    for mistake in (without_final_norm, always_last_position, post_instead_of_pre):
        fails(checks.check_logit_lens, mistake, lm)
