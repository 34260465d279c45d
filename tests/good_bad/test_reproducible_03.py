"""Notebook 03 gives the same figures on every run (issue 14).

The same short training runs twice, each in its own Python process (its own hash seed, so
a set or dict order that depended on it would show), with the notebook's own setup and
configuration cells (bf16 autocast where the CPU computes it natively, as in the notebook).
Losses, translations and scores must match to the last digit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from utils.core.paths import repo_root

ROOT = repo_root()

# Runs in a fresh interpreter: the notebook's tagged cells, 3 steps on 16 pairs, 4 test sentences.
SCRIPT = r"""
import json, sys, torch
from course_tools.notebook_cells import run_tagged_cells
from utils.core.finetune import generate_greedy, loss_curve
from utils.core.notebook import go_offline
from utils.core.paths import notebooks_dir
from utils.core.settings import get_settings
from utils.good_bad.mt_eval import score_translations
from utils.good_bad.translation_pairs import load_pairs, prompt_messages

go_offline()
cfg = get_settings("mini").good_bad
ns = run_tagged_cells(notebooks_dir() / "03_datos_buenos_vs_malos.ipynb", ["good-bad-setup", "good-bad-config"],
                      {"cfg": cfg})
ns["sft_config"].disable_tqdm = True
trainer = ns["crear_trainer"](load_pairs(cfg.good_dataset)[:16])
trainer.train()
test = load_pairs("local:data/" + cfg.test_file, limit=4)
with torch.autocast("cpu", dtype=torch.bfloat16, enabled=ns["EN_CPU"] and ns["CALCULO"] == "bf16"):
    outputs = generate_greedy(trainer.model, ns["tokenizer"], [prompt_messages(p.source, cfg.system_prompt) for p in test],
                              max_new_tokens=cfg.max_new_tokens)
scores = score_translations(outputs, [p.target for p in test])
print("RESULT" + json.dumps({"precision": ns["CALCULO"], "losses": loss_curve(trainer.state.log_history).losses,
                             "outputs": outputs, "chrf": scores.chrf, "bleu": scores.bleu}))
"""

SHORT = {"good_bad.max_steps": 3, "good_bad.batch_size": 4, "good_bad.logging_steps": 1, "good_bad.max_new_tokens": 16}


def run_once(tmp_path, hash_seed: str) -> dict:
    env = dict(os.environ)
    env.update(
        COURSE_PROFILE="mini",
        COURSE_BUILD_DIR=str(tmp_path / f"build-{hash_seed}"),
        COURSE_SETTINGS_OVERRIDES=json.dumps(SHORT),
        PYTHONHASHSEED=hash_seed,
        # Idle OpenMP threads sleep instead of spinning: the same arithmetic, and a busy CI machine
        # (other jobs on the same cores) is not slowed down by threads waiting for each other.
        OMP_WAIT_POLICY="PASSIVE",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH", "")])),
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT"))
    return json.loads(line.removeprefix("RESULT"))


@pytest.mark.slow
def test_the_same_short_training_twice_in_two_processes_gives_the_same_figures(tmp_path):
    first = run_once(tmp_path, "1")
    second = run_once(tmp_path, "2")
    assert len(first["losses"]) == 3 and all(first["outputs"])
    assert second == first
