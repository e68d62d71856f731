"""Matplotlib helpers and an ipywidgets control with a static fallback."""
from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np


def to_numpy(x):
    if hasattr(x, "detach"):
        x = x.detach().float().cpu()
    return np.asarray(x)


def heatmap(values, ax=None, title="", xlabel="", ylabel="", xticks=None, yticks=None, cmap="viridis",
            center=False, colorbar=True):
    """A labelled heatmap; ``center=True`` uses a diverging map around zero."""
    values = to_numpy(values)
    ax = ax or plt.subplots(figsize=(5, 4))[1]
    limit = np.abs(values).max()
    kwargs = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit} if center else {"cmap": cmap}
    image = ax.imshow(values, aspect="auto", interpolation="nearest", **kwargs)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if xticks is not None:
        ax.set_xticks(range(len(xticks)), xticks, rotation=90)
    if yticks is not None:
        ax.set_yticks(range(len(yticks)), yticks)
    if colorbar:
        plt.colorbar(image, ax=ax)
    return ax


def lines(x, ys: dict, ax=None, title="", xlabel="", ylabel="", logy=False, logx=False):
    """Several named curves on one axis: ``lines(steps, {"train": a, "test": b})``."""
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    for label, y in ys.items():
        ax.plot(to_numpy(x), to_numpy(y), label=label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    if len(ys) > 1:
        ax.legend()
    return ax


def widgets_available() -> bool:
    """True inside a live Jupyter kernel with ipywidgets installed.

    Any kernel whose shell derives from ipykernel's ``ZMQInteractiveShell`` supports widget
    comms: JupyterLab's, and Colab's (a subclass). A plain IPython terminal or nbval's
    stand-ins do not.
    """
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and any(cls.__name__ == "ZMQInteractiveShell" for cls in type(shell).__mro__)


def slider_or_static(show: Callable[[float], None], values: Sequence, description="value", static=None):
    """An ipywidgets slider over ``values`` calling ``show(value)``; without widgets
    (nbval, a plain script, a static viewer) call ``show`` once for each value in ``static``."""
    if widgets_available():
        import ipywidgets as widgets
        # interact returns the wrapped function; returning it would print its repr under the slider
        widgets.interact(show, **{description: widgets.SelectionSlider(options=list(values))})
        return None
    for value in static if static is not None else [values[0], values[len(values) // 2], values[-1]]:
        show(value)
    return None
