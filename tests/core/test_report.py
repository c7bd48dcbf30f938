"""The visual report: a self-contained page whose figures all exist, built from tiny synthetic data."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ldns_framework import DataError, SpikeData
from ldns_framework.evaluation import evaluate
from ldns_framework.report import build_report, read_training_logs
from ldns_framework.report.html import Section, metrics_table, render_page
from ldns_plugins.metrics.correlation import PairwiseCorrelation
from ldns_plugins.metrics.rates import MeanRate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def trials(n: int, seed: int, n_time: int = 30, n_neurons: int = 8) -> tuple[SpikeData, np.ndarray]:
    """Spikes read out from a 3-d random-walk latent (kept as ``latents_true``), and that latent."""
    rng = np.random.default_rng(seed)
    latent = np.cumsum(rng.normal(0, 0.3, size=(n, n_time, 3)), axis=1)
    readout = np.random.default_rng(0).normal(size=(3, n_neurons))
    counts = rng.poisson(0.4 * np.exp(np.clip(latent @ readout, -2, 2)))
    return SpikeData(counts, covariates={"latents_true": latent}, bin_width_s=0.02), latent


def write_log(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    write_log(run / "encoder" / "log.jsonl", [{"epoch": e, "train_loss": 2.0 / e, **({"val_loss": 2.2 / e} if e % 2 == 0 else {})}
                                               for e in range(1, 7)])
    write_log(run / "generator" / "log.jsonl", [{"epoch": e, "train_loss": 0.5 / e, "lr": 1e-3} for e in range(1, 5)])
    data, latent = trials(12, 1)
    model, model_latent = trials(10, 2)
    history, _ = trials(10, 3)
    records = evaluate(model, {"test": data}, {"mean-rate": MeanRate(), "pairwise-correlation": PairwiseCorrelation()},
                       folds=2, progress=False)
    inferred = latent @ np.random.default_rng(5).normal(size=(3, 4))  # 4-d "inferred" latents of the data
    page = build_report(run, {"LDNS": model, "LDNS + <spike> history": history}, data, records,
                        meta={"samples": "samples/x.npz", "folds": 2}, latents=inferred,
                        generated_latents=model_latent @ np.ones((3, 4)))
    return run, page, page.read_text(encoding="utf-8"), records


def test_the_page_is_written_into_run_report(report):
    run, page, _, _ = report
    assert page == run / "report" / "index.html"
    leftovers = [p.name for p in page.parent.iterdir() if p.name.startswith(".")]
    assert not leftovers  # every file was renamed into place


def test_every_image_exists_beside_the_page_and_is_a_png(report):
    _, page, text, _ = report
    sources = re.findall(r"<img src='([^']+)'", text)
    assert {"rasters.png", "statistics.png", "population.png", "auto-correlation.png", "latents.png",
            "training.png"} <= set(sources)
    for source in sources:
        assert "/" not in source  # relative, beside the page
        assert (page.parent / source).read_bytes()[:8] == PNG_MAGIC
    assert "could not be drawn" not in text


def test_the_page_is_self_contained(report):
    _, _, text, _ = report
    assert not re.search(r"https?://", text)
    assert "<script" not in text and "<link" not in text
    assert "<style>" in text


def test_the_page_shows_metrics_sets_and_escapes_names(report):
    _, _, text, records = report
    for record in records:
        assert record["metric"] in text
    assert "LDNS + &lt;spike&gt; history" in text and "<spike>" not in text
    assert "samples/x.npz" in text


def test_sections_without_inputs_are_left_out(tmp_path):
    data, _ = trials(6, 4, n_time=12, n_neurons=5)
    data = SpikeData(data.counts, bin_width_s=0.02, metadata={"isi_unit": "bins"})  # no latents, no logs
    page = build_report(tmp_path, data, data, None, baseline=False)
    text = page.read_text()
    assert "latents.png" not in text and "training.png" not in text and "Metrics" not in text
    for source in re.findall(r"<img src='([^']+)'", text):
        assert (page.parent / source).is_file()


def test_training_logs_are_read_in_stage_order_skipping_cut_lines(tmp_path):
    write_log(tmp_path / "generator" / "log.jsonl", [{"epoch": 1, "train_loss": 1.0}])
    write_log(tmp_path / "encoder" / "log.jsonl", [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5}])
    with open(tmp_path / "encoder" / "log.jsonl", "a") as handle:
        handle.write('{"epoch": 3, "train_lo')  # a run killed mid-line
    logs = read_training_logs(tmp_path)
    assert list(logs) == ["encoder", "generator"]
    assert [r["epoch"] for r in logs["encoder"]] == [1, 2]


def test_metrics_table_marks_values_against_floor_and_baseline():
    good = {"metric": "correlation_rmse", "split": "test", "value": 0.01, "spread": 0.001, "floor": 0.02,
            "floor_spread": 0.002, "baseline": 0.1, "baseline_spread": 0.01, "unit": "", "better": "lower",
            "n_model": 10, "n_data": 10, "model": "m", "folds": 2, "protocol": "bootstrap"}
    bad = dict(good, metric="mean_isi_rmse", value=0.2)
    table = metrics_table([good, bad])
    assert "class='good'" in table and "class='bad'" in table and "0.5&times;" in table
    assert "No metrics" in metrics_table([])
    page = render_page("t", [("run", "r")], [Section("a", "A", body_html=table), Section("b", "B", error="boom <x>")])
    assert "boom &lt;x&gt;" in page and "href='#a'" in page


class _Encoder:
    """Stands in for a trained model: the report only asks it to encode the real trials."""

    def __init__(self) -> None:
        self.encoded = []

    def encode(self, data, progress=True):
        self.encoded.append(data.n_trials)
        return type("Encoded", (), {"latents": data.counts[..., :2].astype(float)})()


def test_report_run_takes_the_loaded_data_and_model(tmp_path):
    from ldns_framework.io.samples import Samples, write_samples
    from ldns_framework.report import report_run

    data, _ = trials(10, 6, n_time=16, n_neurons=5)
    data = SpikeData(data.counts, bin_width_s=0.02, splits={"train": np.arange(6), "test": np.arange(6, 10)})
    generated, _ = trials(4, 7, n_time=16, n_neurons=5)
    write_samples(Samples(generated.counts, generated.lengths, sampler="ancestral"), tmp_path / "samples" / "s.npz")
    model = _Encoder()
    page = report_run(tmp_path, data, model)
    assert model.encoded == [4]  # the test split's trials
    text = page.read_text()
    assert "latents.png" in text and "samples/s.npz" in text
    assert "latents.png" not in report_run(tmp_path, data, None, split="train").read_text()  # no model: no latents
    with pytest.raises(DataError, match="split 'nope'"):
        report_run(tmp_path, data, None, split="nope")
