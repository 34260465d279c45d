"""Fixtures of the notebook-02 tests (imported by those modules, not a conftest).

The objects notebook 02 teaches (the distilabel ``GroundedInstruction`` task, ``make_llm``, the
``Pipeline``, the Argilla settings and record builders) are written in the notebook's cells,
not in ``utils``.  :func:`notebook_cells` runs those cells (tagged ``definitions``) so the
tests exercise the notebook's own code, d2l style, instead of a copy that could drift.
"""

from __future__ import annotations

import sys
import types
import warnings
from pathlib import Path
from typing import Any

import nbformat
import pytest

from utils.core.settings import get_settings
from utils.services import llm_server
from utils.services.llm_client import resolve_endpoint

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_datos_sft_dpo_distilabel_argilla.ipynb"


@pytest.fixture(scope="module")
def llm_endpoint():
    """The course's llama.cpp server (the one `make test` keeps up, or started here)."""
    started_here = not llm_server.status().healthy
    llm_server.ensure_running()
    yield resolve_endpoint()
    if started_here:
        llm_server.stop()


def definition_cells(argilla: bool = False) -> list[str]:
    """Sources of notebook 02's cells tagged ``definitions``, in order; the Argilla ones only if asked.

    Argilla's field and question objects need a client first (``rg.Argilla`` sets the default).
    """
    cells = nbformat.read(NOTEBOOK, as_version=4).cells
    sources = [c.source for c in cells if c.cell_type == "code" and "definitions" in c.metadata.get("tags", [])]
    return [source for source in sources if argilla or "rg." not in source]


def notebook_cells(
    profile: str = "mini",
    inputs: list[dict[str, Any]] | None = None,
    module: str = "nb02_cells",
    argilla: bool = False,
    **given: Any,
):
    """A module holding what notebook 02's ``definitions`` cells define, run as the notebook runs them.

    ``nb``, ``cfg`` and ``inputs`` (the rows the pipeline loads) are given as the notebook's
    earlier cells define them.  ``argilla=True`` also runs the Argilla cells (``sft_settings``,
    ``dpo_settings``, ``sft_record``, ``dpo_record``): connect a client first.  The module is registered in ``sys.modules`` (a forked
    ``pipeline.run()`` worker unpickles its steps by reference) and, once Ray is imported,
    pickled by value (Ray's workers cannot import it).
    """
    settings = get_settings(profile)
    nb = types.SimpleNamespace(settings=settings, is_mini=profile == "mini", profile=profile)
    namespace = types.ModuleType(module)
    namespace.__dict__.update(nb=nb, cfg=settings.sft_dpo, inputs=inputs or [], **given)
    sys.modules[module] = namespace
    if "ray" in sys.modules:  # Ray's workers cannot import this module: send its classes by value
        from ray import cloudpickle

        cloudpickle.register_pickle_by_value(namespace)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for source in definition_cells(argilla):
            exec(compile(source, f"<{NOTEBOOK.name}>", "exec", dont_inherit=True), namespace.__dict__)  # noqa: S102 - the notebook's own cells
    return namespace
