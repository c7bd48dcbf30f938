"""The spec: defaults, overrides, round trip, and one clear line per mistake."""

from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldns_framework import SpecError
from ldns_framework.errors import SpecErrors
from ldns_framework.spec import apply_overrides, load_spec_file, parse_override
from toy_components import TOY_SPEC


def test_defaults_fill_every_key(toy_registry):
    spec = toy_registry.resolve(TOY_SPEC)
    resolved = spec.to_dict()
    assert resolved["seed"] == 0
    assert resolved["observation"] == {"type": "poisson", "min_rate": 1e-8}
    assert resolved["conditioner"] == {"type": "none"}
    assert resolved["generator"]["sampler"] == {"name": "ddim", "steps": 25}
    assert resolved["train"]["encoder"]["grad_clip"] == 2.0
    assert resolved["train"]["generator"]["grad_clip"] == 1.0
    assert resolved["sample"]["sampler"] == "dpm-solver++"
    assert resolved["run"]["device"] == "auto"


def test_round_trip_through_yaml(toy_registry):
    spec = toy_registry.resolve({**TOY_SPEC, "seed": 3, "encoder": {"type": "toy-encoder", "hidden": 32}})
    again = toy_registry.resolve(yaml.safe_load(spec.to_yaml()))
    assert again == spec
    assert again.to_dict() == spec.to_dict()


def test_generator_may_be_left_out(toy_registry):
    spec = toy_registry.resolve({**TOY_SPEC, "generator": None})
    assert spec.components["generator"] is None
    assert toy_registry.resolve(yaml.safe_load(spec.to_yaml())) == spec


@pytest.mark.parametrize(
    "override, path, value",
    [
        ("encoder.latent_dim=16", ["encoder", "latent_dim"], 16),
        ("train.encoder.lr=3e-4", ["train", "encoder", "lr"], 3e-4),
        ("encoder.bidirectional=false", ["encoder", "bidirectional"], False),
        ("sample.sampler=ddim", ["sample", "sampler"], "ddim"),
        ("generator=null", ["generator"], None),
        ("generator.betas=[0.001, 0.01]", ["generator", "betas"], [0.001, 0.01]),
    ],
)
def test_overrides_convert_types(override, path, value):
    raw = apply_overrides(copy.deepcopy(TOY_SPEC), [override])
    node = raw
    for key in path:
        node = node[key]
    assert node == value
    assert raw is not TOY_SPEC


def test_override_errors_are_clear():
    with pytest.raises(SpecError, match="expected dotted.key=value"):
        parse_override("encoder.latent_dim")
    with pytest.raises(SpecError, match="this key holds 'toy-data'"):
        apply_overrides(TOY_SPEC, ["data.type.x=1"])


def _errors(registry, raw) -> list[str]:
    with pytest.raises(SpecErrors) as info:
        registry.resolve(raw)
    return [str(e) for e in info.value.errors]


def test_misspelled_type_names_path_and_closest(toy_registry):
    (line,) = _errors(toy_registry, {**TOY_SPEC, "encoder": {"type": "toy-encodr"}})
    assert line.startswith("encoder.type: unknown encoder type 'toy-encodr' (did you mean 'toy-encoder'?)")


def test_unknown_key_wrong_type_and_negative_size_each_give_one_line(toy_registry):
    raw = {**TOY_SPEC, "encoder": {"type": "toy-encoder", "hiden": 3, "latent_dim": "four"},
           "generator": {"type": "toy-generator", "sampler": {"steps": -1}}, "sampel": {}}
    lines = _errors(toy_registry, raw)
    assert "sampel: unknown section (did you mean 'sample'?); known: " + ", ".join(
        ["seed", "data", "encoder", "observation", "generator", "conditioner", "latents", "train", "sample", "run"]) in lines
    assert "encoder.hiden: unknown key (did you mean 'hidden'?); known keys: latent_dim, hidden, bidirectional" in lines
    assert "encoder.latent_dim: expected int >= 1, got 'four'" in lines
    assert "generator.sampler.steps: expected int >= 1, got -1" in lines
    assert len(lines) == 4
    assert all("\n" not in line for line in lines)


def test_cross_component_agreement(toy_registry):
    raw = {**TOY_SPEC, "encoder": {"type": "toy-encoder", "latent_dim": 8}}
    (line,) = _errors(toy_registry, raw)
    assert line == "generator.latent_dim: must agree across sections, got encoder.latent_dim=8, generator.latent_dim=4"


def test_load_spec_file_errors(tmp_path):
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec_file(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(SpecError, match="expected a mapping at the top level"):
        load_spec_file(listy)
    code = tmp_path / "code.yaml"
    code.write_text("seed: !!python/object/apply:os.system ['echo owned']\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec_file(code)


# Every (path, expected type) of the toy spec's leaves, for random mistyping.
LEAVES = {
    ("seed",): "int",
    ("encoder", "latent_dim"): "int",
    ("encoder", "hidden"): "int",
    ("encoder", "bidirectional"): "bool",
    ("generator", "sampler", "steps"): "int",
    ("generator", "sampler", "name"): "choice",
    ("train", "encoder", "lr"): "float",
    ("train", "generator", "epochs"): "int",
    ("sample", "steps"): "int",
    ("run", "device"): "str",
}
WRONG_VALUES = {
    "int": st.one_of(st.text(min_size=1, max_size=5), st.floats(allow_nan=False).filter(lambda f: f != int(f) if abs(f) < 1e15 else True), st.booleans(), st.lists(st.integers(), max_size=2)),
    "bool": st.one_of(st.integers(), st.text(max_size=5), st.floats(allow_nan=False)),
    "float": st.one_of(st.text(min_size=1, max_size=5), st.booleans(), st.lists(st.floats(), max_size=2)),
    "str": st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans()),
    "choice": st.text(max_size=8).filter(lambda s: s not in ("ddpm", "ddim", "dpm-solver++")),
}


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_mistype_is_reported_at_its_path(toy_registry, data):
    path, kind = data.draw(st.sampled_from(sorted(LEAVES.items())))
    value = data.draw(WRONG_VALUES[kind])
    raw = copy.deepcopy({**TOY_SPEC, "generator": {"type": "toy-generator", "sampler": {}}})
    node = raw
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    lines = _errors(toy_registry, raw)
    dotted = ".".join(path)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{dotted}: expected ") or lines[0].startswith(f"{dotted}: ")
    assert "\n" not in lines[0]


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hidden=st.integers(1, 512), steps=st.integers(1, 1000), lr=st.floats(1e-6, 1.0), seed=st.integers(0, 2**31))
def test_round_trip_holds_for_any_valid_values(toy_registry, hidden, steps, lr, seed):
    raw = {**TOY_SPEC, "seed": seed, "encoder": {"type": "toy-encoder", "hidden": hidden},
           "generator": {"type": "toy-generator", "sampler": {"steps": steps}}, "train": {"encoder": {"lr": lr}}}
    spec = toy_registry.resolve(raw)
    assert toy_registry.resolve(yaml.safe_load(spec.to_yaml())) == spec
