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


# An architecture leaks into a chapter as a literal block index in a hook name, a module name of one
# family, SmolLM2's own turn marker, or a layer given as a number; parameters cells may hold such
# choices, every other code cell must derive them from the model.
ARCHITECTURE_SPECIFIC = [
    (re.compile(r"blocks\.\d"), "a literal block index in a hook name (use layer_at / resid_name)"),
    (re.compile(r"\b(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj|c_attn|c_proj|c_fc|self_attn|"
                r"embed_tokens|lm_head)\b"), "one family's module name (use the bridge's hook names)"),
    (re.compile(r"\.model\.layers|transformer\.h\b|\.layers\[\d"), "one family's block list (use decoder_layers)"),
    (re.compile(r"<\|im_(start|end)\|>"), "SmolLM2's turn marker (use the tokenizer's chat template and BOS)"),
    (re.compile(r"\b(layer|LAYER|layers|LAYERS)\s*=\s*\[?\d"), "a layer given as a number (use a fraction of depth)"),
]


def _code_outside_parameters(solution: Path) -> list[tuple[int, str]]:
    """(line number, code without comments) of every code cell except the parameters cell."""
    import io
    import tokenize
    lines, keep, code = solution.read_text().splitlines(), False, []
    for number, line in enumerate(lines, 1):
        if line.startswith("# %%"):
            keep = "[markdown]" not in line and '"parameters"' not in line
            continue
        if keep:
            code.append((number, line))
    cleaned = []
    for number, line in code:
        try:
            tokens = [t for t in tokenize.generate_tokens(io.StringIO(line).readline) if t.type != tokenize.COMMENT]
            cleaned.append((number, tokenize.untokenize(tokens)))
        except (tokenize.TokenError, IndentationError, SyntaxError):
            cleaned.append((number, line.split("  #")[0]))    # a line inside a bracket: drop a trailing comment
    return cleaned


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_no_architecture_specific_names_outside_parameters(solution):
    found = [f"line {number}: {why}: {code.strip()[:90]}" for number, code in _code_outside_parameters(solution)
             for pattern, why in ARCHITECTURE_SPECIFIC if pattern.search(code)]
    assert not found, "\n".join(found)


def test_chapter_runs_cover_every_lm_chapter_and_gpu_check_needs_a_gpu(capsys):
    import torch

    from tools import chapter_runs
    every, lm_only = chapter_runs.chapters(), chapter_runs.chapters(needs_lm=True)
    assert [p.stem for p in every] == [p.stem for p in SOLUTIONS]
    assert {p.stem[:2] for p in every} - {p.stem[:2] for p in lm_only} == {"05"}, "only chapter 05 never loads the LM"
    if not torch.cuda.is_available():
        assert chapter_runs.main(["gpu-check"]) == 2
        assert "has none" in capsys.readouterr().out
