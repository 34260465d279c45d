"""Figures of notebook 04: example images with Q/A and accuracy per question type.

(The loss curve uses :func:`utils.core.finetune.plot_loss_curves`, shared with notebook 03.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from utils.llava_vqa.vqa_data import VqaRow, normalize_answer


def plot_examples(
    rows: Sequence[VqaRow],
    image_root: Path,
    predictions: Sequence[str] | None = None,
    *,
    n: int = 8,
    cols: int = 4,
    title: str = "",
):
    """A grid of the first ``n`` images with question, answer and (optionally) prediction.

    Correct predictions are titled in green, wrong ones in red.  Returns the figure.
    """
    import matplotlib.pyplot as plt
    from PIL import Image

    n = min(n, len(rows))
    rows_needed = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows_needed, cols, figsize=(3.2 * cols, 3.5 * rows_needed), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, row) in enumerate(zip(axes.flat, rows[:n])):
        with Image.open(Path(image_root) / row.image) as image:
            ax.imshow(image.convert("RGB"))
        text = f"{row.question}\nrespuesta: {row.answer}"
        colour = "black"
        if predictions is not None:
            ok = normalize_answer(predictions[i]) == normalize_answer(row.answer)
            text += f"\npredicción: {predictions[i] or '∅'}"
            colour = "green" if ok else "red"
        ax.set_title(text, fontsize=8, color=colour)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_accuracy_by_type(table: Mapping[str, Mapping[str, float]], *, title: str = ""):
    """Grouped bars: ``table[system][question type] = accuracy`` (0–1). Returns the figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    systems = list(table)
    types = list(next(iter(table.values())))
    x = np.arange(len(types))
    width = 0.8 / max(1, len(systems))
    fig, ax = plt.subplots(figsize=(1.6 * len(types) + 3, 3.8))
    for i, system in enumerate(systems):
        values = [table[system][t] for t in types]
        bars = ax.bar(x + (i - (len(systems) - 1) / 2) * width, values, width, label=system)
        ax.bar_label(bars, labels=[f"{v:.0%}" for v in values], fontsize=7)
    ax.set_xticks(x, types)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("exactitud (coincidencia exacta)")
    ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
