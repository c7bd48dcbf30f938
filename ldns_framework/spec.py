"""The YAML spec: loading, ``--set`` overrides, defaults and the resolved form.

The core owns the top level (``seed``, ``train``, ``sample``, ``run``) and the names of the
component sections; the registry structures each component section into its plugin's config
class through the ``structure_component`` callback, so this module knows no plugin.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping

import attrs
import yaml

from ldns_framework.config import did_you_mean, option
from ldns_framework.errors import SpecError, SpecErrors
from ldns_framework.structure import structure_config, unstructure_config

#: Component sections of a spec -> (component kind, default type; None = section may be null).
COMPONENT_SECTIONS: dict[str, tuple[str, str]] = {
    "data": ("data", "lorenz"),
    "encoder": ("encoder", "s4-autoencoder"),
    "observation": ("observation", "poisson"),
    "generator": ("generator", "latent-diffusion"),
    "conditioner": ("conditioner", "none"),
}
#: Sections that may be set to null to leave their stage out (e.g. an autoencoder-only run).
OPTIONAL_SECTIONS = frozenset({"generator"})
#: Options that two sections must agree on when both have them.
SHARED_OPTIONS = {"latent_dim": ("encoder", "generator")}
TRAINED_STAGES = ("encoder", "observation", "generator")


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


_TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "encoder": {"epochs": 200, "batch_size": 128, "lr": 1.0e-3, "grad_clip": 2.0},
    "observation": {"epochs": 300, "batch_size": 0, "lr": 0.1, "grad_clip": 0.0, "warmup_fraction": 0.0, "val_every": 10},
    "generator": {"epochs": 500, "batch_size": 256, "lr": 1.0e-3, "grad_clip": 1.0},
}


@attrs.frozen
class LatentsConfig:
    """Normalisation of the encoder's latents before the generator learns them (METHOD.md section 2)."""

    clamp: float | None = option(5.0, doc="Clamp standardised training latents to [-clamp, clamp] (null = off; the reference clamps Lorenz at 5).", gt=0)


@attrs.frozen
class SampleConfig:
    """Defaults for ``ldns sample`` (each overridable on the command line)."""

    sampler: str = option("dpm-solver++", doc="Diffusion sampler.", choices=("ddpm", "ddim", "dpm-solver++"))
    steps: int = option(25, doc="Sampler steps (ddpm always takes all training steps).", ge=1)
    n: int = option(1000, doc="Number of trials to draw.", ge=1)
    batch_size: int = option(256, doc="Trials drawn per batch (bounds memory).", ge=1)


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
    sample: SampleConfig
    run: RunConfig

    def to_dict(self) -> dict[str, Any]:
        """Plain dict; dumping it as YAML and resolving it again gives an equal spec."""
        out: dict[str, Any] = {"seed": self.seed}
        for section, component in self.components.items():
            out[section] = None if component is None else {"type": component.type, **unstructure_config(component.config)}
        out["latents"] = unstructure_config(self.latents)
        out["train"] = {stage: unstructure_config(cfg) for stage, cfg in self.train.items()}
        out["sample"] = unstructure_config(self.sample)
        out["run"] = unstructure_config(self.run)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


#: structure_component(kind, section_without_type, type_name, path) -> config object
StructureComponent = Callable[[str, Mapping[str, Any], str, str], Any]

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


def apply_overrides(raw: Mapping[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``raw`` with each ``dotted.key=value`` set (intermediate mappings are created)."""
    result = copy.deepcopy(dict(raw))
    for text in overrides:
        parts, value = parse_override(text)
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


def resolve_spec(raw: Mapping[str, Any], structure_component: StructureComponent) -> ResolvedSpec:
    """Validate a raw spec and fill in every default; raise :class:`SpecErrors` listing all problems."""
    errors: list[SpecError] = []
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            errors.append(SpecError(str(key), f"unknown section{did_you_mean(key, TOP_LEVEL_KEYS)}; known: {', '.join(TOP_LEVEL_KEYS)}"))

    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        errors.append(SpecError("seed", f"expected int >= 0, got {seed!r}"))

    components: dict[str, ComponentSpec | None] = {}
    for section, (kind, default_type) in COMPONENT_SECTIONS.items():
        components[section] = _resolve_component(raw, section, kind, default_type, structure_component, errors)

    latents = _collect(errors, structure_config, LatentsConfig, raw.get("latents"), "latents")
    train = _resolve_train(raw.get("train"), errors)
    sample = _collect(errors, structure_config, SampleConfig, raw.get("sample"), "sample")
    run = _collect(errors, structure_config, RunConfig, raw.get("run"), "run")
    if not errors:
        _check_shared_options(components, errors)
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


def _resolve_component(raw: Mapping[str, Any], section: str, kind: str, default_type: str,
                       structure_component: StructureComponent, errors: list[SpecError]) -> ComponentSpec | None:
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
    type_name = body.pop("type", default_type)
    if not isinstance(type_name, str) or not type_name:
        errors.append(SpecError(f"{section}.type", f"expected the name of a registered {kind}, got {type_name!r}"))
        return None
    config = _collect(errors, structure_component, kind, body, type_name, section)
    return None if config is None else ComponentSpec(type_name, config)


def _resolve_train(raw_train: Any, errors: list[SpecError]) -> dict[str, TrainConfig]:
    raw_train = {} if raw_train is None else raw_train
    if not isinstance(raw_train, Mapping):
        errors.append(SpecError("train", f"expected a mapping of stage -> options, got {raw_train!r}"))
        return {}
    for stage in raw_train:
        if stage not in TRAINED_STAGES:
            errors.append(SpecError(f"train.{stage}", f"unknown stage{did_you_mean(stage, TRAINED_STAGES)}; known: {', '.join(TRAINED_STAGES)}"))
    resolved = {}
    for stage in TRAINED_STAGES:
        given = raw_train.get(stage) or {}
        if not isinstance(given, Mapping):
            errors.append(SpecError(f"train.{stage}", f"expected a mapping of options, got {given!r}"))
            continue
        merged = {**_TRAIN_DEFAULTS[stage], **given}
        config = _collect(errors, structure_config, TrainConfig, merged, f"train.{stage}")
        if config is not None:
            resolved[stage] = config
    return resolved


def _check_shared_options(components: Mapping[str, ComponentSpec | None], errors: list[SpecError]) -> None:
    for option_name, sections in SHARED_OPTIONS.items():
        values = {s: getattr(components[s].config, option_name) for s in sections
                  if components.get(s) is not None and hasattr(components[s].config, option_name)}
        if len(set(values.values())) > 1:
            listed = ", ".join(f"{s}.{option_name}={v}" for s, v in values.items())
            errors.append(SpecError(f"{sections[-1]}.{option_name}", f"must agree across sections, got {listed}"))
