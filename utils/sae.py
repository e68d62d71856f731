"""Sparse autoencoders (chapter 03): a batch of SAEs in one set of tensors, toy data with known
features, training, and a loader for published SAEs.

* :class:`SAE` holds ``n`` independent SAEs with the same shape: ``W_enc [n, d, m]``,
  ``W_dec [n, m, d]``, ``b_enc [n, m]``, ``b_dec [n, d]``. One batched matrix product
  trains all of them at once: a sweep over ``k`` or over the L1 strength, or the several
  SAEs of Mutual Feature Regularization, cost one Python loop, not ``n``. The SAEs stay
  independent because the loss is a sum of per-SAE losses and Adam is element-wise.
  Activations: ``"topk"`` (Gao et al. 2024, arXiv 2406.04093), ``"relu"`` (trained with an
  L1 penalty, Bricken et al. 2023) and ``"jumprelu"`` (Gemma Scope, for loaded SAEs).
* :class:`ToyData`: sparse, optionally correlated ground-truth features in fewer dimensions.
* :func:`train_sae`: Adam on random mini-batches through :func:`utils.training.train`.
* :func:`load_published_sae`: a SAELens-style folder (``cfg.json`` + ``sae_weights.safetensors``)
  or a Gemma Scope ``params.npz``.

Shapes: an input without an SAE axis (``[B, d]``) is fed to every SAE; when there is one SAE
the outputs drop the SAE axis again, so a single SAE reads like an ordinary module.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from utils.training import train


# ----------------------------------------------------------------------------- the model
class SAE(torch.nn.Module):
    """``n`` sparse autoencoders ``d_in -> d_sae -> d_in`` trained side by side.

    ``encode(x) = act((x - b_dec) @ W_enc + b_enc)``, ``decode(z) = z @ W_dec + b_dec``.
    Initialisation follows Gao et al.: random unit decoder rows, ``W_enc = W_decᵀ``, zero
    biases (call :meth:`init_b_dec` to start ``b_dec`` at the data mean).
    ``k``: latents kept per input for ``"topk"`` (an int, or one per SAE).
    """

    def __init__(self, d_in: int, d_sae: int, n: int = 1, activation: str = "topk", k: int | Sequence[int] = 32,
                 seed: int = 0, dtype=torch.float32, device=None, subtract_b_dec: bool = True):
        super().__init__()
        if activation not in ("topk", "relu", "jumprelu"):
            raise ValueError(f"activation {activation!r}: expected 'topk', 'relu' or 'jumprelu'")
        self.d_in, self.d_sae, self.n, self.activation = d_in, d_sae, n, activation
        self.subtract_b_dec = subtract_b_dec      # False for SAEs published without it (Gemma Scope)
        generator = torch.Generator().manual_seed(seed)
        W_dec = torch.randn(n, d_sae, d_in, generator=generator, dtype=torch.float32)
        W_dec = (W_dec / W_dec.norm(dim=-1, keepdim=True)).to(dtype=dtype, device=device)
        self.W_dec = torch.nn.Parameter(W_dec)
        self.W_enc = torch.nn.Parameter(W_dec.transpose(1, 2).clone())
        self.b_enc = torch.nn.Parameter(torch.zeros(n, d_sae, dtype=dtype, device=device))
        self.b_dec = torch.nn.Parameter(torch.zeros(n, d_in, dtype=dtype, device=device))
        ks = [k] * n if isinstance(k, int) else list(k)
        if len(ks) != n:
            raise ValueError(f"{len(ks)} values of k for {n} SAEs")
        self.register_buffer("k", torch.tensor(ks, dtype=torch.long, device=device))
        self.register_buffer("threshold", torch.zeros(n, d_sae, dtype=dtype, device=device))

    # -- shapes
    def _batched(self, x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """``x [B, d]``, ``[1, B, d]`` or ``[n, B, d]`` → ``[n or 1, B, d]``, and whether to drop the SAE axis again."""
        if x.dim() == 2:
            return x.unsqueeze(0), self.n == 1
        if x.dim() == 3 and x.shape[0] in (1, self.n):
            return x, False
        raise ValueError(f"expected input [batch, {self.d_in}] or [{self.n}, batch, {self.d_in}], got {tuple(x.shape)}")

    @staticmethod
    def _out(y: torch.Tensor, squeeze: bool) -> torch.Tensor:
        return y.squeeze(0) if squeeze else y

    # -- the forward pass
    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder pre-activations ``(x - b_dec) @ W_enc + b_enc``: ``[(n,) B, m]``."""
        xs, squeeze = self._batched(x)
        xs = xs - self.b_dec.unsqueeze(1) if self.subtract_b_dec else xs.expand(self.n, -1, -1)
        return self._out(torch.baddbmm(self.b_enc.unsqueeze(1), xs, self.W_enc), squeeze)

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        """The sparsifying nonlinearity on ``pre [n, B, m]`` (SAE axis required)."""
        if self.activation == "relu":
            return pre.relu()
        if self.activation == "jumprelu":
            return pre.relu() * (pre > self.threshold.unsqueeze(1))
        vals, idx = self._topk(pre)
        return torch.zeros_like(pre).scatter(-1, idx, vals)

    def _topk(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k_i`` largest pre-activations of each input (ReLU-ed), padded with zeros to ``max k``."""
        kmax = int(self.k.max())
        vals, idx = pre.topk(kmax, dim=-1)
        if bool((self.k < kmax).any()):
            keep = torch.arange(kmax, device=pre.device) < self.k.view(-1, 1, 1)
            vals = vals * keep
        return vals.relu(), idx

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent activations ``[(n,) B, m]`` (dense, mostly zeros)."""
        xs, squeeze = self._batched(x)
        return self._out(self.activate(self.pre_acts(xs)), squeeze)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``z @ W_dec + b_dec``: ``[(n,) B, d]``."""
        zs, squeeze = (z.unsqueeze(0), self.n == 1) if z.dim() == 2 else (z, False)
        return self._out(torch.baddbmm(self.b_dec.unsqueeze(1), zs, self.W_dec), squeeze)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(reconstruction, latents)``."""
        z = self.encode(x)
        return self.decode(z), z

    @classmethod
    @torch.no_grad()
    def from_weights(cls, W_enc: torch.Tensor, W_dec: torch.Tensor, b_enc: torch.Tensor, b_dec: torch.Tensor,
                     k: int) -> "SAE":
        """A single TopK SAE holding these weights (``W_enc [d, m]``, ``W_dec [m, d]``): e.g. one trained elsewhere."""
        d_in, d_sae = W_enc.shape
        one = cls(d_in, d_sae, n=1, k=int(k), dtype=W_dec.dtype, device=W_dec.device)
        for name, value in [("W_enc", W_enc), ("W_dec", W_dec), ("b_enc", b_enc), ("b_dec", b_dec)]:
            getattr(one, name).copy_(value.detach().unsqueeze(0))
        return one.eval()

    @torch.no_grad()
    def select(self, i: int) -> "SAE":
        """SAE number ``i`` of the batch, as a separate single SAE (a copy)."""
        one = SAE(self.d_in, self.d_sae, n=1, activation=self.activation, k=int(self.k[i]),
                  dtype=self.W_dec.dtype, device=self.W_dec.device, subtract_b_dec=self.subtract_b_dec)
        for name in ("W_enc", "W_dec", "b_enc", "b_dec", "threshold"):
            getattr(one, name).copy_(getattr(self, name)[i: i + 1])
        return one.eval()

    # -- training helpers
    @torch.no_grad()
    def normalise_decoder_(self) -> None:
        """Rescale every decoder row (one latent's direction) to unit length, in place."""
        self.W_dec.div_(self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8))

    @torch.no_grad()
    def init_b_dec(self, data: torch.Tensor) -> None:
        """Start ``b_dec`` at the mean of ``data [N, d]`` (Gao et al. use the geometric median)."""
        self.b_dec.copy_(data.mean(0).expand_as(self.b_dec))

    def directions(self) -> torch.Tensor:
        """Unit-length decoder rows ``[n, m, d]`` (detached)."""
        W = self.W_dec.detach()
        return W / W.norm(dim=-1, keepdim=True).clamp_min(1e-8)


# ----------------------------------------------------------------------------- toy data
@dataclass
class ToyData:
    """Sparse features in superposition: ``x = Σ_i a_i f_i`` with ``n_features`` unit vectors
    ``f_i`` in ``d`` dimensions (``n_features > d``).

    Each feature fires with probability ``p`` and then has magnitude ``Uniform(0.5, 1.5)``.
    Correlation: features come in consecutive groups of ``group_size``; whether they fire is
    decided by a Gaussian copula whose latent Gaussians have correlation ``correlation``
    within a group (0 = independent), so each still fires with probability exactly ``p``.
    """
    features: torch.Tensor          # [n_features, d], unit rows
    p: float | torch.Tensor         # firing probability: one for all, or [n_features]
    group_size: int = 1
    correlation: float = 0.0

    @classmethod
    def make(cls, n_features: int, d: int, p: float | torch.Tensor, seed: int = 0, group_size: int = 1,
             correlation: float = 0.0) -> "ToyData":
        # a seed stream of its own: SAE(seed=s) must not start from the true features of ToyData.make(seed=s)
        generator = torch.Generator().manual_seed(int(hashlib.sha1(f"toy:{seed}".encode()).hexdigest()[:15], 16))
        f = torch.randn(n_features, d, generator=generator)
        return cls(f / f.norm(dim=-1, keepdim=True), p, group_size, correlation)

    @property
    def n_features(self) -> int:
        return self.features.shape[0]

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x [batch, d], a [batch, n_features])``: activations and the true feature magnitudes."""
        n, g = self.n_features, self.group_size
        noise = torch.randn(batch, n, generator=generator)
        if self.correlation > 0 and g > 1:
            shared = torch.randn(batch, math.ceil(n / g), generator=generator).repeat_interleave(g, dim=1)[:, :n]
            noise = math.sqrt(self.correlation) * shared + math.sqrt(1 - self.correlation) * noise
        # p: one firing probability for all features, or one per feature ([n_features]: unequal frequencies)
        threshold = torch.special.ndtri(1 - torch.as_tensor(self.p, dtype=torch.float64)).float()
        magnitude = 0.5 + torch.rand(batch, n, generator=generator)
        a = (noise > threshold) * magnitude
        return a @ self.features, a


# ----------------------------------------------------------------------------- training
def _decode_sparse(sae: SAE, vals: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``Σ_j vals_j · W_dec[idx_j]`` for ``vals, idx [n, B, r]`` → ``[n, B, d]`` (no bias).

    With few active latents (``16 r <= m``) ``embedding_bag`` reads only the ``r`` rows it
    needs, forward and backward: cost ``B·r·d`` instead of ``B·m·d`` for a dense decoder.
    """
    n, B, r = idx.shape
    if 16 * r > sae.d_sae:                       # many active latents: a dense product is faster
        return torch.bmm(torch.zeros(n, B, sae.d_sae, dtype=vals.dtype, device=vals.device).scatter(-1, idx, vals),
                         sae.W_dec)
    offsets = (torch.arange(n, device=idx.device) * sae.d_sae).view(n, 1, 1)
    flat = F.embedding_bag((idx + offsets).view(n * B, r), sae.W_dec.reshape(n * sae.d_sae, sae.d_in),
                           per_sample_weights=vals.reshape(n * B, r), mode="sum")
    return flat.view(n, B, sae.d_in)


def sae_loss(sae: SAE, x: torch.Tensor, l1: torch.Tensor | None = None, dead: torch.Tensor | None = None,
             aux_k: int = 0, aux_coeff: float = 1 / 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-SAE training loss ``[n]`` and which latents fired in this batch ``[n, m]``.

    Loss: squared error summed over ``d`` and averaged over the batch; plus, for ReLU SAEs,
    ``l1 · Σ_j z_j`` (batch mean); plus, for TopK SAEs with ``dead [n, m]`` given, Gao et
    al.'s AuxK term: the ``aux_k`` largest pre-activations among *dead* latents must
    reconstruct what the live ones missed, weighted by ``aux_coeff``. That gradient pulls dead
    latents towards directions the SAE still needs.
    """
    xs, _ = sae._batched(x)
    pre = sae.pre_acts(xs)
    if sae.activation == "topk":
        vals, idx = sae._topk(pre)
        x_hat = _decode_sparse(sae, vals, idx) + sae.b_dec.unsqueeze(1)
        fired = torch.zeros(sae.n, sae.d_sae, device=pre.device).scatter_add_(
            -1, idx.flatten(1), (vals > 0).flatten(1).to(pre.dtype)) > 0
    else:
        z = sae.activate(pre)
        x_hat = sae.decode(z)
        fired = (z > 0).any(1)
    loss = (x_hat - xs).pow(2).sum(-1).mean(-1)
    if l1 is not None and sae.activation != "topk":
        loss = loss + l1 * z.sum(-1).mean(-1)
    if aux_k and dead is not None and sae.activation == "topk" and bool(dead.any()):
        residual = (xs - x_hat).detach()
        aux_vals, aux_idx = pre.masked_fill(~dead.unsqueeze(1), float("-inf")).topk(aux_k, dim=-1)
        # No ReLU here: a dead latent's pre-activations are mostly negative, and a ReLU would give them no gradient,
        # so nothing could revive them (measured in chapter 03: 44% dead either way). Fewer dead latents than
        # aux_k leave -inf entries, which contribute nothing.
        aux_hat = _decode_sparse(sae, torch.nan_to_num(aux_vals, neginf=0.0), aux_idx)
        aux = (aux_hat - residual).pow(2).sum(-1).mean(-1)
        loss = loss + aux_coeff * aux * dead.any(-1)
    return loss, fired


def train_sae(sae: SAE, data, steps: int, batch_size: int = 1024, lr: float = 1e-3,
              l1: float | Sequence[float] | None = None, penalty: Callable[[SAE], torch.Tensor] | None = None,
              dead_after: int | None = None, aux_k: int | None = None, seed: int = 0, log_every: int = 50,
              desc: str = "SAE") -> list[dict]:
    """Train ``sae`` with Adam; returns the logged history (see :func:`utils.training.train`).

    ``data``: a tensor ``[N, d]`` (mini-batches are drawn without replacement, reshuffled
    every epoch) or a callable ``data(batch_size, generator) -> [batch_size, d]``.
    ``l1``: L1 strength for ReLU SAEs, one value or one per SAE. ``penalty(sae)`` is added
    to the summed loss (Mutual Feature Regularization uses it). TopK SAEs get the AuxK loss
    for latents that have not fired in the last ``dead_after`` inputs (default: 20 batches),
    with ``aux_k`` (default ``d/2``) auxiliary latents. Decoder rows are put back to unit
    length before every step and at the end, so that no loss can be lowered by shrinking
    latents and growing decoder rows.
    """
    generator = torch.Generator().manual_seed(seed)
    device = sae.W_dec.device
    l1_t = None if l1 is None else torch.as_tensor(l1, dtype=sae.W_dec.dtype, device=device).expand(sae.n)
    dead_after = 20 * batch_size if dead_after is None else dead_after
    aux_k = min(sae.d_in // 2, sae.d_sae) if aux_k is None else aux_k
    state = {"order": None, "pos": 0, "since_fired": torch.zeros(sae.n, sae.d_sae, device=device)}

    def batch() -> torch.Tensor:
        if callable(data):
            return data(batch_size, generator).to(device)
        if state["order"] is None or state["pos"] + batch_size > len(data):
            state["order"], state["pos"] = torch.randperm(len(data), generator=generator), 0
        idx = state["order"][state["pos"]: state["pos"] + batch_size]
        state["pos"] += batch_size
        return data[idx].to(device)

    def loss_fn(step: int) -> torch.Tensor:
        sae.normalise_decoder_()
        x = batch()
        loss, fired = sae_loss(sae, x, l1_t, dead=state["since_fired"] >= dead_after, aux_k=aux_k)
        state["since_fired"] = (state["since_fired"] + len(x)).masked_fill(fired, 0)
        loss = loss.sum()
        return loss + penalty(sae) if penalty is not None else loss

    history = train(sae, loss_fn, steps, lr=lr, log_every=log_every, desc=desc)
    sae.normalise_decoder_()
    return history


# ----------------------------------------------------------------------------- measuring
@torch.no_grad()
def evaluate(sae: SAE, data: torch.Tensor, batch_size: int = 4096) -> dict[str, torch.Tensor]:
    """Per-SAE metrics on ``data [N, d]``: ``l0`` (active latents per input), ``fvu``
    (fraction of variance unexplained), ``dead`` (share of latents that never fire) and
    ``freq [n, m]`` (how often each latent fires). Results live on the SAE's device."""
    device = sae.W_dec.device
    fires = torch.zeros(sae.n, sae.d_sae, device=device)
    err = torch.zeros(sae.n, dtype=torch.float64, device=device)
    l0 = torch.zeros(sae.n, dtype=torch.float64, device=device)
    for start in range(0, len(data), batch_size):
        x = data[start: start + batch_size].to(device)
        x_hat, z = sae(x.unsqueeze(0).expand(sae.n, -1, -1))
        active = z > 0
        fires += active.sum(1)
        l0 += active.sum((1, 2))
        err += (x_hat - x).pow(2).sum((1, 2)).double()
    total = (data - data.mean(0)).pow(2).sum().double().to(device)
    return {"l0": (l0 / len(data)).float(), "fvu": (err / total).float(), "dead": (fires == 0).float().mean(-1),
            "freq": fires / len(data)}


def max_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """For each row of ``a [..., p, d]``, its largest cosine similarity with a row of ``b [..., q, d]``.

    Returns ``[..., p]``.
    """
    a = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    b = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (a @ b.transpose(-1, -2)).max(-1).values


# ----------------------------------------------------------------------------- published SAEs
def load_published_sae(path: str | Path, device=None, dtype=torch.float32) -> tuple[SAE, dict]:
    """Load a published SAE saved offline: ``(sae, cfg)``.

    ``path`` is either a folder in SAELens's format — ``cfg.json`` (``d_in``, ``d_sae``,
    ``architecture``: ``"standard"``/``"relu"``, ``"jumprelu"`` or ``"topk"`` with ``k``) and
    ``sae_weights.safetensors`` — or a Gemma Scope ``params.npz`` (JumpReLU). Both store
    ``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_in]``, ``b_enc``, ``b_dec`` and, for JumpReLU,
    ``threshold [d_sae]``. ``apply_b_dec_to_input`` in ``cfg.json`` (default true) says whether
    the encoder subtracts ``b_dec`` first; Gemma Scope's does not. Activation normalisation
    recorded in ``cfg`` (SAELens's ``normalize_activations``) is returned, not applied: scale
    the inputs yourself as the SAE's card says.
    """
    path = Path(path)
    if path.suffix == ".npz":
        import numpy as np
        with np.load(path) as npz:
            weights = {key: torch.from_numpy(npz[key]) for key in npz.files}
        cfg = {"architecture": "jumprelu", "d_in": weights["W_enc"].shape[0], "d_sae": weights["W_enc"].shape[1],
               "apply_b_dec_to_input": False}
    else:
        from safetensors.torch import load_file
        cfg = json.loads((path / "cfg.json").read_text())
        weights = load_file(str(path / "sae_weights.safetensors"))
    architecture = {"standard": "relu", "relu": "relu", "jumprelu": "jumprelu", "topk": "topk"}.get(
        str(cfg.get("architecture", "standard")).lower())
    if architecture is None:
        raise ValueError(f"unsupported SAE architecture {cfg.get('architecture')!r} (standard, jumprelu or topk)")
    d_in, d_sae = int(cfg["d_in"]), int(cfg["d_sae"])
    if tuple(weights["W_enc"].shape) != (d_in, d_sae) or tuple(weights["W_dec"].shape) != (d_sae, d_in):
        raise ValueError(f"weights {tuple(weights['W_enc'].shape)} / {tuple(weights['W_dec'].shape)} do not match "
                         f"d_in={d_in}, d_sae={d_sae}")
    k = int(cfg.get("k") or cfg.get("activation_fn_kwargs", {}).get("k") or 1) if architecture == "topk" else 1
    sae = SAE(d_in, d_sae, n=1, activation=architecture, k=k, dtype=dtype, device=device,
              subtract_b_dec=bool(cfg.get("apply_b_dec_to_input", True)))
    with torch.no_grad():
        sae.W_enc.copy_(weights["W_enc"].unsqueeze(0))
        sae.W_dec.copy_(weights["W_dec"].unsqueeze(0))
        sae.b_enc.copy_(weights["b_enc"].unsqueeze(0))
        sae.b_dec.copy_(weights["b_dec"].unsqueeze(0))
        if architecture == "jumprelu":
            sae.threshold.copy_(weights["threshold"].unsqueeze(0))
    return sae.eval(), cfg


@torch.no_grad()
def top_activations(sae: SAE, data: torch.Tensor, n_top: int,
                    batch_size: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``n_top`` largest activations of every latent of a single SAE over ``data [N, d]``:
    ``(values [m, n_top], rows [m, n_top])``, largest first, on the SAE's device; ``rows`` index
    into ``data``."""
    device = sae.W_dec.device
    best_v = torch.full((sae.d_sae, 0), float("-inf"), device=device)
    best_i = torch.zeros((sae.d_sae, 0), dtype=torch.long, device=device)
    for start in range(0, len(data), batch_size):
        z = sae.encode(data[start: start + batch_size].to(device).unsqueeze(0))[0].T      # [m, B]
        values = torch.cat([best_v, z], dim=1)
        rows = torch.cat([best_i, torch.arange(start, start + z.shape[1], device=device).expand(sae.d_sae, -1)], 1)
        best_v, pick = values.topk(min(n_top, values.shape[1]), dim=1)
        best_i = rows.gather(1, pick)
    return best_v, best_i


def save_sae(sae: SAE, folder: str | Path, **cfg) -> Path:
    """Write a single SAE in SAELens's folder format (``cfg.json`` + ``sae_weights.safetensors``),
    the format :func:`load_published_sae` reads. Extra ``cfg`` entries (``hook_name`` ...) are kept."""
    from safetensors.torch import save_file
    if sae.n != 1:
        raise ValueError("save one SAE at a time")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    architecture = {"relu": "standard", "jumprelu": "jumprelu", "topk": "topk"}[sae.activation]
    weights = {"W_enc": sae.W_enc[0], "W_dec": sae.W_dec[0], "b_enc": sae.b_enc[0], "b_dec": sae.b_dec[0]}
    if sae.activation == "jumprelu":
        weights["threshold"] = sae.threshold[0]
    save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, str(folder / "sae_weights.safetensors"))
    meta = {"architecture": architecture, "d_in": sae.d_in, "d_sae": sae.d_sae,
            "apply_b_dec_to_input": sae.subtract_b_dec, **cfg}
    if sae.activation == "topk":
        meta["k"] = int(sae.k[0])
    (folder / "cfg.json").write_text(json.dumps(meta, indent=2))
    return folder
