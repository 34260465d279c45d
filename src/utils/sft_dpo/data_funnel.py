"""How many rows survive each stage of a data pipeline, as a table and a plot (notebook 02)."""

from __future__ import annotations

from collections.abc import Mapping


def funnel_table(stages: Mapping[str, int]) -> str:
    """One line per stage: count and share of the first stage."""
    if not stages:
        return "(sin etapas)"
    first = max(next(iter(stages.values())), 1)
    width = max(len(name) for name in stages)
    return "\n".join(f"{name:<{width}}  {n:>5}  {100 * n / first:5.0f} %" for name, n in stages.items())


def plot_funnel(stages: Mapping[str, int], title: str = "Filas que sobreviven a cada etapa"):
    """Horizontal bars, first stage on top, each labelled with its count."""
    import matplotlib.pyplot as plt

    names, counts = list(stages), list(stages.values())
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    bars = ax.barh(range(len(names)), counts, color="#4c72b0")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.bar_label(bars, padding=3)
    ax.set_xlabel("filas")
    ax.set_title(title)
    ax.set_xlim(0, max(counts + [1]) * 1.15)
    fig.tight_layout()
    return fig
