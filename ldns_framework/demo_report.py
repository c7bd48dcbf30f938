"""The demo's closing table: generated vs held-out trials, with the data-vs-data floor for scale."""

from __future__ import annotations

from typing import Any

import numpy as np

from ldns_framework.data import SpikeData
from ldns_framework.metrics import compare

HEADLINE = ("mean_rate_rmse", "correlation_rmse", "correlation_r", "population_count_kl", "mean_isi_rmse", "std_isi_rmse")


def print_comparison(pipeline: Any, samples: Any, test: SpikeData) -> dict[str, dict[str, float]]:
    """Print and return model-vs-test and train-vs-test (floor) figures for the headline metrics."""
    train = pipeline.load_data().split("train")
    floor_trials = np.random.default_rng(pipeline.spec.seed).choice(train.n_trials, size=min(train.n_trials, test.n_trials), replace=False)
    reference = train.subset(np.sort(floor_trials))
    model = compare(samples.counts, test.counts, samples.lengths, test.lengths)
    floor = compare(reference.counts, test.counts, reference.lengths, test.lengths)
    print(f"{'metric (vs held-out test trials)':36s} {'model':>10s} {'data floor':>11s}")
    for name in HEADLINE:
        print(f"{name:36s} {model[name]:10.4f} {floor[name]:11.4f}")
    return {"model": model, "floor": floor}
