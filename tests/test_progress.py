"""``make progress`` tells not-written, passed and failed exercises apart, with the check's message."""
import ast
from pathlib import Path

import nbformat

from tools import progress

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("zero_head_hook", "add_vector_hook")


def function_source(notebook: str, name: str) -> str:
    text = (ROOT / notebook).read_text()
    node = next(n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == name)
    return ast.get_source_segment(text, node)


def workspace_notebook(path: Path, sources: dict) -> Path:
    """A two-exercise notebook like chapter 00's: imports, then each exercise and its check call."""
    imports = "import torch\nfrom utils.checks.orientation import check_add_vector_hook, check_zero_head_hook"
    cells = [nbformat.v4.new_code_cell(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n{imports}")]
    cells += [nbformat.v4.new_code_cell(f"{sources[name]}\n\n\ncheck_{name}({name})") for name in NAMES]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def statuses(path: Path) -> dict:
    return {ex.name: (ex.status, ex.message) for ex in progress.run(path, timeout=120)}


def test_progress_on_fresh_solved_and_mistaken_workspaces(tmp_path):
    stubs = {n: function_source("chapters/00_orientation.py", n) for n in NAMES}
    solved = {n: function_source("solutions/00_orientation.py", n) for n in NAMES}
    assert "NotImplementedError" in stubs["zero_head_hook"] and "NotImplementedError" not in solved["zero_head_hook"]
    mistaken = dict(solved, add_vector_hook=solved["add_vector_hook"].replace("coeff * vector", "vector"))
    assert mistaken["add_vector_hook"] != solved["add_vector_hook"]

    fresh = statuses(workspace_notebook(tmp_path / "fresh.ipynb", stubs))
    assert fresh == {n: ("not written", "") for n in NAMES}
    assert statuses(workspace_notebook(tmp_path / "solved.ipynb", solved)) == {n: ("passed", "") for n in NAMES}
    planted = statuses(workspace_notebook(tmp_path / "mistake.ipynb", mistaken))
    assert planted["zero_head_hook"] == ("passed", "")
    status, message = planted["add_vector_hook"]
    assert status == "failed" and "coeff" in message, message
    text = progress.report([progress.Exercise("00", "add_vector_hook", status, message)])
    assert "✘ add_vector_hook" in text and message in text
