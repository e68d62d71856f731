"""Modular addition and the one-layer transformer that groks it (chapter 05).

The architecture follows "Progress measures for grokking via mechanistic interpretability"
(Nanda et al. 2023, arXiv 2301.05217): inputs ``a b =``, one attention layer (no biases),
one ReLU MLP, no LayerNorm, an unembedding onto the ``p`` answers. Written in plain torch
because speed matters here: the loss only reads the last position, so
``forward(..., last_only=True)`` computes the query, the MLP and the unembedding only there.
"""
from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.training import train


# ----------------------------------------------------------------------------- data
@dataclass
class ModAddData:
    """Every pair ``(a, b)`` with ``0 <= a, b < p``, flattened as row ``a * p + b``."""
    p: int
    tokens: torch.Tensor      # [p*p, 3]: a, b, and the "=" token (= p)
    labels: torch.Tensor      # [p*p]: (a + b) % p, possibly corrupted on training rows
    clean_labels: torch.Tensor  # [p*p]: the true (a + b) % p
    train_idx: torch.Tensor   # indices of the training rows
    test_idx: torch.Tensor    # indices of the held-out rows

    @property
    def train_mask(self) -> torch.Tensor:
        mask = torch.zeros(self.p * self.p, dtype=torch.bool, device=self.tokens.device)
        mask[self.train_idx] = True
        return mask

    def to(self, device) -> ModAddData:
        """The same data with every tensor on ``device``."""
        return dataclasses.replace(self, **{f.name: getattr(self, f.name).to(device)
                                            for f in dataclasses.fields(self) if f.name != "p"})


def make_data(p: int, frac_train: float, seed: int = 0, shuffle_labels: bool = False,
              corrupt_frac: float = 0.0) -> ModAddData:
    """The modular-addition table, split at random into train and test.

    ``shuffle_labels``: every training label is replaced by a random permutation of the training
    labels (nothing to generalise). ``corrupt_frac``: that fraction of training rows gets a
    wrong label, drawn uniformly from the other ``p - 1`` answers. Test labels stay clean.
    """
    g = torch.Generator().manual_seed(seed)
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.flatten(), b.flatten()
    tokens = torch.stack([a, b, torch.full_like(a, p)], dim=1)
    clean = (a + b) % p
    order = torch.randperm(p * p, generator=g)
    n_train = int(round(frac_train * p * p))
    train_idx, test_idx = order[:n_train].sort().values, order[n_train:].sort().values
    labels = clean.clone()
    if shuffle_labels:
        labels[train_idx] = clean[train_idx][torch.randperm(n_train, generator=g)]
    if corrupt_frac > 0:
        n_bad = int(round(corrupt_frac * n_train))
        bad = train_idx[torch.randperm(n_train, generator=g)[:n_bad]]
        labels[bad] = (clean[bad] + torch.randint(1, p, (n_bad,), generator=g)) % p
    return ModAddData(p, tokens, labels, clean, train_idx, test_idx)


# ----------------------------------------------------------------------------- model
class OneLayerTransformer(nn.Module):
    """Embed, one attention layer, one ReLU MLP, unembed. No LayerNorm, no attention biases."""

    def __init__(self, p: int, d_model: int = 128, n_heads: int = 4, d_mlp: int = 512, n_ctx: int = 3):
        super().__init__()
        self.p, self.d_model, self.n_heads, self.d_head = p, d_model, n_heads, d_model // n_heads
        d_vocab = p + 1                                            # p numbers and "="

        def param(*shape, fan_in):
            return nn.Parameter(torch.randn(*shape) / fan_in ** 0.5)

        self.W_E = param(d_vocab, d_model, fan_in=d_model)
        self.W_pos = param(n_ctx, d_model, fan_in=d_model)
        self.W_Q = param(n_heads, d_model, self.d_head, fan_in=d_model)
        self.W_K = param(n_heads, d_model, self.d_head, fan_in=d_model)
        self.W_V = param(n_heads, d_model, self.d_head, fan_in=d_model)
        self.W_O = param(n_heads, self.d_head, d_model, fan_in=d_model)
        self.W_in = param(d_model, d_mlp, fan_in=d_model)
        self.b_in = nn.Parameter(torch.zeros(d_mlp))
        self.W_out = param(d_mlp, d_model, fan_in=d_mlp)
        self.b_out = nn.Parameter(torch.zeros(d_model))
        self.W_U = param(d_model, p, fan_in=d_model)

    def forward(self, tokens: torch.Tensor, last_only: bool = True, cache: dict | None = None) -> torch.Tensor:
        """``tokens [batch, 3]`` -> logits ``[batch, p]`` at the last position (``last_only``)
        or ``[batch, 3, p]`` at every position. Pass a dict as ``cache`` to receive the
        activations at the last position: ``pattern [batch, head, key]``, ``resid_mid``,
        ``mlp_pre``/``mlp_post [batch, d_mlp]`` and ``resid_post``.

        Inputs are single tokens, so keys, values and queries are first computed for every
        (position, vocabulary entry) pair, a table of 3 x (p+1) rows, and then looked up:
        the same numbers as projecting every row of the batch, for a fraction of the work.
        """
        n = tokens.shape[1]
        positions = torch.arange(n, device=tokens.device)[None, :]
        table = self.W_E[None] + self.W_pos[:n, None]                          # [pos, vocab, d_model]
        k = torch.einsum("pvd,hde->pvhe", table, self.W_K)[positions, tokens]   # [batch, pos, head, d_head]
        v = torch.einsum("pvd,hde->pvhe", table, self.W_V)[positions, tokens]
        q_pos = positions[:, -1:] if last_only else positions                  # the loss reads one position
        q = torch.einsum("pvd,hde->pvhe", table[q_pos[0]], self.W_Q)[q_pos - q_pos[0, 0], tokens[:, q_pos[0]]]
        resid = table[q_pos, tokens[:, q_pos[0]]]                             # [batch, q, d_model]
        scores = (q[:, :, None] * k[:, None]).sum(-1) / self.d_head ** 0.5   # [batch, q, k, head]
        if not last_only:
            causal = torch.ones(n, n, dtype=torch.bool, device=tokens.device).tril()
            scores = scores.masked_fill(~causal[None, :, :, None], float("-inf"))
        pattern = scores.softmax(2)
        z = (pattern[..., None] * v[:, None]).sum(2)                          # [batch, q, head, d_head]
        resid_mid = resid + z.flatten(-2) @ self.W_O.flatten(0, 1)
        mlp_pre = resid_mid @ self.W_in + self.b_in
        mlp_post = F.relu(mlp_pre)
        resid_post = resid_mid + mlp_post @ self.W_out + self.b_out
        logits = resid_post @ self.W_U
        if cache is not None:
            cache.update(pattern=pattern[:, -1].transpose(1, 2), resid_mid=resid_mid[:, -1], mlp_pre=mlp_pre[:, -1],
                         mlp_post=mlp_post[:, -1], resid_post=resid_post[:, -1])
        return logits[:, -1] if last_only else logits


def loss_f64(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy computed in float64: in float32 the loss of a memorised training set
    underflows to exactly 0 and training becomes unstable."""
    return F.cross_entropy(logits.to(torch.float64), labels)


def sum_sq_weights(model: nn.Module) -> float:
    return sum((w.detach().double() ** 2).sum().item() for w in model.parameters())


@torch.no_grad()
def evaluate(model: nn.Module, data: ModAddData) -> dict:
    """Loss and accuracy on the training rows (their labels) and the test rows (clean labels)."""
    logits = model(data.tokens)
    out = {}
    for split, idx in (("train", data.train_idx), ("test", data.test_idx)):
        out[f"{split}_loss"] = loss_f64(logits[idx], data.labels[idx]).item()
        out[f"{split}_acc"] = (logits[idx].argmax(-1) == data.labels[idx]).double().mean().item()
    return out


# ----------------------------------------------------------------------------- training
@dataclass
class Run:
    """What one training run leaves behind."""
    model: OneLayerTransformer
    data: ModAddData
    history: list[dict]
    checkpoints: dict[int, dict]     # step -> state_dict (copies)
    seconds: float

    def model_at(self, step: int) -> OneLayerTransformer:
        model = copy.deepcopy(self.model)
        model.load_state_dict(self.checkpoints[step])
        return model.eval()


def _cpu_state(model: nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def train_grokking(data: ModAddData, steps: int, seed: int = 0, lr: float = 1e-3, weight_decay: float = 1.0,
                   betas=(0.9, 0.98), warmup: int = 10, log_every: int = 20, checkpoint_every: int = 100,
                   d_model: int = 128, n_heads: int = 4, d_mlp: int = 512, last_only: bool = True,
                   desc: str = "training", device=None) -> Run:
    """Full-batch AdamW on the training rows; history every ``log_every`` steps, a checkpoint
    every ``checkpoint_every`` steps, on its own cadence (and at step 0, the initialisation, and
    at the end).

    Trains on ``device`` (default :func:`utils.env.get_device`: the GPU when there is one); the
    model is initialised on the CPU first, so a CPU run is the same as before, and the returned
    model and checkpoints are on the CPU, next to ``data``.
    """
    from utils.env import get_device
    device = torch.device(device) if device is not None else get_device()
    torch.manual_seed(seed)
    model = OneLayerTransformer(data.p, d_model, n_heads, d_mlp).to(device)
    on_device = data.to(device)
    x, y = on_device.tokens[on_device.train_idx], on_device.labels[on_device.train_idx]
    checkpoints: dict[int, dict] = {}

    def loss_fn(step):
        logits = model(x, last_only=last_only)
        return loss_f64(logits[:, -1] if not last_only else logits, y)

    def on_step(step, m):
        if step % checkpoint_every == 0 or step == steps:
            checkpoints[step] = _cpu_state(m)

    def on_log(step, m):
        return {**evaluate(m, on_device), "sum_sq_weights": sum_sq_weights(m)}

    start = time.perf_counter()
    history = train(model, loss_fn, steps, lr=lr, weight_decay=weight_decay, betas=betas, warmup=warmup,
                    log_every=log_every, on_log=on_log, on_step=on_step, desc=desc)
    return Run(model.cpu().eval(), data, history, checkpoints, time.perf_counter() - start)


def first_step(history: list[dict], key: str, threshold: float) -> int | None:
    """The first logged step at which ``key`` reaches ``threshold`` (None if it never does)."""
    return next((row["step"] for row in history if row[key] >= threshold), None)
