"""The first code cell of every notebook: choose the profile, say what it uses, get ready.

.. code-block:: python

    from utils.core.notebook import start
    nb = start("03_datos_buenos_vs_malos")
    cfg = nb.cfg            # this notebook's settings section for the active profile
    nb.results.record(...)  # figures measured live → build/results/<name>.json
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass

from utils.core.course import NotebookInfo, notebook_info
from utils.core.results import Results
from utils.core.settings import (
    CourseSettings,
    ProfileName,
    active_profile,
    apply_overrides,
    env_overrides,
    get_settings,
    section_items,
)

#: Environment the mini profile sets before any Hugging Face library is imported.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@dataclass
class NotebookContext:
    """What a notebook needs after its first cell."""

    info: NotebookInfo
    profile: ProfileName
    reason: str
    settings: CourseSettings
    results: Results
    #: settings changed from the profile's defaults: ``{"section.field": value}``
    overrides: dict[str, object] | None = None

    @property
    def cfg(self):  # the section of CourseSettings this notebook reads
        return getattr(self.settings, self.info.section)

    @property
    def is_mini(self) -> bool:
        return self.profile == "mini"

    def preflight(self, *, gpu: bool = True, **needs):
        """:func:`utils.core.preflight.preflight` with the profile's GPU and disk needs filled in.

        ``gpu=False`` skips the GPU check even in full (e.g. when a remote endpoint
        does the heavy work).  Other keyword arguments go to ``preflight`` unchanged.
        """
        from utils.core.preflight import preflight

        wants_gpu = gpu and self.settings.needs_gpu
        return preflight(
            gpu_gb=self.settings.min_vram_gb if wants_gpu else None,
            disk_gb=self.settings.min_disk_gb,
            **needs,
        )


def go_offline() -> None:
    """Make every Hugging Face call fail fast instead of trying the network (mini profile)."""
    os.environ.update(OFFLINE_ENV)
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # imported before start(): its flag was read already
        constants.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and (if imported) PyTorch's generators."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def describe(ctx: NotebookContext) -> str:
    """Human-readable summary of the profile and the settings this notebook will use."""
    lines = [
        f"📓 {ctx.info.title}",
        f"Perfil activo: {ctx.profile}  ({ctx.reason}; cámbialo con COURSE_PROFILE=mini|full)",
    ]
    if ctx.is_mini:
        lines.append("Modo sin conexión: HF_HUB_OFFLINE=1 (modelos y datos locales, CPU).")
    lines.append(f"Ajustes de este cuaderno ({ctx.info.section}):")
    changed = ctx.overrides or {}
    width = max(len(k) for k, _ in section_items(ctx.cfg))
    for k, v in section_items(ctx.cfg):
        mark = "   ← cambiado" if f"{ctx.info.section}.{k}" in changed else ""
        lines.append(f"  {k:<{width}} = {v!r}{mark}")
    others = sorted(k for k in changed if not k.startswith(f"{ctx.info.section}."))
    if others:
        lines.append("Otros ajustes cambiados: " + ", ".join(f"{k}={changed[k]!r}" for k in others))
    return "\n".join(lines)


def start(name: str, *, seed: int = 42, verbose: bool = True, **knobs: object) -> NotebookContext:
    """Set up notebook ``name`` for the active profile and print what it will use.

    In mini it switches the Hugging Face libraries to offline mode; it always seeds the
    random generators and silences the tokenizers' fork warning.

    ``knobs`` change this notebook's settings from the cell, without editing ``src/``:
    ``start("03_datos_buenos_vs_malos", max_steps=60)``.  Each name and type is checked.
    ``COURSE_SETTINGS_OVERRIDES`` (JSON, ``{"section.field": value}``) does the same from the
    environment, for tests and the full-profile rehearsal; the notebook's own knobs win.
    """
    info = notebook_info(name)
    profile, reason = active_profile()
    settings = get_settings(profile)  # COURSE_SETTINGS_OVERRIDES already applied
    if knobs:
        settings = apply_overrides(settings, {info.section: dict(knobs)})
    by_section = env_overrides()
    by_section.setdefault(info.section, {}).update(knobs)
    overrides = {f"{sec}.{k}": v for sec, changes in by_section.items() for k, v in changes.items()}
    if profile == "mini":
        go_offline()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    seed_everything(seed)
    ctx = NotebookContext(
        info=info,
        profile=profile,
        reason=reason,
        settings=settings,
        results=Results(info.name, profile),
        overrides=overrides,
    )
    if overrides:
        ctx.results.record(settings_overrides=overrides)
    if verbose:
        print(describe(ctx))
    return ctx
