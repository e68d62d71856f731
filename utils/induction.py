"""Data for the induction-head chapter: random tokens with a repeated segment.

Induction heads only pay off when a sequence repeats something it has seen before. We
make that happen on purpose: every row is uniformly random tokens, except that a segment
of random length is copied straight after itself, starting at a random offset. Because
the offset and the length vary from row to row, *position alone* cannot tell the model
where the copy is; it has to look at the tokens (a fixed half-and-half repeat would be
solved by a positional head in layer 0 instead).
"""
from __future__ import annotations

import torch

from utils.activations import next_token_loss


def repeated_segment_batch(batch: int, n_ctx: int, d_vocab: int, min_len: int = 8, max_len: int = 16,
                           generator: torch.Generator | None = None, device=None):
    """Random rows of length ``n_ctx``; in each, a segment of random length in
    ``[min_len, max_len]`` starting at a random offset is followed by an exact copy of itself.

    Returns ``(tokens [batch, n_ctx] long, predictable [batch, n_ctx - 1] bool)``, where
    ``predictable[b, i]`` says that the *target* ``tokens[b, i + 1]`` can be predicted by
    induction: it sits in the copy, after its first token.
    """
    if 2 * max_len > n_ctx:
        raise ValueError(f"a segment of {max_len} tokens repeated does not fit in n_ctx={n_ctx}")
    tokens = torch.randint(0, d_vocab, (batch, n_ctx), generator=generator)
    lengths = torch.randint(min_len, max_len + 1, (batch,), generator=generator)
    predictable = torch.zeros(batch, n_ctx - 1, dtype=torch.bool)
    for row in range(batch):
        length = int(lengths[row])
        start = int(torch.randint(0, n_ctx - 2 * length + 1, (1,), generator=generator))
        tokens[row, start + length:start + 2 * length] = tokens[row, start:start + length]
        # target position t is predictable when t is in the copy and not its first token
        predictable[row, start + length:start + 2 * length - 1] = True
    return tokens.to(device), predictable.to(device)


def repeated_tokens(batch: int, seg_len: int, d_vocab: int, generator: torch.Generator | None = None,
                    distinct: bool = False, prefix=None, device=None) -> torch.Tensor:
    """``[batch, (len(prefix)) + 2 * seg_len]``: a random segment, then the same segment again.

    ``distinct=True`` draws each segment without repeated tokens (needs ``seg_len <= d_vocab``),
    so that the only earlier copy of any token is the one in the first half. ``prefix`` (a list
    of token ids, e.g. a BOS token) is put in front of every row.
    """
    if distinct:
        first = torch.stack([torch.randperm(d_vocab, generator=generator)[:seg_len] for _ in range(batch)])
    else:
        first = torch.randint(0, d_vocab, (batch, seg_len), generator=generator)
    tokens = torch.cat([first, first], dim=1)
    if prefix:
        tokens = torch.cat([torch.tensor(prefix, dtype=torch.long).expand(batch, len(prefix)), tokens], dim=1)
    return tokens.to(device)


def per_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of predicting ``tokens[:, i + 1]`` from ``logits[:, i]``: ``[batch, pos - 1]``.

    The course's single next-token loss (:func:`utils.activations.next_token_loss`), per token.
    """
    return next_token_loss(logits, tokens, per_token=True)
