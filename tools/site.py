"""Build the rendered course: a static site of the executed solution notebooks, and the README's reference table.

    python -m tools.site              # build _build/site from results/executed (``make site``)
    python -m tools.site --readme     # rewrite the README's "What you should see" table from results/

The notebooks are the copies ``make test`` executed (``results/executed/``, written by the root
``conftest.py``): nothing is executed again. The landing page lists the chapters with their
key numbers and how many of their claims held.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
SOURCE = ROOT / "_build" / "site-src"
OUT = ROOT / "_build" / "site"
START, END = "<!-- reference:start -->", "<!-- reference:end -->"


def chapters() -> list[str]:
    return [p.stem for p in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py"))]


def results(chapter: str) -> dict:
    path = RESULTS / f"{chapter}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def title(chapter: str) -> str:
    """The notebook's first heading."""
    for line in (ROOT / "solutions" / f"{chapter}.py").read_text().splitlines():
        if line.startswith("# # "):
            return line[4:].strip()
    return chapter


def claims_line(table: dict) -> str:
    claims = table.get("claims", {})
    if not claims:
        return "—"
    held = sum(c["holds"] for c in claims.values())
    worst = min(claims, key=lambda k: claims[k]["margin"])
    return f"{held}/{len(claims)} hold (smallest margin: {worst}, {claims[worst]['margin']:.3g})"


def reference_table(link) -> str:
    """Markdown table: one row per chapter, with where to see it, time, memory and claims."""
    rows = ["| # | Chapter | wall time (s) | peak RAM (GB) | claims |", "|---|---|---|---|---|"]
    for chapter in chapters():
        table = results(chapter)
        rows.append(f"| {chapter[:2]} | [{title(chapter)}]({link(chapter)}) | {table.get('wall_s', '—')} | "
                    f"{table.get('peak_ram_gb', '—')} | {claims_line(table)} |")
    return "\n".join(rows)


def claims_section(chapter: str) -> str:
    claims = results(chapter).get("claims", {})
    if not claims:
        return ""
    rows = ["| claim | value | needed | 95% interval | margin |", "|---|---|---|---|---|"]
    for name, c in claims.items():
        interval = "" if c["ci"] is None else f"{c['ci'][0]:.3g} to {c['ci'][1]:.3g}"
        rows.append(f"| `{name}` | {c['value']:.4g} | {c['op']} {c['threshold']:.4g} | {interval} "
                    f"| {c['margin']:.3g} |")
    return f"\n### {title(chapter)}\n\n" + "\n".join(rows) + "\n"


def build() -> int:
    executed = RESULTS / "executed"
    books = [executed / f"{c}.ipynb" for c in chapters()]
    missing = [b.name for b in books if not b.exists()]
    if missing:
        print(f"No executed copies of {missing} in {executed}: run `make test` first (it writes them).")
        return 1
    shutil.rmtree(SOURCE, ignore_errors=True)
    SOURCE.mkdir(parents=True)
    for book in books:
        shutil.copy(book, SOURCE / book.name)
    toc = "\n".join(c for c in chapters())
    index = (f"# Glass Box\n\nA hands-on course in mechanistic interpretability and AI-safety methods. "
             "Each page below is a solution notebook as the test suite ran it (fast scale, seed 0, 2 CPU "
             "cores): the figures and numbers your own run should resemble.\n\n"
             f"{reference_table(lambda c: c + '.ipynb')}\n\n## Claims, with their margins\n"
             + "".join(claims_section(c) for c in chapters())
             + f"\n```{{toctree}}\n:maxdepth: 1\n:hidden:\n\n{toc}\n```\n")
    (SOURCE / "index.md").write_text(index)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(ROOT / "site"), str(SOURCE), str(OUT)]
    code = subprocess.run(command, cwd=ROOT).returncode
    if code == 0:
        print(f"site written to {OUT / 'index.html'}")
    return code


def update_readme() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        print(f"README.md has no {START} ... {END} block")
        return 1
    table = reference_table(lambda c: f"_build/site/{c}.html")
    head, rest = text.split(START, 1)
    readme.write_text(f"{head}{START}\n{table}\n{END}{rest.split(END, 1)[1]}")
    print(table)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true", help="update the README's reference table instead")
    args = parser.parse_args(argv)
    return update_readme() if args.readme else build()


if __name__ == "__main__":
    raise SystemExit(main())
