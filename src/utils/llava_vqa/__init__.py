"""Notebook 04: LLaVA visual question answering with LoRA.

Imports only :mod:`utils.core` and :mod:`utils.services` (``tests/test_layout.py``).
"""

__all__ = ["llava_model", "llava_training", "vqa_data", "vqa_plots"]
