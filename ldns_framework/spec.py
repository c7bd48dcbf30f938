"""The YAML spec: loading, ``--set`` overrides, defaults and the resolved form.

The core owns the top level (``seed``, ``latents``, ``train``, ``sample``, ``run``) and the names
of the component sections. Everything about components comes from the registrations through a
:class:`ComponentResolver` (the registry): each section's default type, its config class, and
the samplers a generator declares. So this module names no plugin.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import attrs
import yaml

from ldns_framework.config import did_you_mean, option
from ldns_framework.errors import LdnsError, SpecError, SpecErrors
from ldns_framework.structure import structure_config, unstructure_config

#: Component sections of a spec -> the component kind each holds. Default types are registered
#: by plugins (``registrar.add(..., default=True)``), never named here.
COMPONENT_SECTIONS: dict[str, str] = {
    "data": "data",
    "encoder": "encoder",
    "observation": "observation",
    "generator": "generator",
    "conditioner": "conditioner",
}
#: Sections that may be set to null to leave their stage out (e.g. an autoencoder-only run).
OPTIONAL_SECTIONS = frozenset({"generator"})
#: Stages trained by the engine, each with a ``train.<stage>`` section. An observation model that
#: needs fitting is fitted after the encoder with the options of its own section.
TRAINED_STAGES = ("encoder", "generator")
#: Keys that earlier versions accepted, with what to do instead.
REMOVED_KEYS = {
    "train.observation": "removed (it was never read): train has only the encoder and generator stages; an "
                         "observation model that needs fitting takes its fitting options in its own section",
}
#: The sample section's own keys; every other key is an option of the chosen sampler.
SAMPLE_KEYS = ("sampler", "n", "batch_size")


@attrs.frozen
class TrainConfig:
    """Optimisation settings of one training stage."""

    epochs: int = option(100, doc="Passes over the training split.", ge=1)
    batch_size: int = option(128, doc="Trials per minibatch (0 = the whole split at once).", ge=0)
    lr: float = option(1.0e-3, doc="Peak learning rate of AdamW.", gt=0)
    weight_decay: float = option(0.01, doc="AdamW weight decay.", ge=0)
    warmup_fraction: float = option(0.05, doc="Fraction of all steps spent in linear warm-up.", ge=0, lt=1)
    final_lr_fraction: float = option(0.1, doc="Learning rate at the end of the cosine decay, as a fraction of lr.", ge=0, le=1)
    grad_clip: float = option(2.0, doc="Gradient-norm clip (0 = off).", ge=0)
    val_every: int = option(5, doc="Evaluate on the validation split every this many epochs.", ge=1)
    checkpoint_every: int = option(5, doc="Save a resumable checkpoint every this many epochs.", ge=1)


#: Stage-specific defaults of ``train.<stage>`` (on top of :class:`TrainConfig`'s).
TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "encoder": {"epochs": 200, "batch_size": 128, "lr": 1.0e-3, "grad_clip": 2.0},
    "generator": {"epochs": 500, "batch_size": 256, "lr": 1.0e-3, "grad_clip": 1.0},
}


@attrs.frozen
class LatentsConfig:
    """Normalisation of the encoder's latents before the generator learns them (METHOD.md section 2)."""

    clamp: float | None = option(5.0, doc="Clamp standardised training latents to [-clamp, clamp] (null = off; the reference clamps Lorenz at 5).", gt=0)


@attrs.frozen
class SampleSpec:
    """The resolved ``sample`` section: defaults for ``ldns sample`` (each overridable there).

    In YAML the section is flat, ``{sampler: NAME, <its options>, n: 1000, batch_size: 256}``;
    ``sampler`` is one of the generator's declared samplers (null or absent: its first) and
    ``options`` an instance of that sampler's options class. Both are None when the spec has no
    generator.
    """

    n: int = option(1000, doc="Number of trials to draw.", ge=1)
    batch_size: int = option(256, doc="Trials drawn per batch (bounds memory).", ge=1)
    sampler: str | None = option(None, doc="One of the generator's samplers (null = the generator's first, its "
                                           "default); the section's other keys are that sampler's options.")
    options: Any = None

    def to_dict(self) -> dict[str, Any]:
        """The flat YAML form; resolving it again gives an equal :class:`SampleSpec`."""
        sizes = {"n": self.n, "batch_size": self.batch_size}
        if self.sampler is None:
            return sizes
        return {"sampler": self.sampler, **unstructure_config(self.options), **sizes}


@attrs.frozen
class RunConfig:
    """Where and how the run executes."""

    device: str = option("auto", doc="'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    precision: str = option("32-true", doc="Lightning Fabric precision.", coerce=str,
                            choices=("32-true", "32", "bf16-mixed", "16-mixed", "64-true"))
    num_threads: int = option(0, doc="torch CPU threads (0 = torch's default).", ge=0)

    def __attrs_post_init__(self) -> None:
        base = self.device.split(":")[0]
        if base not in ("auto", "cpu", "cuda", "mps") or (":" in self.device and base != "cuda"):
            raise ValueError(f"device: expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {self.device!r}")


@attrs.frozen
class ComponentSpec:
    """A resolved component section: its registered ``type`` and its config object."""

    type: str
    config: Any


@attrs.frozen
class ResolvedSpec:
    """A fully validated spec with every default filled in."""

    seed: int
    components: Mapping[str, ComponentSpec | None]
    latents: Any
    train: Mapping[str, TrainConfig]
    sample: SampleSpec
    run: RunConfig

    def to_dict(self) -> dict[str, Any]:
        """Plain dict; dumping it as YAML and resolving it again gives an equal spec."""
        out: dict[str, Any] = {"seed": self.seed}
        for section, component in self.components.items():
            out[section] = None if component is None else {"type": component.type, **unstructure_config(component.config)}
        out["latents"] = unstructure_config(self.latents)
        out["train"] = {stage: unstructure_config(cfg) for stage, cfg in self.train.items()}
        out["sample"] = self.sample.to_dict()
        out["run"] = unstructure_config(self.run)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


class ComponentResolver(Protocol):
    """What resolving a spec needs from the registrations (``ldns_registry.Registry`` is one)."""

    def default_type(self, kind: str) -> str | None:
        """The registered default type of ``kind`` (None: no plugin declares one)."""

    def names(self, kind: str) -> list[str]:
        """Registered names of ``kind``."""

    def structure_component(self, kind: str, body: Mapping[str, Any], type_name: str, path: str) -> Any:
        """The config object of one component section (``body`` without ``type``)."""

    def sampler_options(self, generator_type: str, sampler: str | None, values: Mapping[str, Any],
                        path: str) -> tuple[str, Any]:
        """(sampler name, options object) of a generator's sampler; errors name ``path.key``."""


TOP_LEVEL_KEYS = ("seed", *COMPONENT_SECTIONS, "latents", "train", "sample", "run")


class SpecLoader(yaml.SafeLoader):
    """The safe loader, reading ``1e-3`` as a float (YAML 1.1 would read it as a string)."""


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """Parse YAML safely (no object construction), with floats read as YAML 1.2 does."""
    loader = SpecLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_spec_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML spec with the safe loader; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(str(path), "spec file not found")
    try:
        raw = parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError(str(path), f"not valid YAML: {exc}".replace("\n", " ")) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SpecError(str(path), f"expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=3"`` -> (["a", "b"], 3): the value is read as a YAML scalar (int, float, bool, null, str)."""
    if "=" not in text:
        raise SpecError("--set", f"expected dotted.key=value, got {text!r}")
    key, value = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise SpecError("--set", f"expected dotted.key=value, got {text!r}")
    try:
        parsed = parse_yaml(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return parts, parsed


def apply_overrides(raw: Mapping[str, Any], overrides: list[str], notes: list[str] | None = None) -> dict[str, Any]:
    """A copy of ``raw`` with each ``dotted.key=value`` set (intermediate mappings are created).

    Switching a component's type (``--set data.type=X`` where the file's section names another
    type) drops the file's other keys of that section, which belong to the old type; keys that an
    override also sets are kept. Each drop is described in ``notes`` when a list is given.
    """
    result = copy.deepcopy(dict(raw))
    parsed = [parse_override(text) for text in overrides]
    for parts, value in parsed:
        if len(parts) == 2 and parts[0] in COMPONENT_SECTIONS and parts[1] == "type":
            _switch_type(result, parts[0], value, {p[1] for p, _ in parsed if len(p) > 1 and p[0] == parts[0]}, notes)
    for parts, value in parsed:
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise SpecError(".".join(parts[: depth + 1]), f"cannot set {'.'.join(parts)}: this key holds {child!r}, not a mapping")
            node = child
        node[parts[-1]] = value
    return result


def _switch_type(raw: dict[str, Any], section: str, new_type: Any, overridden: set[str], notes: list[str] | None) -> None:
    body = raw.get(section)
    if not isinstance(body, dict) or "type" not in body or body["type"] == new_type:
        return
    dropped = [key for key in body if key != "type" and key not in overridden]
    for key in dropped:
        del body[key]
    if dropped and notes is not None:
        notes.append(f"{section}.type: switched from {body['type']!r} to {new_type!r}; dropped the file's "
                     f"{section} keys of {body['type']!r}: {', '.join(map(str, dropped))}")


def resolve_spec(raw: Mapping[str, Any], resolver: ComponentResolver) -> ResolvedSpec:
    """Validate a raw spec and fill in every default; raise :class:`SpecErrors` listing all problems."""
    errors: list[SpecError] = []
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            errors.append(SpecError(str(key), f"unknown section{did_you_mean(key, TOP_LEVEL_KEYS)}; known: {', '.join(TOP_LEVEL_KEYS)}"))

    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        errors.append(SpecError("seed", f"expected int >= 0, got {seed!r}"))

    components: dict[str, ComponentSpec | None] = {}
    for section, kind in COMPONENT_SECTIONS.items():
        components[section] = _resolve_component(raw, section, kind, resolver, errors)

    latents = _collect(errors, structure_config, LatentsConfig, raw.get("latents"), "latents")
    train = _resolve_train(raw.get("train"), errors)
    no_generator = "generator" in raw and raw["generator"] is None
    sample = _resolve_sample(raw.get("sample"), components["generator"], no_generator, resolver, errors)
    run = _collect(errors, structure_config, RunConfig, raw.get("run"), "run")
    if errors:
        raise SpecErrors(errors)
    return ResolvedSpec(seed=seed, components=components, latents=latents, train=train, sample=sample, run=run)


def _collect(errors: list[SpecError], fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except SpecErrors as exc:
        errors.extend(exc.errors)
    except SpecError as exc:
        errors.append(exc)
    return None


def _resolve_component(raw: Mapping[str, Any], section: str, kind: str, resolver: ComponentResolver,
                       errors: list[SpecError]) -> ComponentSpec | None:
    if section in raw and raw[section] is None:
        if section in OPTIONAL_SECTIONS:
            return None
        errors.append(SpecError(section, f"expected a {kind} section with a 'type', got null"))
        return None
    body = raw.get(section, {})
    if not isinstance(body, Mapping):
        errors.append(SpecError(section, f"expected a mapping with a 'type' key, got {body!r}"))
        return None
    body = dict(body)
    type_name = body.pop("type", None)
    if type_name is None:
        type_name = _default_type(section, kind, resolver, errors)
        if type_name is None:
            return None
    if not isinstance(type_name, str) or not type_name:
        errors.append(SpecError(f"{section}.type", f"expected the name of a registered {kind}, got {type_name!r}"))
        return None
    config = _collect(errors, resolver.structure_component, kind, body, type_name, section)
    return None if config is None else ComponentSpec(type_name, config)


def _default_type(section: str, kind: str, resolver: ComponentResolver, errors: list[SpecError]) -> str | None:
    """The registered default type of a section that names none (a conflict or no default: an error)."""
    try:
        default = resolver.default_type(kind)
    except LdnsError as exc:
        errors.append(SpecError(f"{section}.type", str(exc)))
        return None
    if default is None:
        known = ", ".join(resolver.names(kind)) or "none registered"
        errors.append(SpecError(f"{section}.type", f"required: no installed plugin declares a default {kind}; known: {known}"))
    return default


def _resolve_train(raw_train: Any, errors: list[SpecError]) -> dict[str, TrainConfig]:
    raw_train = {} if raw_train is None else raw_train
    if not isinstance(raw_train, Mapping):
        errors.append(SpecError("train", f"expected a mapping of stage -> options, got {raw_train!r}"))
        return {}
    for stage in raw_train:
        if f"train.{stage}" in REMOVED_KEYS:
            errors.append(SpecError(f"train.{stage}", REMOVED_KEYS[f"train.{stage}"]))
        elif stage not in TRAINED_STAGES:
            errors.append(SpecError(f"train.{stage}", f"unknown stage{did_you_mean(stage, TRAINED_STAGES)}; known: {', '.join(TRAINED_STAGES)}"))
    resolved = {}
    for stage in TRAINED_STAGES:
        given = raw_train.get(stage) or {}
        if not isinstance(given, Mapping):
            errors.append(SpecError(f"train.{stage}", f"expected a mapping of options, got {given!r}"))
            continue
        merged = {**TRAIN_DEFAULTS[stage], **given}
        config = _collect(errors, structure_config, TrainConfig, merged, f"train.{stage}")
        if config is not None:
            resolved[stage] = config
    return resolved


def _resolve_sample(raw_sample: Any, generator: ComponentSpec | None, no_generator: bool,
                    resolver: ComponentResolver, errors: list[SpecError]) -> SampleSpec | None:
    """n and batch_size, then the generator's sampler (the section's ``sampler`` key) with the
    remaining keys structured into that sampler's options class."""
    raw_sample = {} if raw_sample is None else raw_sample
    if not isinstance(raw_sample, Mapping):
        errors.append(SpecError("sample", f"expected a mapping of sample options, got {raw_sample!r}"))
        return None
    rest = dict(raw_sample)
    sizes = {key: rest.pop(key) for key in ("n", "batch_size") if key in rest}
    base = _collect(errors, structure_config, SampleSpec, sizes, "sample")
    sampler = rest.pop("sampler", None)
    if no_generator:
        extra = (["sampler"] if sampler is not None else []) + [str(key) for key in rest]
        errors.extend(SpecError(f"sample.{key}", "this spec has no generator (generator: null), so the sample "
                                                 "section takes only n, batch_size") for key in extra)
        return base
    if generator is None:  # the generator section failed, and its errors say why
        return None
    if sampler is not None and not isinstance(sampler, str):
        errors.append(SpecError("sample.sampler", f"expected the name of a sampler of {generator.type!r}, got {sampler!r}"))
        return None
    chosen = _collect(errors, resolver.sampler_options, generator.type, sampler, rest, "sample")
    if base is None or chosen is None:
        return None
    return attrs.evolve(base, sampler=chosen[0], options=chosen[1])
