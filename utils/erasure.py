"""Concept erasure: an affine edit of activations that removes what a linear probe could read.

Chapter 02's learner writes LEACE (Belrose et al. 2023, "LEACE: Perfect linear concept erasure
in closed form", arXiv 2306.03819) and returns an :class:`Eraser`. The erasure is

    r(x) = x − unwhiten · B Bᵀ · whiten · (x − mean)

with ``whiten`` = Σ^(-1/2) (pseudo-inverse on the covariance's support), ``unwhiten`` = Σ^(1/2)
and ``B`` an orthonormal basis, in whitened coordinates, of the directions to remove. LEACE's
``B`` spans ``whiten · Σ_xz`` (the whitened cross-covariance with the one-hot labels).

The control that could win (:meth:`Eraser.random_like`) keeps everything but ``B``: a random
subspace of the same rank in the same whitened space, so it removes the same amount of
whitened variance (``rank`` units) as the real eraser, only not the concept's.
"""
from __future__ import annotations

from typing import NamedTuple

import torch


class Eraser(NamedTuple):
    mean: torch.Tensor       # [d]
    whiten: torch.Tensor     # [d, d]  Σ^(-1/2) on the support of Σ
    unwhiten: torch.Tensor   # [d, d]  Σ^(1/2)
    basis: torch.Tensor      # [d, rank] orthonormal, in whitened coordinates

    @property
    def rank(self) -> int:
        return int(self.basis.shape[1])

    def erase(self, x: torch.Tensor) -> torch.Tensor:
        """``x [..., d]`` with the subspace removed; same shape and dtype."""
        work = self.mean.dtype
        edit = self.unwhiten @ self.basis @ self.basis.T @ self.whiten          # [d, d]
        out = x.to(work) - (x.to(work) - self.mean) @ edit.T
        return out.to(x.dtype)

    def random_like(self, generator: torch.Generator) -> Eraser:
        """The same whitening, a uniformly random subspace of the same rank inside its support."""
        support = self.whiten @ self.unwhiten                                   # [d, d] projector onto the support
        gaussian = torch.randn(support.shape[0], self.rank, generator=generator, dtype=support.dtype)
        q, r = torch.linalg.qr(support @ gaussian)
        return self._replace(basis=q * torch.sign(torch.diagonal(r)))
