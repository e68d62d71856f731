"""Chapter 05: every learner check passes on the solution, fails on the stub, and fails on the
mistakes learners plausibly make. Also unit tests of utils/grokking.py."""
import math

import pytest
import torch
import torch.nn.functional as F

from tests.notebook_functions import check_rejects, solution_and_stub
from utils.checks import CheckFailed
from utils.checks import grokking as checks
from utils.grokking import ModAddData, OneLayerTransformer, make_data, train_grokking

SLUG = "05_grokking"


def _reference_basis(p):
    return checks._reference_basis(p)


# ----------------------------------------------------------------------------- wrong implementations

def remove_cos_only(W, freqs, basis):
    coef = basis @ W
    coef[[2 * k - 1 for k in freqs]] = 0
    return basis.T @ coef


def remove_with_constant(W, freqs, basis):
    coef = basis @ W
    coef[[0] + [i for k in freqs for i in (2 * k - 1, 2 * k)]] = 0
    return basis.T @ coef


def remove_wrong_transpose(W, freqs, basis):
    coef = basis @ W
    coef[[i for k in freqs for i in (2 * k - 1, 2 * k)]] = 0
    return basis @ coef


def remove_off_by_one(W, freqs, basis):
    coef = basis @ W
    coef[[i for k in freqs for i in (2 * k, 2 * k + 1)]] = 0
    return basis.T @ coef


def remove_in_place(W, freqs, basis):
    coef = basis @ W
    coef[[i for k in freqs for i in (2 * k - 1, 2 * k)]] = 0
    W.copy_(basis.T @ coef)
    return W

def basis_unnormalised(p):
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.ones(p, dtype=torch.float64)]
    for k in range(1, p // 2 + 1):
        rows += [torch.cos(2 * math.pi * k * x / p), torch.sin(2 * math.pi * k * x / p)]
    return torch.stack(rows).float()


def basis_off_by_one(p):
    """Frequency k - 1 ... in the rows meant for k: the classic index slip (cos rows use row // 2)."""
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.ones(p, dtype=torch.float64)]
    for k in range(1, p // 2 + 1):
        rows += [torch.cos(2 * math.pi * (k + 1) * x / p), torch.sin(2 * math.pi * (k + 1) * x / p)]
    basis = torch.stack(rows)
    return (basis / basis.norm(dim=1, keepdim=True)).float()


def basis_swapped(p):
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.ones(p, dtype=torch.float64)]
    for k in range(1, p // 2 + 1):
        rows += [torch.sin(2 * math.pi * k * x / p), torch.cos(2 * math.pi * k * x / p)]
    basis = torch.stack(rows)
    return (basis / basis.norm(dim=1, keepdim=True)).float()


def basis_float64(p):
    return _reference_basis(p).double()


def norms_with_constant(W, basis):
    """Pairs up rows (0,1), (2,3), ...: the constant leaks into frequency 1 and everything shifts."""
    sq = ((basis @ W)[:-1] ** 2).sum(-1)
    return sq.reshape(-1, 2).sum(-1).sqrt()


def norms_squared(W, basis):
    return ((basis @ W)[1:] ** 2).sum(-1).reshape(-1, 2).sum(-1)


def norms_cos_only(W, basis):
    return ((basis @ W)[1::2] ** 2).sum(-1).sqrt()


def fractions_with_constant(acts, basis):
    coef = torch.einsum("ia,jb,abn->ijn", basis, basis, acts)
    power = coef ** 2
    total = power.sum((0, 1))
    out = []
    for k in range(1, (basis.shape[0] - 1) // 2 + 1):
        idx = [0, 2 * k - 1, 2 * k]
        block = power[idx][:, idx].clone()
        block[0, 0] = 0
        out.append(block.sum((0, 1)) / total)
    return torch.stack(out, 1)


def fractions_products_only(acts, basis):
    coef = torch.einsum("ia,jb,abn->ijn", basis, basis, acts)
    power = coef ** 2
    power[0, 0] = 0
    total = power.sum((0, 1))
    out = []
    for k in range(1, (basis.shape[0] - 1) // 2 + 1):
        idx = [2 * k - 1, 2 * k]
        out.append(power[idx][:, idx].sum((0, 1)) / total)
    return torch.stack(out, 1)


def fractions_off_by_one(acts, basis):
    coef = torch.einsum("ia,jb,abn->ijn", basis, basis, acts)
    power = coef ** 2
    power[0, 0] = 0
    total = power.sum((0, 1))
    out = []
    n = (basis.shape[0] - 1) // 2
    for k in range(1, n + 1):
        j = k % n + 1                                   # looks at frequency k + 1
        idx = [0, 2 * j - 1, 2 * j]
        out.append(power[idx][:, idx].sum((0, 1)) / total)
    return torch.stack(out, 1)


def _component(logits, freqs, basis, make_dirs):
    out = torch.zeros_like(logits)
    for k in freqs:
        for u in make_dirs(basis[2 * k - 1], basis[2 * k]):
            out += u[:, :, None] * torch.einsum("ab,abc->c", u, logits)[None, None, :]
    return out


def component_unnormalised(logits, freqs, basis):
    return _component(logits, freqs, basis, lambda c, s: [torch.outer(c, c) - torch.outer(s, s),
                                                          torch.outer(s, c) + torch.outer(c, s)])


def component_difference(logits, freqs, basis):
    """cos(w(a-b)) and sin(w(a-b)) instead of a + b: a sign slip in the identities."""
    r = math.sqrt(2)
    return _component(logits, freqs, basis, lambda c, s: [(torch.outer(c, c) + torch.outer(s, s)) / r,
                                                          (torch.outer(s, c) - torch.outer(c, s)) / r])


def component_cos_only(logits, freqs, basis):
    return _component(logits, freqs, basis, lambda c, s: [(torch.outer(c, c) - torch.outer(s, s)) / math.sqrt(2)])


def component_off_by_one(logits, freqs, basis):
    sol, _ = solution_and_stub(SLUG, "key_freq_component")
    return sol(logits, [k + 1 for k in freqs], basis)


def _measures(train_rows_for_restricted: bool, test_rows_for_excluded: bool):
    sol, _ = solution_and_stub(SLUG, "key_freq_component")

    def progress_measures(logits, labels, key_freqs, basis, train_mask):
        p = logits.shape[0]
        kept = sol(logits, key_freqs, basis).reshape(p * p, -1).double()
        removed = logits.reshape(p * p, -1).double() - kept
        r_rows = train_mask if train_rows_for_restricted else ~train_mask
        e_rows = ~train_mask if test_rows_for_excluded else train_mask
        return (F.cross_entropy(kept[r_rows], labels[r_rows]).item(),
                F.cross_entropy(removed[e_rows], labels[e_rows]).item())
    return progress_measures


def component_float32_output(logits, freqs, basis):
    """Builds its output with torch.zeros(...): the default dtype and device, not the logits'."""
    out = torch.zeros(logits.shape)
    for k in freqs:
        cos_k, sin_k = basis[2 * k - 1], basis[2 * k]
        for u in [(torch.outer(cos_k, cos_k) - torch.outer(sin_k, sin_k)) / math.sqrt(2),
                  (torch.outer(sin_k, cos_k) + torch.outer(cos_k, sin_k)) / math.sqrt(2)]:
            out += u[:, :, None] * torch.einsum("ab,abc->c", u, logits)[None, None, :]
    return out


def measures_swapped_roles(logits, labels, key_freqs, basis, train_mask):
    """Restricted and excluded logits exchanged."""
    sol, _ = solution_and_stub(SLUG, "key_freq_component")
    p = logits.shape[0]
    kept = sol(logits, key_freqs, basis).reshape(p * p, -1).double()
    removed = logits.reshape(p * p, -1).double() - kept
    return (F.cross_entropy(removed[~train_mask], labels[~train_mask]).item(),
            F.cross_entropy(kept[train_mask], labels[train_mask]).item())


# Each plausible mistake with the words its failure message must contain (the mistake, named).
CASES = {
    "fourier_basis": (checks.check_fourier_basis, [(basis_unnormalised, "not of unit length"),
                                                   (basis_off_by_one, "off-by-one in k"),
                                                   (basis_swapped, "order of cos and sin"),
                                                   (basis_float64, "dtype torch.float64, expected torch.float32")]),
    "freq_norms": (checks.check_freq_norms, [(norms_with_constant, "leave out row 0"),
                                             (norms_squared, r"L2 norm \(not its square\)"),
                                             (norms_cos_only, "Combine the cos row .* and the sin row")]),
    "neuron_freq_fractions": (checks.check_neuron_freq_fractions,
                              [(fractions_with_constant, r"Leave the constant \(0, 0\) coefficient out"),
                               (fractions_products_only, "terms in a alone"),
                               (fractions_off_by_one, "Index i is frequency i \\+ 1")]),
    "key_freq_component": (checks.check_key_freq_component,
                           [(component_unnormalised, "must have unit length"),
                            (component_difference, "a\\+b identities"),
                            (component_cos_only, "keep both directions"),
                            (component_off_by_one, r"rows 2k-1 \(cos\) and 2k \(sin\)"),
                            (component_float32_output, "float64 logits came back as torch.float32")]),
    "progress_measures": (checks.check_progress_measures,
                          [(_measures(True, False), "wrong split"), (_measures(False, True), "wrong split"),
                           (_measures(True, True), "wrong split"),
                           (measures_swapped_roles, "Keep only the key-frequency component")]),
    "remove_frequencies": (checks.check_remove_frequencies,
                           [(remove_cos_only, "remove both"), (remove_with_constant, "constant"),
                            (remove_wrong_transpose, "basis.T"), (remove_off_by_one, r"rows 2k-1 and 2k"),
                            (remove_in_place, "in place")]),
}


@pytest.mark.parametrize("name", CASES)
def test_check_passes_on_solution(name, capsys):
    check, _ = CASES[name]
    solution, _ = solution_and_stub(SLUG, name)
    check(solution)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("name", CASES)
def test_check_fails_on_stub(name):
    check, _ = CASES[name]
    _, stub = solution_and_stub(SLUG, name)
    with pytest.raises(CheckFailed, match="not written yet"):
        check(stub)


@pytest.mark.parametrize("name,index", [(n, i) for n, (_, wrongs) in CASES.items() for i in range(len(wrongs))])
def test_check_fails_on_plausible_mistake(name, index):
    check, wrongs = CASES[name]
    wrong, match = wrongs[index]
    check_rejects(check, wrong, match=match)


def test_progress_measures_on_an_imbalanced_split():
    """A split with 10% training rows (unequal counts): the solution's losses equal per-split cross-entropies."""
    sol, _ = solution_and_stub(SLUG, "progress_measures")
    p = 11
    basis = checks._reference_basis(p)
    logits = torch.randn(p, p, p, generator=torch.Generator().manual_seed(5))
    labels = ((torch.arange(p)[:, None] + torch.arange(p)[None, :]) % p).flatten()
    train_mask = torch.zeros(p * p, dtype=torch.bool)
    train_mask[torch.randperm(p * p, generator=torch.Generator().manual_seed(6))[:12]] = True
    kept = checks._project(logits, p, [2]).reshape(p * p, p)
    removed = logits.double().reshape(p * p, p) - kept
    restricted, excluded = sol(logits, labels, [2], basis, train_mask)
    assert restricted == pytest.approx(F.cross_entropy(kept[~train_mask], labels[~train_mask]).item(), abs=1e-4)
    assert excluded == pytest.approx(F.cross_entropy(removed[train_mask], labels[train_mask]).item(), abs=1e-4)


# ----------------------------------------------------------------------------- utils/grokking.py
def test_data_split_and_labels():
    data = make_data(11, 0.3, seed=0)
    assert len(data.train_idx) + len(data.test_idx) == 121
    assert set(data.train_idx.tolist()).isdisjoint(data.test_idx.tolist())
    a, b, eq = data.tokens.T
    assert torch.equal(data.labels, (a + b) % 11) and torch.all(eq == 11)
    corrupted = make_data(11, 0.5, seed=0, corrupt_frac=0.2)
    wrong = (corrupted.labels != corrupted.clean_labels)
    assert wrong.sum() == round(0.2 * len(corrupted.train_idx)) and not wrong[corrupted.test_idx].any()
    shuffled = make_data(11, 0.5, seed=0, shuffle_labels=True)
    assert torch.equal(shuffled.labels[shuffled.test_idx], shuffled.clean_labels[shuffled.test_idx])
    train = shuffled.train_idx
    assert sorted(shuffled.labels[train].tolist()) == sorted(shuffled.clean_labels[train].tolist())


def test_last_position_forward_matches_full_forward():
    torch.manual_seed(0)
    model = OneLayerTransformer(7, d_model=16, n_heads=2, d_mlp=8)
    tokens = make_data(7, 0.5).tokens
    cache = {}
    last = model(tokens, last_only=True, cache=cache)
    full = model(tokens, last_only=False)
    torch.testing.assert_close(last, full[:, -1], atol=1e-5, rtol=1e-5)
    assert cache["pattern"].shape == (49, 2, 3) and cache["mlp_post"].shape == (49, 8)
    torch.testing.assert_close(cache["pattern"].sum(-1), torch.ones(49, 2))


def test_train_grokking_returns_cpu_model_and_checkpoints():
    """Trains on utils.env.get_device() (the GPU when present); what comes back sits next to the data, on the CPU."""
    data = make_data(7, 0.5, seed=0)
    runs = [train_grokking(data, 6, seed=1, log_every=2, checkpoint_every=2, d_model=16, n_heads=2, d_mlp=8,
                           device="cpu") for _ in range(2)]
    assert runs[0].history == runs[1].history                       # deterministic for a seed
    assert next(runs[0].model.parameters()).device.type == "cpu"
    assert all(v.device.type == "cpu" for state in runs[0].checkpoints.values() for v in state.values())
    logits = runs[0].model_at(max(runs[0].checkpoints))(data.tokens)
    torch.testing.assert_close(logits, runs[0].model(data.tokens))
    moved = data.to("cpu")
    assert torch.equal(moved.train_mask, data.train_mask) and moved.p == data.p


def test_train_grokking_follows_get_device(monkeypatch):
    """A stand-in for a GPU: whatever utils.env.get_device() names, the model and the data are moved there."""
    import utils.env

    stand_in = torch.device("cuda", 7)
    moved = []
    monkeypatch.setattr(utils.env, "get_device", lambda: stand_in)
    for name, cls in (("model", OneLayerTransformer), ("data", ModAddData)):
        monkeypatch.setattr(cls, "to", lambda self, device, name=name: moved.append((name, torch.device(device)))
                            or self)
    train_grokking(make_data(7, 0.5), 2, log_every=1, checkpoint_every=1, d_model=8, n_heads=2, d_mlp=16)
    assert ("model", stand_in) in moved and ("data", stand_in) in moved


def test_checkpoints_keep_their_own_cadence():
    """Checkpoints every checkpoint_every steps whatever log_every is; step 0 is the initialisation."""
    run = train_grokking(make_data(7, 0.5), 10, log_every=4, checkpoint_every=3, d_model=8, n_heads=2, d_mlp=16,
                         device="cpu")
    assert sorted(run.checkpoints) == [0, 3, 6, 9, 10]
    assert [row["step"] for row in run.history] == [0, 4, 8, 10]
    torch.manual_seed(0)
    init = OneLayerTransformer(7, 8, 2, 16)
    assert all(torch.equal(init.state_dict()[k], v) for k, v in run.checkpoints[0].items())
    assert all(torch.equal(run.model.state_dict()[k], v) for k, v in run.checkpoints[10].items())
