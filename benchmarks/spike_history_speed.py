"""Benchmark: speed of the spike-history observation model at monkey (MC_Maze) size.

Samples 2000 trials x 140 bins x 182 neurons (the reference's LDNS_sh sampling: 2008 trials,
sequential over the 140 bins from a zero history), scores them with log_prob, and times a few
full-batch fit iterations on them. Parameters are a plausible refractory model (no fit needed).

    python benchmarks/spike_history_speed.py [--trials 2000] [--bins 140] [--neurons 182] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
from ldns_plugins.spike_history.glm import SpikeHistory, SpikeHistoryConfig, SpikeHistoryFitConfig


def run(trials: int = 2000, bins: int = 140, neurons: int = 182, history: int = 20, repeats: int = 3,
        fit_iterations: int = 3, verbose: bool = True) -> dict[str, float]:
    """Time sampling (best of ``repeats``), log_prob and ``fit_iterations`` full-batch fit iterations
    -> {"sample_s", "log_prob_s", "fit_iteration_s", "spikes_per_bin"}; prints them when ``verbose``."""
    say = print if verbose else (lambda *args, **kwargs: None)
    generator = torch.Generator().manual_seed(0)
    shape = (trials, bins, neurons)
    model = SpikeHistory(SpikeHistoryConfig(history=history, fit=SpikeHistoryFitConfig(progress=False)),
                         n_neurons=neurons)
    lag = torch.arange(history, dtype=torch.float32)
    with torch.no_grad():  # refractory filters of varying depth, as fitted to MC_Maze-like data
        model.history_weights.copy_(-torch.rand(neurons, 1, generator=generator) * 3 * torch.exp(-lag / 3))
    rates = 0.02 + 0.15 * torch.rand(shape, generator=generator)  # (B, T, N): ~0.1 spikes per 5 ms bin
    mask = torch.ones(shape[:2], dtype=torch.bool)
    say(f"spike-history, {trials} trials x {bins} bins x {neurons} neurons, H = {history}, "
        f"{torch.get_num_threads()} torch thread(s)")

    times = []
    for repeat in range(repeats):
        started = time.perf_counter()
        counts = model.sample(rates, mask, generator=torch.Generator().manual_seed(repeat))
        times.append(time.perf_counter() - started)
    result = {"sample_s": min(times), "spikes_per_bin": counts.mean().item()}
    say(f"sample:   {min(times):6.2f} s (best of {repeats}; all {', '.join(f'{t:.2f}' for t in times)}), "
        f"{counts.mean().item():.4f} spikes per bin, max {int(counts.max())}")

    started = time.perf_counter()
    with torch.no_grad():
        log_prob = model.log_prob(counts, rates, mask)
    result["log_prob_s"] = time.perf_counter() - started
    say(f"log_prob: {result['log_prob_s']:6.2f} s, mean {log_prob.mean().item():.1f} nats per trial")

    if fit_iterations:
        fitter = SpikeHistory(SpikeHistoryConfig(history=history, fit=SpikeHistoryFitConfig(
            progress=False, max_iter=fit_iterations, tol=0.0)))
        started = time.perf_counter()
        data, _ = fitter._fit_data(counts, rates, mask)
        prepared = time.perf_counter() - started
        fitter.reset_parameters(neurons)
        started = time.perf_counter()
        for _ in range(fit_iterations):
            fitter._loss_and_grad(data)
        result["fit_iteration_s"] = (time.perf_counter() - started) / fit_iterations
        say(f"fit:      {prepared:6.2f} s to prepare, {result['fit_iteration_s']:.2f} s per full-batch iteration "
            f"(x 500 iterations = {500 * result['fit_iteration_s'] / 60:.1f} min)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--bins", type=int, default=140)
    parser.add_argument("--neurons", type=int, default=182)
    parser.add_argument("--history", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=3, help="sampling runs; the best is reported")
    parser.add_argument("--fit-iterations", type=int, default=3, help="fit iterations to time (0 = skip)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    run(args.trials, args.bins, args.neurons, args.history, args.repeats, args.fit_iterations)


if __name__ == "__main__":
    main()
