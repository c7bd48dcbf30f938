"""The stage runner: the data are loaded once and the training split encoded once per fit;
declared contracts drive the stages (needs_fitting, closed_form, after_optimizer_step)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pipeline_toys import CountingData, CountingEncoder, GaussianClosedForm, Stepped, fingerprint, toy_registry, toy_spec

from ldns_framework import LdnsError, PluginError
from ldns_framework.pipeline import STAGES, Pipeline
from ldns_framework.runner import StageRunner


@pytest.fixture
def registry():
    CountingData.loads = 0
    CountingEncoder.inference.clear()
    GaussianClosedForm.fits = 0
    Stepped.after_steps = 0
    return toy_registry()


def train_encodings() -> int:
    """How many inference passes encoded exactly the training split."""
    data = CountingData().load()
    CountingData.loads -= 1  # this look does not count
    return CountingEncoder.inference.count(fingerprint(data.split("train").counts))


def test_one_fit_loads_the_data_once_and_encodes_the_training_split_once(tmp_path, registry):
    pipeline = Pipeline.from_spec(toy_spec(), registry=registry).fit(run_dir=tmp_path / "run", progress=False)
    assert CountingData.loads == 1
    assert train_encodings() == 1  # the observation, latents and generator stages share one encoding
    samples = pipeline.sample(3, seed=0, progress=False)  # sampling needs no data
    pipeline.evaluate(samples, metrics=["mean-rate"], folds=1, progress=False)
    assert CountingData.loads == 1 and samples.counts.shape == (3, 12, 5)


def test_a_resumed_run_with_the_encoder_done_encodes_once(tmp_path, registry):
    run = tmp_path / "run"
    Pipeline.from_spec(toy_spec(), registry=registry).fit(run_dir=run, until="encoder", progress=False)
    assert train_encodings() == 0
    Pipeline.from_spec(toy_spec(), registry=registry).fit(run_dir=run, resume=True, progress=False)
    assert train_encodings() == 1 and CountingData.loads == 2  # once per fit
    Pipeline.from_spec(toy_spec(), registry=registry).fit(run_dir=run, resume=True, progress=False)
    assert train_encodings() == 1  # every stage complete: nothing to encode


def test_the_observation_model_is_fitted_when_it_needs_fitting_and_its_state_saved(tmp_path, registry):
    run = tmp_path / "run"
    pipeline = Pipeline.from_spec(toy_spec(), registry=registry).fit(run_dir=run, progress=False)
    state = json.loads((run / "observation" / "state.json").read_text())
    assert state["complete"] and state["fit"]["mean_gain"] > 0
    assert (run / "observation" / "weights.safetensors").is_file()
    reloaded = Pipeline.load(run, registry)
    np.testing.assert_allclose(reloaded.observation.gain.numpy(), pipeline.observation.gain.numpy())


def test_a_closed_form_generator_is_fitted_once_without_an_optimiser(tmp_path, registry, capsys):
    run = tmp_path / "run"
    pipeline = Pipeline.from_spec(toy_spec(), registry=registry).fit(run_dir=run, progress=False)
    assert GaussianClosedForm.fits == 1
    assert not (run / "generator" / "log.jsonl").exists() and not (run / "generator" / "last.safetensors").exists()
    state = json.loads((run / "generator" / "state.json").read_text())
    assert state["complete"] and state["fit"]["bins"] == 8 * 12 and np.isfinite(state["fit"]["val_loss"])
    assert "generator: fitted gaussian-closed-form in closed form" in capsys.readouterr().err
    again = Pipeline.load(run, registry)
    np.testing.assert_allclose(again.generator.std.numpy(), pipeline.generator.std.numpy())
    a = again.sample(4, seed=3, progress=False)
    np.testing.assert_array_equal(a.counts, pipeline.sample(4, seed=3, progress=False).counts)


def test_a_gradient_generator_runs_its_after_step_hook(tmp_path, registry):
    spec = toy_spec(generator={"type": "stepped"})
    Pipeline.from_spec(spec, registry=registry).fit(run_dir=tmp_path / "run", progress=False)
    assert Stepped.after_steps == 2 * 2  # 8 training trials, batches of 4, 2 epochs


def test_a_generator_without_parameters_that_is_not_closed_form_is_a_clear_error(tmp_path, registry):
    spec = toy_spec(generator={"type": "frozen"})
    with pytest.raises(LdnsError) as info:
        Pipeline.from_spec(spec, registry=registry).fit(run_dir=tmp_path / "run", progress=False)
    message = str(info.value)
    assert "'frozen'" in message and "no trainable parameters" in message and "closed_form" in message
    assert "\n" not in message and "empty parameter list" not in message


def test_every_stage_prints_one_line_without_progress_bars(tmp_path, registry, capsys):
    Pipeline.from_spec(toy_spec(), registry=registry).fit(run_dir=tmp_path / "run", progress=False)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in lines] == list(STAGES)
    assert not any("epoch/s" in line or "it/s" in line or "%|" in line for line in lines)


def test_until_takes_any_stage_and_names_them_all_when_wrong(tmp_path, registry):
    runner = StageRunner(Pipeline.from_spec(toy_spec(), registry=registry).spec, registry, tmp_path, fabric=None)
    assert runner.stages("latents") == STAGES[:4]
    with pytest.raises(LdnsError, match="stages: data, encoder, observation, latents, generator"):
        runner.stages("decoder")
    no_generator = Pipeline.from_spec(toy_spec(generator=None), registry=registry).spec
    assert StageRunner(no_generator, registry, tmp_path, fabric=None).stages() == ("data", "encoder", "observation")


def test_an_error_raised_inside_a_plugin_names_the_component_and_its_plugin(tmp_path, registry):
    spec = toy_spec(generator={"type": "faulty"})
    with pytest.raises(PluginError, match=r"generator 'faulty' of plugin .* raised ZeroDivisionError: a bug in the plugin"):
        Pipeline.from_spec(spec, registry=registry).fit(run_dir=tmp_path / "run", progress=False)


class SecondProcess:
    """Process 1 of a 2-process group, stubbed: every collective hands over ``sent`` (what process 0
    would broadcast); ``barrier`` and ``all_reduce`` must not be reached before it."""

    world_size, global_rank, is_global_zero, device = 2, 1, False, "cpu"

    def __init__(self, sent):
        self.sent = sent

    def broadcast(self, obj, src=0):
        assert obj is None  # process 1 sends nothing
        return self.sent


def test_a_second_process_never_opens_the_run_and_raises_process_zeros_error(tmp_path, registry):
    spec = Pipeline.from_spec(toy_spec(), registry=registry).spec
    runner = StageRunner(spec, registry, tmp_path / "run", SecondProcess((False, "run: the spec differs")))
    with pytest.raises(LdnsError, match="^run: the spec differs$"):
        runner.run(resume=True)
    assert not (tmp_path / "run").exists() and list(tmp_path.iterdir()) == []
    assert CountingData.loads == 0  # it stopped before the first stage
