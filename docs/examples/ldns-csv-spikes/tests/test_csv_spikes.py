"""Tests of the CSV data source plugin, written with ldns-framework's conformance kit.

``DataSourceContract`` checks that ``load()`` returns valid SpikeData with disjoint splits, that
padding holds no spikes and that two loads are equal, and ends with the integration check: a tiny
spec whose data section is this source (reading the file below) trains, saves, reloads and samples.
"""

from __future__ import annotations

import functools
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from ldns_framework import DataError
from ldns_framework.testing import DataSourceContract, format_results
from ldns_csv_spikes.source import CsvSpikes, CsvSpikesConfig


@functools.lru_cache(maxsize=None)
def spikes_file() -> str:
    """A CSV of 12 trials x 5 neurons of random spike times in [0, 0.3) s (written once per session)."""
    rng = np.random.default_rng(0)
    lines = ["trial,neuron,time"]
    for trial in range(12):
        for neuron in range(5):
            lines += [f"{trial},{neuron},{t:.5f}" for t in np.sort(rng.uniform(0, 0.3, rng.poisson(6)))]
    path = Path(tempfile.mkdtemp(prefix="ldns-csv-")) / "session.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


class TestCsvSpikes(DataSourceContract):
    def make_model(self):
        return CsvSpikes(CsvSpikesConfig(path=spikes_file(), bin_width_s=0.02, duration_s=0.3))


def write(tmp_path, text: str) -> str:
    path = tmp_path / "spikes.csv"
    path.write_text(text)
    return str(path)


def test_spikes_are_binned_per_trial_neuron_and_bin(tmp_path):
    path = write(tmp_path, "trial,neuron,time\n0,a,0.001\n0,a,0.009\n0,b,0.015\n2,a,0.025\n")
    data = CsvSpikes(CsvSpikesConfig(path=path, bin_width_s=0.01, n_trials=3)).load()
    assert data.counts.shape == (3, 3, 2) and data.neuron_ids == ("a", "b")
    np.testing.assert_array_equal(data.counts[0], [[2, 0], [0, 1], [0, 0]])
    assert data.counts[1].sum() == 0 and data.counts[2, 2, 0] == 1
    assert sorted(np.concatenate(list(data.splits.values())).tolist()) == [0, 1, 2]


def test_integer_ids_sort_numerically(tmp_path):
    path = write(tmp_path, "trial,neuron,time\n10,0,0.0\n2,0,0.0\n2,0,0.0\n")
    data = CsvSpikes(CsvSpikesConfig(path=path)).load()
    assert data.counts[:, 0, 0].tolist() == [2, 1]  # trial 2 before trial 10


@pytest.mark.parametrize(("text", "options", "message"), [
    ("trial,unit,time\n0,0,0.1\n", {}, "missing column.*neuron"),
    ("trial,neuron,time\n0,0,soon\n", {}, "time.*numbers of seconds"),
    ("trial,neuron,time\n0,0,0.5\n", {"duration_s": 0.2}, "past the trial duration"),
    ("trial,neuron,time\n5,0,0.1\n", {"n_trials": 3}, "integers 0..2"),
])
def test_bad_files_are_one_line_errors_naming_the_field(tmp_path, text, options, message):
    with pytest.raises(DataError, match=message):
        CsvSpikes(CsvSpikesConfig(path=write(tmp_path, text), **options)).load()


def test_the_plugin_registers_its_file_suffix_and_passes_the_kit(isolated_registry, component_checks):
    assert isolated_registry.data_type_for_file("recordings/session.CSV") == "csv-spikes"
    results = component_checks("data", "csv-spikes", path=spikes_file(), bin_width_s=0.05)
    assert not any(r.failed for r in results), format_results(results)


def test_the_installed_distribution_declares_the_entry_point():
    try:
        dist = metadata.distribution("ldns-csv-spikes")
    except metadata.PackageNotFoundError:
        pytest.skip("ldns-csv-spikes is not installed (pip install docs/examples/ldns-csv-spikes)")
    names = {ep.name: ep.value for ep in dist.entry_points if ep.group == "ldns_framework"}
    assert names == {"csv-spikes": "ldns_csv_spikes"}
