"""Benchmark: per-trial sampling time of each sampler, measured back to back in one process.

Times DDPM-1000, DDIM and DPM-Solver++ at 10, 25 and 50 steps on the same trained run, alternating
the order over ``--repeats`` rounds so that a change in machine load hits every sampler alike, and
prints each sampler's median time per trial and its speed-up over DDPM-1000.

    python benchmarks/sampler_speed.py --run runs/demo [--n 32] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

from ldns_framework.pipeline import Pipeline

SAMPLERS = [("ddpm", 1000), ("ddim", 10), ("ddim", 25), ("ddim", 50),
            ("dpm-solver++", 10), ("dpm-solver++", 25), ("dpm-solver++", 50)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/demo")
    parser.add_argument("--n", type=int, default=32, help="trials per timed call")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    pipeline = Pipeline.load(args.run)
    pipeline.sample(2, sampler="ddim", steps=2, progress=False)  # warm-up: imports, kernels
    times: dict[tuple[str, int], list[float]] = {s: [] for s in SAMPLERS}
    for round_ in range(args.repeats):
        order = SAMPLERS if round_ % 2 == 0 else SAMPLERS[::-1]
        for sampler, steps in order:
            started = time.perf_counter()
            pipeline.sample(args.n, sampler=sampler, steps=steps, seed=round_, batch_size=args.n, progress=False)
            times[(sampler, steps)].append((time.perf_counter() - started) / args.n)
    reference = statistics.median(times[("ddpm", 1000)])
    print(f"{'sampler':16s} {'steps':>5s} {'s/trial':>9s} {'speed-up vs ddpm-1000':>22s}")
    for (sampler, steps), values in times.items():
        per_trial = statistics.median(values)
        print(f"{sampler:16s} {steps:5d} {per_trial:9.4f} {reference / per_trial:21.1f}x")


if __name__ == "__main__":
    main()
