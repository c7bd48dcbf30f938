"""Benchmark: sample quality of the spike-history observation model against Poisson (Lorenz data
with refractory spike history), the table "Spike history" of benchmarks/README.md.

Trains ``docs/specs/lorenz-history-small.yaml`` with ``ldns train``, draws 200 samples each
(DPM-Solver++ 25, seed 1) from the spike-history model and, with ``--observation poisson``, from
Poisson, and scores both with ``ldns evaluate --against test --folds 5``; prints the two metric
tables (each with the data floor and the homogeneous-Poisson baseline). Tens of minutes on 2 cores.

    .venv/bin/python benchmarks/spike_history_quality.py [--out runs/bench-history] [--reuse]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

LDNS = str(Path(sys.executable).with_name("ldns"))


def ldns(*args: str) -> None:
    """Run one ``ldns`` command; its failure ends the benchmark with its exit code."""
    print("$ ldns " + " ".join(args), flush=True)
    code = subprocess.call([LDNS, *args])
    if code:
        raise SystemExit(code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="docs/specs/lorenz-history-small.yaml")
    parser.add_argument("--out", default="runs/bench-history")
    parser.add_argument("--reuse", action="store_true", help="score the run already trained in --out")
    args = parser.parse_args()
    run = Path(args.out)
    if not args.reuse:
        shutil.rmtree(run, ignore_errors=True)
        ldns("train", args.spec, "--out", str(run), "--no-progress")
    for observation in ("spike-history", "poisson"):
        samples = run / "samples" / f"bench-{observation}.npz"
        extra = [] if observation == "spike-history" else ["--observation", "poisson"]
        ldns("sample", str(run), "--n", "200", "--sampler", "dpm-solver++", "--steps", "25", "--seed", "1",
             *extra, "--out", str(samples), "--no-progress")
        print(f"\n--- {observation} ---", flush=True)
        ldns("evaluate", str(run), "--samples", str(samples), "--against", "test", "--folds", "5",
             "--out", str(run / f"metrics-{observation}.json"), "--no-progress")


if __name__ == "__main__":
    main()
