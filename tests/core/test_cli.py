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
    assert "poisson" in out and "config: ldns_plugins.poisson.config.PoissonConfig" in out
    assert " arrays " not in out and "disabled: arrays" in out


def test_validate_prints_the_resolved_spec(capsys, npz_spec):
    code, out, err = run(capsys, "validate", str(npz_spec), "--set", "seed=7")
    assert code == 0 and "valid" in err
    resolved = yaml.safe_load(out)
    assert resolved["seed"] == 7 and resolved["observation"] == {"type": "poisson", "min_rate": 1e-8}


def test_misspelled_type_exits_2_naming_path_and_closest(capsys, npz_spec):
    code, out, err = run(capsys, "validate", str(npz_spec), "--set", "observation.type=poison")
    assert code == 2 and out == ""
    line = err.strip()
    assert line.startswith("error: observation.type: unknown observation type 'poison' (did you mean 'poisson'?); "
                           "known: ")  # the known list also names whatever plugins are installed
    assert "\n" not in line and "poisson, spike-history" in line


@pytest.mark.parametrize(
    "override, line",
    [
        ("observation.min_rat=1", "error: observation.min_rat: unknown key (did you mean 'min_rate'?); known keys: min_rate"),
        ("train.encoder.epochs=many", "error: train.encoder.epochs: expected int >= 1 and <= 1000000, got 'many'"),
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


def test_train_until_help_lists_every_stage(capsys):
    assert main(["train", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "stop after this stage (data, encoder, observation, latents, generator)" in help_text


def test_data_lengths_line_says_fixed_length_or_gives_the_range(capsys, tmp_path, npz_spec):
    code, out, _ = run(capsys, "data", str(npz_spec))
    assert code == 0 and "lengths      every trial 12 bins (fixed length)" in out and "min 0" not in out
    counts = np.random.default_rng(0).poisson(0.2, (10, 12, 3))
    np.savez(tmp_path / "var.npz", counts=counts, lengths=np.array([12, 4] * 5))
    spec = tmp_path / "var.yaml"
    spec.write_text(yaml.safe_dump({"data": {"type": "arrays", "path": str(tmp_path / "var.npz")}, "generator": None}))
    code, out, _ = run(capsys, "data", str(spec))
    assert code == 0 and "lengths      min 4, mean 8.0, max 12" in out


@pytest.fixture
def toys(monkeypatch, tmp_path):
    """The CLI with the counting toy components registered; a spec file of them."""
    from pipeline_toys import CountingData, toy_registry, toy_spec

    monkeypatch.setattr("ldns_framework.cli._registry", lambda args: toy_registry())
    CountingData.loads = 0
    spec = tmp_path / "toy.yaml"
    spec.write_text(yaml.safe_dump(toy_spec()))
    return spec


@pytest.mark.parametrize("flags", [["--no-progress"], []])
def test_train_prints_one_line_per_stage_and_no_bars_without_progress(capsys, tmp_path, toys, flags):
    code, out, err = run(capsys, "train", str(toys), "--out", str(tmp_path / "run"), *flags)
    assert code == 0 and out.strip() == f"run directory: {tmp_path / 'run'}"
    stages = ("data:", "encoder:", "observation:", "latents:", "generator:")
    summaries = [line for line in err.splitlines() if "%|" not in line]  # progress bars draw "NN%|"
    for stage in stages:
        assert sum(line.startswith(stage) for line in summaries) == 1, stage
    if flags:
        assert [line.split(" ")[0] for line in err.splitlines()] == list(stages)


def test_demo_loads_the_data_once_and_ends_with_a_report(capsys, tmp_path, toys):
    from pipeline_toys import CountingData

    code, out, err = run(capsys, "demo", "--spec", str(toys), "--set", "seed=1", "--out", str(tmp_path / "demo"),
                         "--no-progress")
    assert code == 0, err
    assert CountingData.loads == 1
    assert (tmp_path / "demo" / "metrics.json").is_file() and (tmp_path / "demo" / "samples" / "demo.npz").is_file()
    assert out.splitlines()[-2] == f"report: {tmp_path / 'demo' / 'report' / 'index.html'}"
    assert (tmp_path / "demo" / "report" / "latents.png").is_file()  # the trained model was handed to the report


def test_evaluate_and_report_commands_use_the_run(capsys, tmp_path, toys):
    run_dir = tmp_path / "run"
    assert main(["train", str(toys), "--out", str(run_dir), "--no-progress"]) == 0
    assert main(["sample", str(run_dir), "--n", "4", "--sampler", "tempered", "--no-progress",
                 "--out", str(run_dir / "samples" / "s.npz")]) == 0
    assert "(tempered (temperature=1.0), observation gain-poisson, seed 0)" in capsys.readouterr().out
    code, out, _ = run(capsys, "evaluate", str(run_dir), "--metric", "mean-rate", "--folds", "2", "--no-progress")
    assert code == 0 and "mean_rate_rmse" in out
    meta = json.loads((run_dir / "metrics.json").read_text())["meta"]
    assert meta["sampler"]["sampler"] == "tempered" and meta["sampler"]["sampler_options"] == {"temperature": 1.0}
    code, out, _ = run(capsys, "report", str(run_dir), "--split", "val", "--extra", f"again={run_dir / 'samples' / 's.npz'}")
    assert code == 0 and (run_dir / "report" / "index.html").is_file()


def test_check_is_wired_to_the_kit_command(capsys, monkeypatch):
    import types

    from ldns_framework import SpecError

    calls = []

    def fake(kind, name, overrides, registry, progress=True, data=None):
        calls.append((kind, name, list(overrides), progress))
        if name == "bad":
            raise SpecError("observation.x", "unknown key")
        return 1 if name == "failing" else 0

    monkeypatch.setitem(sys.modules, "ldns_framework.testing.command", types.SimpleNamespace(run_check_command=fake))
    assert main(["check", "observation", "poisson", "--set", "min_rate=0.1", "--no-progress"]) == 0
    assert calls == [("observation", "poisson", ["min_rate=0.1"], False)]
    assert main(["check", "generator", "failing"]) == 1
    assert main(["check", "metric", "bad"]) == 2
    assert capsys.readouterr().err.strip() == "error: observation.x: unknown key"
