"""Benchmark: start-up of the command line, the first sampling call, and sampling through the CLI.

Prints, for one trained run (``--run``; by default a timing-only run trained here for one epoch
at the Lorenz sizes of docs/specs/lorenz-small.yaml, since speed does not depend on the weights):

- wall time of ``ldns plugins``, ``ldns validate docs/specs/lorenz.yaml`` and ``ldns sample RUN --n 1``,
  each a fresh process (median of a few);
- in one fresh process: importing and loading the run, then the first, second and third
  ``sample(1)`` call (the first call's excess over the second is its warm-up);
- through the CLI at 32 trials, DDPM-1000 against DPM-Solver++ 25 per trial, after subtracting
  the start-up (``ldns sample RUN --n 1 --sampler ddim --steps 1``: one denoiser call);
- DPM-Solver++ 25 on 1000 trials in one process.

    .venv/bin/python benchmarks/startup.py [--quick] [--run runs/demo]

``--quick`` uses tiny sizes and few repeats (checks the script; its figures mean nothing).
:func:`run` returns the figures as a dict for benchmarks/run_all.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LORENZ_SPEC = ROOT / "docs" / "specs" / "lorenz-small.yaml"
#: One epoch of each stage on a few trials: a run with the Lorenz model sizes, for timing only.
TIMING_OVERRIDES = ["data.n_trials=40", "train.encoder.epochs=1", "train.generator.epochs=1"]
QUICK_OVERRIDES = ["data.n_neurons=16", "data.length=32", "encoder.hidden=16", "encoder.blocks=1",
                   "generator.hidden=16", "generator.blocks=1"]

FIRST_CALL = """
import json, sys, time
started = time.perf_counter()
from ldns_framework.pipeline import Pipeline
pipeline = Pipeline.load(sys.argv[1])
loaded = time.perf_counter() - started
calls = []
for _ in range(3):
    t = time.perf_counter()
    pipeline.sample(1, seed=0, progress=False)
    calls.append(time.perf_counter() - t)
n = int(sys.argv[2])
t = time.perf_counter()
pipeline.sample(n, seed=0, progress=False)
many = time.perf_counter() - t
print(json.dumps({"load": loaded, "calls": calls, "many": many,
                  "modules": sorted(m for m in ("lightning_fabric", "diffusers", "scipy.fft") if m in sys.modules)}))
"""


def ldns_command() -> list[str]:
    """The ``ldns`` entry point of this interpreter's environment (``python -m ldns_framework`` without one)."""
    script = Path(sys.executable).with_name("ldns")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ldns_framework"]


def wall(args: list[str], repeats: int) -> float:
    """Median wall time in seconds of ``ldns ARGS`` over ``repeats`` fresh processes (each must succeed)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(ldns_command() + args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       cwd=ROOT)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def train_timing_run(directory: Path, quick: bool) -> Path:
    """A run with the Lorenz sizes (tiny ones when ``quick``) trained one epoch per stage, for timing."""
    overrides = TIMING_OVERRIDES + (QUICK_OVERRIDES if quick else [])
    command = ldns_command() + ["train", str(LORENZ_SPEC), "--out", str(directory), "--no-progress"]
    for item in overrides:
        command += ["--set", item]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return directory


def run(quick: bool, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Measure every figure of the module docstring; returns them (seconds) with table rows."""
    repeats = 1 if quick else 3
    trials, many = (4, 50) if quick else (32, 1000)
    with tempfile.TemporaryDirectory(prefix="ldns-startup-") as scratch:
        scratch_dir = Path(scratch)
        run_path = Path(run_dir) if run_dir is not None else train_timing_run(scratch_dir / "run", quick)
        out = str(scratch_dir / "samples.npz")

        def sample_args(n: int, *extra: str) -> list[str]:
            return ["sample", str(run_path), "--n", str(n), "--out", out, "--no-progress", *extra]

        figures: dict[str, Any] = {
            "plugins_s": wall(["plugins"], repeats),
            "validate_s": wall(["validate", str(ROOT / "docs" / "specs" / "lorenz.yaml")], repeats),
            "sample_n1_s": wall(sample_args(1), repeats),
            "startup_s": wall(sample_args(1, "--sampler", "ddim", "--steps", "1"), repeats),
        }
        cli = {name: wall(sample_args(trials, *extra), 1 if quick else 2)
               for name, extra in (("ddpm", ("--sampler", "ddpm")), ("dpm", ("--sampler", "dpm-solver++",
                                                                           "--steps", "25")))}
        probe = subprocess.run([sys.executable, "-c", FIRST_CALL, str(run_path), str(many)], check=True,
                               capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        inner = json.loads(probe.stdout.strip().splitlines()[-1])
    per_trial = {name: max(seconds - figures["startup_s"], 0.0) / trials for name, seconds in cli.items()}
    figures.update({
        "cli_trials": trials,
        "cli_ddpm1000_s_per_trial": per_trial["ddpm"],
        "cli_dpm25_s_per_trial": per_trial["dpm"],
        "cli_dpm_speedup": per_trial["ddpm"] / per_trial["dpm"] if per_trial["dpm"] > 0 else float("inf"),
        "load_s": inner["load"],
        "first_call_s": inner["calls"][0],
        "second_call_s": inner["calls"][1],
        "third_call_s": inner["calls"][2],
        "heavy_modules_loaded": inner["modules"],
        "many_trials": many,
        "many_trials_dpm25_s": inner["many"],
    })
    figures["rows"] = rows(figures)
    return figures


def rows(f: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures as benchmark table rows (section, case, unit, current)."""
    def row(case: str, value: float, unit: str = "s") -> dict[str, Any]:
        return {"section": "startup", "case": case, "unit": unit, "current": round(value, 4)}

    return [row("ldns plugins", f["plugins_s"]),
            row("ldns validate lorenz.yaml", f["validate_s"]),
            row("ldns sample --n 1", f["sample_n1_s"]),
            row("ldns sample start-up (ddim 1 step, 1 trial)", f["startup_s"]),
            row("in-process import + Pipeline.load", f["load_s"]),
            row("first sample(1) call", f["first_call_s"]),
            row("second sample(1) call", f["second_call_s"]),
            row(f"CLI ddpm-1000, {f['cli_trials']} trials, per trial", f["cli_ddpm1000_s_per_trial"], "s/trial"),
            row(f"CLI dpm-solver++ 25, {f['cli_trials']} trials, per trial", f["cli_dpm25_s_per_trial"], "s/trial"),
            row("CLI speed-up dpm-solver++ 25 over ddpm-1000", f["cli_dpm_speedup"], "x"),
            row(f"dpm-solver++ 25, {f['many_trials']} trials in one call", f["many_trials_dpm25_s"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (checks the script only)")
    parser.add_argument("--run", help="a trained run to time (default: a timing-only run trained here)")
    args = parser.parse_args()
    figures = run(args.quick, args.run)
    width = max(len(r["case"]) for r in figures["rows"])
    for r in figures["rows"]:
        print(f"{r['case']:<{width}}  {r['current']:>10.4f} {r['unit']}")
    print(f"{'modules loaded by sampling':<{width}}  {', '.join(figures['heavy_modules_loaded']) or 'none of lightning_fabric, diffusers, scipy.fft'}")


if __name__ == "__main__":
    main()
