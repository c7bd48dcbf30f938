"""The trained model: samplers declared by the generator, recorded as used; another observation
model fitted only when it needs fitting; encode, log_prob and evaluate on a reopened run."""

from __future__ import annotations

import numpy as np
import pytest
from pipeline_toys import CountingData, GainPoisson, toy_registry, toy_spec

from ldns_framework import LdnsError
from ldns_framework.cli import main
from ldns_framework.io.samples import read_samples
from ldns_framework.pipeline import Pipeline

SPEC = toy_spec(observation={"type": "poisson"}, generator={"type": "stepped"},
                sample={"sampler": "fast", "steps": 3, "batch_size": 8})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = tmp_path_factory.mktemp("model") / "run"
    Pipeline.from_spec(SPEC, registry=toy_registry()).fit(run_dir=run, progress=False)
    return run


@pytest.fixture
def model(run):
    CountingData.loads = 0
    return Pipeline.load(run, toy_registry())


def test_the_specs_sampler_and_options_are_used_and_recorded(model):
    samples = model.sample(2, seed=0, progress=False)
    assert (samples.sampler, dict(samples.sampler_options), samples.sampler_label) == ("fast", {"steps": 3}, "fast (steps=3)")
    more = model.sample(2, seed=0, steps=5, progress=False)
    assert dict(more.sampler_options) == {"steps": 5}


def test_another_sampler_starts_from_its_own_options(model, tmp_path):
    samples = model.sample(2, seed=0, sampler="exact", progress=False)
    assert samples.sampler == "exact" and dict(samples.sampler_options) == {} and samples.sampler_label == "exact"
    back = read_samples(model.write_samples(samples, tmp_path / "s.npz"))
    assert back.sampler == "exact" and dict(back.sampler_options) == {}  # no steps recorded for a sampler without them


def test_sampler_mistakes_name_the_key(model):
    with pytest.raises(LdnsError, match=r"sample\.sampler: unknown sampler 'fsat'.*did you mean 'fast'"):
        model.sample(2, sampler="fsat", progress=False)
    with pytest.raises(LdnsError, match=r"sample\.steps: unknown option"):
        model.sample(2, sampler="exact", steps=4, progress=False)


def test_cli_sampler_and_steps_are_checked_against_the_generator(run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("ldns_framework.cli._registry", lambda args: toy_registry())
    out = tmp_path / "s.npz"
    assert main(["sample", str(run), "--n", "2", "--sampler", "exact", "--steps", "4", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == ("error: --steps: sampler 'exact' of generator 'stepped' takes no steps "
                                               "option (it has no options)")
    assert main(["sample", str(run), "--n", "2", "--sampler", "fsat", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == ("error: --sampler: generator 'stepped' has no sampler 'fsat' "
                                               "(did you mean 'fast'?); its samplers: fast, exact")
    assert main(["sample", str(run), "--n", "2", "--steps", "4", "--no-progress", "--out", str(out)]) == 0
    assert "(fast (steps=4), observation poisson, seed 0)" in capsys.readouterr().out
    assert dict(read_samples(out).sampler_options) == {"steps": 4}


def test_another_observation_model_is_fitted_on_the_training_split_only_when_it_needs_fitting(model):
    samples = model.sample(2, seed=0, observation="gain-poisson", progress=False)
    assert samples.observation == "gain-poisson" and CountingData.loads == 1
    _, fitted = model.model.observation_model("gain-poisson")
    assert isinstance(fitted, GainPoisson) and not np.allclose(fitted.gain.numpy(), 1.0)
    assert CountingData.loads == 1  # the training encoding is kept


def test_encode_log_prob_and_evaluate_share_one_load_of_the_data(model, tmp_path):
    test = model.load_data().split("test")
    encoded = model.encode_split("test")
    assert encoded.latents.shape == (test.n_trials, 12, 2)
    np.testing.assert_array_equal(encoded.trial_index, model.load_data().splits["test"])
    ll = model.log_prob(test)
    assert ll.shape == (test.n_trials,) and np.isfinite(ll).all()
    records = model.evaluate(model.sample(6, progress=False), metrics=["mean-rate"], against="test", folds=2,
                             out=tmp_path / "metrics.json", progress=False)
    assert {r["split"] for r in records} == {"test"} and (tmp_path / "metrics.json").is_file()
    assert CountingData.loads == 1


def test_a_run_without_its_generator_stage_cannot_sample(tmp_path):
    registry = toy_registry()
    Pipeline.from_spec(SPEC, registry=registry).fit(run_dir=tmp_path / "run", until="latents", progress=False)
    reopened = Pipeline.load(tmp_path / "run", registry)
    assert reopened.generator is None
    with pytest.raises(LdnsError, match="no trained generator"):
        reopened.sample(2, progress=False)


def test_an_observation_model_that_needs_fitting_cannot_score_before_its_stage(tmp_path):
    registry = toy_registry()
    run = tmp_path / "run"
    Pipeline.from_spec(toy_spec(), registry=registry).fit(run_dir=run, until="encoder", progress=False)
    reopened = Pipeline.load(run, registry)
    test = reopened.load_data().split("test")
    assert reopened.encode(test, progress=False).latents.shape == (test.n_trials, 12, 2)
    with pytest.raises(LdnsError, match="'gain-poisson' has not been fitted"):
        reopened.log_prob(test)
    poisson = toy_spec(observation={"type": "poisson"})
    Pipeline.from_spec(poisson, registry=registry).fit(run_dir=tmp_path / "p", until="encoder", progress=False)
    assert np.isfinite(Pipeline.load(tmp_path / "p", registry).log_prob(test)).all()  # nothing to fit


def test_a_run_trained_on_a_device_this_machine_lacks_still_loads(run, tmp_path, capsys):
    import shutil

    import yaml

    moved = tmp_path / "gpu-run"
    shutil.copytree(run, moved)
    spec = yaml.safe_load((moved / "spec.yaml").read_text())
    spec["run"]["device"] = "cuda:7"  # as written on a GPU node
    (moved / "spec.yaml").write_text(yaml.safe_dump(spec))
    reopened = Pipeline.load(moved, toy_registry())
    assert "using 'auto' to load this run" in capsys.readouterr().err
    assert reopened.sample(2, seed=0, progress=False).counts.shape[0] == 2


def test_a_gpu_run_reopens_on_the_device_asked_for(run, tmp_path, capsys, monkeypatch):
    """A run whose spec says ``device: cuda`` (trained on a GPU node) samples on ``device='cpu'`` without
    a note, exactly as the same run on the CPU; an absent or malformed device is a one-line error."""
    import shutil

    import torch
    import yaml

    from ldns_framework import SpecError

    moved = tmp_path / "gpu-run"
    shutil.copytree(run, moved)
    spec = yaml.safe_load((moved / "spec.yaml").read_text())
    spec["run"]["device"] = "cuda"
    (moved / "spec.yaml").write_text(yaml.safe_dump(spec))
    on_cpu = Pipeline.load(moved, toy_registry(), device="cpu")
    assert capsys.readouterr().err == "" and on_cpu.model.device == torch.device("cpu")
    assert on_cpu._fabric is None  # inference runs on plain torch, no Lightning Fabric
    here = Pipeline.load(run, toy_registry()).sample(3, seed=4, progress=False)
    moved_samples = on_cpu.sample(3, seed=4, progress=False)
    assert np.array_equal(here.counts, moved_samples.counts) and np.array_equal(here.latents, moved_samples.latents)
    with pytest.raises(SpecError, match=r"^device: expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got 'gpu'$"):
        Pipeline.load(moved, toy_registry(), device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(SpecError, match=r"^device: 'cuda:0' asked for, but this machine has no CUDA device"):
            Pipeline.load(moved, toy_registry(), device="cuda:0")
        monkeypatch.setattr("ldns_framework.cli._registry", lambda args: toy_registry())
        out = tmp_path / "s.npz"
        assert main(["sample", str(moved), "--n", "2", "--device", "cuda", "--out", str(out)]) == 2
        assert capsys.readouterr().err.startswith("error: --device: 'cuda' asked for, but this machine has no CUDA")
        assert main(["sample", str(moved), "--n", "2", "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
        assert read_samples(out).n_trials == 2 and "note:" not in capsys.readouterr().err


def test_each_trial_can_have_its_own_length(model):
    samples = model.sample(3, lengths=np.array([3, 7, 5]), seed=1, progress=False)
    assert samples.counts.shape[:2] == (3, 7) and samples.lengths.tolist() == [3, 7, 5]
    for array in (samples.counts, samples.rates, samples.latents):
        assert not array[0, 3:].any() and not array[2, 5:].any() and array[1].any()
    with pytest.raises(LdnsError, match=r"^lengths: expected 3 whole numbers >= 1 \(one per trial\)"):
        model.sample(3, lengths=np.array([3, 0, 5]), progress=False)


def test_encoding_no_trials_is_a_clear_error(model):
    empty = model.load_data().subset(np.array([], dtype=int))
    with pytest.raises(LdnsError, match="no trials to encode"):
        model.encode(empty)


def test_a_run_whose_plugin_is_not_installed_names_the_distribution_to_install(run):
    from ldns_registry import Registry

    with pytest.raises(LdnsError, match=r"(data|encoder|conditioner) '[a-z-]+' was provided by .* which is not installed here; install that plugin"):
        Pipeline.load(run, Registry(strict=False))
