"""Run selected cells of a course notebook from a script, so scripts reuse the notebook's code.

A benchmark that repeats a notebook's experiment (for example over several seeds) must use
the *same* configuration the learner reads in the notebook.  Instead of copying those
cells, the notebook tags them (cell metadata ``tags``) and the script executes them:

.. code-block:: python

    ns = run_tagged_cells(notebooks_dir() / "03_datos_buenos_vs_malos.ipynb",
                          ["good-bad-setup", "good-bad-config"], {"cfg": cfg})
    ns["sft_config"], ns["crear_trainer"]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class TaggedCellError(LookupError):
    """A tag that no code cell of the notebook carries."""


def tagged_cell_sources(path: Path, tag: str) -> list[str]:
    """Source of each code cell of notebook ``path`` tagged ``tag``, in notebook order.

    Raises:
        TaggedCellError: when no code cell has the tag.
    """
    notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    sources = [
        "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for cell in notebook["cells"]
        if cell["cell_type"] == "code" and tag in cell.get("metadata", {}).get("tags", [])
    ]
    if not sources:
        raise TaggedCellError(
            f"No code cell of {Path(path).name} is tagged {tag!r}; add the tag in the cell metadata."
        )
    return sources


def run_tagged_cells(path: Path, tags: Sequence[str], namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute the cells tagged with each of ``tags`` (tag by tag) in ``namespace``; return it.

    Cells run as plain Python: they must not use IPython magics.
    """
    namespace = {} if namespace is None else namespace
    namespace.setdefault("__name__", "__notebook_cells__")
    for tag in tags:
        for number, source in enumerate(tagged_cell_sources(path, tag), start=1):
            code = compile(source, f"<{Path(path).name} [{tag} #{number}]>", "exec")
            exec(code, namespace)  # noqa: S102 - the course's own notebook, by design
    return namespace
