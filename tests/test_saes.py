"""Chapter 03: every learner check passes on the solution, fails on the stub, and fails on mistakes
learners plausibly make. Also unit tests of utils/sae.py (batched SAEs, toy data, training, the
published-SAE loader)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.notebook_functions import check_rejects, solution_and_stub
from utils.checks import saes as checks
from utils.sae import (SAE, ToyData, _decode_sparse, evaluate, load_published_sae, max_cosine, sae_loss, save_sae,
                       top_activations, train_sae)

SLUG = "03_sparse_autoencoders"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tests run many small ops; with a second busy process, two threads thrash (see utils.env.set_threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _solution(name):
    return solution_and_stub(SLUG, name)[0]


def _passes_and_stub_fails(name):
    solution, stub = solution_and_stub(SLUG, name)
    check = getattr(checks, f"check_{name}")
    check(solution)
    check_rejects(check, stub)
    return check


# ----------------------------------------------------------------------------- exercise 1: topk_activation
def topk_over_batch(pre, k):
    """Mistake: the k largest entries of each *column* (over the batch), not of each input."""
    values, indices = pre.topk(min(k, pre.shape[0]), dim=0)
    return torch.zeros_like(pre).scatter(0, indices, values.relu())


def topk_no_relu(pre, k):
    values, indices = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, indices, values)


def topk_by_magnitude(pre, k):
    indices = pre.abs().topk(k, dim=-1).indices
    return torch.zeros_like(pre).scatter(-1, indices, pre.gather(-1, indices).relu())


def test_check_topk_activation():
    check = _passes_and_stub_fails("topk_activation")
    for wrong, why in ((topk_over_batch, "per row"), (topk_no_relu, "ReLU"), (topk_by_magnitude, "largest"),
                       (lambda pre, k: pre.relu(), "per row")):
        check_rejects(check, wrong, match=why)
    check_rejects(check, lambda pre, k: _solution("topk_activation")(pre.double(), k), match="float64")


# ----------------------------------------------------------------------------- exercise 2: sae_metrics
def _metrics(z, x, x_hat, l0=None, fvu=None, dead=None):
    return {"l0": l0 if l0 is not None else (z > 0).sum(-1).float().mean().item(),
            "fvu": fvu if fvu is not None else ((x - x_hat) ** 2).sum().item() / ((x - x.mean(0)) ** 2).sum().item(),
            "dead_fraction": dead if dead is not None else (~(z > 0).any(0)).float().mean().item()}


def metrics_l0_on_pre(sae, x):
    z = sae.encode(x).detach()
    return _metrics(z, x, sae.decode(z).detach(), l0=(sae.pre_acts(x) > 0).sum(-1).float().mean().item())


def metrics_uncentred_fvu(sae, x):
    z = sae.encode(x).detach()
    x_hat = sae.decode(z).detach()
    return _metrics(z, x, x_hat, fvu=((x - x_hat) ** 2).sum().item() / (x ** 2).sum().item())


def metrics_per_dimension_fvu(sae, x):
    z = sae.encode(x).detach()
    x_hat = sae.decode(z).detach()
    return _metrics(z, x, x_hat, fvu=(((x - x_hat) ** 2).mean(0) / x.var(0, unbiased=False)).mean().item())


def metrics_dead_as_zero_share(sae, x):
    z = sae.encode(x).detach()
    return _metrics(z, x, sae.decode(z).detach(), dead=(z == 0).float().mean().item())


def test_check_sae_metrics():
    check = _passes_and_stub_fails("sae_metrics")
    for wrong, why in ((metrics_l0_on_pre, "pre-activations"), (metrics_uncentred_fvu, "raw second moment"),
                       (metrics_per_dimension_fvu, "per-dimension"), (metrics_dead_as_zero_share, "zero on .*every")):
        check_rejects(check, wrong, match=why)


def test_sae_metrics_hints_name_the_mistake():
    with pytest.raises(checks.CheckFailed, match="pre-activations"):
        checks.check_sae_metrics(metrics_l0_on_pre)
    with pytest.raises(checks.CheckFailed, match="around the mean"):
        checks.check_sae_metrics(metrics_uncentred_fvu)


# ----------------------------------------------------------------------------- exercise 3: feature_recovery
def recovery_unnormalised(learned, true):
    """Mistake: the decoder rows were never re-normalised, so dot products stand in for cosines."""
    return (true @ learned.T).max(-1).values


def recovery_wrong_axis(learned, true):
    learned = learned / learned.norm(dim=-1, keepdim=True)
    true = true / true.norm(dim=-1, keepdim=True)
    return (true @ learned.T).max(0).values


def recovery_wrong_axis_truncated(learned, true):
    """The wrong axis, cut to the expected length so that only the values give it away."""
    return recovery_wrong_axis(learned, true)[: len(true)]


def recovery_abs(learned, true):
    learned = learned / learned.norm(dim=-1, keepdim=True)
    true = true / true.norm(dim=-1, keepdim=True)
    return (true @ learned.T).abs().max(-1).values


def test_check_feature_recovery():
    check = _passes_and_stub_fails("feature_recovery")
    for wrong, why in ((recovery_unnormalised, "unit length"), (recovery_wrong_axis, "shape"),
                       (recovery_wrong_axis_truncated, "each TRUE feature"), (recovery_abs, "signed cosine")):
        check_rejects(check, wrong, match=why)


# ----------------------------------------------------------------------------- exercise 4: mfr_penalty
def _unit(W):
    return W / W.norm(dim=-1, keepdim=True)


def mfr_with_self_pairs(W_dec):
    W = _unit(W_dec)
    return 1 - torch.einsum("aid,bjd->abij", W, W).max(-1).values.mean()


def mfr_dot_products(W_dec):
    best = torch.einsum("aid,bjd->abij", W_dec, W_dec).max(-1).values.mean(-1)
    return 1 - best[~torch.eye(len(W_dec), dtype=torch.bool)].mean()


def mfr_first_pair_only(W_dec):
    W = _unit(W_dec)
    return 1 - (W[0] @ W[1].T).max(-1).values.mean()


def mfr_as_float(W_dec):
    return float(_solution("mfr_penalty")(W_dec))


def test_check_mfr_penalty():
    check = _passes_and_stub_fails("mfr_penalty")
    for wrong, why in ((mfr_with_self_pairs, "with itself"), (mfr_dot_products, "cosine similarity"),
                       (mfr_first_pair_only, "all ordered pairs"), (mfr_as_float, "gradients")):
        check_rejects(check, wrong, match=why)


# ----------------------------------------------------------------------------- exercise 5: ce_loss_recovered
def _ce(model, tokens, hook_name, reconstruct, first=1, ablate_first=1, inverted=False):
    def loss(logits):
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1)).item()

    def replace(fn, start):
        def hook(resid, hook):
            resid = resid.clone()
            resid[:, start:] = fn(resid[:, start:])
            return resid
        return hook
    with torch.no_grad():
        clean = loss(model(tokens))
        spliced = loss(model.run_with_hooks(tokens, fwd_hooks=[(hook_name, replace(reconstruct, first))]))
        ablated = loss(model.run_with_hooks(tokens, fwd_hooks=[(hook_name, replace(torch.zeros_like, ablate_first))]))
    recovered = (spliced - clean) / (ablated - clean) if inverted else (ablated - spliced) / (ablated - clean)
    return {"clean": clean, "spliced": spliced, "ablated": ablated, "recovered": recovered}


def ce_splices_position_zero(model, tokens, hook_name, reconstruct):
    return _ce(model, tokens, hook_name, reconstruct, first=0)


def ce_ablates_position_zero(model, tokens, hook_name, reconstruct):
    return _ce(model, tokens, hook_name, reconstruct, ablate_first=0)


def ce_inverted(model, tokens, hook_name, reconstruct):
    return _ce(model, tokens, hook_name, reconstruct, inverted=True)


def test_check_ce_loss_recovered():
    check = _passes_and_stub_fails("ce_loss_recovered")
    for wrong, why in ((ce_splices_position_zero, "leave position 0"), (ce_ablates_position_zero, "positions 1: only"),
                       (ce_inverted, "inverted")):
        check_rejects(check, wrong, match=why)


def test_ce_check_names_the_inverted_formula():
    with pytest.raises(checks.CheckFailed, match="inverted"):
        checks.check_ce_loss_recovered(ce_inverted)


# ----------------------------------------------------------------------------- exercise 6: purity_gain
def _observed(top_labels, n_labels):
    N = top_labels.shape[1]
    c = F.one_hot(top_labels, n_labels).double().sum(1)
    return ((c ** 2).sum(-1) - N) / (N * (N - 1))


def gain_with_replacement(top_labels, top_types, counts):
    """Mistake: two occurrences of the same type are treated as independent draws (Σ q²)."""
    N = top_labels.shape[1]
    q = counts.double() / counts.double().sum(1, keepdim=True)
    Q = q[top_types]
    S = Q.sum(1)
    expected = ((S ** 2).sum(-1) - (Q ** 2).sum((1, 2))) / (N * (N - 1))
    return _observed(top_labels, counts.shape[1]) - expected


def gain_global_baseline(top_labels, top_types, counts):
    """Mistake: compared with the label distribution of the whole data set, ignoring token identity."""
    p = counts.double().sum(0) / counts.sum()
    return _observed(top_labels, counts.shape[1]) - (p ** 2).sum()


def gain_with_self_pairs(top_labels, top_types, counts):
    N = top_labels.shape[1]
    c = F.one_hot(top_labels, counts.shape[1]).double().sum(1)
    q = counts.double() / counts.double().sum(1, keepdim=True)
    S = q[top_types].sum(1)
    return (c ** 2).sum(-1) / N ** 2 - (S ** 2).sum(-1) / N ** 2


def test_check_purity_gain():
    check = _passes_and_stub_fails("purity_gain")
    for wrong, why in ((gain_with_replacement, "without"), (gain_global_baseline, "own type"),
                       (gain_with_self_pairs, "i ≠ j")):
        check_rejects(check, wrong, match=why)


def test_purity_gain_is_unbiased_under_shuffling():
    """Shuffle labels among the occurrences of each type: the mean gain over many latents is ~0."""
    purity_gain = _solution("purity_gain")
    rng = np.random.default_rng(0)
    types = rng.integers(0, 30, size=4000)
    labels = (types % 3 + (rng.random(4000) < 0.4) * rng.integers(0, 3, size=4000)) % 4
    counts = torch.zeros(30, 4, dtype=torch.float64)
    np.add.at(counts.numpy(), (types, labels), 1)
    gains = []
    for _ in range(20):
        shuffled = labels.copy()
        for t in range(30):
            idx = np.nonzero(types == t)[0]
            shuffled[idx] = rng.permutation(shuffled[idx])
        rows = rng.choice(4000, size=(50, 8))
        rows = np.array([rng.choice(np.nonzero(types == t)[0], size=8, replace=False) if i % 2 else r
                         for i, (t, r) in enumerate(zip(rng.integers(0, 30, 50), rows))])
        gains.append(purity_gain(torch.from_numpy(shuffled[rows]), torch.from_numpy(types[rows]), counts).mean())
    assert abs(float(torch.stack(gains).mean())) < 0.01


# ----------------------------------------------------------------------------- utils/sae.py
def test_batched_saes_are_independent():
    sae = SAE(6, 10, n=3, k=[1, 2, 3], seed=0)
    x = torch.randn(32, 6)
    loss, _ = sae_loss(sae, x)
    loss[1].backward()
    for p in (sae.W_enc, sae.W_dec, sae.b_enc, sae.b_dec):
        assert p.grad[0].abs().sum() == 0 and p.grad[2].abs().sum() == 0 and p.grad[1].abs().sum() > 0
    z = sae.encode(x)
    assert z.shape == (3, 32, 10)
    assert [int((z[i] > 0).sum(-1).max()) for i in range(3)] <= [1, 2, 3]


def test_single_sae_drops_the_sae_axis_and_select_copies():
    sae = SAE(5, 7, n=2, k=2, seed=1)
    x = torch.randn(4, 5)
    one = sae.select(1)
    x_hat, z = one(x)
    assert x_hat.shape == (4, 5) and z.shape == (4, 7)
    torch.testing.assert_close(x_hat, sae(x)[0][1])
    with torch.no_grad():
        one.W_dec.zero_()
    assert sae.W_dec[1].abs().sum() > 0, "select must copy, not share"
    with pytest.raises(ValueError):
        sae(torch.randn(3, 4, 5))


def test_init_and_normalisation():
    sae = SAE(8, 12, n=2, seed=0)
    torch.testing.assert_close(sae.W_dec.norm(dim=-1), torch.ones(2, 12))
    torch.testing.assert_close(sae.W_enc, sae.W_dec.transpose(1, 2))
    with torch.no_grad():
        sae.W_dec.mul_(3.0)
    sae.normalise_decoder_()
    torch.testing.assert_close(sae.W_dec.norm(dim=-1), torch.ones(2, 12))
    data = torch.randn(100, 8) + 5
    sae.init_b_dec(data)
    torch.testing.assert_close(sae.b_dec[1], data.mean(0))


@pytest.mark.parametrize("k", [2, 8])
def test_sparse_and_dense_decoders_agree(k):
    sae = SAE(16, 256, n=2, k=k, seed=0)
    vals, idx = sae._topk(sae.pre_acts(torch.randn(9, 16)))
    dense = torch.bmm(torch.zeros(2, 9, 256).scatter(-1, idx, vals), sae.W_dec)
    torch.testing.assert_close(_decode_sparse(sae, vals, idx), dense, atol=1e-5, rtol=1e-5)


def test_toy_data_statistics():
    toy = ToyData.make(40, 10, p=0.1, seed=0, group_size=2, correlation=0.8)
    torch.testing.assert_close(toy.features.norm(dim=-1), torch.ones(40))
    x, a = toy.sample(20_000, torch.Generator().manual_seed(0))
    torch.testing.assert_close(x, a @ toy.features)
    active = (a > 0).float()
    assert abs(active.mean().item() - 0.1) < 0.005
    assert ((a[a > 0] >= 0.5) & (a[a > 0] <= 1.5)).all()
    corr = torch.corrcoef(active.T)
    assert corr[0, 1] > 0.3 and abs(corr[0, 2]) < 0.05, "pairs fire together, other features do not"
    other = ToyData.make(40, 10, p=0.1, seed=0)
    assert not torch.allclose(SAE(10, 40, seed=0).W_dec[0], other.features), "SAE and toy seeds must not collide"


def test_training_recovers_toy_features():
    toy = ToyData.make(24, 12, p=2 / 24, seed=0)
    sae = SAE(12, 24, n=2, k=[2, 2], seed=0)
    history = train_sae(sae, lambda b, g: toy.sample(b, g)[0], 800, batch_size=128, lr=1e-2, seed=0, log_every=100)
    assert history[-1]["loss"] < history[0]["loss"] / 2.5
    recovered = max_cosine(toy.features.expand(2, -1, -1), sae.directions())
    assert (recovered >= 0.9).float().mean() > 0.8
    x, _ = toy.sample(2000, torch.Generator().manual_seed(5))
    metrics = evaluate(sae, x)
    assert metrics["l0"].le(2 + 1e-6).all() and metrics["fvu"].lt(0.5).all()


def test_train_sae_on_a_tensor_and_with_l1():
    data = torch.randn(500, 6)
    relu = SAE(6, 12, n=2, activation="relu", seed=0)
    train_sae(relu, data, 60, batch_size=64, lr=1e-2, l1=[0.0, 3.0], seed=0, log_every=30)
    l0 = evaluate(relu, data)["l0"]
    assert l0[1] < l0[0], "a stronger L1 penalty gives sparser codes"
    torch.testing.assert_close(relu.W_dec.norm(dim=-1), torch.ones(2, 12))


def test_evaluate_and_top_activations_match_brute_force():
    sae = SAE(5, 9, k=3, seed=2)
    data = torch.randn(300, 5)
    metrics = evaluate(sae, data, batch_size=64)
    with torch.no_grad():
        x_hat, z = sae(data)
    torch.testing.assert_close(metrics["l0"], (z > 0).sum(-1).float().mean().unsqueeze(0))
    fvu = ((data - x_hat) ** 2).sum() / ((data - data.mean(0)) ** 2).sum()
    torch.testing.assert_close(metrics["fvu"], fvu.unsqueeze(0))
    torch.testing.assert_close(metrics["freq"][0], (z > 0).float().mean(0))
    values, rows = top_activations(sae, data, 4, batch_size=50)
    want_values, want_rows = z.T.topk(4, dim=1)
    torch.testing.assert_close(values, want_values)
    assert torch.equal(torch.gather(z.T, 1, rows), want_values)


# ----------------------------------------------------------------------------- published SAEs
def _jumprelu_reference(x, W_enc, b_enc, threshold, W_dec, b_dec):
    pre = x @ W_enc + b_enc                       # Gemma Scope: no b_dec subtracted before encoding
    z = pre.relu() * (pre > threshold)
    return z @ W_dec + b_dec, z


def test_load_saelens_folder_jumprelu(tmp_path):
    from safetensors.torch import save_file
    g = torch.Generator().manual_seed(0)
    weights = {"W_enc": torch.randn(6, 10, generator=g), "W_dec": torch.randn(10, 6, generator=g),
               "b_enc": torch.randn(10, generator=g) * 0.1, "b_dec": torch.randn(6, generator=g),
               "threshold": torch.rand(10, generator=g)}
    save_file(weights, str(tmp_path / "sae_weights.safetensors"))
    (tmp_path / "cfg.json").write_text(json.dumps({"architecture": "jumprelu", "d_in": 6, "d_sae": 10,
                                                   "apply_b_dec_to_input": False,
                                                   "hook_name": "blocks.3.hook_resid_post"}))
    sae, cfg = load_published_sae(tmp_path)
    assert cfg["hook_name"] == "blocks.3.hook_resid_post"
    x = torch.randn(20, 6, generator=g)
    want_x_hat, want_z = _jumprelu_reference(x, **weights)
    with torch.no_grad():
        x_hat, z = sae(x)
    torch.testing.assert_close(z, want_z)
    torch.testing.assert_close(x_hat, want_x_hat)


def test_load_gemma_scope_npz(tmp_path):
    g = torch.Generator().manual_seed(1)
    weights = {"W_enc": torch.randn(4, 8, generator=g), "W_dec": torch.randn(8, 4, generator=g),
               "b_enc": torch.randn(8, generator=g) * 0.1, "b_dec": torch.randn(4, generator=g),
               "threshold": torch.rand(8, generator=g) * 0.5}
    np.savez(tmp_path / "params.npz", **{k: v.numpy() for k, v in weights.items()})
    sae, cfg = load_published_sae(tmp_path / "params.npz")
    assert cfg["architecture"] == "jumprelu" and sae.d_sae == 8
    x = torch.randn(10, 4, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(sae(x)[0], _jumprelu_reference(x, **weights)[0])


@pytest.mark.parametrize("activation", ["topk", "relu"])
def test_save_and_load_round_trip(tmp_path, activation):
    sae = SAE(6, 12, k=3, activation=activation, seed=3)
    with torch.no_grad():
        sae.b_dec.add_(1.0)
        sae.b_enc.add_(0.2)
    folder = save_sae(sae, tmp_path / "sae", hook_name="blocks.0.hook_resid_pre")
    loaded, cfg = load_published_sae(folder)
    assert cfg["hook_name"] == "blocks.0.hook_resid_pre" and loaded.activation == activation
    x = torch.randn(15, 6)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0], sae(x)[0])


def test_loader_rejects_unknown_or_inconsistent_files(tmp_path):
    from safetensors.torch import save_file
    save_file({"W_enc": torch.zeros(3, 5), "W_dec": torch.zeros(5, 3), "b_enc": torch.zeros(5),
               "b_dec": torch.zeros(3)},
              str(tmp_path / "sae_weights.safetensors"))
    (tmp_path / "cfg.json").write_text(json.dumps({"architecture": "gated", "d_in": 3, "d_sae": 5}))
    with pytest.raises(ValueError, match="unsupported"):
        load_published_sae(tmp_path)
    (tmp_path / "cfg.json").write_text(json.dumps({"architecture": "standard", "d_in": 4, "d_sae": 5}))
    with pytest.raises(ValueError, match="do not match"):
        load_published_sae(tmp_path)


# ----------------------------------------------------------------------------- exercises 2, 3, 6: your own SAE
def _sae_functions(source="solutions"):
    from tests.notebook_functions import load_functions
    return load_functions(f"{source}/{SLUG}.py", "encode", "decode", "sae_loss", "remove_parallel_grad_",
                          "normalise_decoder_", "auxk_loss")


def test_check_topk_sae():
    f, stub = _sae_functions(), _sae_functions("chapters")
    checks.check_topk_sae(f["encode"], f["decode"], f["sae_loss"])
    check_rejects(checks.check_topk_sae, stub["encode"], f["decode"], f["sae_loss"])
    topk = _solution("topk_activation")

    def uncentred(sae, x):
        return topk(x @ sae.W_enc + sae.b_enc, sae.k)

    def no_relu(sae, x):
        return topk_no_relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc, sae.k)

    def no_bias_decode(sae, z):
        return z @ sae.W_dec

    def loss_mean_over_all(sae, x):
        z = f["encode"](sae, x)
        x_hat = f["decode"](sae, z)
        return (x_hat - x).pow(2).mean(), x_hat, z

    for mistake, match in [(uncentred, "subtract the decoder bias"), (no_relu, "through a ReLU")]:
        check_rejects(lambda e, d, l: checks.check_topk_sae(e, d, l), mistake, f["decode"], f["sae_loss"],
                      match=match)
    check_rejects(lambda d, e, l: checks.check_topk_sae(e, d, l), no_bias_decode, f["encode"], f["sae_loss"],
                  match="z @ W_dec \\+ b_dec")
    check_rejects(lambda l, e, d: checks.check_topk_sae(e, d, l), loss_mean_over_all, f["encode"], f["decode"],
                  match="averaged over dimensions too")


def test_check_decoder_constraint():
    f, stub = _sae_functions(), _sae_functions("chapters")
    checks.check_decoder_constraint(f["remove_parallel_grad_"], f["normalise_decoder_"])
    check_rejects(checks.check_decoder_constraint, stub["remove_parallel_grad_"], f["normalise_decoder_"])

    @torch.no_grad()
    def along_columns(sae):
        W, grad = sae.W_dec, sae.W_dec.grad
        grad -= (grad * W).sum(0, keepdim=True) * W

    @torch.no_grad()
    def normalise_columns(sae):
        sae.W_dec /= sae.W_dec.norm(dim=0, keepdim=True)

    @torch.no_grad()
    def zero_grad(sae):
        sae.W_dec.grad.zero_()

    keep = f["normalise_decoder_"]
    check_rejects(checks.check_decoder_constraint, along_columns, keep, match="project along dim=-1")
    check_rejects(checks.check_decoder_constraint, zero_grad, keep, match="Remove only the component")
    check_rejects(checks.check_decoder_constraint, f["remove_parallel_grad_"], normalise_columns,
                  match="divide each row")


def test_check_auxk_loss():
    f, stub = _sae_functions(), _sae_functions("chapters")
    checks.check_auxk_loss(f["auxk_loss"])
    check_rejects(checks.check_auxk_loss, stub["auxk_loss"])

    def pieces(sae, x, dead, aux_k):
        pre = ((x - sae.b_dec) @ sae.W_enc + sae.b_enc)[:, dead]
        values, index = pre.topk(min(aux_k, pre.shape[1]), dim=-1)
        return torch.zeros_like(pre).scatter(-1, index, values), index

    def with_relu(sae, x, x_hat, dead, aux_k):
        z, _ = pieces(sae, x, dead, aux_k)
        return (z.relu() @ sae.W_dec[dead] - (x - x_hat).detach()).pow(2).sum(-1).mean()

    def all_latents(sae, x, x_hat, dead, aux_k):
        return f["auxk_loss"](sae, x, x_hat, torch.ones_like(dead), aux_k)

    def not_detached(sae, x, x_hat, dead, aux_k):
        z, _ = pieces(sae, x, dead, aux_k)
        return (z @ sae.W_dec[dead] - (x - x_hat)).pow(2).sum(-1).mean()

    def plus_bias(sae, x, x_hat, dead, aux_k):
        z, _ = pieces(sae, x, dead, aux_k)
        return (z @ sae.W_dec[dead] + sae.b_dec - (x - x_hat).detach()).pow(2).sum(-1).mean()

    check_rejects(checks.check_auxk_loss, with_relu, match="no ReLU")
    check_rejects(checks.check_auxk_loss, all_latents, match="only among the dead")
    check_rejects(checks.check_auxk_loss, not_detached, match="detach")
    check_rejects(checks.check_auxk_loss, plus_bias, match="has no offset")


def test_auxk_revives_dead_latents():
    """Half the latents start dead (a very negative encoder bias): the library's AuxK gives them a gradient and some
    fire again; without AuxK none does. (A ReLU on the auxiliary activations would leave them dead.)"""
    toy = ToyData.make(32, 16, p=4 / 32, seed=0)

    def stream(batch, generator):
        return toy.sample(batch, generator)[0]

    x_test = toy.sample(4000, torch.Generator().manual_seed(1))[0]
    alive = {}
    for label, aux_k in [("with", 8), ("without", 0)]:
        sae = SAE(16, 64, k=4, seed=0)
        with torch.no_grad():
            sae.b_enc[0, 32:] = -5.0
        train_sae(sae, stream, 200, batch_size=128, lr=1e-2, seed=0, dead_after=128, aux_k=aux_k, log_every=1000)
        alive[label] = float((evaluate(sae, x_test)["freq"][0, 32:] > 0).float().mean())
    assert alive["without"] == 0.0
    assert alive["with"] > 0.2, alive


def test_toy_data_per_feature_frequencies():
    """ToyData with one firing probability per feature fires each feature at its own rate (Zipf-like in part 2)."""
    p = torch.tensor([0.5, 0.2, 0.05, 0.01] * 4)
    toy = ToyData.make(16, 8, p=p, seed=0, group_size=2, correlation=0.7)
    _, a = toy.sample(40_000, torch.Generator().manual_seed(0))
    rate = (a > 0).float().mean(0)
    assert torch.allclose(rate, p, atol=0.01), rate
