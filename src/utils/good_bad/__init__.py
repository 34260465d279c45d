"""Notebook 03: the same base model fine-tuned on good and on bad en→es pairs.

Imports only :mod:`utils.core` and :mod:`utils.services` (``tests/test_layout.py``).
"""

__all__ = ["mt_eval", "translation_pairs"]
