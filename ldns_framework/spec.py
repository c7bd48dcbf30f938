"""The YAML spec: loading, ``--set`` overrides, defaults and the resolved form.

The core owns the top level (``seed``, ``latents``, ``train``, ``sample``, ``run``) and the names
of the component sections. Everything about components comes from the registrations through a
:class:`ComponentResolver` (the registry): each section's default type, its config class, and
the samplers a generator declares. So this module names no plugin.
"""

from __future__ import annotations

import copy
import itertools
import os
import re
from collections import abc
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import attrs
import yaml

from ldns_framework.config import did_you_mean, option
from ldns_framework.errors import MAX_LINE, LdnsError, SpecError, SpecErrors, shorten, shown
from ldns_framework.limits import DEVICE_FORM, MAX_THREADS, SEED_MAX
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

    epochs: int = option(100, doc="Passes over the training split.", ge=1, le=1_000_000)
    batch_size: int = option(128, doc="Trials per minibatch (0 = the whole split at once).", ge=0)
    lr: float = option(1.0e-3, doc="Peak learning rate of AdamW.", gt=0, le=1)
    weight_decay: float = option(0.01, doc="AdamW weight decay; lr x weight_decay < 1 (each step scales the "
                                            "weights by 1 - lr x weight_decay).", ge=0)
    warmup_fraction: float = option(0.05, doc="Fraction of all steps spent in linear warm-up.", ge=0, lt=1)
    final_lr_fraction: float = option(0.1, doc="Learning rate at the end of the cosine decay, as a fraction of lr.", ge=0, le=1)
    grad_clip: float = option(2.0, doc="Gradient-norm clip (0 = off).", ge=0)
    val_every: int = option(5, doc="Evaluate on the validation split every this many epochs.", ge=1)
    checkpoint_every: int = option(5, doc="Save a resumable checkpoint every this many epochs.", ge=1)

    def __attrs_post_init__(self) -> None:
        if self.lr * self.weight_decay >= 1:
            raise ValueError(f"weight_decay: expected lr x weight_decay < 1 (AdamW scales the weights by "
                             f"1 - lr x weight_decay each step), got {self.lr:g} x {self.weight_decay:g}")


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


#: Lightning Fabric strategies a run may ask for (each keeps whole modules on every process).
STRATEGIES = ("auto", "ddp", "ddp_find_unused_parameters_true")
MAX_DEVICES = 1024
MAX_NODES = 10_000


@attrs.frozen
class RunConfig:
    """Where and how the run executes.

    Resolving checks the form of each value; :meth:`check_machine` checks them against the machine
    the run executes on (a run directory made on a GPU node still loads elsewhere).
    """

    device: str = option("auto", doc="'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; checked against the machine "
                                     "when the run executes.")
    precision: str = option("32-true", doc="Lightning Fabric precision ('16-mixed' runs as 'bf16-mixed' on a CPU).",
                            coerce=str, choices=("32-true", "32", "bf16-mixed", "16-mixed"))
    num_threads: int = option(0, doc="torch CPU threads per process (0 = torch's default); at most 4 x the CPUs "
                                     "of the machine the run executes on.", ge=0, le=MAX_THREADS)
    devices: int = option(1, doc="Training processes per node, one per device (GPUs, or CPU processes with "
                                 "device 'cpu'); above 1 every trained stage runs data-parallel (docs/distributed.md).",
                          ge=1, le=MAX_DEVICES)
    num_nodes: int = option(1, doc="Nodes (machines) training together; each runs `devices` processes.",
                            ge=1, le=MAX_NODES)
    strategy: str = option("auto", doc="Lightning Fabric strategy: 'auto' (one process, or DDP when devices x "
                                       "num_nodes > 1), 'ddp', or 'ddp_find_unused_parameters_true' (DDP for a "
                                       "component whose loss leaves some parameters unused).", choices=STRATEGIES)

    def __attrs_post_init__(self) -> None:
        if not DEVICE_FORM.fullmatch(self.device):
            raise ValueError(f"device: expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {shown(self.device)}")
        if self.devices > 1 and (self.device == "mps" or self.device.startswith("cuda:")):
            raise ValueError(f"devices: {self.device!r} names one device, so devices must be 1, got {self.devices}; "
                             "use device 'cuda' (or 'cpu') with devices N")

    @property
    def world_size(self) -> int:
        """Training processes in all: ``devices`` x ``num_nodes``."""
        return self.devices * self.num_nodes

    def check_machine(self) -> None:
        """Raise :class:`SpecError` when this machine lacks the device, the GPUs or the CPUs asked for."""
        from ldns_framework.limits import check_device, check_threads

        check_device(self.device, "run.device")
        check_threads(self.num_threads, "run.num_threads")
        if self.devices > 1 and self.device in ("auto", "cuda"):
            import torch

            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if 0 < count < self.devices or self.device == "cuda" and count < self.devices:
                raise SpecError("run.devices", f"{self.devices} processes on {self.device!r} need {self.devices} "
                                               f"CUDA devices on each node; this machine has {count}")


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


#: Largest spec file read, in bytes (a spec is a page of YAML; data lives in data files).
MAX_SPEC_BYTES = 1 << 20
#: Deepest nesting of mappings and lists, aliases included (a spec needs about 4 levels).
MAX_DEPTH = 32
#: Most values (mapping entries, list items, scalars) a spec may hold once every alias is expanded,
#: and most characters of text in them: a few aliases may not expand into a billion values.
MAX_VALUES = 10_000
MAX_TEXT = 4 * MAX_SPEC_BYTES
#: Longest integer literal: anything longer is far outside every option's range.
MAX_INT_DIGITS = 100
_MERGE_TAG = "tag:yaml.org,2002:merge"


class SpecLoader(yaml.SafeLoader):
    """The safe loader with the limits a spec needs.

    Floats read as in YAML 1.2 (``1e-3`` is a float, not a string); dates and the ``=`` value key
    stay strings; nesting deeper than :data:`MAX_DEPTH`, duplicate keys, merge keys (``<<``) and
    integer literals longer than :data:`MAX_INT_DIGITS` digits are errors with their line.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        for key_node, _value in node.value:
            if key_node.tag == _MERGE_TAG:
                raise yaml.constructor.ConstructorError(None, None, "merge keys (<<) are not supported in a spec; "
                                                        "write the keys out (aliases work)", key_node.start_mark)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        first: dict[Any, yaml.Node] = {}
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                seen = first.setdefault(key, key_node)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if seen is not key_node:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {shown(key)} (first given on line {seen.start_mark.line + 1})",
                    key_node.start_mark)
        return super().construct_mapping(node, deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, IndexError, TypeError, OverflowError):  # e.g. "!!int ''", "!!float abc"
            raise yaml.constructor.ConstructorError(None, None, f"cannot read {shown(node.value)} as {node.tag}",
                                                    node.start_mark) from None

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > MAX_INT_DIGITS:
            raise yaml.constructor.ConstructorError(None, None, f"an integer of {len(node.value)} digits is out of "
                                                    "range", node.start_mark)
        return super().construct_yaml_int(node)


SpecLoader.add_constructor("tag:yaml.org,2002:int", SpecLoader.construct_yaml_int)
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)
SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value")]
    for first, resolvers in SpecLoader.yaml_implicit_resolvers.items()
}


def parse_yaml(text: str, source: str = "<string>") -> Any:
    """Parse YAML safely (no object construction) within the spec's limits.

    Raises ``yaml.YAMLError`` with its line for text that is not YAML or breaks a rule of
    :class:`SpecLoader` (:func:`yaml_problem` words it), and :class:`SpecError` naming ``source``
    when the value is too large or too deep once aliases are expanded (:func:`check_size`).
    """
    loader = SpecLoader(text)
    loader.name = source
    try:
        value = loader.get_single_data()
    finally:
        loader.dispose()
    check_size(value, source)
    return value


def check_size(value: Any, source: str) -> None:
    """Raise :class:`SpecError` when ``value`` nests deeper than :data:`MAX_DEPTH` or holds more than
    :data:`MAX_VALUES` values or :data:`MAX_TEXT` characters with every shared (aliased) part counted
    each time it appears. Stops as soon as a limit is passed, so the cost is bounded, and a
    structure that contains itself fails the depth limit."""
    count, text = 0, 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if isinstance(item, (str, bytes)):
            text += len(item)
        if count > MAX_VALUES or text > MAX_TEXT:
            raise SpecError(source, f"too large: more than {MAX_VALUES} values or {MAX_TEXT} characters once "
                                    "aliases are expanded (a spec holds options, not data)")
        if isinstance(item, (list, tuple, set, frozenset)):
            children = iter(item)
        elif isinstance(item, dict) or (not isinstance(item, (str, bytes, int, float)) and isinstance(item, abc.Mapping)):
            children = itertools.chain.from_iterable(itertools.islice(item.items(), MAX_VALUES))
        else:
            continue
        for child in itertools.islice(children, MAX_VALUES - count + 1):  # enough to pass the limit, no more
            if depth >= MAX_DEPTH:
                raise SpecError(source, f"nested deeper than {MAX_DEPTH} levels (aliases included)")
            stack.append((child, depth + 1))


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line saying where and what: ``line 3, column 5: found duplicate key 'lr' (...)``."""
    if isinstance(exc, yaml.reader.ReaderError):
        code = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "\0")
        return f"character {exc.position + 1}: {exc.reason} (#x{code:04x})"
    if not isinstance(exc, yaml.MarkedYAMLError):
        return shorten(str(exc), MAX_LINE)
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    what = " ".join(str(part) for part in (exc.context, exc.problem) if part)
    return where + shorten(what, MAX_LINE)


def load_spec_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML spec (UTF-8, at most :data:`MAX_SPEC_BYTES`) with the safe loader; errors name the file."""
    path = Path(path)
    name = shorten(str(path), MAX_LINE)
    if not path.is_file():
        raise SpecError(name, "spec file not found" if not path.exists() else "expected a spec file, found a "
                              + ("directory" if path.is_dir() else "special file"))
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise SpecError(name, f"cannot read the spec file ({exc.strerror or exc})") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(name, f"expected a spec file of at most {MAX_SPEC_BYTES // 1024} KiB, this one is larger "
                              "(data belongs in data files)")
    try:
        raw = parse_yaml(decode_spec(data, name), name)
    except yaml.YAMLError as exc:
        raise SpecError(name, f"not valid YAML: {yaml_problem(exc)}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SpecError(name, f"expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def decode_spec(data: bytes, name: str) -> str:
    """The text of a spec file: UTF-8 (a UTF-8 byte-order mark is allowed); anything else names the file."""
    for bom, encoding in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                          (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):
        if data.startswith(bom):
            raise SpecError(name, f"expected UTF-8 text, found {encoding} (its byte-order mark); save the spec as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SpecError(name, f"expected UTF-8 text; byte {exc.start} (line {line}) is not UTF-8 "
                              f"({data[exc.start:exc.start + 1]!r}); save the spec as UTF-8") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=3"`` -> (["a", "b"], 3): the value is read by the spec's YAML loader (and its limits);
    text that is not YAML (``[1,``) stays the string given."""
    if "=" not in text:
        raise SpecError("--set", f"expected dotted.key=value, got {shown(text)}")
    key, value = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts) or len(parts) > MAX_DEPTH:
        raise SpecError("--set", f"expected dotted.key=value, got {shown(text)}")
    if len(value) > MAX_SPEC_BYTES:
        raise SpecError(f"--set {shorten(key)}", f"expected a value of at most {MAX_SPEC_BYTES // 1024} KiB")
    source = f"--set {shorten(key)}"
    try:
        parsed = parse_yaml(value, source) if value.strip() else ""
    except (yaml.scanner.ScannerError, yaml.parser.ParserError, yaml.reader.ReaderError):
        parsed = value  # not YAML syntax: the text itself, as typed
    except yaml.YAMLError as exc:  # YAML, but refused (duplicate key, undefined alias, nesting)
        raise SpecError(source, yaml_problem(exc)) from None
    return parts, parsed


def apply_overrides(raw: Mapping[str, Any], overrides: list[str], notes: list[str] | None = None) -> dict[str, Any]:
    """A copy of ``raw`` with each ``dotted.key=value`` set (intermediate mappings are created).

    Switching a component's type (``--set data.type=X`` where the file's section names another
    type) drops the file's other keys of that section, which belong to the old type; keys that an
    override also sets are kept. Each drop is described in ``notes`` when a list is given.
    """
    check_size(raw, "spec")
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
                raise SpecError(shorten(".".join(parts[: depth + 1]), MAX_LINE // 2),
                                f"cannot set {shorten('.'.join(parts))}: this key holds {shown(child)}, not a mapping")
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
        notes.append(f"{section}.type: switched from {shown(body['type'])} to {shown(new_type)}; dropped the file's "
                     f"{section} keys of {shown(body['type'])}: {shorten(', '.join(map(shorten, dropped)), MAX_LINE // 2)}")


def resolve_spec(raw: Mapping[str, Any], resolver: ComponentResolver) -> ResolvedSpec:
    """Validate a raw spec and fill in every default; raise :class:`SpecErrors` listing all problems."""
    if not isinstance(raw, Mapping):
        raise SpecError("spec", f"expected a mapping of sections, got {shown(raw)}")
    check_size(raw, "spec")
    errors: list[SpecError] = []
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            errors.append(SpecError(shorten(key), f"unknown section{did_you_mean(key, TOP_LEVEL_KEYS)}; known: {', '.join(TOP_LEVEL_KEYS)}"))

    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        errors.append(SpecError("seed", f"expected int >= 0 and <= {SEED_MAX} (2**32 - 1), got {shown(seed)}"))

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
        errors.append(SpecError(section, f"expected a mapping with a 'type' key, got {shown(body)}"))
        return None
    body = dict(body)
    type_name = body.pop("type", None)
    if type_name is None:
        type_name = _default_type(section, kind, resolver, errors)
        if type_name is None:
            return None
    if not isinstance(type_name, str) or not type_name:
        errors.append(SpecError(f"{section}.type", f"expected the name of a registered {kind}, got {shown(type_name)}"))
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
        errors.append(SpecError("train", f"expected a mapping of stage -> options, got {shown(raw_train)}"))
        return {}
    for stage in raw_train:
        if f"train.{shorten(stage)}" in REMOVED_KEYS:
            errors.append(SpecError(f"train.{stage}", REMOVED_KEYS[f"train.{stage}"]))
        elif stage not in TRAINED_STAGES:
            errors.append(SpecError(f"train.{shorten(stage)}", f"unknown stage{did_you_mean(stage, TRAINED_STAGES)}; known: {', '.join(TRAINED_STAGES)}"))
    resolved = {}
    for stage in TRAINED_STAGES:
        given = raw_train.get(stage)
        given = {} if given is None else given
        if not isinstance(given, Mapping):
            errors.append(SpecError(f"train.{stage}", f"expected a mapping of options, got {shown(given)}"))
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
        errors.append(SpecError("sample", f"expected a mapping of sample options, got {shown(raw_sample)}"))
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
        errors.append(SpecError("sample.sampler", f"expected the name of a sampler of {generator.type!r}, got {shown(sampler)}"))
        return None
    chosen = _collect(errors, resolver.sampler_options, generator.type, sampler, rest, "sample")
    if base is None or chosen is None:
        return None
    return attrs.evolve(base, sampler=chosen[0], options=chosen[1])
