"""The table ``benchmarks/good_bad_seeds.py --table`` prints to choose notebook 03's configuration
on validation sentences (issue 14): per configuration and step, CPU seconds and each seed's gap."""

from __future__ import annotations

import importlib.util
import json

from utils.core.paths import repo_root

spec = importlib.util.spec_from_file_location("good_bad_seeds", repo_root() / "benchmarks" / "good_bad_seeds.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def run(seed, data, lr, scores, steps=40, cpu=160.0, **config):
    return {
        "seed": seed,
        "data": data,
        "steps": steps,
        "lr": lr,
        "batch_size": 8,
        "lora_r": 16,
        "max_length": 96,
        "scored_on": "validation (24 held-out training sources)",
        "scores": {str(step): {"chrf": c, "bleu": b} for step, (c, b) in scores.items()},
        "train_cpu_s": cpu,
        **config,
    }


RUNS = [
    run(1, "good", 1e-3, {20: (30.0, 8.0), 40: (36.0, 12.0)}),
    run(1, "bad", 1e-3, {20: (29.0, 6.0), 40: (30.0, 5.0)}),
    run(2, "good", 1e-3, {20: (31.0, 9.0), 40: (35.0, 11.0)}),
    run(2, "bad", 1e-3, {20: (32.0, 9.5), 40: (31.0, 6.0)}),
    run(1, "good", 2e-3, {40: (33.0, 10.0)}),
    run(1, "bad", 2e-3, {40: (31.0, 7.0)}),
    run(2, "good", 2e-3, {40: (34.0, 10.0)}),  # its bad run is missing: seed 2 does not count here
    run(1, "good", 1e-3, {40: (40.0, 20.0)}, batch_size=4),
    run(1, "bad", 1e-3, {40: (30.0, 5.0)}, batch_size=4),
]


def test_one_row_per_configuration_and_step_with_each_seeds_gap_and_cpu_scaled_to_the_step():
    rows = bench.summarize(RUNS)
    by_key = {(r["lr"], r["batch_size"], r["step"]): r for r in rows}
    assert set(by_key) == {(1e-3, 8, 20), (1e-3, 8, 40), (2e-3, 8, 40), (1e-3, 4, 40)}
    early, late = by_key[(1e-3, 8, 20)], by_key[(1e-3, 8, 40)]
    assert early["chrf_gap"] == {1: 1.0, 2: -1.0} and early["mean_chrf_gap"] == 0.0 and early["min_chrf_gap"] == -1.0
    assert late["chrf_gap"] == {1: 6.0, 2: 4.0} and late["bleu_gap"] == {1: 7.0, 2: 5.0}
    assert early["cpu_s_per_run"] == 80.0 and late["cpu_s_per_run"] == 160.0  # scored at step 20 of 40
    assert by_key[(2e-3, 8, 40)]["chrf_gap"] == {1: 2.0}  # a seed without both arms is left out
    assert by_key[(1e-3, 4, 40)]["chrf_gap"] == {1: 10.0}  # another batch size is another configuration


def test_the_table_command_reads_result_files_and_prints_markdown(tmp_path, capsys):
    old = [{k: v for k, v in r.items() if k not in ("batch_size", "lora_r", "max_length")} for r in RUNS[:4]]
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(old), encoding="utf-8")
    assert bench.main(["--table", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| 0.001 | 8 | 16 | 96 | 40 | 160 | 1: +6.00, 2: +4.00 | +5.00 | +4.00 | 1: +7.00, 2: +5.00 |" in out
    assert "scored on: validation (24 held-out training sources)" in out
