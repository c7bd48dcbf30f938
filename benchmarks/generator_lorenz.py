"""Benchmark: train the latent diffusion stage on a trained Lorenz encoder and measure samples.

Reuses the encoder of an existing run (``benchmarks/encoder_lorenz.py`` makes one), trains the
generator given by ``--set generator.*`` / ``--set train.generator.*`` overrides for the spec's
epochs, then for each sampler prints per-trial sampling time, the sample-quality metrics against
the test split, with the data-vs-data floor (train trials vs test trials), the spread of the
sampled normalised latents (the standard deviation of each latent channel over trials and bins,
lowest and highest channel; 1 for the training latents) and the high-rate slope: the generated
mean counts of the neurons above 0.15 counts per bin in the training trials, regressed through the
origin on their training means (1 = unbiased; the autoencoder's reconstructions give the
"autoencoder" row). A sampler item is NAME[:STEPS[:sde]].

    python benchmarks/generator_lorenz.py --encoder-run runs/bench-encoder [--set k=v ...] [--samplers ddpm,ddim:25,...]
    python benchmarks/generator_lorenz.py --reuse --out RUN --samplers dpm-solver++:25,dpm-solver++:25:sde
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from ldns_framework.metrics import compare
from ldns_framework.pipeline import Pipeline
from ldns_framework.spec import apply_overrides, load_spec_file

METRICS = ("mean_rate_rmse", "correlation_rmse", "correlation_r", "population_count_kl", "mean_isi_rmse", "std_isi_rmse")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder-run", default="runs/bench-encoder")
    parser.add_argument("--out", default="runs/bench-generator")
    parser.add_argument("--spec", default="docs/specs/lorenz-small.yaml")
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--samplers", default="dpm-solver++:10,dpm-solver++:25,dpm-solver++:50,ddim:10,ddim:25,ddim:50,ddpm:1000")
    parser.add_argument("--n", type=int, default=200, help="trials per sampler (the test split has 200)")
    parser.add_argument("--reuse", action="store_true", help="sample from the generator already trained in --out")
    args = parser.parse_args()
    pipeline = Pipeline.load(args.out) if args.reuse else train(args)
    report_samplers(pipeline, args.samplers, args.n)


def train(args: argparse.Namespace) -> Pipeline:

    encoder_run = Path(args.encoder_run)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(encoder_run, out, ignore=shutil.ignore_patterns("generator", "latent_stats.json", "samples"))
    raw = apply_overrides(load_spec_file(args.spec), args.set)
    from ldns_registry import Registry

    registry = Registry.discover()
    spec = registry.resolve(raw)
    stored = registry.resolve(load_spec_file(out / "spec.yaml"))
    if stored.components["encoder"] != spec.components["encoder"] or stored.components["data"] != spec.components["data"]:
        raise SystemExit("the encoder run was trained with other data or encoder settings than --spec/--set")
    from ldns_framework.rundir import write_yaml

    write_yaml(out / "spec.yaml", spec.to_dict())  # the run now carries the generator under test
    pipeline = Pipeline(spec, registry)
    started = time.perf_counter()
    pipeline.fit(run_dir=out, resume=True)
    train_seconds = time.perf_counter() - started
    n_params = sum(p.numel() for p in pipeline.generator.parameters())
    samples_seen = spec.train["generator"].epochs * len(pipeline.load_data().splits["train"])
    print(f"generator: {n_params} parameters, trained {train_seconds:.0f} s "
          f"({samples_seen / train_seconds:.0f} samples/s incl. latents stage)")
    return pipeline


def report_samplers(pipeline: Pipeline, samplers: str, n_trials: int) -> None:
    data = pipeline.load_data()
    test, train = data.split("test"), data.split("train")
    floor_index = np.sort(np.random.default_rng(0).choice(train.n_trials, size=test.n_trials, replace=False))
    floor = compare(train.counts[floor_index], test.counts)
    stats = pipeline.model.latent_stats
    train_means = train.counts.mean((0, 1))  # (N,)
    high = train_means > 0.15

    def high_rate_slope(means: np.ndarray) -> float:
        return float((means[high] * train_means[high]).sum() / (train_means[high] ** 2).sum())

    header = (f"{'sampler':22s} {'s/trial':>8s} " + " ".join(f"{m[:14]:>14s}" for m in METRICS)
              + f" {'rate_ratio':>10s} {'latent std':>11s} {'high slope':>10s}")
    print(header)
    print(f"{'data floor':22s} {'':8s} " + " ".join(f"{floor[m]:14.4f}" for m in METRICS))
    reconstructed = pipeline.encode(train, progress=False).rates.mean((0, 1))  # (N,)
    print(f"{'autoencoder':22s} {'':8s} " + " ".join(f"{'':14s}" for _ in METRICS)
          + f" {'':10s} {'':11s} {high_rate_slope(reconstructed):10.4f}")
    for item in samplers.split(","):
        name, _, rest = item.partition(":")
        steps, _, form = rest.partition(":")
        options = {"sde": True} if form == "sde" else {}
        n = n_trials
        t0 = time.perf_counter()
        samples = pipeline.sample(n, sampler=name, steps=int(steps or 25), seed=1, progress=False, **options)
        per_trial = (time.perf_counter() - t0) / n
        result = compare(samples.counts, test.counts)
        ratio = samples.counts.mean() / test.counts.mean()
        spread = ((samples.latents - stats.mean) / stats.std).reshape(-1, samples.latents.shape[-1]).std(0)  # (D,)
        print(f"{item:22s} {per_trial:8.3f} " + " ".join(f"{result[m]:14.4f}" for m in METRICS)
              + f" {ratio:10.3f} {spread.min():5.2f}-{spread.max():<5.2f} {high_rate_slope(samples.counts.mean((0, 1))):10.4f}")


if __name__ == "__main__":
    torch.set_num_threads(torch.get_num_threads())
    main()
