"""A small training loop with a progress bar, shared by every chapter that trains something."""
from __future__ import annotations

from typing import Callable

import torch
from tqdm.auto import tqdm


def make_optimizer(model: torch.nn.Module, lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999)):
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=betas)


def train(model: torch.nn.Module, loss_fn: Callable[[int], torch.Tensor], steps: int, optimizer=None,
          lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999), warmup: int = 0, log_every: int = 10,
          on_log: Callable[[int, torch.nn.Module], dict] | None = None,
          on_step: Callable[[int, torch.nn.Module], None] | None = None,
          until: Callable[[dict], bool] | None = None, desc: str = "training") -> list[dict]:
    """Run ``steps`` optimisation steps of ``loss_fn(step)`` and return the logged history.

    Step ``s`` names the weights after ``s`` updates: step 0 is the initialisation and step
    ``steps`` the trained model. ``loss_fn(step)`` builds its own batch and returns a scalar loss.
    At every multiple of ``log_every`` and at step ``steps`` the history gets
    ``{"step", "loss", **on_log(step, model)}``, where ``loss`` is that batch's loss at those
    weights (before their update); ``on_log`` is where a chapter measures test loss, scores heads...
    ``on_step(step, model)`` is called at every step 0..steps, for what keeps its own cadence
    (checkpoints), independent of ``log_every``. ``until(row)``, if given, is asked after every
    logged row: when it says True, training stops there (that row is the last).
    """
    optimizer = optimizer or make_optimizer(model, lr, weight_decay, betas)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
    history: list[dict] = []
    bar = tqdm(range(steps), desc=desc, mininterval=1.0)

    def log(step: int, loss: torch.Tensor) -> None:
        model.eval()
        row = {"step": step, "loss": loss.item()}
        if on_log is not None:
            with torch.no_grad():
                row.update(on_log(step, model))
        history.append(row)
        bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k != "step" and isinstance(v, float)})

    for step in bar:
        if on_step is not None:
            on_step(step, model)
        model.train()
        loss = loss_fn(step)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower the learning rate?")
        if step % log_every == 0:
            log(step, loss.detach())
            if until is not None and until(history[-1]):
                bar.close()
                model.eval()
                return history
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    if on_step is not None:
        on_step(steps, model)
    with torch.no_grad():
        model.train()
        final_loss = loss_fn(steps)
    log(steps, final_loss)
    model.eval()
    return history


def column(history: list[dict], key: str) -> list:
    """One logged quantity over training: ``column(history, "test_acc")``."""
    return [row[key] for row in history if key in row]
