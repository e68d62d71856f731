"""How far a learner has got: run the workspace's exercise notebooks and report every exercise.

    python -m tools.progress                 # every notebook in workspace/ (``make progress``)
    python -m tools.progress workspace/00_orientation.ipynb

Each notebook runs top to bottom in a fresh kernel, errors and all (an unwritten exercise
does not stop the ones after it from being tried). An exercise is a cell that calls a learner
check, ``check_<name>(<function>, ...)``; its status is read from that cell's output:

* **passed** — the check printed its ✔ line;
* **not written** — the function still raises ``NotImplementedError``;
* **failed** — the check's one-line message, or the error the learner's code raised
  (including errors caused by an earlier exercise that is not done yet).

It uses the checks only, never the solutions. Nothing is written: the notebooks on disk keep
whatever the learner saved.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECK_CALL = re.compile(r"^check_\w+\((\w+)", re.MULTILINE)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Exercise:
    chapter: str
    name: str
    status: str              # "passed", "failed" or "not written"
    message: str = ""


def _text(outputs) -> str:
    parts = []
    for out in outputs:
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
    return ANSI.sub("", "".join(parts))


def status_of(cell) -> tuple[str, str]:
    """(status, message) of one exercise cell from its outputs."""
    error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
    if error is None:
        text = _text(cell.get("outputs", []))
        return ("passed", "") if "✔" in text else ("failed", "the check printed no result: run the cell again")
    name, value = error.get("ename", ""), ANSI.sub("", error.get("evalue", ""))
    if name == "NotImplementedError" or "is not written yet" in value:
        return "not written", ""
    if name == "CheckFailed":
        return "failed", value.splitlines()[0] if value else "the check failed"
    return "failed", f"{name}: {value.splitlines()[0] if value else ''}".strip()


def exercises_of(notebook) -> list[tuple[int, str]]:
    """(cell index, exercise name) for every cell that calls a learner check."""
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            found += [(index, name) for name in CHECK_CALL.findall(cell.source)]
    return found


def run(path: Path, timeout: int = 1800) -> list[Exercise]:
    """Execute one notebook (errors allowed) and classify each of its exercises."""
    import nbformat
    from nbclient import NotebookClient
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    chapter = path.stem
    return [Exercise(chapter, name, *status_of(notebook.cells[index])) for index, name in exercises_of(notebook)]


def report(results: list[Exercise]) -> str:
    lines, chapter = [], None
    marks = {"passed": "✔", "failed": "✘", "not written": "·"}
    for ex in results:
        if ex.chapter != chapter:
            chapter = ex.chapter
            done = sum(e.status == "passed" for e in results if e.chapter == chapter)
            total = sum(e.chapter == chapter for e in results)
            lines.append(f"{chapter}: {done}/{total} passed")
        lines.append(f"  {marks[ex.status]} {ex.name:<28} {ex.status}" + (f" — {ex.message}" if ex.message else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[ROOT / "workspace"],
                        help="notebooks, or folders of notebooks (default: workspace/)")
    args = parser.parse_args(argv)
    books = sorted(p for path in args.paths for p in ([path] if path.suffix == ".ipynb" else path.glob("*.ipynb")))
    if not books:
        print("No notebooks found. `make workspace` copies the exercises into workspace/.")
        return 1
    results = []
    for book in books:
        print(f"running {book.name} ...", file=sys.stderr, flush=True)
        results += run(book)
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
