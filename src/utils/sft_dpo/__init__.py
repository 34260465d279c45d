"""Notebook 02: SFT and DPO data with distilabel, reviewed in Argilla.

Imports only :mod:`utils.core` and :mod:`utils.services` (``tests/test_layout.py``).
"""

__all__ = [
    "argilla_io",
    "data_funnel",
    "dataset_checks",
    "exercise_checks",
    "generation_llms",
    "grounded_instructions",
    "ray_watchdog",
    "simulated_review",
    "text_embeddings",
    "wiki_corpus",
]
