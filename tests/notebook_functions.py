"""Pull single functions out of a chapter's percent-format .py without running the chapter.

The learner-check tests need the real solution function and the real stub, not copies.
``load_function("solutions/05_grokking.py", "fourier_basis")`` executes the notebook's
import statements and that one ``def`` (plus any module-level constants it names that are
plain literals), and returns the function.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _source(notebook: str | Path) -> tuple[ast.Module, str]:
    path = ROOT / notebook
    text = path.read_text()
    return ast.parse(text, filename=str(path)), str(path)


def load_functions(notebook: str | Path, *names: str) -> dict:
    """The named top-level functions of ``notebook``, compiled with the notebook's imports."""
    tree, filename = _source(notebook)
    keep = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    found = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    missing = [n for n in names if n not in found]
    if missing:
        raise LookupError(f"{notebook} defines no top-level function(s) {missing}")
    namespace: dict = {"__name__": f"notebook_{Path(filename).stem}"}
    exec(compile(ast.Module(body=keep, type_ignores=[]), filename, "exec"), namespace)
    # Functions may call other top-level functions of the notebook, so define them all; those whose
    # default arguments name results computed in the notebook cannot be defined, and are not needed.
    for name, node in found.items():
        try:
            exec(compile(ast.Module(body=[node], type_ignores=[]), filename, "exec"), namespace)
        except NameError:
            if name in names:
                raise
    return {n: namespace[n] for n in names}


def load_function(notebook: str | Path, name: str):
    return load_functions(notebook, name)[name]


def solution_and_stub(slug: str, name: str):
    """``(solution_fn, stub_fn)`` for exercise ``name`` of chapter ``slug`` (e.g. "05_grokking")."""
    return load_function(f"solutions/{slug}.py", name), load_function(f"chapters/{slug}.py", name)


def check_rejects(check, fn, *args, match: str | None = None) -> str:
    """Assert that a learner check rejects ``fn`` (a stub or a plausible mistake) for the right reason.

    ``match``: a regular expression the failure message must contain — the words that name the
    mistake — so that a check failing for some other reason does not count. A stub is
    recognised by itself (``not written yet``). The message must also stay short (a learner
    reads it in one glance). Returns the message.
    """
    import pytest
    from utils.checks import CheckFailed
    with pytest.raises(CheckFailed) as err:
        check(fn, *args)
    message = str(err.value)
    if match is None and "not written yet" not in message:
        raise AssertionError(f"say which mistake {fn.__name__} should be caught for (match=...); got: {message}")
    if match is not None:
        import re
        assert re.search(match, message, flags=re.IGNORECASE), \
            f"{fn.__name__}: message {message!r} does not match {match!r}"
    assert len(message.splitlines()) <= 5, f"a check's message should fit in 5 lines: {message!r}"
    return message
