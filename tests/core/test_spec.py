"""The spec: defaults, overrides, round trip, and one clear line per mistake."""

from __future__ import annotations

import copy

import attrs
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldns_framework import SpecError, hookimpl, option
from ldns_framework.config import is_required
from ldns_framework.errors import SpecErrors
from ldns_framework.spec import COMPONENT_SECTIONS, SampleSpec, apply_overrides, load_spec_file, parse_override
from ldns_framework.structure import structure_config
from ldns_registry import Registry
from toy_components import TOY_SPEC, ToyPlugin


def test_defaults_fill_every_key(toy_registry):
    spec = toy_registry.resolve(TOY_SPEC)
    resolved = spec.to_dict()
    assert resolved["seed"] == 0
    assert resolved["observation"] == {"type": "poisson", "min_rate": 1e-8}
    assert resolved["conditioner"] == {"type": "none"}
    assert resolved["generator"]["sampler"] == {"name": "ddim", "steps": 25}
    assert resolved["train"]["encoder"]["grad_clip"] == 2.0
    assert resolved["train"]["generator"]["grad_clip"] == 1.0
    assert set(resolved["train"]) == {"encoder", "generator"}
    assert resolved["sample"] == {"sampler": "ancestral", "n": 1000, "batch_size": 256}  # the base class's sampler
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
    ("sample", "n"): "int",
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


# --- defaults from registrations ----------------------------------------------------------------

class SecondDefaultPlugin:
    @hookimpl
    def ldns_register_components(self, registrar):
        registrar.add("data", "other-data", "toy_components:ToyData", summary="toy", default=True)


def test_section_types_default_to_the_registered_defaults(toy_registry):
    spec = toy_registry.resolve({})
    for section, kind in COMPONENT_SECTIONS.items():
        assert spec.components[section].type == toy_registry.default_type(kind)
    assert toy_registry.resolve({"data": {"n_trials": 12}}).components["data"].config.n_trials == 12


def test_two_defaults_for_one_kind_fail_only_when_a_spec_needs_one(toy_registry):
    toy_registry.register(SecondDefaultPlugin(), "second")
    (line,) = _errors(toy_registry, {"data": {"n_trials": 12}})
    assert line.startswith("data.type: 2 data defaults are registered: ")
    assert "'lorenz' by plugin 'lorenz' (ldns-framework" in line and "'other-data' by plugin 'second' (in-process)" in line
    assert toy_registry.resolve({"data": {"type": "toy-data"}}).components["data"].type == "toy-data"


def test_a_kind_without_a_default_needs_its_type():
    registry = Registry()
    registry.register(ToyPlugin(), "toy")
    lines = _errors(registry, {"data": {"type": "toy-data"}, "generator": None})
    assert "encoder.type: required: no installed plugin declares a default encoder; known: toy-encoder" in lines


# --- the sample section: the generator's samplers ---------------------------------------------

DIFFUSION = {**TOY_SPEC, "generator": {"type": "latent-diffusion"}}


def diffusion_options(registry, sampler: str, **values):
    """An options object of one of the latent-diffusion generator's declared samplers."""
    return registry.component_class("generator", "latent-diffusion").samplers[sampler](**values)


def test_sample_section_is_the_generators_sampler_and_its_options(toy_registry):
    spec = toy_registry.resolve({**DIFFUSION, "sample": {"sampler": "ddim", "steps": 7, "n": 5}})
    assert spec.sample == SampleSpec(n=5, batch_size=256, sampler="ddim", options=diffusion_options(toy_registry, "ddim", steps=7))
    assert spec.to_dict()["sample"] == {"sampler": "ddim", "steps": 7, "eta": 0.0, "guidance": 1.0, "n": 5, "batch_size": 256}
    assert toy_registry.resolve(yaml.safe_load(spec.to_yaml())) == spec
    default = toy_registry.resolve({**DIFFUSION, "sample": {"sampler": None, "n": 5}}).sample
    assert (default.sampler, default.options) == ("dpm-solver++", diffusion_options(toy_registry, "dpm-solver++", steps=25))
    assert toy_registry.resolve({**DIFFUSION, "sample": {"steps": 9}}).sample.options == diffusion_options(
        toy_registry, "dpm-solver++", steps=9)


def test_sample_section_errors_name_the_key_and_the_samplers_options(toy_registry):
    assert _errors(toy_registry, {**DIFFUSION, "sample": {"sampler": "ddpm", "steps": 3}}) == [
        "sample.steps: unknown option; the options of sampler 'ddpm' of 'latent-diffusion' are: guidance"]
    assert _errors(toy_registry, {**DIFFUSION, "sample": {"stps": 3, "n": 0}}) == [
        "sample.n: expected int >= 1, got 0",
        "sample.stps: unknown option (did you mean 'steps'?); the options of sampler 'dpm-solver++' of "
        "'latent-diffusion' are: steps, sde, guidance"]
    (line,) = _errors(toy_registry, {**DIFFUSION, "sample": {"sampler": "dim"}})
    assert line == ("sample.sampler: unknown sampler 'dim' of generator 'latent-diffusion' (did you mean 'ddim'?); "
                    "its samplers: dpm-solver++, ddim, ddpm")
    assert _errors(toy_registry, {**DIFFUSION, "sample": {"sampler": "ddim", "steps": "many"}}) == [
        "sample.steps: expected int >= 1, got 'many'"]


def test_without_a_generator_the_sample_section_takes_only_its_sizes(toy_registry):
    spec = toy_registry.resolve({**TOY_SPEC, "generator": None, "sample": {"n": 4}})
    assert spec.sample == SampleSpec(n=4, batch_size=256) and spec.to_dict()["sample"] == {"n": 4, "batch_size": 256}
    assert toy_registry.resolve(yaml.safe_load(spec.to_yaml())) == spec
    assert _errors(toy_registry, {**TOY_SPEC, "generator": None, "sample": {"sampler": "ddim", "steps": 4}}) == [
        "sample.sampler: this spec has no generator (generator: null), so the sample section takes only n, batch_size",
        "sample.steps: this spec has no generator (generator: null), so the sample section takes only n, batch_size"]


def test_sampler_options_for_the_command_line(toy_registry):
    default = ("dpm-solver++", diffusion_options(toy_registry, "dpm-solver++"))
    assert toy_registry.sampler_options("latent-diffusion", None, {}, "sample") == default
    ddim = ("ddim", diffusion_options(toy_registry, "ddim", steps=3))
    assert toy_registry.sampler_options("latent-diffusion", "ddim", {"steps": 3}, "--") == ddim
    with pytest.raises(SpecErrors, match=r"^--\.steps: unknown option; the options of sampler 'ddpm' of 'latent-diffusion' "
                                         r"are: guidance$"):
        toy_registry.sampler_options("latent-diffusion", "ddpm", {"steps": 3}, "--")


# --- removed and switched keys, required options ---------------------------------------------------

def test_train_observation_was_removed_with_a_clear_error(toy_registry):
    (line,) = _errors(toy_registry, {**TOY_SPEC, "train": {"observation": {"epochs": 3, "lr": 0.1}}})
    assert line.startswith("train.observation: removed (it was never read): train has only the encoder and "
                           "generator stages")


FILE = {"data": {"type": "toy-data", "n_trials": 10, "length": 4}, "encoder": {"type": "toy-encoder"}}


def test_switching_a_type_drops_the_old_types_keys_with_a_note(toy_registry):
    notes: list[str] = []
    raw = apply_overrides(FILE, ["data.type=arrays", "data.path=x.npz"], notes)
    assert raw["data"] == {"type": "arrays", "path": "x.npz"} and FILE["data"]["n_trials"] == 10
    assert notes == ["data.type: switched from 'toy-data' to 'arrays'; dropped the file's data keys of 'toy-data': "
                     "n_trials, length"]
    assert toy_registry.resolve(raw).components["data"].config.path == "x.npz"
    # keys --set gives are kept, whatever their order; the same type or an untyped section keeps everything
    assert apply_overrides(FILE, ["data.length=5", "data.type=arrays"])["data"] == {"type": "arrays", "length": 5}
    assert apply_overrides(FILE, ["data.type=toy-data"], notes)["data"] == FILE["data"]
    assert apply_overrides({"data": {"n_trials": 3}}, ["data.type=arrays"])["data"] == {"n_trials": 3, "type": "arrays"}
    assert len(notes) == 1


@attrs.frozen
class RequiredConfig:
    layout: str = option("trials time neurons", doc="axis order")
    path: str = option(doc="Path of the session file.")
    session: int = option(doc="", ge=0)


def test_a_missing_required_option_names_the_key_and_its_doc():
    with pytest.raises(SpecErrors) as info:
        structure_config(RequiredConfig, {"layout": "x"}, "data")
    assert [str(e) for e in info.value.errors] == ["data.path: required option missing (Path of the session file.)",
                                                   "data.session: required option missing"]
    assert structure_config(RequiredConfig, {"path": "a", "session": 2}, "data") == RequiredConfig(path="a", session=2)
    assert [is_required(f) for f in attrs.fields(RequiredConfig)] == [False, True, True]
