"""The evaluation: folds, floor, Poisson baseline, records and metrics.json."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ldns_framework import LdnsError, Metric, SpikeData
from ldns_framework.errors import DataError
from ldns_framework.evaluation import (FIELD_DOCS, RECORD_FIELDS, evaluate, evaluate_run, format_table,
                                       poisson_baseline, read_metrics, write_metrics)
from ldns_framework.io.samples import Samples, write_samples
from ldns_plugins.metrics.autocorrelation import Autocorrelation
from ldns_plugins.metrics.correlation import PairwiseCorrelation
from ldns_plugins.metrics.isi import Isi
from ldns_plugins.metrics.population import PopulationCount
from ldns_plugins.metrics.psth import Psth
from ldns_plugins.metrics.rates import MeanRate


def correlated(n_trials: int, seed: int, n_time: int = 20, n_neurons: int = 10) -> SpikeData:
    """Poisson counts driven by one shared slow latent: strongly correlated neurons."""
    rng = np.random.default_rng(seed)
    latent = np.cumsum(rng.normal(0, 0.5, size=(n_trials, n_time, 1)), axis=1)
    counts = rng.poisson(0.5 * np.exp(np.clip(latent, -2, 2)) * np.ones(n_neurons))
    return SpikeData(counts, bin_width_s=0.01, covariates={"rates_true": np.ones((n_trials, n_time, 40))})


def all_metrics() -> dict[str, Metric]:
    return {"mean-rate": MeanRate(), "population-count": PopulationCount(), "pairwise-correlation": PairwiseCorrelation(),
            "isi": Isi(), "autocorrelation": Autocorrelation(), "psth": Psth()}


def by_name(records, split="train"):
    return {r["metric"]: r for r in records if r["split"] == split}


class Total(Metric):
    """A plain (not pooled) metric: difference of mean total spike counts per trial."""

    def compute(self, model: SpikeData, data: SpikeData) -> dict[str, float]:
        return {"total_diff": float(abs(model.counts.sum(axis=(1, 2)).mean() - data.counts.sum(axis=(1, 2)).mean()))}


@pytest.fixture(scope="module")
def data():
    return correlated(24, 1)


@pytest.fixture(scope="module")
def records(data):
    return evaluate(correlated(20, 2), {"train": data, "test": correlated(16, 3)}, all_metrics(), folds=3,
                    seed=0, progress=False)


def test_records_have_every_field_for_each_split(records):
    assert RECORD_FIELDS == tuple(FIELD_DOCS)
    assert {r["split"] for r in records} == {"train", "test"}
    for record in records:
        assert tuple(record) == RECORD_FIELDS
        assert record["folds"] == 3 and record["protocol"] == "bootstrap"
    train = by_name(records)
    assert {"mean_rate_rmse", "population_count_kl", "correlation_rmse", "mean_isi_rmse", "std_isi_rmse",
            "autocorr_rmse_lag1_10"} <= set(train)
    assert "psth_rmse" not in train  # no condition covariate: the psth metric has nothing to say
    assert train["correlation_rmse"]["n_model"] == 20 and train["correlation_rmse"]["n_data"] == 24
    assert train["correlation_rmse"]["n_floor"] == 12
    assert train["mean_isi_rmse"]["unit"] == "s" and train["correlation_r"]["better"] == "higher"
    assert "correlation_rmse" in format_table(records)


def test_folds_give_a_spread_and_one_fold_none(records, data):
    train = by_name(records)
    assert train["correlation_rmse"]["spread"] > 0 and train["correlation_rmse"]["floor_spread"] > 0
    single = by_name(evaluate(correlated(20, 2), {"train": data}, {"c": PairwiseCorrelation()}, folds=1,
                              progress=False))
    assert single["correlation_rmse"]["spread"] == 0.0


def test_identical_model_and_data_score_zero_with_a_positive_floor(data):
    records = by_name(evaluate(data, {"train": data}, all_metrics(), folds=3, protocol="full", progress=False))
    for name, record in records.items():
        if record["better"] == "lower":
            assert record["value"] == pytest.approx(0.0, abs=1e-12), name
            assert record["spread"] == 0.0
        elif record["better"] == "higher":
            assert record["value"] == pytest.approx(1.0), name
    for name in ("correlation_rmse", "population_count_kl", "mean_isi_rmse", "mean_rate_rmse", "autocorr_rmse_lag1_10"):
        assert records[name]["floor"] > 0, name


def test_the_poisson_baseline_loses_to_a_perfect_model_on_correlations(data):
    # a perfect model: independent draws from the data's own generative process
    train = by_name(evaluate(correlated(60, 5), {"train": correlated(60, 6)}, all_metrics(), folds=3, progress=False))
    assert train["correlation_rmse"]["value"] < train["correlation_rmse"]["baseline"] / 3
    assert train["correlation_r"]["value"] > train["correlation_r"]["baseline"]
    assert train["population_count_kl"]["value"] < train["population_count_kl"]["baseline"]
    assert train["autocorr_rmse_lag1_10"]["value"] < train["autocorr_rmse_lag1_10"]["baseline"]


def test_seeded_and_deterministic(data):
    kwargs = dict(folds=2, progress=False)
    first = evaluate(correlated(12, 7), {"train": data}, {"i": Isi()}, seed=3, **kwargs)
    again = evaluate(correlated(12, 7), {"train": data}, {"i": Isi()}, seed=3, workers=2, **kwargs)
    other = evaluate(correlated(12, 7), {"train": data}, {"i": Isi()}, seed=4, **kwargs)
    assert first == again
    assert first != other


def test_matched_protocol_compares_equal_sizes(data):
    train = by_name(evaluate(correlated(30, 8), {"train": data}, {"r": MeanRate()}, folds=2, protocol="matched",
                             progress=False))
    record = train["mean_rate_rmse"]
    assert record["n_model"] == record["n_data"] == record["n_floor"] == 12


def test_plain_metrics_are_resampled_and_called_per_fold(data):
    samples = correlated(10, 9)
    full = by_name(evaluate(samples, {"train": data}, {"total": Total()}, folds=2, protocol="full", progress=False))
    assert full["total_diff"]["value"] == pytest.approx(Total().compute(samples, data)["total_diff"])
    assert full["total_diff"]["component"] == "total" and full["total_diff"]["unit"] == ""
    boot = by_name(evaluate(samples, {"train": data}, {"total": Total()}, folds=4, progress=False))
    assert boot["total_diff"]["spread"] > 0 and np.isfinite(boot["total_diff"]["floor"])


def test_poisson_baseline_matches_rates_lengths_and_seed(data):
    lengths = np.array([20, 5, 12])
    baseline = poisson_baseline(data, 3, lengths, seed=1)
    assert baseline.counts.shape == (3, 20, 10) and np.array_equal(baseline.lengths, lengths)
    assert baseline.counts[1, 5:].sum() == 0 and baseline.counts[2, 12:].sum() == 0
    assert np.array_equal(baseline.counts, poisson_baseline(data, 3, lengths, seed=1).counts)
    many = poisson_baseline(data, 400, seed=2)
    rates = data.counts.mean(axis=(0, 1))
    np.testing.assert_allclose(many.counts.mean(axis=(0, 1)), rates, rtol=0.1)


def test_bad_input_is_reported(data):
    with pytest.raises(DataError, match="neurons"):
        evaluate(correlated(5, 1, n_neurons=4), {"train": data}, all_metrics(), progress=False)
    with pytest.raises(LdnsError, match="protocol"):
        evaluate(data, {"train": data}, all_metrics(), protocol="jackknife", progress=False)
    with pytest.raises(LdnsError, match="folds"):
        evaluate(data, {"train": data}, all_metrics(), folds=0, progress=False)


def test_metrics_json_round_trip_is_strict_json(tmp_path, records):
    nan_record = dict(records[0], value=math.nan)
    path = write_metrics(tmp_path / "m" / "metrics.json", [nan_record, *records[1:]],
                         {"run": "runs/x", "samples": "s.npz", "folds": 3, "seed": 0, "sampler": {"sampler": "ddpm"}})
    text = path.read_text()

    def reject(token):
        raise ValueError(f"non-standard JSON constant {token}")

    content = json.loads(text, parse_constant=reject)
    assert content["meta"]["folds"] == 3 and "created" in content["meta"] and content["fields"] == FIELD_DOCS
    assert content["records"][0]["value"] is None
    back, meta = read_metrics(path)
    assert math.isnan(back[0]["value"]) and back[1:] == records[1:]
    assert meta["samples"] == "s.npz"
    assert not [p for p in path.parent.iterdir() if p.name != "metrics.json"]  # no temporary file left


def test_evaluate_run_reads_samples_and_writes_metrics(tmp_path, data):
    run = tmp_path / "run"
    samples = correlated(8, 10)
    write_samples(Samples(samples.counts.astype(np.int32), samples.lengths, latents=np.zeros((8, 20, 3), np.float32),
                          sampler="ddim", sampler_options={"steps": 25}, seed=0, observation="poisson"),
                  run / "samples" / "draw.npz")
    full = SpikeData(np.concatenate([data.counts, correlated(10, 11).counts]), bin_width_s=0.01,
                     splits={"train": np.arange(24), "test": np.arange(24, 34)})
    records = evaluate_run(run, full, {"rate": MeanRate()}, against="both", folds=2, progress=False)
    assert {r["split"] for r in records} == {"train", "test"}
    assert {r["model"] for r in records} == {"draw"}
    stored, meta = read_metrics(run / "metrics.json")
    assert stored == records
    assert meta["sampler"] == {"sampler": "ddim", "sampler_options": {"steps": 25}, "seed": 0, "observation": "poisson"}
    assert meta["samples"].endswith("draw.npz") and meta["splits"] == {"train": 24, "test": 10}
    assert meta["metrics"]["rate"]["class"].endswith("MeanRate")
    with pytest.raises(DataError, match="no 'test' trials"):
        evaluate_run(run, SpikeData(data.counts), {"rate": MeanRate()}, against="both", progress=False)


def test_in_memory_samples_are_evaluated_without_a_run_directory(tmp_path, data):
    samples = correlated(8, 10)
    in_memory = Samples(samples.counts, samples.lengths, sampler="ancestral")
    split = SpikeData(data.counts, bin_width_s=0.01, splits={"train": np.arange(24)})
    records = evaluate_run(None, split, {"rate": MeanRate()}, samples=in_memory, against="train", folds=1,
                           progress=False)
    assert {r["model"] for r in records} == {"model"} and not list(tmp_path.iterdir())
    with pytest.raises(LdnsError, match="no samples given and no run directory"):
        evaluate_run(None, split, {"rate": MeanRate()}, against="train", progress=False)


def test_evaluate_run_without_samples_says_how_to_make_them(tmp_path, data):
    with pytest.raises(LdnsError, match="ldns sample"):
        evaluate_run(tmp_path, SpikeData(data.counts, splits={"train": np.arange(24)}), {"rate": MeanRate()},
                     against="train", progress=False)


def test_metrics_from_registry_builds_every_registered_metric_in_the_registrys_order():
    import ldns_plugins.metrics as metrics_plugin
    from ldns_framework.evaluation import metrics_from_registry
    from ldns_registry import Registry

    registry = Registry()
    registry.register(metrics_plugin, "metrics")
    built = metrics_from_registry(registry)
    assert list(built) == registry.names("metric") and len(built) >= 6
    assert all(isinstance(m, Metric) for m in built.values())
    assert list(metrics_from_registry(registry, ["isi"])) == ["isi"]


def test_a_plain_metrics_description_reaches_the_records(data):
    class Described(Total):
        def describe(self, context=None):
            return {"total_diff": {"unit": "spikes", "better": "lower"}}

    record = by_name(evaluate(data, {"train": data}, {"t": Described()}, folds=1, protocol="full",
                             progress=False))["total_diff"]
    assert record["unit"] == "spikes" and record["better"] == "lower" and record["value"] == 0.0


def test_blas_limit_is_a_context_and_none_leaves_blas_alone():
    from ldns_framework.evaluation import blas_limit, single_blas_thread

    with blas_limit(None), blas_limit(1):
        assert float(np.ones((3, 3)) @ np.ones(3) @ np.ones(3)) == 9.0
    assert single_blas_thread(lambda x: x + 1)(1) == 2
