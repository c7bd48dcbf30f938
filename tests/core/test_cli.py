"""The ldns command: exit codes, one-line errors, and the listing/validation/data commands."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ldns_framework.cli import main


@pytest.fixture
def npz_spec(tmp_path):
    counts = np.random.default_rng(0).poisson(0.2, (10, 12, 3))
    path = tmp_path / "data.npz"
    np.savez(path, counts=counts, lengths=np.full(10, 12), **{"covariate/angle": np.zeros((10, 2))})
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"data": {"type": "arrays", "path": str(path)}, "generator": None}))
    return spec


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plugins_json_lists_builtins_with_provenance(capsys):
    code, out, _ = run(capsys, "plugins", "--json")
    assert code == 0
    listing = json.loads(out)
    rows = {(r["kind"], r["name"]): r for r in listing["components"]}
    assert rows[("observation", "poisson")]["plugin"] == "poisson"
    assert rows[("observation", "poisson")]["distribution"] == "ldns-framework"
    assert rows[("observation", "poisson")]["version"]
    assert {"failures", "conflicts", "disabled"} <= set(listing)


def test_plugins_table_and_disable_flag(capsys):
    code, out, _ = run(capsys, "--disable-plugin", "arrays", "plugins", "--verbose")
    assert code == 0
    assert "poisson" in out and "config: ldns_plugins.poisson.model.PoissonConfig" in out
    assert " arrays " not in out and "disabled: arrays" in out


def test_validate_prints_the_resolved_spec(capsys, npz_spec):
    code, out, err = run(capsys, "validate", str(npz_spec), "--set", "seed=7")
    assert code == 0 and "valid" in err
    resolved = yaml.safe_load(out)
    assert resolved["seed"] == 7 and resolved["observation"] == {"type": "poisson", "min_rate": 1e-8}


def test_misspelled_type_exits_2_naming_path_and_closest(capsys, npz_spec):
    code, out, err = run(capsys, "validate", str(npz_spec), "--set", "observation.type=poison")
    assert code == 2 and out == ""
    assert err.strip() == ("error: observation.type: unknown observation type 'poison' (did you mean 'poisson'?); "
                           "known: negative-binomial, poisson, spike-history, test-bernoulli")


@pytest.mark.parametrize(
    "override, line",
    [
        ("observation.min_rat=1", "error: observation.min_rat: unknown key (did you mean 'min_rate'?); known keys: min_rate"),
        ("train.encoder.epochs=many", "error: train.encoder.epochs: expected int >= 1, got 'many'"),
        ("train.encoder.batch_size=-4", "error: train.encoder.batch_size: expected int >= 0, got -4"),
    ],
)
def test_each_mistake_gives_one_clear_line(capsys, npz_spec, override, line):
    code, _, err = run(capsys, "validate", str(npz_spec), "--set", override)
    assert code == 2
    assert err.strip() == line
    assert "Traceback" not in err


def test_missing_spec_file(capsys, tmp_path):
    code, _, err = run(capsys, "validate", str(tmp_path / "nope.yaml"))
    assert code == 2 and "spec file not found" in err


def test_data_summary_text_and_json(capsys, npz_spec):
    code, out, _ = run(capsys, "data", str(npz_spec), "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["trials"] == 10 and summary["neurons"] == 3 and summary["bins"] == 12
    assert summary["splits"] == {"train": 7, "val": 1, "test": 2}
    assert summary["covariates"] == {"angle": [10, 2]}
    code, out, _ = run(capsys, "data", str(npz_spec))
    assert code == 0 and "neurons      3" in out and "covariate    angle (10, 2)" in out


def test_bad_data_file_exits_2(capsys, tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, counts=-np.ones((2, 3, 4)))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"data": {"type": "arrays", "path": str(path)}, "generator": None}))
    code, _, err = run(capsys, "data", str(spec))
    assert code == 2
    assert err.strip() == f"error: {path}: counts: expected non-negative counts, found -1.0"


def test_debug_shows_traceback(capsys, tmp_path):
    code, _, err = run(capsys, "--debug", "validate", str(tmp_path / "nope.yaml"))
    assert code == 2 and "Traceback" in err


def test_python_dash_m_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "ldns_framework", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("ldns-framework ")
