"""Benchmark: train the CPU-sized Lorenz autoencoder and measure how well it recovers the truth.

Prints wall time, validation Poisson NLL per bin against the NLL of the true rates, latent
recovery R^2 (linear map from inferred latents to the true 3-d state, fitted on train, scored
on test) and the correlation of inferred with true rates on test trials.

    python benchmarks/encoder_lorenz.py [--spec docs/specs/lorenz-small.yaml] [--out runs/bench-encoder] [--set k=v ...]
"""

from __future__ import annotations

import argparse
import shutil
import time

import numpy as np
import torch

from ldns_framework.metrics.recovery import latent_recovery_r2, rate_correlation
from ldns_framework.pipeline import Pipeline


def poisson_nll_per_bin(counts: np.ndarray, rates: np.ndarray) -> float:
    obs_rates = torch.as_tensor(rates, dtype=torch.float64).clamp_min(1e-8)
    x = torch.as_tensor(counts, dtype=torch.float64)
    return float((obs_rates - x * obs_rates.log() + torch.lgamma(x + 1)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="docs/specs/lorenz-small.yaml")
    parser.add_argument("--out", default="runs/bench-encoder")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)

    pipeline = Pipeline.from_spec(args.spec, overrides=args.set)
    started = time.perf_counter()
    pipeline.fit(run_dir=args.out, until="encoder")
    train_seconds = time.perf_counter() - started

    data = pipeline.load_data()
    train, val, test = (data.split(s) for s in ("train", "val", "test"))
    enc_train, enc_val, enc_test = (pipeline.encode(part, progress=False) for part in (train, val, test))
    r2 = latent_recovery_r2(enc_train.latents, train.covariates["latents_true"],
                            enc_test.latents, test.covariates["latents_true"])
    corr = rate_correlation(enc_test.rates, test.covariates["rates_true"])
    nll_model = poisson_nll_per_bin(val.counts, enc_val.rates)
    nll_true = poisson_nll_per_bin(val.counts, val.covariates["rates_true"])
    print(f"encoder training wall time      {train_seconds:8.1f} s  ({torch.get_num_threads()} threads)")
    print(f"validation Poisson NLL per bin  {nll_model:8.4f}  (true rates: {nll_true:.4f}, gap {nll_model - nll_true:+.4f})")
    print(f"latent recovery R^2 (test)      {r2:8.4f}")
    print(f"rate correlation (test)         {corr:8.4f}")


if __name__ == "__main__":
    main()
