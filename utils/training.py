"""A small training loop with a progress bar, shared by every chapter that trains something."""
from __future__ import annotations

from typing import Callable

import torch
from tqdm.auto import tqdm


def make_optimizer(model: torch.nn.Module, lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999)):
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=betas)


def train(model: torch.nn.Module, loss_fn: Callable[[int], torch.Tensor], steps: int, optimizer=None,
          lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999), warmup: int = 0, log_every: int = 10,
          on_log: Callable[[int, torch.nn.Module], dict] | None = None, desc: str = "training") -> list[dict]:
    """Run ``steps`` optimisation steps of ``loss_fn(step)`` and return the logged history.

    ``loss_fn(step)`` builds its own batch and returns a scalar loss. Every ``log_every``
    steps (and at the last step) the history gets ``{"step", "loss", **on_log(step, model)}``;
    ``on_log`` is where a chapter measures test loss, saves a checkpoint, scores heads...
    """
    optimizer = optimizer or make_optimizer(model, lr, weight_decay, betas)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
    history: list[dict] = []
    bar = tqdm(range(steps), desc=desc, mininterval=1.0)
    for step in bar:
        model.train()
        loss = loss_fn(step)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower the learning rate?")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % log_every == 0 or step == steps - 1:
            model.eval()
            row = {"step": step, "loss": loss.item()}
            if on_log is not None:
                with torch.no_grad():
                    row.update(on_log(step, model))
            history.append(row)
            bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k != "step" and isinstance(v, float)})
    model.eval()
    return history


def column(history: list[dict], key: str) -> list:
    """One logged quantity over training: ``column(history, "test_acc")``."""
    return [row[key] for row in history if key in row]
