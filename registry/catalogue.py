"""The component catalogue: which plugin provides which (kind, name), and where the class lives.

A registration may also name where the component's config class (and a generator's samplers)
live, in a module that does not import torch: resolving a spec (``ldns validate``) then imports
only those, not the component's module with torch behind it (about a second). When the class is
loaded it must carry the very config class and samplers registered.
"""

from __future__ import annotations

import importlib
from pathlib import PurePath
from typing import Any, Iterable, Iterator, Mapping

import attrs

from ldns_framework import DataError, PluginError
from ldns_framework.config import did_you_mean

from ldns_registry.guard import PluginCall, describe

KINDS = ("encoder", "observation", "generator", "conditioner", "data", "metric")

#: Interface each kind's classes must implement (looked up lazily: the interfaces import torch).
INTERFACE_NAMES = {
    "encoder": "Encoder",
    "observation": "ObservationModel",
    "generator": "LatentGenerator",
    "conditioner": "Conditioner",
    "data": "DataSource",
    "metric": "Metric",
}


@attrs.frozen
class Provider:
    """Where a plugin comes from: its entry point (or in-process) name and distribution."""

    plugin: str
    distribution: str = "(in-process)"
    version: str = ""

    def label(self) -> str:
        """``plugin 'x' (dist 1.0)``: who provides something, for messages."""
        dist = " ".join(p for p in (self.distribution.strip("()"), self.version) if p)
        return f"plugin {self.plugin!r} ({dist})"


@attrs.frozen
class ComponentEntry:
    """One registration: what ``Registrar.add`` recorded, and the plugin that called it."""

    kind: str
    name: str
    target: str
    summary: str
    provider: Provider
    #: True: the spec's type for this kind when a spec leaves ``type`` out.
    default: bool = False
    #: Ordering hint: listings (and the evaluation's metrics) go by rank, then name; unranked last.
    rank: float | None = None
    #: For a data source that reads one file named by its ``path`` option: the suffixes it reads.
    file_suffixes: tuple[str, ...] = ()
    #: ``"module:ConfigClass"``: the config class, importable without the component's module (or None).
    config: str | None = None
    #: For a generator, ``"module:NAME"`` of its samplers mapping, importable on its own (or None).
    samplers: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "target": self.target, "summary": self.summary,
                "plugin": self.provider.plugin, "distribution": self.provider.distribution,
                "version": self.provider.version, "default": self.default, "rank": self.rank,
                "file_suffixes": list(self.file_suffixes)}

    def sort_key(self) -> tuple[bool, float, str]:
        return (self.rank is None, 0.0 if self.rank is None else self.rank, self.name)

    def where(self) -> str:
        """``plugin 'x' (dist 1.0)``: who registered this entry, for error messages."""
        return self.provider.label()


@attrs.frozen
class Conflict:
    """Two plugins registered the same (kind, name)."""

    first: ComponentEntry
    second: ComponentEntry

    def message(self) -> str:
        return (f"{self.first.kind} {self.first.name!r} is provided twice: by {self.first.where()} and by "
                f"{self.second.where()}; disable one with --disable-plugin or LDNS_DISABLE_PLUGINS")


class Catalogue:
    """Registered components by (kind, name), plus the conflicts found while registering."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], ComponentEntry] = {}
        self.conflicts: dict[tuple[str, str], Conflict] = {}

    def add(self, entry: ComponentEntry) -> None:
        key = (entry.kind, entry.name)
        if key in self._entries:
            self.conflicts.setdefault(key, Conflict(self._entries[key], entry))
            return
        self._entries[key] = entry

    def __iter__(self) -> Iterator[ComponentEntry]:
        return iter(sorted(self._entries.values(), key=lambda e: (KINDS.index(e.kind), e.sort_key())))

    def entries(self, kind: str) -> list[ComponentEntry]:
        """The entries of ``kind`` ordered by rank, then name (unranked ones last)."""
        return sorted((e for e in self._entries.values() if e.kind == kind), key=ComponentEntry.sort_key)

    def names(self, kind: str) -> list[str]:
        """Registered names of ``kind``, ordered by rank, then name (unranked ones last)."""
        return [e.name for e in self.entries(kind)]

    def default_type(self, kind: str) -> str | None:
        """The name registered with ``default=True`` for ``kind``; None when no plugin declares one.

        Two defaults for one kind are a conflict, raised here (when a spec needs the default) with
        both providers named, like two registrations of one name.
        """
        defaults = [e for e in self.entries(kind) if e.default]
        if len(defaults) > 1:
            listed = " and ".join(f"{e.name!r} by {e.where()}" for e in defaults)
            raise PluginError(f"{len(defaults)} {kind} defaults are registered: {listed}; name the type in the spec, "
                              f"or disable one with --disable-plugin or LDNS_DISABLE_PLUGINS")
        return defaults[0].name if defaults else None

    def data_type_for_file(self, path: str | PurePath) -> str:
        """The data source that reads a file like ``path``, chosen by the suffixes sources declare."""
        name = PurePath(path).name.lower()
        readers = [e for e in self.entries("data") if any(name.endswith(s) for s in e.file_suffixes)]
        if len(readers) == 1:
            return readers[0].name
        suffix = PurePath(name).suffix
        files = f"{suffix} files" if suffix else "files without a suffix"
        if readers:
            listed = " and ".join(f"{e.name!r} by {e.where()}" for e in readers)
            raise DataError(str(path), f"{files} are read by {len(readers)} data sources, {listed}; "
                                       f"use a spec whose data section names the type")
        known = ", ".join(f"{s} ({e.name})" for e in self.entries("data") for s in e.file_suffixes) or "none"
        raise DataError(str(path), f"no installed data source reads {files}; known suffixes: {known}")

    def get(self, kind: str, name: str) -> ComponentEntry | None:
        if (kind, name) in self.conflicts:
            raise PluginError(self.conflicts[(kind, name)].message())
        return self._entries.get((kind, name))

    def unknown_message(self, kind: str, name: str) -> str:
        known = self.names(kind)
        listed = ", ".join(known) if known else "none registered"
        return f"unknown {kind} type {name!r}{did_you_mean(name, known)}; known: {listed}"


class Registrar:
    """Handed to ``ldns_register_components``: collects what one plugin provides.

    The registry commits ``entries`` to the catalogue only once the hook returned, so a
    registration that raises halfway leaves none of its components behind.
    """

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.entries: list[ComponentEntry] = []

    def add(self, kind: str, name: str, target: str, *, summary: str = "", default: bool = False,
            rank: float | None = None, file_suffixes: Iterable[str] = (), config: str | None = None,
            samplers: str | None = None) -> None:
        """Register ``name`` of ``kind`` implemented by ``"package.module:ClassName"``.

        ``default``: this is the spec's type for ``kind`` when a spec omits it. ``rank``: ordering
        hint (listings and metric evaluation go by rank, then name). ``file_suffixes``: for a data
        source reading the one file its ``path`` option names, the suffixes it reads (``".npz"``),
        so ``--data FILE`` finds it. ``config`` (``"module:ConfigClass"``) and, for a generator,
        ``samplers`` (``"module:NAME"``): where the class's ``config_class`` and ``samplers`` live
        when their module imports without torch, so validating a spec stays light.
        """
        if kind not in KINDS:
            raise PluginError(f"plugin {self.provider.plugin!r} registers {name!r} under unknown kind {kind!r}{did_you_mean(kind, KINDS)}; kinds: {', '.join(KINDS)}")
        if not isinstance(name, str) or not name or "." in name or ":" in name:
            raise PluginError(f"plugin {self.provider.plugin!r}: component name must be a short name without '.' or ':', got {name!r}")
        for option, value, form in (("target", target, "ClassName"), ("config", config, "ConfigClass"),
                                    ("samplers", samplers, "NAME")):
            if (value is not None or option == "target") and (not isinstance(value, str) or value.count(":") != 1):
                raise PluginError(f"plugin {self.provider.plugin!r}: {kind} {name!r} {option} must be "
                                  f"'module.path:{form}', got {value!r}")
        if samplers is not None and kind != "generator":
            raise PluginError(f"plugin {self.provider.plugin!r}: {kind} {name!r}: samplers are for generators only")
        suffixes = (file_suffixes,) if isinstance(file_suffixes, str) else tuple(file_suffixes)
        if suffixes and kind != "data":
            raise PluginError(f"plugin {self.provider.plugin!r}: {kind} {name!r}: file_suffixes are for data sources only")
        if not all(isinstance(s, str) and len(s) > 1 and s.startswith(".") for s in suffixes):
            raise PluginError(f"plugin {self.provider.plugin!r}: {kind} {name!r}: file_suffixes must look like '.npz', got {list(suffixes)}")
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, (int, float))):
            raise PluginError(f"plugin {self.provider.plugin!r}: {kind} {name!r}: rank must be a number or None, got {rank!r}")
        self.entries.append(ComponentEntry(kind, name, target, summary, self.provider, bool(default), rank,
                                           tuple(s.lower() for s in suffixes), config, samplers))


def _where(entry: ComponentEntry) -> str:
    return f"{entry.kind} {entry.name!r} of {entry.where()}"


def _import_target(entry: ComponentEntry, target: str) -> Any:
    """The object ``"module:attr"`` names; a PluginError naming ``entry`` when importing it fails."""
    module_name, _, attr = target.partition(":")
    with PluginCall() as call:  # anything the module raises at import, sys.exit included, is the plugin's fault
        value = getattr(importlib.import_module(module_name), attr)
    if call.error is not None:
        raise PluginError(f"{_where(entry)}: cannot import {target}: {describe(call.error)}") from call.error
    return value


def load_config_class(entry: ComponentEntry) -> type:
    """The config class of ``entry``: the registered ``config`` target when there is one (the
    component's module is not imported), else the component class's ``config_class``."""
    if entry.config is None:
        return load_component_class(entry).config_class
    config_class = _import_target(entry, entry.config)
    if not attrs.has(config_class):
        raise PluginError(f"{_where(entry)}: config {entry.config} must be an attrs class")
    return config_class


def load_samplers(entry: ComponentEntry) -> dict[str, Any]:
    """A generator's samplers (name -> options class): the registered ``samplers`` target when there
    is one, else the generator class's ``samplers``."""
    if entry.samplers is None:
        return dict(load_component_class(entry).samplers)
    samplers = _import_target(entry, entry.samplers)
    if not isinstance(samplers, Mapping):
        raise PluginError(f"{_where(entry)}: samplers {entry.samplers} must be a mapping of sampler name to "
                          f"options class, got {type(samplers).__name__}")
    return dict(samplers)


def load_component_class(entry: ComponentEntry) -> type:
    """Import the class behind ``entry`` and check it implements its kind's interface (and carries the
    config class and samplers registered, when they were)."""
    where = _where(entry)
    cls: Any = _import_target(entry, entry.target)
    interface = getattr(importlib.import_module("ldns_framework.interfaces"), INTERFACE_NAMES[entry.kind])
    if not (isinstance(cls, type) and issubclass(cls, interface)):
        raise PluginError(f"{where}: {entry.target} is not a subclass of ldns_framework.{interface.__name__}")
    if not attrs.has(getattr(cls, "config_class", None)):
        raise PluginError(f"{where}: {entry.target}.config_class must be an attrs class")
    if entry.file_suffixes and "path" not in attrs.fields_dict(cls.config_class):
        raise PluginError(f"{where}: declares file_suffixes, so {entry.target}.config_class needs a 'path' option "
                          f"(the file --data gives)")
    if entry.config is not None and cls.config_class is not load_config_class(entry):
        raise PluginError(f"{where}: {entry.target}.config_class is not the registered config {entry.config}")
    if entry.samplers is not None and dict(getattr(cls, "samplers", {})) != load_samplers(entry):
        raise PluginError(f"{where}: {entry.target}.samplers differ from the registered samplers {entry.samplers}")
    return cls
