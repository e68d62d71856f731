"""Unsupervised truth directions: contrast-consistent search (chapter 06).

Burns et al. 2022, "Discovering Latent Knowledge in Language Models Without Supervision"
(arXiv 2212.03827). For each fact there is a pair of statements, one asserting the true
answer and one a false answer; a linear probe ``p(x) = σ(w·x + b)`` is fitted, without labels,
so that the pair's probabilities are *consistent* (``p(x⁺) ≈ 1 − p(x⁻)``) and *confident*
(not both 0.5). Each side of the pair is centred on its own mean first, so the probe cannot
use what the two sides differ in on average (which statement came first in the pair).

The direction is found up to its sign: nothing in the loss says which end is "true". We orient
it with the training labels (the paper reports max(accuracy, 1 − accuracy), the same thing),
and say so wherever it is used.
"""
from __future__ import annotations

import torch


def ccs_direction(pos: torch.Tensor, neg: torch.Tensor, labels: torch.Tensor, restarts: int = 8,
                  steps: int = 400, lr: float = 1e-2, seed: int = 0) -> torch.Tensor:
    """A truth direction ``[d]`` from statement pairs ``pos, neg [n, d]`` (the same fact, two answers).

    ``labels [n]`` (True where ``pos`` is the true statement) is used only to choose the sign.
    All restarts are trained at once (``w [restarts, d]``); the one with the lowest loss wins.
    """
    x_pos = pos.float() - pos.float().mean(0)
    x_neg = neg.float() - neg.float().mean(0)
    scale = torch.cat([x_pos, x_neg]).norm(dim=1).mean()            # unit-sized inputs: one lr for any model
    x_pos, x_neg = x_pos / scale, x_neg / scale
    generator = torch.Generator().manual_seed(seed)
    w = (torch.randn(restarts, pos.shape[1], generator=generator) / pos.shape[1] ** 0.5).requires_grad_()
    b = torch.zeros(restarts, 1, requires_grad=True)
    optimiser = torch.optim.Adam([w, b], lr=lr)

    def losses():
        p_pos = torch.sigmoid(w @ x_pos.T + b)                      # [restarts, n]
        p_neg = torch.sigmoid(w @ x_neg.T + b)
        consistency = (p_pos - (1 - p_neg)) ** 2
        confidence = torch.minimum(p_pos, p_neg) ** 2
        return (consistency + confidence).mean(1)                   # [restarts]

    for _ in range(steps):
        optimiser.zero_grad()
        losses().sum().backward()
        optimiser.step()
    with torch.no_grad():
        direction = w[losses().argmin()].detach() / scale
        agree = ((x_pos @ direction > x_neg @ direction) == labels.bool()).float().mean()
    return direction if agree >= 0.5 else -direction
