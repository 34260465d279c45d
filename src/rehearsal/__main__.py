"""``python -m rehearsal build|serve|run [NN ...]``: rehearse the full profile on CPU, offline.

* ``build`` — build (once, cached) the stand-ins of the given notebooks (default: all).
* ``serve`` — build them and serve them with the FakeHub until Ctrl-C; prints the
  ``HF_ENDPOINT`` to export in another shell.
* ``run`` — build, serve, and run each notebook under ``pytest --nbval-lax`` in the FULL
  profile, with the environment below; exits non-zero if any notebook fails.

The notebook kernel gets ``COURSE_PROFILE=full``, ``COURSE_REHEARSAL=1``,
``HF_ENDPOINT=<FakeHub>``, a fresh ``HF_HOME`` under ``build/rehearsal/``, no ``HF_*OFFLINE``
variables, its own fresh ``COURSE_BUILD_DIR`` per notebook (so the mini outputs in ``build/``
are left alone, and no cache of an earlier rehearsal stands in for generating) and
``COURSE_SETTINGS_OVERRIDES`` = :data:`CPU_OVERRIDES` + :data:`VOLUME_OVERRIDES` — nothing else
changes: same Hub ids, lengths, beams, LoRA targets and 4-bit quantization as on Colab.
The volume overrides only shrink HOW MUCH data goes through the full code path (rows, reviews,
token budgets of free-text answers, notebook 04's optimizer steps past its first checkpoint),
never which branch runs; the runner prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rehearsal.hub import FakeHub, HubTree, client_env
from rehearsal.standins import BUILDERS, MissingBuilderError, build, normalize

#: The precision settings the rehearsal changes, each because a CPU cannot run the full value.
#: With :data:`VOLUME_OVERRIDES` (how much data, never which code) they are ALL it changes:
#: everything else (ids, sizes, steps, beams, LoRA, 4-bit) is the full profile's own.
CPU_OVERRIDES: dict[str, object] = {
    # Notebook 03: fp16 mixed precision needs CUDA (torch's CPU autocast is bfloat16 only and
    # the fp16 GradScaler is CUDA-only); fp32 runs the same trainer code without AMP.  The
    # fp16-specific invariant (trainable LoRA weights stay fp32 under AMP) is a unit test.
    "good_bad.precision": "fp32",
    # Notebook 04: same reason (Trainer(fp16=True) refuses to start without CUDA).
    "llava.precision": "fp32",
    # Notebook 04: float16 weights and 4-bit compute run on a CPU, but without a fast float16
    # matrix product (bitsandbytes' CPU 4-bit backward took 2x longer than float32, profiled);
    # the NF4 quantization itself is unchanged.
    "llava.dtype": "float32",
}

#: How much data the rehearsal pushes through the full code path: ``{key: (value, reason)}``.
#: The rehearsal's job is to run the full profile's CODE PATH (real ids, real classes, every
#: branch) against stand-ins; on tiny random models the full VOLUMES only cost CPU time (notebook
#: 01 translated 2,000 rows with 4 beams; notebook 05 made ~52 requests for ~3,000 tokens).
#: Nothing here changes a branch: beams stay 4 (beam search is another ``generate`` branch than
#: greedy), JSON budgets stay full (a shorter one would truncate JSON and run the repair path
#: instead), and notebook 01 keeps the same number of chunks per shard.
VOLUME_OVERRIDES: dict[str, tuple[object, str]] = {
    "translate.rows": (
        96,
        (
            "notebook 01: 96 of 2,000 rows; with chunk_size 24 it is the same 4 chunks (2 per shard, "
            "kill after 1, resume) as 2,000 rows in chunks of 500"
        ),
    ),
    "translate.chunk_size": (
        24,
        "notebook 01: scaled with rows, so the chunk/shard/kill/resume structure is unchanged",
    ),
    "llava.max_steps": (
        60,
        (
            "notebook 04: 60 of 120 optimizer steps (each 4 x 4 examples of 576 image tokens, on a CPU); "
            "still past the checkpoint at save_steps=50, the 10 warmup steps and into the cosine decay"
        ),
    ),
    "llava.train_size": (
        960,
        (
            "notebook 04: the 960 questions its 60 steps of 4 x 4 examples see (one epoch) instead of 2,000 "
            "(encoding 2,000 took 23 s of the rehearsal's 112)"
        ),
    ),
    "prompting.json_reviews": (
        2,
        (
            "notebook 05: 2 of the 10 reviews go through the same three JSON strategies, with their full "
            "200-token budget (4 reviews took 58 s of the rehearsal's 119)"
        ),
    ),
    "prompting.max_tokens": (
        80,
        (
            "notebook 05: free-text answers capped at 80 tokens (mini's cap) instead of 400; JSON "
            "answers keep their full budget"
        ),
    ),
    "prompting.chat_max_tokens": (
        60,
        (
            "notebook 05: chatbot replies capped at 60 tokens (mini's cap) instead of 200; the order "
            "is still taken as JSON with its full budget"
        ),
    ),
}


def rehearsal_overrides() -> dict[str, object]:
    """``COURSE_SETTINGS_OVERRIDES`` of a rehearsed notebook: precision plus volumes."""
    return {**CPU_OVERRIDES, **{key: value for key, (value, _) in VOLUME_OVERRIDES.items()}}


def describe_overrides() -> list[str]:
    """One line per override, ``key: full → rehearsal (reason)``, for the runner's report."""
    from utils.core.settings import get_settings

    full = get_settings("full")
    lines = []
    for key, value in CPU_OVERRIDES.items():
        section, field = key.split(".")
        lines.append(f"{key}: {getattr(getattr(full, section), field)!r} -> {value!r} (precision: no CUDA)")
    for key, (value, reason) in VOLUME_OVERRIDES.items():
        section, field = key.split(".")
        lines.append(f"{key}: {getattr(getattr(full, section), field)!r} -> {value!r} (volume; {reason})")
    return lines


#: Local services the runner starts for a notebook (beyond what the notebook starts itself,
#: as it would on Colab).  Notebooks 01 and 05 start their own llama.cpp server.
SERVICES: dict[str, tuple[str, ...]] = {"02": ("argilla",)}

#: Per-cell timeout for nbval, as in ``make test``.
CELL_TIMEOUT_S = 900


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def rehearsal_dir() -> Path:
    path = repo_root() / "build" / "rehearsal"
    path.mkdir(parents=True, exist_ok=True)
    return path


def notebook_path(number: str) -> Path:
    matches = sorted((repo_root() / "notebooks").glob(f"{number}_*.ipynb"))
    if len(matches) != 1:
        raise SystemExit(f"expected one notebooks/{number}_*.ipynb, found {len(matches)}")
    return matches[0]


def build_trees(numbers: list[str], *, strict: bool = True) -> tuple[dict[str, HubTree], dict[str, str]]:
    """Build the stand-ins of ``numbers``: ``({number: tree}, {number: why it could not})``.

    With ``strict`` a missing builder stops everything with its message; otherwise that
    notebook is reported as failed and the others still run.
    """
    trees: dict[str, HubTree] = {}
    missing: dict[str, str] = {}
    for number in numbers:
        try:
            trees[number] = build(number, repo_root() / "build")
        except MissingBuilderError as exc:
            if strict:
                raise SystemExit(f"rehearsal: {exc}") from None
            missing[number] = str(exc)
            print(f"rehearsal: {exc}", flush=True)
    return trees, missing


def notebook_env(number: str, hub_url: str) -> dict[str, str]:
    """The environment of one rehearsed notebook (see the module docstring)."""
    base = rehearsal_dir()
    hf_home = base / "hf_home" / number
    if hf_home.exists():
        shutil.rmtree(hf_home)  # fresh: every file must come through the FakeHub
    hf_home.mkdir(parents=True)
    build_root = base / "build" / number
    if build_root.exists():
        shutil.rmtree(build_root)  # fresh: no generation cache or results of an earlier rehearsal
    build_root.mkdir(parents=True)
    env = client_env(dict(os.environ), hub_url, hf_home)
    env.update(
        {
            "COURSE_PROFILE": "full",
            "COURSE_REHEARSAL": "1",
            "COURSE_BUILD_DIR": str(build_root),
            "COURSE_SETTINGS_OVERRIDES": json.dumps(rehearsal_overrides()),
            "PYTHONPATH": os.pathsep.join([str(repo_root() / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]),
        }
    )
    if "argilla" in SERVICES.get(number, ()):
        # The full profile reads ARGILLA_API_URL/ARGILLA_API_KEY (the learner's Space): here
        # they point at the local server the runner starts, never at a real Space.
        from utils.services.argilla_server import LOCAL_API_KEY, default_config
        from utils.sft_dpo.argilla_io import KEY_ENV, URL_ENV

        env[URL_ENV], env[KEY_ENV] = default_config().api_url, LOCAL_API_KEY
    return env


def _service(name: str, action: str, env: dict[str, str]) -> int:
    module = {"llm": "utils.services.llm_server", "argilla": "utils.services.argilla_server"}[name]
    return subprocess.call([sys.executable, "-m", module, action], env=env, cwd=repo_root())


def run_notebook(number: str, hub: FakeHub, pytest_args: list[str]) -> tuple[int, float]:
    """Run one notebook under nbval in the rehearsal environment; return (exit code, seconds)."""
    env = notebook_env(number, hub.url)
    path = notebook_path(number)
    services = SERVICES.get(number, ())
    started = time.monotonic()
    first_request = len(hub.requests)
    try:
        for name in services:
            if _service(name, "start", env) != 0:
                print(f"rehearsal: could not start service {name!r} for notebook {number}", flush=True)
                return 1, time.monotonic() - started
        command = [
            sys.executable,
            "-m",
            "pytest",
            str(path),
            "--nbval-lax",
            "--nbval-current-env",
            f"--nbval-cell-timeout={CELL_TIMEOUT_S}",
            "-p",
            "no:cacheprovider",
            *pytest_args,
        ]
        print(f"\n=== rehearsal {number}: {path.name} (full profile, FakeHub {hub.url})", flush=True)
        code = subprocess.call(command, env=env, cwd=repo_root())
    finally:
        # the notebook may have started the llama.cpp server itself (as on Colab): stop it
        _service("llm", "stop", env)
        for name in services:
            if name != "llm":
                _service(name, "stop", env)
    gaps = [r for r in hub.requests[first_request:] if r.note == "UNHANDLED" or r.status >= 500]
    for request in gaps:
        print(
            f"rehearsal {number}: FakeHub did not serve {request.method} {request.path} "
            f"({request.status} {request.note})",
            flush=True,
        )
    return code, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rehearsal", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("build", "serve", "run"))
    parser.add_argument("notebooks", nargs="*", help="notebook numbers (default: all five)")
    parser.add_argument("--port", type=int, default=0, help="FakeHub port (serve; default: a free one)")
    parser.add_argument("--pytest-args", default="", help="extra pytest arguments (run)")
    args = parser.parse_args(argv)
    try:
        numbers = [normalize(n) for n in args.notebooks] or list(BUILDERS)
    except ValueError as exc:
        parser.error(str(exc))

    trees, missing = build_trees(numbers, strict=args.command != "run")
    if args.command == "build":
        for number, tree in trees.items():
            print(f"{number}: {tree.root}")
        return 0

    # the pid too: `make test` runs two rehearsals side by side, which may start in the same second
    log_file = rehearsal_dir() / "logs" / f"fakehub-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    with FakeHub(trees.values(), port=args.port, log_file=log_file) as hub:
        print(f"FakeHub at {hub.url} serving {len(hub.repo_ids)} repos (log: {log_file}):", flush=True)
        for repo_type, repo_id in hub.repo_ids:
            print(f"  {repo_type:8} {repo_id}", flush=True)
        if args.command == "serve":
            print(f"export HF_ENDPOINT={hub.url}", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
        print("Settings the rehearsal changes (everything else is the full profile's):", flush=True)
        for line in describe_overrides():
            print(f"  {line}", flush=True)
        results: dict[str, tuple[int, float]] = {}
        for number in numbers:
            if number in trees:
                results[number] = run_notebook(number, hub, args.pytest_args.split())
            else:
                results[number] = (1, 0.0)
    print("\n=== rehearsal summary (full profile on stand-ins)")
    print(f"  overrides: {', '.join(rehearsal_overrides())} (listed with reasons above)")
    for number, (code, seconds) in results.items():
        if number in missing:
            print(f"  {number}: FAILED: no stand-ins yet ({BUILDERS[number]} is missing)")
        else:
            print(f"  {number}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {seconds:.0f} s")
    return 0 if all(code == 0 for code, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
