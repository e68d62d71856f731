"""Control models: the same architecture without what training put into the weights.

A probe that reads a property from a trained model's activations has shown something only
if the same probe does worse on a model that never learned anything. Two such models:

* :func:`random_weights_copy` — the architecture with freshly initialised weights, the way
  the model was initialised before training (Zhang & Bowman 2018; Voita & Titov 2020,
  arXiv 2003.12298). Its activations are much smaller than the trained model's, so a weak
  probe on it could be blamed on scale.
* :func:`spectrum_matched_copy` — every weight matrix ``W = U S Vᵀ`` replaced by
  ``Q1 S Q2ᵀ`` with random orthogonal ``Q1, Q2``. Each matrix keeps its singular values
  (so its gain, norm and rank, and the activation scales that follow from them) and
  loses every learned direction. A probe that still fails here cannot blame scale.

Conventions shared by both (explained once here):

* "Weight matrix" means every parameter with two or more dimensions, the token embedding
  included. Parameters with more than two dimensions (TransformerLens's ``W_Q``
  ``[head, d_model, d_head]``) are treated as a stack of matrices over the last two axes.
* One-dimensional parameters: normalisation gains and biases. The random copy resets them
  as at initialisation (gains 1, biases 0). The spectrum-matched copy *keeps* them: a gain
  vector is a diagonal scale, keeping it keeps each layer's activation scale, and it carries
  no learned direction once the matrices around it are random.
* Tied parameters (SmolLM2 shares its embedding and unembedding) stay tied: values are
  written into the existing tensors, never into new ones.
* Both functions return a deep copy by default. ``inplace=True`` overwrites the given model
  instead, which halves peak memory (one 135M-parameter model is about 0.55 GB in float32);
  the original weights are then gone, so reload the model if you need it again.
"""
from __future__ import annotations

import copy
import tempfile

import torch


def _copy(bridge):
    """A deep copy of a TransformerBridge with its own weights.

    ``copy.deepcopy`` of a bridge breaks its internal weak references, so a Hugging Face
    model is copied and wrapped in a new bridge, and a native bridge is rebuilt from its
    config and given the same state.
    """
    from transformer_lens.model_bridge import TransformerBridge
    inner = getattr(bridge, "original_model", None)
    device = next(bridge.parameters()).device
    dtype = next(bridge.parameters()).dtype
    if inner is None or not isinstance(bridge, TransformerBridge):
        return copy.deepcopy(bridge)
    if hasattr(inner, "config") and hasattr(inner, "generation_config"):   # a transformers model
        return TransformerBridge.boot_transformers(bridge.cfg.model_name, hf_model=copy.deepcopy(inner),
                                                   tokenizer=bridge.tokenizer, device=device, dtype=dtype).eval()
    clone = TransformerBridge.boot_native(copy.deepcopy(bridge.cfg), tokenizer=bridge.tokenizer, device=device,
                                          dtype=dtype)
    clone.load_state_dict(bridge.state_dict())
    return clone.eval()


def _owner(bridge) -> torch.nn.Module:
    """The module whose parameters are the model's weights (the Hugging Face model inside a bridge)."""
    return getattr(bridge, "original_model", None) or bridge


def stash_embedding(bridge):
    """Keep the trained input embedding aside (on disk, not in RAM) before the model is re-drawn in place.

    Returns ``restore()``, which copies it back into the model, checks that what came back is the
    trained embedding, and deletes the copy: random layers on the trained embedding (Heap et al.,
    arXiv 2501.17727) from a model that ``spectrum_matched_copy``/``random_weights_copy`` changed in place.
    """
    weight = _owner(bridge).get_input_embeddings().weight
    folder = tempfile.TemporaryDirectory()
    torch.save(weight.detach().cpu(), f"{folder.name}/embedding.pt")
    rows = weight[:32].detach().clone()

    def restore() -> None:
        with torch.no_grad():
            weight.copy_(torch.load(f"{folder.name}/embedding.pt", weights_only=True).to(weight.device))
        folder.cleanup()
        if not torch.equal(weight[:32], rows):
            raise ControlError("the trained embedding did not come back")
    return restore


def weight_matrices(bridge) -> dict[str, torch.nn.Parameter]:
    """Every parameter with two or more dimensions (each tied tensor once), by name."""
    return {name: p for name, p in _owner(bridge).named_parameters() if p.dim() >= 2}


def _is_gain(name: str) -> bool:
    lowered = name.lower()
    return lowered.endswith("weight") and any(k in lowered for k in ("norm", "ln", "layernorm"))


def _init_std(bridge) -> float:
    for config in (getattr(_owner(bridge), "config", None), getattr(bridge, "cfg", None)):
        for key in ("initializer_range", "init_range"):
            value = getattr(config, key, None) if config is not None else None
            if value:
                return float(value)
    return 0.02


@torch.no_grad()
def random_weights_copy(bridge, seed: int = 0, std: float | None = None, inplace: bool = False):
    """The same architecture with fresh weights, as at initialisation.

    Matrices and embeddings ~ N(0, std²) with ``std`` the model's ``initializer_range``
    (0.02 for SmolLM2 and GPT-2, the Hugging Face default); normalisation gains 1; other 1-D
    parameters (biases) 0. Deterministic for a given ``seed``.
    """
    model = bridge if inplace else _copy(bridge)
    std = _init_std(model) if std is None else std
    generator = torch.Generator().manual_seed(seed)
    for name, p in _owner(model).named_parameters():
        if p.dim() >= 2:
            p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float32))   # one temporary, not two
            p.mul_(std)
        elif _is_gain(name):
            p.fill_(1.0)
        else:
            p.zero_()
    return model


def random_orthogonal(n: int, k: int, generator: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    """An ``[n, k]`` matrix with orthonormal columns, uniformly random (Haar), ``k <= n``.

    QR of a Gaussian matrix with the signs of R's diagonal folded into Q (exactly Haar).
    For very tall matrices (the 49152 × 576 embedding) the orthogonal polar factor
    ``G (GᵀG)^(-1/2)`` of the Gaussian ``G`` is used instead: also exactly Haar, and several
    times faster than QR there.
    """
    g = torch.randn(n, k, generator=generator, dtype=dtype)
    if n <= 8192:
        q, r = torch.linalg.qr(g)
        return q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    evals, evecs = torch.linalg.eigh((g.T @ g).double())
    return g @ ((evecs * evals.rsqrt()) @ evecs.T).to(dtype)


def spectrum_matched(weight: torch.Tensor, generator: torch.Generator,
                     float64_max_elements: int = 4_000_000) -> torch.Tensor:
    """``W = U S Vᵀ`` → ``Q1 S Q2ᵀ``: same shape and singular values, random singular vectors.

    Works for any ``[m, n]``: ``Q1`` is ``[m, r]``, ``Q2`` is ``[n, r]``, ``r = min(m, n)``.
    The singular values come from the eigenvalues of the small Gram matrix. Computed in
    float64, except for matrices with more than ``float64_max_elements`` entries (the
    embedding), which use float32 to keep memory low; returned in ``weight``'s dtype.
    """
    m, n = weight.shape
    r = min(m, n)
    work = torch.float64 if m * n <= float64_max_elements else torch.float32
    w = weight.detach().to(work)
    gram = (w.T @ w if m >= n else w @ w.T).double()   # [r, r]: eigenvalues = squared singular values
    del w
    s = torch.linalg.eigvalsh(gram).clamp_min(0).sqrt().flip(0).to(work)
    q1, q2 = random_orthogonal(m, r, generator, work), random_orthogonal(n, r, generator, work)
    return (q1.mul_(s) @ q2.T).to(weight.dtype)          # in place: the embedding's factors are ~100 MB each


@torch.no_grad()
def spectrum_matched_copy(bridge, seed: int = 0, inplace: bool = False):
    """Every weight matrix replaced by a random one with the same singular values.

    See the module docstring for which parameters count as matrices, why 1-D parameters are
    kept, and ``inplace``. Deterministic for a given ``seed``.
    """
    model = bridge if inplace else _copy(bridge)
    generator = torch.Generator().manual_seed(seed)
    for _, p in weight_matrices(model).items():
        if p.dim() == 2:
            p.copy_(spectrum_matched(p.cpu(), generator).to(p.device))
            continue
        for matrix in p.view(-1, *p.shape[-2:]):            # a stack of matrices (e.g. W_Q per head)
            matrix.copy_(spectrum_matched(matrix.cpu(), generator).to(p.device))
    return model


# ---------------------------------------------------------------------------------------------
# Control integrity: what makes a control a control, checked wherever one is built.
# A control that silently differs from its specification (a shorter random vector, a selection
# set that leaks into the evaluation, a "random" model that is the trained one) can make any
# method look good; these checks make such a mistake fail loudly instead.
# ---------------------------------------------------------------------------------------------

class ControlError(AssertionError):
    """A control is not what it claims to be (wrong norm, overlapping sets, nothing re-drawn ...)."""


def require_equal_norm(vectors, reference, rtol: float = 1e-3, what: str = "control vectors") -> None:
    """Every row of ``vectors`` (``[n, d]`` or ``[d]``) has the norm of ``reference`` (a vector or a number).

    Equal norm is what makes a random vector a fair competitor for a steering vector: a
    shorter one moves the model less for a reason that has nothing to do with direction.
    """
    vectors = torch.as_tensor(vectors).detach().double().reshape(-1, torch.as_tensor(vectors).shape[-1])
    reference = torch.as_tensor(reference).detach().double()
    target = reference.norm() if reference.dim() > 0 else reference
    norms = vectors.norm(dim=-1)
    worst = ((norms - target).abs() / target.clamp_min(1e-12)).max().item()
    if not worst <= rtol:
        raise ControlError(f"{what}: norms {norms.min().item():.4g}–{norms.max().item():.4g} differ from the "
                           f"reference norm {target.item():.4g} (relative {worst:.2g} > {rtol}). "
                           "Rescale each one to the reference's norm.")


def _as_set(items) -> set:
    if hasattr(items, "chosen_on"):                   # a utils.stats.Choice
        return set(items.chosen_on)
    if hasattr(items, "tolist"):
        items = items.tolist()
    return {tuple(x) if isinstance(x, list) else x for x in items}


def require_disjoint(a, b, what: str = "selection and evaluation sets") -> None:
    """No unit (prompt, document, subject, index) is in both ``a`` and ``b``; both are non-empty.

    ``a`` may be a :class:`utils.stats.Choice`: the units it was chosen on.
    """
    set_a, set_b = _as_set(a), _as_set(b)
    if not set_a or not set_b:
        raise ControlError(f"{what}: one of the sets is empty ({len(set_a)} and {len(set_b)} units).")
    shared = set_a & set_b
    if shared:
        sample = sorted(map(str, shared))[:3]
        raise ControlError(f"{what} share {len(shared)} unit(s), e.g. {sample}: a choice judged on the data "
                           "that made it is not held out. Split by unit first (utils.stats.split_units).")


def require_not_identity(permutation, what: str = "permutation", min_moved: float = 0.5) -> None:
    """A shuffle that moved at least ``min_moved`` of the items (an identity 'shuffle' is no control)."""
    perm = torch.as_tensor(permutation).reshape(-1)
    if sorted(perm.tolist()) != list(range(len(perm))):
        raise ControlError(f"{what} is not a permutation of 0..{len(perm) - 1}.")
    moved = (perm != torch.arange(len(perm))).float().mean().item()
    if moved < min_moved:
        raise ControlError(f"{what} leaves {1 - moved:.0%} of the items in place; a shuffled control "
                           f"must move at least {min_moved:.0%} of them.")


def require_labels_shuffled(shuffled, original, what: str = "shuffled labels",
                            max_agreement: float | None = None) -> None:
    """Shuffled labels agree with the originals no more than chance allows (same multiset, not the same order)."""
    shuffled, original = torch.as_tensor(shuffled).reshape(-1), torch.as_tensor(original).reshape(-1)
    if sorted(shuffled.tolist()) != sorted(original.tolist()):
        raise ControlError(f"{what} do not have the same label counts as the originals: shuffle, do not redraw.")
    chance = sum((original == v).float().mean().item() ** 2 for v in original.unique())
    spread = (chance * (1 - chance) / len(original)) ** 0.5
    limit = max_agreement if max_agreement is not None else chance + 3 * spread + 0.05
    agreement = (shuffled == original).float().mean().item()
    if agreement > limit:
        raise ControlError(f"{what} agree with the originals on {agreement:.0%} of items (chance {chance:.0%}): "
                           "they were not shuffled.")


def _weights(model) -> list[torch.Tensor]:
    return [p.detach() for p in weight_matrices(model).values()]


def require_redrawn(control, original, others=(), what: str = "control model", max_cosine: float = 0.5) -> None:
    """``control``'s weight matrices share no direction with ``original``'s (nor with each of ``others``).

    Compares matrix by matrix (cosine of the flattened weights, which is about 0 for
    independent draws and 1 for a copy). Catches a "random" model that is the trained one, a
    copy that was never overwritten, and one control silently reused as another.
    """
    for name, reference in [("the original", original), *[(f"another control ({i})", o) for i, o in enumerate(others)]]:
        pairs = list(zip(_weights(control), _weights(reference)))
        if not pairs:
            raise ControlError(f"{what}: no weight matrices to compare.")
        cosines = [torch.nn.functional.cosine_similarity(a.flatten().double(), b.flatten().double().to(a.device),
                                                         dim=0).abs().item()
                   for a, b in pairs if a.shape == b.shape]
        same = sum(c > max_cosine for c in cosines)
        if same:
            raise ControlError(f"{what}: {same} of {len(cosines)} weight matrices are still aligned with {name} "
                               f"(|cosine| > {max_cosine}). Re-draw the weights (a new seed, or a fresh copy).")
