"""The exercise pipeline: chapters/ is what the generator writes, pairs are in sync, no outputs."""
import json
import re
from pathlib import Path

import pytest

from tools import make_chapters

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py"))


def test_generated_files_are_up_to_date():
    stale = [str(p.relative_to(ROOT)) for p, text in make_chapters.expected_files().items()
             if not p.exists() or p.read_text() != text]
    assert not stale, f"run `python -m tools.make_chapters`; stale: {stale}"


def test_every_solution_has_an_exercise_pair():
    assert SOLUTIONS, "no solution notebooks found"
    for solution in SOLUTIONS:
        for path in (solution.with_suffix(".ipynb"), ROOT / "chapters" / solution.name,
                     ROOT / "chapters" / solution.with_suffix(".ipynb").name):
            assert path.exists(), f"missing {path.relative_to(ROOT)}"


NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    assert not any(c.get("outputs") for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_exercises_have_stubs_and_checks(solution):
    text = solution.read_text()
    exercise = (ROOT / "chapters" / solution.name).read_text()
    blocks = text.count("# BEGIN SOLUTION")
    # an exercise is a numbered heading; it may hold several marked functions (encode, decode and the loss of an SAE)
    exercises = set(re.findall(r"^# ### Exercise (\d+) —", text, flags=re.MULTILINE))
    assert blocks == text.count("# END SOLUTION") and blocks >= len(exercises), "every exercise has marked code"
    assert 3 <= len(exercises) <= 7, f"3-7 exercises per chapter, found {len(exercises)}"
    assert exercises == {str(i) for i in range(1, len(exercises) + 1)}, "exercises are numbered 1, 2, 3 ... in order"
    assert "BEGIN SOLUTION" not in exercise and exercise.count("raise NotImplementedError") >= blocks
    assert text.count("check_") >= 2 * len(exercises), "each exercise is imported and called with its check"


def test_strip_solutions_keeps_indentation_and_hint():
    source = "def f(x):\n    # BEGIN SOLUTION hint: add one\n    return x + 1\n    # END SOLUTION\n"
    assert make_chapters.strip_solutions(source) == \
        'def f(x):\n    raise NotImplementedError("Exercise: write this part. Hint: add one")\n'


@pytest.mark.parametrize("broken", ["# BEGIN SOLUTION\nx = 1\n", "x = 1\n# END SOLUTION\n",
                                    "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n"])
def test_strip_solutions_rejects_unbalanced_markers(broken):
    with pytest.raises(ValueError):
        make_chapters.strip_solutions(broken)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_links_open_a_gpu_runtime(notebook):
    metadata = json.loads(notebook.read_text())["metadata"]
    assert metadata.get("accelerator") == "GPU" and metadata.get("colab", {}).get("gpuType"), \
        "the notebook should ask Colab for a GPU runtime (tools/make_chapters.py writes the metadata)"
