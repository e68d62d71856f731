"""Settings for every pytest run here (tests/ and the nbval run of solutions/), and the executed copies.

The environment is set before anything imports huggingface_hub or a notebook kernel starts
(kernels inherit it): offline and fast scale. The plotting backend is left alone: kernels use
the inline backend, so the executed notebooks carry their figures; plain test processes have
no display and get Agg.

When nbval executes the solution notebooks with ``GLASSBOX_RESULTS_DIR`` set and seed 0
(``make test`` in CI), each notebook is also written with its outputs to
``$GLASSBOX_RESULTS_DIR/executed/``: ``make site`` renders those copies, so the notebooks are
executed once and reused.
"""
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GLASSBOX_SCALE"] = "fast"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _executed_dir():
    from pathlib import Path
    out = os.environ.get("GLASSBOX_RESULTS_DIR")
    if not out or os.environ.get("GLASSBOX_SEED", "0") != "0":
        return None
    return Path(out) / "executed"


def pytest_sessionfinish(session):
    """Write each nbval-executed notebook, with the outputs its cells produced, for the site."""
    folder = _executed_dir()
    if folder is None:
        return
    import copy

    import nbformat
    books: dict = {}
    for item in session.items:
        outputs = getattr(item, "test_outputs", None)
        parent = getattr(item, "parent", None)
        if outputs is None or not hasattr(parent, "nb"):
            continue
        book = books.setdefault(parent, copy.deepcopy(parent.nb))
        index = next(i for i, cell in enumerate(parent.nb.cells) if cell is item.cell)   # nbval keeps the cell itself
        # live widgets (progress bars) have no state in a static copy: keep everything else
        book.cells[index].outputs = [o for o in outputs if "application/vnd.jupyter.widget-view+json"
                                     not in o.get("data", {})]
    for parent, book in books.items():
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(book, folder / parent.path.name)
