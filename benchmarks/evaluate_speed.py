"""Speed of the evaluation: 2000 samples x 140 bins x 182 neurons against 2000 real trials.

Both sets are Poisson spikes driven by smooth shared latents (so correlations, ISIs and
auto-correlations are non-trivial), the size of the monkey reach data (LDNS_NOTES.md 2.2).
Runs every built-in metric over 5 bootstrap folds against one split, with the data floor and
the Poisson baseline, and prints the wall time. Target: under 60 s on 2 CPU cores.

    .venv/bin/python benchmarks/evaluate_speed.py [--trials 2000] [--folds 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from ldns_framework import SpikeData
from ldns_framework.evaluation import evaluate, format_table


def structured_spikes(n_trials: int, n_time: int, n_neurons: int, seed: int) -> SpikeData:
    """Poisson counts whose log-rates are a fixed readout of 4 smooth random latents (AR(1))."""
    rng = np.random.default_rng(seed)
    readout = np.random.default_rng(1234).normal(0.0, 0.6, size=(4, n_neurons))  # shared by both sets
    base = np.log(np.random.default_rng(4321).gamma(2.0, 0.05, size=n_neurons))  # ~0.1 spikes/bin (20 Hz at 5 ms)
    latents = np.zeros((n_trials, n_time, 4))
    noise = rng.normal(0.0, np.sqrt(1 - 0.95 ** 2), size=(n_trials, n_time, 4))
    latents[:, 0] = rng.normal(size=(n_trials, 4))
    for t in range(1, n_time):
        latents[:, t] = 0.95 * latents[:, t - 1] + noise[:, t]
    rates = np.exp(np.clip(base + latents @ readout, -10, 0))  # (trials, time, neurons)
    return SpikeData(rng.poisson(rates).astype(np.int32), bin_width_s=0.005)


def run(trials: int = 2000, n_time: int = 140, neurons: int = 182, folds: int = 5, workers: int = 2,
        protocol: str = "bootstrap", verbose: bool = True) -> dict[str, float]:
    """Evaluate every built-in metric -> {"evaluate_s", "values"}; prints the table when ``verbose``."""
    from ldns_plugins.metrics.autocorrelation import Autocorrelation
    from ldns_plugins.metrics.correlation import PairwiseCorrelation
    from ldns_plugins.metrics.isi import Isi
    from ldns_plugins.metrics.population import PopulationCount
    from ldns_plugins.metrics.psth import Psth
    from ldns_plugins.metrics.rates import MeanRate

    metrics = {"mean-rate": MeanRate(), "population-count": PopulationCount(),
               "pairwise-correlation": PairwiseCorrelation(), "isi": Isi(), "autocorrelation": Autocorrelation(),
               "psth": Psth()}
    samples = structured_spikes(trials, n_time, neurons, seed=1)
    real = structured_spikes(trials, n_time, neurons, seed=2)
    if verbose:
        print(f"{trials} x {n_time} x {neurons} samples vs as many real trials, {folds} folds ({protocol}), "
              f"{workers} worker(s), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    started = time.perf_counter()
    records = evaluate(samples, {"train": real}, metrics, folds=folds, seed=0, progress=False,
                       protocol=protocol, workers=workers)
    seconds = time.perf_counter() - started
    if verbose:
        print(format_table(records))
        print(f"evaluate: {seconds:.1f} s for {len(records)} values")
    return {"evaluate_s": seconds, "values": float(len(records))}


def blas_thread_slowdown(n_rows: int = 20_000, n_cols: int = 182, repeats: int = 3) -> dict[str, float]:
    """Seconds of one numpy X^T X (the correlation metric's product) with BLAS capped at 1 and at 2
    threads (threadpoolctl, as the evaluation caps it), each the median of ``repeats``: on busy cores
    a spin-waiting second BLAS thread makes it slower, which is why evaluation uses one."""
    import statistics

    from ldns_framework.evaluation import blas_limit

    x = np.random.default_rng(0).normal(size=(n_rows, n_cols))
    result = {}
    for count in (1, 2):
        times = []
        with blas_limit(count):
            for _ in range(repeats):
                started = time.perf_counter()
                x.T @ x
                times.append(time.perf_counter() - started)
        result[f"xtx_{count}_thread_s"] = statistics.median(times)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--time", type=int, default=140)
    parser.add_argument("--neurons", type=int, default=182)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--protocol", default="bootstrap", choices=("bootstrap", "matched", "full"))
    args = parser.parse_args()
    run(args.trials, args.time, args.neurons, args.folds, args.workers, args.protocol)
    slowdown = blas_thread_slowdown()
    print(f"X^T X (20000 x 182, float64): 1 BLAS thread {slowdown['xtx_1_thread_s'] * 1e3:.1f} ms, "
          f"2 threads {slowdown['xtx_2_thread_s'] * 1e3:.1f} ms "
          f"({slowdown['xtx_2_thread_s'] / slowdown['xtx_1_thread_s']:.2f}x)")


if __name__ == "__main__":
    main()
