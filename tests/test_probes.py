"""Chapter 02: the learner checks catch plausible mistakes; utils.data and utils.controls do what they say."""
from __future__ import annotations

import keyword

import numpy as np
import pytest
import torch

from tests.notebook_functions import check_rejects as _expect_fail, solution_and_stub
from utils.checks import probes as probe_checks
from utils.controls import (random_orthogonal, random_weights_copy, spectrum_matched, spectrum_matched_copy,
                            weight_matrices)
from utils.data import (CATEGORIES, Document, align_char_labels, bracket_depths, collect_resid, labelled_code_corpus,
                        split_documents, stdlib_docstrings, stdlib_sources, token_categories)

SLUG = "02_probes"


# ------------------------------------------------------------------ learner checks: solution, stub, mistakes
def _naive_depths(source):
    """Mistake: counts bracket characters, including those inside strings and comments."""
    depth, out = 0, []
    for ch in source:
        if ch in ")]}":
            depth -= 1
        out.append(depth)
        if ch in "([{":
            depth += 1
    return np.array(out, dtype=np.int64)


def _inner_bracket_depths(source):
    """Mistake: an opening bracket counted inside its own level (f( → depth 1 at '(')."""
    solution = solution_and_stub(SLUG, "bracket_depths")[0]
    out = solution(source)
    for i, ch in enumerate(source):
        if ch in "([{" and (i == 0 or out[i] <= out[min(i + 1, len(source) - 1)]):
            out[i] += 1
    return out


def test_check_bracket_depths():
    solution, stub = solution_and_stub(SLUG, "bracket_depths")
    probe_checks.check_bracket_depths(solution)
    _expect_fail(probe_checks.check_bracket_depths, stub)
    _expect_fail(probe_checks.check_bracket_depths, _naive_depths, match="inside strings and comments are text")
    _expect_fail(probe_checks.check_bracket_depths, _inner_bracket_depths, match="belongs to the level outside it")
    _expect_fail(probe_checks.check_bracket_depths, lambda s: list(bracket_depths(s)),   # a list, not an array
                 match="should be a numpy array")
    _expect_fail(probe_checks.check_bracket_depths, lambda s: bracket_depths(s).astype(np.float64),
                 match="dtype float64; labels are integers")


def _per_occurrence_control(types, labels, seed):
    """Mistake: a fresh random label for every occurrence instead of one per type."""
    rng = np.random.default_rng(seed)
    valid = labels >= 0
    classes, counts = np.unique(labels[valid], return_counts=True)
    out = np.full(len(labels), -1, dtype=np.int64)
    out[valid] = rng.choice(classes, size=valid.sum(), p=counts / counts.sum())
    return out


def _uniform_control(types, labels, seed):
    """Mistake: per-type labels drawn uniformly over the classes, not from the label distribution."""
    rng = np.random.default_rng(seed)
    valid = labels >= 0
    classes = np.unique(labels[valid])
    vocab = np.unique(types[valid])
    lut = dict(zip(vocab.tolist(), rng.choice(classes, size=len(vocab)).tolist()))
    return np.array([lut[t] if v else -1 for t, v in zip(types.tolist(), valid)], dtype=np.int64)


def _type_distribution_control(types, labels, seed):
    """Mistake: labels drawn from their distribution over *types*, not over tokens (frequent types count once)."""
    rng = np.random.default_rng(seed)
    valid = labels >= 0
    vocab, first = np.unique(types[valid], return_index=True)
    classes, counts = np.unique(labels[valid][first], return_counts=True)
    lut = dict(zip(vocab.tolist(), rng.choice(classes, size=len(vocab), p=counts / counts.sum()).tolist()))
    return np.array([lut[t] if v else -1 for t, v in zip(types.tolist(), valid)], dtype=np.int64)


def _majority_per_type_control(types, labels, seed):
    """Mistake: the control copies the real label of each type (it is then the token-identity task)."""
    out = labels.copy()
    for t in np.unique(types):
        mask = (types == t) & (labels >= 0)
        if mask.any():
            out[mask] = np.bincount(labels[mask]).argmax()
    return out


def test_check_control_task():
    solution, stub = solution_and_stub(SLUG, "control_task")
    probe_checks.check_control_task(solution)
    _expect_fail(probe_checks.check_control_task, stub)
    _expect_fail(probe_checks.check_control_task, _per_occurrence_control, match="same token type got different")
    _expect_fail(probe_checks.check_control_task, _uniform_control, match="empirical distribution")
    _expect_fail(probe_checks.check_control_task, _type_distribution_control, match="over labelled \\*tokens\\*")
    _expect_fail(probe_checks.check_control_task, _majority_per_type_control, match="not derived from the real label")
    _expect_fail(probe_checks.check_control_task, lambda types, labels, seed: solution(types, labels, 0),
                 match="different seed gave the same")


def _identity_unseen_zero(train_types, train_labels, test_types):
    """Mistake: unseen types get label 0 instead of the majority label."""
    solution = solution_and_stub(SLUG, "token_identity_baseline")[0]
    out = solution(train_types, train_labels, test_types)
    out[~np.isin(test_types, train_types)] = 0
    return out


def _identity_last_seen(train_types, train_labels, test_types):
    """Mistake: the last label seen for each type, not the most frequent."""
    table = dict(zip(train_types.tolist(), train_labels.tolist()))
    majority = np.bincount(train_labels).argmax()
    return np.array([table.get(t, majority) for t in test_types.tolist()], dtype=np.int64)


def test_check_token_identity_baseline():
    solution, stub = solution_and_stub(SLUG, "token_identity_baseline")
    probe_checks.check_token_identity_baseline(solution)
    _expect_fail(probe_checks.check_token_identity_baseline, stub)
    _expect_fail(probe_checks.check_token_identity_baseline, _identity_unseen_zero, match="majority label")
    _expect_fail(probe_checks.check_token_identity_baseline, _identity_last_seen, match="most frequent")


def _selectivity_on_train(fit, X_train, y_train, c_train, X_test, y_test, c_test):
    """Mistake: accuracies measured on the training data."""
    task = float((fit(X_train, y_train)(X_train) == y_train).mean())
    control = float((fit(X_train, c_train)(X_train) == c_train).mean())
    return {"task": task, "control": control, "selectivity": task - control}


def _selectivity_one_probe(fit, X_train, y_train, c_train, X_test, y_test, c_test):
    """Mistake: one probe trained on the task, scored against both label sets."""
    pred = fit(X_train, y_train)(X_test)
    task, control = float((pred == y_test).mean()), float((pred == c_test).mean())
    return {"task": task, "control": control, "selectivity": task - control}


def test_check_selectivity():
    solution, stub = solution_and_stub(SLUG, "selectivity")
    probe_checks.check_selectivity(solution)
    _expect_fail(probe_checks.check_selectivity, stub)
    _expect_fail(probe_checks.check_selectivity, _selectivity_on_train, match="measured on the training data")
    _expect_fail(probe_checks.check_selectivity, _selectivity_one_probe, match="train two probes")


def _gaussian_same_norm(weight, generator):
    """Mistake: a random matrix with the same Frobenius norm (the spectrum is lost)."""
    g = torch.randn(weight.shape, generator=generator)
    return g * weight.norm() / g.norm()


def _one_sided(weight, generator):
    """Mistake: only the left singular vectors are randomised."""
    u, s, vh = torch.linalg.svd(weight, full_matrices=False)
    q, _ = torch.linalg.qr(torch.randn(weight.shape[0], len(s), generator=generator))
    return (q * s) @ vh


def _permuted_entries(weight, generator):
    """Mistake: shuffling the entries keeps their values but not the singular values."""
    flat = weight.flatten()
    return flat[torch.randperm(len(flat), generator=generator)].reshape(weight.shape)


def _unfolded_qr(weight, generator):
    """Mistake: Q of a plain QR as the random factor (not uniformly random: R's diagonal signs are fixed)."""
    m, n = weight.shape
    r = min(m, n)
    s = torch.linalg.svdvals(weight.double())
    q1, _ = torch.linalg.qr(torch.randn(m, r, generator=generator, dtype=torch.float64))
    q2, _ = torch.linalg.qr(torch.randn(n, r, generator=generator, dtype=torch.float64))
    return ((q1 * s) @ q2.T).to(weight.dtype)


def test_check_spectrum_matched():
    solution, stub = solution_and_stub(SLUG, "spectrum_matched")
    probe_checks.check_spectrum_matched(solution)
    probe_checks.check_spectrum_matched(spectrum_matched)          # the library's version passes too
    _expect_fail(probe_checks.check_spectrum_matched, stub)
    _expect_fail(probe_checks.check_spectrum_matched, _gaussian_same_norm, match="does not keep them")
    _expect_fail(probe_checks.check_spectrum_matched, _one_sided, match="rotate \\*both\\* sides")
    _expect_fail(probe_checks.check_spectrum_matched, _permuted_entries, match="singular values of spectrum_matched")
    _expect_fail(probe_checks.check_spectrum_matched, lambda w, g: w.clone(),   # nothing randomised
                 match="top singular vectors survived")
    _expect_fail(probe_checks.check_spectrum_matched, _unfolded_qr, match="sign of R's diagonal|signs of R's diagonal")
    _expect_fail(probe_checks.check_spectrum_matched, lambda w, g: _unfolded_qr(w, g).float(),   # dtype lost
                 match="float64 weight came back as torch.float32")


# ------------------------------------------------------------------ utils.data
def test_token_categories_and_depths_by_hand():
    source = "if x[0] == 'a(': # (\n    y = 2.5\n"
    cats = token_categories(source)
    name = {c: i for i, c in enumerate(CATEGORIES)}
    assert cats[0] == cats[1] == name["keyword"]                 # if
    assert cats[2] == -1                                         # space
    assert cats[3] == name["name"] and cats[4] == name["operator"] and cats[5] == name["number"]
    assert (cats[source.index("'a('"): source.index("'a('") + 4] == name["string"]).all()
    assert (cats[source.index("# ("): source.index("# (") + 3] == name["comment"]).all()
    assert cats[source.index("2.5")] == name["number"]
    depths = bracket_depths(source)
    assert depths[source.index("[")] == 0 and depths[source.index("0")] == 1 and depths[source.index("]")] == 0
    assert depths.max() == 1                                    # the '(' in the string and comment do not count


def test_align_char_labels():
    text = "ab(c  d"
    char_labels = np.array([1, 1, 2, 1, -1, -1, 1])
    offsets = [(0, 2), (2, 3), (2, 4), (4, 6), (5, 7)]
    out = align_char_labels(offsets, char_labels, text)
    assert out.tolist() == [1, 2, -1, -1, 1]                     # mixed span and pure whitespace give -1
    out = align_char_labels(offsets, char_labels, text, uniform=False)
    assert out.tolist() == [1, 2, 2, -1, 1]                      # first non-space character


def test_documents_are_deterministic_and_split_by_name():
    five, eight = stdlib_sources(5, seed=0), stdlib_sources(8, seed=0)
    assert [d.name for d in five] == [d.name for d in eight[:5]]
    assert [d.name for d in stdlib_sources(5, seed=1)] != [d.name for d in five]
    assert all(not {"test", "tests", "idlelib"} & set(d.name.split("/")[:-1]) for d in eight)
    docs = [Document(f"file{i}.py", "") for i in range(200)]
    train, test = split_documents(docs, test_fraction=0.3, seed=0)
    assert {d.name for d in train}.isdisjoint(d.name for d in test) and len(train) + len(test) == 200
    assert 0.2 < len(test) / 200 < 0.4
    sub_train, sub_test = split_documents(docs[:50], test_fraction=0.3, seed=0)
    assert {d.name for d in sub_test} == {d.name for d in test if d.name in {x.name for x in docs[:50]}}


def test_docstrings_are_prose():
    docs = stdlib_docstrings(5, max_files=20)
    assert len(docs) == 5 and all(len(d.text) >= 200 and ":" in d.name for d in docs)
    assert all(d.text.count(" ") > 20 for d in docs)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer
    from utils.models import convert_embedded
    return AutoTokenizer.from_pretrained(str(convert_embedded()))


def test_labelled_code_corpus(tokenizer):
    docs = stdlib_sources(6, seed=0)
    corpus = labelled_code_corpus(tokenizer, docs, tokens_per_doc=64)
    assert len(corpus.names) >= 4
    for tokens, cats, depths, text in zip(corpus.tokens, corpus.labels["category"], corpus.labels["depth"],
                                          corpus.texts):
        assert tokens[0] == tokenizer.bos_token_id and len(tokens) == 65 and len(cats) == len(depths) == 64
        assert tokenizer.decode(tokens[1:]) == text                      # the labels describe exactly this text
        for token, cat in zip(tokens[1:].tolist(), cats.tolist()):
            piece = tokenizer.decode([token]).strip()
            if cat == CATEGORIES.index("keyword"):
                assert any(piece in kw for kw in keyword.kwlist), piece
            if cat == CATEGORIES.index("number"):
                assert any(ch.isdigit() for ch in piece) or piece in {".", "x", "e"}, piece
        assert depths.min() >= -1 and depths.max() <= 3 and (depths >= 0).mean() > 0.5   # -1: whitespace tokens
    assert len(corpus.flat("category")) == len(corpus.flat_types()) == sum(len(t) - 1 for t in corpus.tokens)


# ------------------------------------------------------------------ utils.controls
@pytest.fixture()
def tiny():
    from utils.models import tiny_transformer
    return tiny_transformer(n_layers=2, d_model=32, n_heads=4, d_vocab=40, n_ctx=16, attn_only=False,
                            normalization_type="LN", seed=0, device="cpu")


def test_collect_resid_matches_run_with_cache_and_drops_padding(tiny):
    seqs = [torch.tensor([1, 5, 7, 9, 2]), torch.tensor([1, 3, 4])]
    acts = collect_resid(tiny, seqs, [0, 1], batch_size=2, progress=False)
    assert acts[1].shape == (4 + 2, 32)
    for i, seq in enumerate(seqs):
        _, cache = tiny.run_with_cache(seq[None])
        start = 0 if i == 0 else 4
        torch.testing.assert_close(acts[1][start: start + len(seq) - 1], cache["blocks.1.hook_resid_pre"][0, 1:])
    final = collect_resid(tiny, seqs, [2], batch_size=2, progress=False)[2]        # layer n_layers: the last output
    _, cache = tiny.run_with_cache(seqs[0][None])
    torch.testing.assert_close(final[:4], cache["blocks.1.hook_resid_post"][0, 1:])
    for bad in (3, -1):
        with pytest.raises(IndexError, match="out of range"):
            collect_resid(tiny, seqs, [bad], progress=False)


def test_random_orthogonal_both_branches():
    gen = torch.Generator().manual_seed(0)
    for n, k in [(50, 20), (9000, 6)]:
        q = random_orthogonal(n, k, gen)
        torch.testing.assert_close(q.T @ q, torch.eye(k, dtype=q.dtype), atol=1e-8, rtol=0)


def test_spectrum_matched_large_matrix_float32_branch():
    w = torch.randn(300, 100) * torch.linspace(0.1, 2, 100)
    out = spectrum_matched(w, torch.Generator().manual_seed(0), float64_max_elements=1000)
    s, s2 = np.linalg.svd(w.numpy(), compute_uv=False), np.linalg.svd(out.numpy(), compute_uv=False)
    np.testing.assert_allclose(s2, s, rtol=2e-3)
    assert out.dtype == w.dtype


def test_spectrum_matched_copy_keeps_singular_values(tiny):
    before = {n: p.detach().clone() for n, p in tiny.named_parameters()}
    copy = spectrum_matched_copy(tiny, seed=0)
    for name, p in tiny.named_parameters():
        assert torch.equal(p, before[name]), "the original must not change"
    originals = weight_matrices(tiny)
    for name, p in weight_matrices(copy).items():
        w = originals[name].detach()
        torch.testing.assert_close(torch.linalg.svdvals(p.detach()), torch.linalg.svdvals(w), atol=1e-4, rtol=1e-4)
        assert not torch.allclose(p, w)
    for (name, p), (_, q) in zip(tiny.named_parameters(), copy.named_parameters()):
        if p.dim() == 1:
            assert torch.equal(p, q), f"1-D parameter {name} should be kept"
    again = spectrum_matched_copy(tiny, seed=0)
    for p, q in zip(copy.parameters(), again.parameters()):
        assert torch.equal(p, q)
    tokens = torch.randint(0, 40, (2, 8))
    assert torch.isfinite(copy(tokens)).all()


def test_random_weights_copy_is_fresh_init(tiny):
    before = {n: p.detach().clone() for n, p in tiny.named_parameters()}
    copy = random_weights_copy(tiny, seed=0, std=0.05)
    for name, p in tiny.named_parameters():
        assert torch.equal(p, before[name])
    for name, p in copy.named_parameters():
        if p.dim() >= 2:
            assert abs(p.std().item() - 0.05) < 0.01, name
        elif "ln" in name.lower() and name.endswith("weight"):
            assert torch.all(p == 1), name
        else:
            assert torch.all(p == 0), name
    inplace = random_weights_copy(tiny, seed=0, std=0.05, inplace=True)
    assert inplace is tiny


@pytest.mark.lm
def test_random_weights_copy_of_the_lm_keeps_ties_and_the_original(lm):
    embed = lm.original_model.model.embed_tokens.weight
    before = embed[:5, :5].clone()
    copy = random_weights_copy(lm, seed=0)
    inner = copy.original_model
    assert inner.lm_head.weight is inner.model.embed_tokens.weight, "tied embeddings must stay tied"
    assert torch.equal(embed[:5, :5], before), "the original LM must not change"
    assert abs(inner.model.embed_tokens.weight.std().item() - 0.02) < 0.002
    tokens = lm.to_tokens("def f(x):")
    with torch.no_grad():
        _, cache = copy.run_with_cache(tokens, names_filter=["blocks.2.hook_resid_pre"], stop_at_layer=3)
    assert torch.isfinite(cache["blocks.2.hook_resid_pre"]).all()


def _orthogonal_leace(X, labels):
    """Mistake: the plain orthogonal projection onto the cross-covariance (no whitening): erases, but not minimally."""
    from utils.erasure import Eraser
    X = torch.as_tensor(X, dtype=torch.float64)
    onehot = torch.nn.functional.one_hot(torch.as_tensor(labels)).double()
    cross = (X - X.mean(0)).T @ (onehot - onehot.mean(0)) / len(X)
    u, s, _ = torch.linalg.svd(cross, full_matrices=False)
    eye = torch.eye(X.shape[1], dtype=torch.float64)
    return Eraser(X.mean(0), eye, eye, u[:, s > s.max() * 1e-6])


def _uncentred_leace(X, labels):
    """Mistake: cross-covariance of the raw activations with the raw one-hot labels (nothing centred)."""
    solution = solution_and_stub(SLUG, "leace")[0]
    eraser = solution(X, labels)
    X = torch.as_tensor(X, dtype=torch.float64)
    onehot = torch.nn.functional.one_hot(torch.as_tensor(labels)).double()
    u, s, _ = torch.linalg.svd(eraser.whiten @ (X.T @ onehot / len(X)), full_matrices=False)
    return eraser._replace(basis=u[:, s > s.max() * 1e-6])


def _no_mean_leace(X, labels):
    """Mistake: the edit is applied to x, not to x − mean."""
    eraser = solution_and_stub(SLUG, "leace")[0](X, labels)
    return eraser._replace(mean=torch.zeros_like(eraser.mean))


def _whiten_twice_leace(X, labels):
    """Mistake: Σ^(-1/2) used on both sides (unwhiten should be its inverse, Σ^(1/2))."""
    eraser = solution_and_stub(SLUG, "leace")[0](X, labels)
    return eraser._replace(unwhiten=eraser.whiten)


def test_check_leace():
    solution, stub = solution_and_stub(SLUG, "leace")
    probe_checks.check_leace(solution)
    _expect_fail(probe_checks.check_leace, stub)
    _expect_fail(probe_checks.check_leace, _orthogonal_leace, match="needs the whitening")
    _expect_fail(probe_checks.check_leace, _uncentred_leace, match="Centre X")
    _expect_fail(probe_checks.check_leace, _no_mean_leace, match="moved the mean")
    _expect_fail(probe_checks.check_leace, _whiten_twice_leace, match="class means still differ")


def test_random_like_eraser_keeps_whitening_and_rank():
    """The control eraser differs from the real one only in its subspace: same rank, same whitened variance removed."""
    from utils.erasure import Eraser
    X, labels = probe_checks._erasure_data()
    eraser = solution_and_stub(SLUG, "leace")[0](X, labels)
    control = eraser.random_like(torch.Generator().manual_seed(0))
    assert isinstance(control, Eraser) and control.rank == eraser.rank
    assert torch.equal(control.whiten, eraser.whiten) and torch.equal(control.mean, eraser.mean)
    assert torch.allclose(control.basis.T @ control.basis, torch.eye(control.rank, dtype=torch.float64), atol=1e-10)
    # each erasure removes `rank` units of whitened variance
    for e in (eraser, control):
        removed = ((X.double() - e.erase(X).double()) - 0) @ e.whiten.T
        assert abs(float((removed ** 2).sum(1).mean()) - e.rank) < 0.05 * e.rank
    assert probe_checks._class_mean_gap(control.erase(X), labels) > 0.05     # a random subspace leaves the labels


def test_stash_embedding_restores_the_trained_embedding():
    from utils.controls import stash_embedding

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(40, 6)

        def get_input_embeddings(self):
            return self.embed

    model = Tiny()
    trained = model.embed.weight.detach().clone()
    restore = stash_embedding(model)
    with torch.no_grad():
        model.embed.weight.normal_()
    restore()
    assert torch.equal(model.embed.weight, trained)
