"""Notebook 04's own code for the tests: the cells that the lesson writes, run as they are.

The notebook writes its ``encode``/``collate`` pair (the -100 masking) and its
``from_pretrained`` call in cells; the tests run those very cells (tagged ``vqa-collator``)
instead of a copy in ``utils``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from course_tools.notebook_cells import run_tagged_cells

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "04_llava_vqa_lora.ipynb"


def notebook_collator(processor: Any, data_dir: Path):
    """``rows → batch`` with the notebook's ``encode`` and ``collate`` (cell tagged ``vqa-collator``)."""
    ns = run_tagged_cells(NOTEBOOK, ["vqa-collator"], {"processor": processor, "data_dir": Path(data_dir)})
    encode, collate = ns["encode"], ns["collate"]
    return lambda rows: collate([encode(row) for row in rows])


def load_tiny_llava():
    """``(model, processor)`` of the mini profile's tiny LLaVA, loaded as the notebook does."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from utils.core.assets import resolve_model

    path = resolve_model("local:tiny-llava-smollm2")
    return LlavaForConditionalGeneration.from_pretrained(path), AutoProcessor.from_pretrained(path)
