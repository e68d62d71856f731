"""Write the exercise notebooks from the solutions, and pair every .py with its .ipynb.

``solutions/NN_slug.py`` (jupytext percent format) is the single source. Inside it, each
exercise body sits between two marker comments at the body's indentation::

    def induction_score(pattern):
        # BEGIN SOLUTION hint: compare each query with the key one step after its earlier copy
        ...
        # END SOLUTION

``chapters/NN_slug.py`` gets the same text with every such block replaced by
``raise NotImplementedError("...hint...")``. Both folders' .ipynb files are then written
from their .py files, without outputs.

    python -m tools.make_chapters          # write everything
    python -m tools.make_chapters --check  # exit 1 if anything is stale (used by the tests)
"""
from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
HINT_MORE = re.compile(r"^\s*# \.\.\. (?P<more>.*)$")   # a hint continued on the next line(s)
BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION(?:\s+hint:\s*(?P<hint>.*))?$")
END = re.compile(r"^\s*# END SOLUTION\s*$")


# "Open in Colab" starts the runtime these name: a GPU (the free T4), so full scale runs there.
COLAB_METADATA = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}


def _raise_line(indent: str, message: str, width: int = 120) -> str:
    """``raise NotImplementedError("message")``, the message split over lines when it is too long."""
    line = f'{indent}raise NotImplementedError("{message}")\n'
    if len(line) <= width + 1:
        return line
    parts = textwrap.wrap(message, width - len(indent) - 8, drop_whitespace=False)
    body = "".join(f'{indent}    "{part}"\n' for part in parts)
    return f"{indent}raise NotImplementedError(\n{body}{indent})\n"


def _join_hints(lines: list[str]) -> list[str]:
    """Fold ``# ... more hint`` lines into the ``# BEGIN SOLUTION hint:`` line above them (one line per hint)."""
    out: list[str] = []
    for line in lines:
        more = HINT_MORE.match(line.rstrip("\n"))
        if more and out and BEGIN.match(out[-1].rstrip("\n")):
            out[-1] = out[-1].rstrip("\n") + " " + more["more"].strip() + "\n"
        else:
            out.append(line)
    return out


def strip_solutions(text: str, source: str = "<solution>") -> str:
    """Replace every marked solution block by a ``raise NotImplementedError`` with its hint.

    A long hint continues on lines of the form ``# ... more words`` right below the BEGIN line.
    """
    out, inside, start = [], False, 0
    for number, line in enumerate(_join_hints(text.splitlines(keepends=True)), start=1):
        begin = BEGIN.match(line.rstrip("\n"))
        if begin:
            if inside:
                raise ValueError(f"{source}:{number}: BEGIN SOLUTION inside another block (opened at line {start})")
            inside, start = True, number
            hint = (begin["hint"] or "").strip().replace('"', "'")
            message = "Exercise: write this part." + (f" Hint: {hint}" if hint else "")
            out.append(_raise_line(begin["indent"], message))
        elif END.match(line.rstrip("\n")):
            if not inside:
                raise ValueError(f"{source}:{number}: END SOLUTION without a BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{source}:{start}: BEGIN SOLUTION is never closed")
    return "".join(out)


def notebook_json(py_text: str) -> str:
    """The .ipynb text jupytext makes from a percent-format script, outputs empty."""
    notebook = jupytext.reads(py_text, fmt="py:percent")
    notebook.metadata.update(COLAB_METADATA)
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number:03d}"  # stable ids, so regenerating gives the same bytes
    return nbformat.writes(notebook) + "\n"


def expected_files() -> dict[Path, str]:
    """Every generated file and the text it should have."""
    files: dict[Path, str] = {}
    for solution in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py")):
        exercise_text = strip_solutions(solution.read_text(), str(solution))
        exercise = ROOT / "chapters" / solution.name
        files[exercise] = exercise_text
        files[exercise.with_suffix(".ipynb")] = notebook_json(exercise_text)
        files[solution.with_suffix(".ipynb")] = notebook_json(solution.read_text())
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale files instead of writing them")
    args = parser.parse_args(argv)
    files = expected_files()
    stale = [path for path, text in files.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run `python -m tools.make_chapters`)")
        return 1 if stale else 0
    for path in stale:
        path.write_text(files[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
