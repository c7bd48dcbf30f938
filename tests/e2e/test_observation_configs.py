"""Every shipped observation configuration through the real CLI, at tiny sizes: the S4 autoencoder
trains with coordinated dropout on (each dropped entry scored by ``log_prob_elements``), the run
reloads from its directory, and it samples. Also: the negative-binomial example's README spec runs
as written, and a per-neuron model that sizes itself from its weights reloads from a run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ldns_framework import LdnsError
from ldns_framework.checkpoint import save_tensors
from ldns_framework.cli import main
from ldns_framework.io.samples import read_samples
from ldns_framework.pipeline import Pipeline

README = Path(__file__).resolve().parents[2] / "docs" / "examples" / "ldns-negative-binomial" / "README.md"


def readme_spec() -> str:
    """The complete spec in the example's README (the yaml block that has a data section)."""
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)
    [spec] = [block for block in blocks if re.search(r"^data:", block, flags=re.M)]
    return spec


#: The README's tiny Lorenz spec (8 neurons, 32 bins, coordinated dropout on) without its observation model.
TINY = {key: value for key, value in yaml.safe_load(readme_spec()).items() if key != "observation"}

#: Every other shipped observation configuration (the per-neuron negative binomial is the README's own).
OBSERVATIONS = {
    "poisson": {"type": "poisson"},
    "spike-history": {"type": "spike-history", "history": 4, "fit": {"max_iter": 20, "progress": False}},
    "negative-binomial-global": {"type": "negative-binomial", "dispersion": "global"},
    "test-plugin": {"type": "test-bernoulli"},
}


def test_the_readme_spec_is_a_tiny_per_neuron_negative_binomial_with_coordinated_dropout():
    spec = yaml.safe_load(readme_spec())
    assert spec["observation"]["type"] == "negative-binomial" and spec["observation"]["dispersion"] == "per_neuron"
    assert spec["encoder"]["type"] == "s4-autoencoder" and spec["encoder"]["dropout_prob"] > 0
    assert (spec["data"]["n_trials"], spec["data"]["n_neurons"], spec["data"]["length"]) == (24, 8, 32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """name -> run directory trained by `ldns train` on TINY with that observation model (once per module)."""
    runs: dict[str, Path] = {}

    def run_of(name: str) -> Path:
        if name not in runs:
            root = tmp_path_factory.mktemp(name)
            spec, run = root / "spec.yaml", root / "run"
            spec.write_text(yaml.safe_dump({**TINY, "observation": OBSERVATIONS[name]}))
            assert main(["train", str(spec), "--out", str(run), "--no-progress"]) == 0
            runs[name] = run
        return runs[name]

    return run_of


@pytest.mark.parametrize("name", OBSERVATIONS)
def test_each_observation_configuration_trains_reloads_and_samples(tmp_path, trained, name):
    run = trained(name)
    for out in ("a.npz", "b.npz"):  # each `ldns sample` reloads the run from its directory alone
        assert main(["sample", str(run), "--n", "4", "--seed", "1", "--out", str(tmp_path / out)]) == 0
    samples, again = read_samples(tmp_path / "a.npz"), read_samples(tmp_path / "b.npz")
    assert samples.observation == OBSERVATIONS[name]["type"]
    assert samples.counts.shape == (4, 32, 8) and (samples.counts >= 0).all()
    np.testing.assert_array_equal(samples.counts, again.counts)


def test_the_example_readme_spec_runs_as_written(tmp_path):
    """`ldns train SPEC --out RUN` and `ldns sample RUN --n 4 --out x.npz`, as a user types them."""
    spec, run = tmp_path / "try-it.yaml", tmp_path / "run"
    spec.write_text(readme_spec())
    ldns = [sys.executable, "-m", "ldns_framework"]
    for command in (["train", str(spec), "--out", str(run), "--no-progress"],
                    ["sample", str(run), "--n", "4", "--out", str(tmp_path / "x.npz")]):
        done = subprocess.run(ldns + command, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    assert read_samples(tmp_path / "x.npz").counts.shape == (4, 32, 8)
    concentration = Pipeline.load(run).observation.concentration  # fitted per neuron, reloaded from the run
    assert concentration.shape == (8,) and len(set(concentration.tolist())) == 8


def test_a_model_sized_by_its_weights_reloads_from_its_run_and_a_wrong_file_is_named(tmp_path, toy_registry):
    """A zero-inflated Poisson with one zero probability per neuron gets its size in
    ``_load_from_state_dict``: the run's loader lets that run before comparing shapes."""
    run = tmp_path / "run"
    spec = {**TINY, "generator": None, "observation": {"type": "toy-zero-inflated"}}
    fitted = Pipeline.from_spec(spec, registry=toy_registry).fit(run_dir=run, progress=False)
    test = fitted.load_data().split("test")
    reloaded = Pipeline.load(run, registry=toy_registry)
    assert reloaded.observation.zero_logit.shape == (8,)
    np.testing.assert_allclose(reloaded.log_prob(test), fitted.log_prob(test), rtol=1e-6)
    weights, state_path = run / "observation" / "weights.safetensors", run / "observation" / "state.json"
    sha = save_tensors(weights, {"zero_logit": reloaded.observation.zero_logit.detach(), "stray": torch.zeros(0)})
    state = json.loads(state_path.read_text())
    state["weights"]["sha256"] = sha  # a consistent but wrong file: the shapes check must name it
    state_path.write_text(json.dumps(state))
    with pytest.raises(LdnsError, match=r"observation/weights\.safetensors: .*unexpected \['stray'\]"):
        Pipeline.load(run, registry=toy_registry)


def test_sampling_with_another_observation_model_fits_it_on_the_run(trained):
    samples = Pipeline.load(trained("poisson")).sample(2, seed=0, observation="spike-history", progress=False)
    assert samples.observation == "spike-history" and samples.counts.shape == (2, 32, 8)
