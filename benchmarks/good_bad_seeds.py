#!/usr/bin/env python
"""Notebook 03's experiment over several seeds: is "good data beat bad data" robust?

Runs the notebook's own setup and configuration cells (tagged ``good-bad-setup`` and
``good-bad-config``), so the runs use exactly the LoraConfig/SFTConfig a learner reads,
and for each seed trains the good and the bad model and scores them with greedy decoding.

    .venv/bin/python benchmarks/good_bad_seeds.py --seeds 1 2 3
    .venv/bin/python benchmarks/good_bad_seeds.py --seeds 1 2 --validation 24 --eval-at 16 24 32 40

``--validation N`` holds out N training sources (the same ones in both sets) and scores on
their good translations instead of the test set: use it to choose steps or the learning
rate, never the test set.  ``--eval-at`` also scores intermediate steps; with the constant
learning rate of the course, the model at step k is the one a k-step run would produce.
``--real`` (on by default when the folder exists) also scores every model on real pairs
nobody in the course wrote: ``../shared/real-data/en_es_real.jsonl`` next to the clone
(Tatoeba, FLORES-200 and WMT test sentences), an outside check of the notebook's claim, scored on
each model with its adapter merged (``merge_and_unload``, as in the notebook's section 9);
``--real-limit N`` keeps the first N of them; rows with a ``note`` (pairs misaligned in the
source) are left out.  ``tests/good_bad/test_real_pairs_03.py`` runs it with the notebook's seed.
``--reuse DIR`` scores the adapters the notebook saved in ``DIR/buenos`` and ``DIR/malos`` instead of
training an arm again, but only when the adapter's ``training.json`` has the fingerprint of the
trainer this run would train (:func:`utils.core.finetune.training_fingerprint`: same settings,
data, code and library versions); otherwise that arm is trained as usual.  Each run says which.
Results go to ``build/benchmarks/good_bad_seeds.json`` (rewritten after every run, so an
interrupted benchmark keeps what it measured) and a table is printed at the end.  Each run
keeps the CPU seconds of its training alone (``train_cpu_s``, scoring at ``--eval-at`` steps
left out) and of its scoring (``eval_cpu_s``).  Other knobs (``lora_r``, ``batch_size``,
``max_length``) come from ``COURSE_SETTINGS_OVERRIDES``, as in the tests.

    .venv/bin/python benchmarks/good_bad_seeds.py --table build/sweep/*.json

prints one row per configuration and scored step from earlier result files: its training CPU
seconds per run and the gap good − bad of each seed, to choose a configuration from.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=0, help="override max_steps (0 = the profile's)")
    parser.add_argument("--learning-rate", type=float, default=0.0, help="override (0 = the profile's)")
    parser.add_argument("--validation", type=int, default=0, help="hold out N training sources and score on them")
    parser.add_argument("--eval-at", type=int, nargs="*", default=[], help="also score at these steps")
    parser.add_argument("--profile", default="mini", choices=["mini", "full"])
    parser.add_argument(
        "--data",
        nargs="+",
        default=["good", "bad"],
        choices=["good", "bad"],
        help="train only these (one per process)",
    )
    parser.add_argument(
        "--real",
        type=Path,
        default=ROOT.parent / "shared" / "real-data" / "en_es_real.jsonl",
        help="real EN→ES pairs to score on as well (skipped if the file is missing)",
    )
    parser.add_argument("--real-limit", type=int, default=0, help="score on the first N real pairs (0 = all)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--reuse", type=Path, default=None, help="notebook 03's adapters folder, used when identical")
    parser.add_argument("--table", type=Path, nargs="+", default=[], help="summarise these result files and stop")
    args = parser.parse_args(argv)
    if args.table:
        runs = [run for path in args.table for run in json.loads(path.read_text(encoding="utf-8"))]
        # Files written before batch_size/lora_r/max_length were recorded ran with the profile's values.
        from utils.core.settings import get_settings

        cfg = get_settings(args.profile).good_bad
        defaults = {"batch_size": cfg.batch_size, "lora_r": cfg.lora_r, "max_length": cfg.max_length}
        runs = [{**defaults, **run} for run in runs]
        print(format_table(summarize(runs)))
        return 0

    os.environ.setdefault("COURSE_PROFILE", args.profile)
    from transformers import TrainerCallback

    from course_tools.notebook_cells import run_tagged_cells
    from utils.core.finetune import generate_greedy, loss_curve
    from utils.core.notebook import go_offline
    from utils.core.paths import build_dir, notebooks_dir
    from utils.core.settings import get_settings
    from utils.good_bad.mt_eval import score_translations
    from utils.good_bad.translation_pairs import (
        find_leaks,
        load_pairs,
        prompt_messages,
        read_pairs_jsonl,
        split_validation,
    )

    cfg = get_settings(args.profile).good_bad
    if args.profile == "mini":
        go_offline()
    ns = run_tagged_cells(
        notebooks_dir() / "03_datos_buenos_vs_malos.ipynb", ["good-bad-setup", "good-bad-config"], {"cfg": cfg}
    )
    tokenizer, sft_config, crear_trainer = ns["tokenizer"], ns["sft_config"], ns["crear_trainer"]
    if args.steps:
        sft_config.max_steps = args.steps
    if args.learning_rate:
        sft_config.learning_rate = args.learning_rate
    sft_config.disable_tqdm = True

    sets = {"good": load_pairs(cfg.good_dataset), "bad": load_pairs(cfg.bad_dataset)}
    if args.validation:
        split = {name: split_validation(pairs, args.validation, seed=0) for name, pairs in sets.items()}
        sets = {name: train for name, (train, _) in split.items()}
        scored_on, eval_pairs = f"validation ({args.validation} held-out training sources)", split["good"][1]
    else:
        scored_on, eval_pairs = (
            f"test ({cfg.test_file})",
            load_pairs(f"local:data/{cfg.test_file}", limit=cfg.eval_pairs),
        )
    real_pairs = read_pairs_jsonl(args.real)[: args.real_limit or None] if args.real.is_file() else []
    if real_pairs:
        # Rows with a "note" are known misaligned pairs in the source (README of real-data): not references.
        lines = args.real.read_text(encoding="utf-8").splitlines()
        noted = {
            f"{args.real.stem}-{n}" for n, line in enumerate(lines, 1) if line.strip() and "note" in json.loads(line)
        }
        real_pairs = [p for p in real_pairs if p.id not in noted]
        leaks = find_leaks(sets["good"] + sets["bad"], real_pairs)
        real_pairs = [p for p in real_pairs if p.id not in {t for t, _ in leaks}]
        # By source length, so that each batch pads little and stops early (Tatoeba's short sentences
        # apart from FLORES/WMT's long ones); chrF and BLEU are corpus scores, the order does not count.
        real_pairs.sort(key=lambda p: len(p.source))
        print(f"Also scoring on {len(real_pairs)} real pairs from {args.real} ({len(leaks)} dropped: in training)")

    import torch

    # The notebook's precision: bf16 autocast where the CPU computes it natively (CALCULO), as in traducir().
    autocast_bf16 = ns["EN_CPU"] and ns["CALCULO"] == "bf16"

    def score_on(pairs, model) -> dict[str, float]:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast_bf16):
            hyps = generate_greedy(
                model,
                tokenizer,
                [prompt_messages(p.source, cfg.system_prompt) for p in pairs],
                max_new_tokens=cfg.max_new_tokens,
                batch_size=cfg.eval_batch_size,
            )
        s = score_translations(hyps, [p.target for p in pairs])
        return {"chrf": s.chrf, "bleu": s.bleu}

    def score(model) -> dict[str, float]:
        return score_on(eval_pairs, model)

    class ScoreAt(TrainerCallback):
        def __init__(self) -> None:
            self.scores: dict[int, dict[str, float]] = {}
            self.cpu_s = 0.0  # scoring inside the training loop: not training CPU

        def on_step_end(self, _args, state, control, model=None, **kwargs):
            if state.global_step in args.eval_at and state.global_step != sft_config.max_steps:
                start = time.process_time()
                self.scores[state.global_step] = score(model)
                self.cpu_s += time.process_time() - start

    out = args.out or build_dir() / "benchmarks" / "good_bad_seeds.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    runs: list[dict] = []
    print(f"Scoring on {scored_on}; steps={sft_config.max_steps}, lr={sft_config.learning_rate}, seeds={args.seeds}")
    for seed in args.seeds:
        sft_config.seed = sft_config.data_seed = seed
        for name in args.data:
            trainer = crear_trainer(sets[name])
            callback = ScoreAt()
            trainer.add_callback(callback)
            load_before = os.getloadavg()[0]
            cpu, wall = time.process_time(), time.perf_counter()
            folder = args.reuse / NOTEBOOK_ADAPTERS[name] if args.reuse else None
            if folder is None:
                why_not = "no --reuse"
            elif args.eval_at:
                why_not = "--eval-at scores steps the saved adapter does not have"
            else:
                why_not = reuse_adapter(trainer, folder)
            if why_not:
                if folder:
                    print(f"{name}: training (adapter in {folder} not reused: {why_not})", flush=True)
                trainer.train()
            else:
                print(f"{name}: reusing the adapter in {folder} (same fingerprint: settings, data, code)", flush=True)
            train_s, train_cpu_s = time.perf_counter() - wall, time.process_time() - cpu - callback.cpu_s
            cpu = time.process_time()
            callback.scores[sft_config.max_steps] = score(trainer.model)
            eval_cpu_s = time.process_time() - cpu
            real_scores = None
            scored_merged = bool(real_pairs) and not cfg.load_in_4bit
            if real_pairs:
                # The real pairs are scored on the merged model (merge_and_unload, section 9 of the notebook:
                # the same weights, one matrix product per layer instead of three): 35 % less CPU than through
                # the adapter (measured on 96 real pairs, bf16 autocast; 78 of 96 translations identical,
                # the others differ by bf16 rounding). Not on 4-bit weights (full): those cannot be merged.
                model = trainer.model.merge_and_unload() if scored_merged else trainer.model
                real_scores = score_on(real_pairs, model)
            runs.append(
                {
                    "seed": seed,
                    "data": name,
                    "reused_adapter": None if why_not else str(folder),
                    "steps": sft_config.max_steps,
                    "lr": sft_config.learning_rate,
                    "batch_size": sft_config.per_device_train_batch_size,
                    "lora_r": ns["lora_config"].r,
                    "max_length": sft_config.max_length,
                    "scored_on": scored_on,
                    "scores": callback.scores,
                    "real_pairs": len(real_pairs),
                    "real_scores": real_scores,
                    "real_scored_merged": scored_merged,
                    "final_loss": loss_curve(trainer.state.log_history).last,
                    "train_s": round(train_s, 1),
                    "train_cpu_s": round(train_cpu_s, 1),
                    "eval_cpu_s": round(eval_cpu_s, 1),
                    "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                    "threads": __import__("torch").get_num_threads(),
                }
            )
            print(json.dumps(runs[-1]), flush=True)
            out.write_text(json.dumps(runs, indent=2), encoding="utf-8")

    if set(args.data) != {"good", "bad"}:
        print(f"results: {out} (one arm only: --table puts the arms of several files together)")
        return 0
    print(f"\nchrF gap good − bad on {scored_on}")
    print(f"{'seed':>5} {'step':>5} {'chrF good':>10} {'chrF bad':>9} {'gap':>6} {'BLEU good':>10} {'BLEU bad':>9}")
    by_key = {(r["seed"], r["data"]): r for r in runs}
    gaps = []
    for seed in args.seeds:
        good, bad = by_key[(seed, "good")]["scores"], by_key[(seed, "bad")]["scores"]
        for step in sorted(good):
            gap = good[step]["chrf"] - bad[step]["chrf"]
            if step == sft_config.max_steps:
                gaps.append(gap)
            print(
                f"{seed:>5} {step:>5} {good[step]['chrf']:>10.2f} {bad[step]['chrf']:>9.2f} {gap:>+6.2f} "
                f"{good[step]['bleu']:>10.2f} {bad[step]['bleu']:>9.2f}"
            )
    print(f"final-step gaps: {[round(g, 2) for g in gaps]}; good wins {sum(g > 0 for g in gaps)}/{len(gaps)}")
    if real_pairs:
        print(f"\nOn {len(real_pairs)} real pairs ({args.real.name}):")
        print(f"{'seed':>5} {'chrF good':>10} {'chrF bad':>9} {'gap':>6} {'BLEU good':>10} {'BLEU bad':>9} {'gap':>6}")
        for seed in args.seeds:
            good, bad = by_key[(seed, "good")]["real_scores"], by_key[(seed, "bad")]["real_scores"]
            print(
                f"{seed:>5} {good['chrf']:>10.2f} {bad['chrf']:>9.2f} {good['chrf'] - bad['chrf']:>+6.2f} "
                f"{good['bleu']:>10.2f} {bad['bleu']:>9.2f} {good['bleu'] - bad['bleu']:>+6.2f}"
            )
    print(f"results: {out}")
    return 0


#: Where notebook 03 saves each arm's adapter, under build/03_buenos_vs_malos/adaptadores/.
NOTEBOOK_ADAPTERS = {"good": "buenos", "bad": "malos"}


def reuse_adapter(trainer, folder: Path) -> str:
    """Load the adapter saved in ``folder`` into ``trainer.model`` if it is what ``trainer.train()``
    would produce; returns why not ('' when loaded).

    The adapter must come from a finished run (``global_step == max_steps``) with this trainer's
    ``training_fingerprint(trainer)``, recorded in ``training.json`` by ``save_adapter``.  Every LoRA
    weight of the model must be in the file; the loss history comes along for ``final_loss``.
    """
    info_path = folder / "training.json"
    if not info_path.is_file():
        return f"no {info_path.name}"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    if info.get("global_step") != trainer.args.max_steps:
        return f"{info.get('global_step')} steps, not {trainer.args.max_steps}"
    from utils.core.finetune import training_fingerprint

    if info.get("fingerprint") != training_fingerprint(trainer):
        return "another fingerprint (settings, data, code or library versions changed)"
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    result = set_peft_model_state_dict(trainer.model, load_file(folder / "adapter_model.safetensors"))
    missing = [key for key in result.missing_keys if "lora_" in key]
    if result.unexpected_keys or missing:
        raise RuntimeError(f"{folder}: adapter does not fit the model ({result.unexpected_keys or missing})")
    trainer.state.log_history = info["log_history"]
    trainer.state.global_step = info["global_step"]
    return ""


CONFIG_KEYS = ("lr", "batch_size", "lora_r", "max_length")


def summarize(runs: list[dict]) -> list[dict]:
    """One row per configuration and scored step: training CPU seconds and each seed's gaps.

    A run scored at step k of a constant-rate schedule stands for a k-step run, so its CPU
    seconds are scaled to k (``train_cpu_s`` already leaves the intermediate scoring out).
    Only seeds with both a good and a bad run at that step count; rows are sorted by
    configuration, then step.
    """
    rows: dict[tuple, dict] = {}
    for run in runs:
        config = tuple(run.get(key) for key in CONFIG_KEYS)
        for step, scores in run["scores"].items():
            step = int(step)
            row = rows.setdefault(
                (config, step),
                {**dict(zip(CONFIG_KEYS, config)), "step": step, "scored_on": run["scored_on"], "by_seed": {}},
            )
            cpu = run["train_cpu_s"] * step / run["steps"]
            row["by_seed"].setdefault(run["seed"], {})[run["data"]] = {**scores, "cpu_s": cpu}
    table = []
    for (config, step), row in sorted(rows.items(), key=lambda item: (str(item[0][0]), item[0][1])):
        seeds = {seed: arms for seed, arms in row.pop("by_seed").items() if {"good", "bad"} <= set(arms)}
        if not seeds:
            continue
        cpu = [arm["cpu_s"] for arms in seeds.values() for arm in arms.values()]
        row["cpu_s_per_run"] = round(sum(cpu) / len(cpu), 1)
        row["chrf_gap"] = {s: round(a["good"]["chrf"] - a["bad"]["chrf"], 2) for s, a in sorted(seeds.items())}
        row["bleu_gap"] = {s: round(a["good"]["bleu"] - a["bad"]["bleu"], 2) for s, a in sorted(seeds.items())}
        row["mean_chrf_gap"] = round(sum(row["chrf_gap"].values()) / len(seeds), 2)
        row["min_chrf_gap"] = min(row["chrf_gap"].values())
        table.append(row)
    return table


def format_table(rows: list[dict]) -> str:
    """The rows of :func:`summarize` as a Markdown table."""
    lines = [
        "| lr | batch | r | max_length | step | CPU s/run | chrF gap per seed | mean | min | BLEU gap per seed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        chrf = ", ".join(f"{s}: {g:+.2f}" for s, g in r["chrf_gap"].items())
        bleu = ", ".join(f"{s}: {g:+.2f}" for s, g in r["bleu_gap"].items())
        lines.append(
            f"| {r['lr']:g} | {r['batch_size']} | {r['lora_r']} | {r['max_length']} | {r['step']} | "
            f"{r['cpu_s_per_run']:.0f} | {chrf} | {r['mean_chrf_gap']:+.2f} | {r['min_chrf_gap']:+.2f} | {bleu} |"
        )
    scored_on = sorted({r["scored_on"] for r in rows})
    return "\n".join(lines + [f"scored on: {'; '.join(scored_on)}"])


if __name__ == "__main__":
    sys.exit(main())
