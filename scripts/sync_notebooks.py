#!/usr/bin/env python
"""Keep the notebooks and the README in sync with the catalogue and the pins.

    python scripts/sync_notebooks.py          # rewrite what is out of date
    python scripts/sync_notebooks.py --check  # exit 1 and list what is out of date

For each notebook it: strips outputs and execution counts, regenerates the Colab badge
(first line of the first cell) and the setup cell (first code cell) from
``course_tools.catalogue``, and normalizes the metadata Colab needs.  In README.md it regenerates the
table between ``<!-- notebooks:start -->`` and ``<!-- notebooks:end -->``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from course_tools.catalogue import BADGE_MARKER, badge_markdown, readme_table, setup_cell_source
from utils.core.course import NOTEBOOKS, read_pins

README_BLOCK = re.compile(r"(<!-- notebooks:start -->\n)(.*?)(\n<!-- notebooks:end -->)", re.DOTALL)
METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
    "colab": {"provenance": [], "toc_visible": True},
    "accelerator": "GPU",
}


def _lines(text: str) -> list[str]:
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def sync_notebook(path: Path, pins: dict[str, str]) -> str:
    """Return the synced JSON text of notebook ``path``."""
    info = next(i for i in NOTEBOOKS if i.filename == path.name)
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    if not cells or cells[0]["cell_type"] != "markdown":
        raise SystemExit(f"{path}: the first cell must be markdown (badge + title).")
    first = "".join(cells[0]["source"]).split("\n")
    if BADGE_MARKER in first[0]:
        first = first[1:]
    cells[0]["source"] = _lines("\n".join([badge_markdown(info), *first]))
    code = [c for c in cells if c["cell_type"] == "code"]
    if not code:
        raise SystemExit(f"{path}: no code cell to hold the setup cell.")
    code[0]["source"] = _lines(setup_cell_source(info, pins))
    for cell in cells:
        cell.setdefault("metadata", {})
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.pop("id", None)
    nb["metadata"] = METADATA
    nb["nbformat"], nb["nbformat_minor"] = 4, 4
    # sorted keys, as nbformat.write (and so Jupyter and scripts that edit notebooks) writes them
    return json.dumps(nb, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def sync_readme(text: str) -> str:
    if not README_BLOCK.search(text):
        raise SystemExit("README.md lacks the <!-- notebooks:start --> ... <!-- notebooks:end --> block.")
    return README_BLOCK.sub(lambda m: m.group(1) + readme_table() + m.group(3), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if anything is out of date")
    args = parser.parse_args(argv)
    pins = read_pins(ROOT / "requirements.txt")
    stale: list[str] = []
    targets = [(ROOT / "notebooks" / i.filename, lambda p: sync_notebook(p, pins)) for i in NOTEBOOKS]
    targets.append((ROOT / "README.md", lambda p: sync_readme(p.read_text(encoding="utf-8"))))
    for path, render in targets:
        if not path.is_file():
            stale.append(f"{path.relative_to(ROOT)} (missing)")
            continue
        new = render(path)
        if new != path.read_text(encoding="utf-8"):
            stale.append(str(path.relative_to(ROOT)))
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if stale:
        verb = "out of date" if args.check else "updated"
        print(f"{verb}: " + ", ".join(stale))
        if args.check:
            print("Run `make sync` and commit the result.")
            return 1
    else:
        print("notebooks and README are in sync")
    return 0


if __name__ == "__main__":
    sys.exit(main())
