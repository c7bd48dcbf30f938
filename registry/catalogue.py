"""The component catalogue: which plugin provides which (kind, name), and where the class lives."""

from __future__ import annotations

import importlib
from typing import Any, Iterator

import attrs

from ldns_framework import PluginError
from ldns_framework.config import did_you_mean

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


@attrs.frozen
class ComponentEntry:
    kind: str
    name: str
    target: str
    summary: str
    provider: Provider

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "target": self.target, "summary": self.summary,
                "plugin": self.provider.plugin, "distribution": self.provider.distribution,
                "version": self.provider.version}


@attrs.frozen
class Conflict:
    """Two plugins registered the same (kind, name)."""

    first: ComponentEntry
    second: ComponentEntry

    def message(self) -> str:
        a, b = self.first.provider, self.second.provider
        return (f"{self.first.kind} {self.first.name!r} is provided twice: by plugin {a.plugin!r} "
                f"({a.distribution} {a.version}) and by plugin {b.plugin!r} ({b.distribution} {b.version}); "
                f"disable one with --disable-plugin or LDNS_DISABLE_PLUGINS")


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
        return iter(sorted(self._entries.values(), key=lambda e: (KINDS.index(e.kind), e.name)))

    def names(self, kind: str) -> list[str]:
        return sorted(name for k, name in self._entries if k == kind)

    def get(self, kind: str, name: str) -> ComponentEntry | None:
        if (kind, name) in self.conflicts:
            raise PluginError(self.conflicts[(kind, name)].message())
        return self._entries.get((kind, name))

    def unknown_message(self, kind: str, name: str) -> str:
        known = self.names(kind)
        listed = ", ".join(known) if known else "none registered"
        return f"unknown {kind} type {name!r}{did_you_mean(name, known)}; known: {listed}"


class Registrar:
    """Handed to ``ldns_register_components``: records what one plugin provides."""

    def __init__(self, catalogue: Catalogue, provider: Provider) -> None:
        self._catalogue = catalogue
        self.provider = provider

    def add(self, kind: str, name: str, target: str, *, summary: str = "") -> None:
        """Register ``name`` of ``kind`` implemented by ``"package.module:ClassName"``."""
        if kind not in KINDS:
            raise PluginError(f"plugin {self.provider.plugin!r} registers {name!r} under unknown kind {kind!r}{did_you_mean(kind, KINDS)}; kinds: {', '.join(KINDS)}")
        if not isinstance(name, str) or not name or "." in name or ":" in name:
            raise PluginError(f"plugin {self.provider.plugin!r}: component name must be a short name without '.' or ':', got {name!r}")
        if not isinstance(target, str) or target.count(":") != 1:
            raise PluginError(f"plugin {self.provider.plugin!r}: {kind} {name!r} target must be 'module.path:ClassName', got {target!r}")
        self._catalogue.add(ComponentEntry(kind, name, target, summary, self.provider))


def load_component_class(entry: ComponentEntry) -> type:
    """Import the class behind ``entry`` and check it implements its kind's interface."""
    module_name, _, attr = entry.target.partition(":")
    where = f"{entry.kind} {entry.name!r} (plugin {entry.provider.plugin!r}, {entry.provider.distribution})"
    try:
        cls: Any = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # any import-time failure of a plugin module is the plugin's fault
        raise PluginError(f"{where}: cannot import {entry.target}: {type(exc).__name__}: {exc}") from exc
    interface = getattr(importlib.import_module("ldns_framework.interfaces"), INTERFACE_NAMES[entry.kind])
    if not (isinstance(cls, type) and issubclass(cls, interface)):
        raise PluginError(f"{where}: {entry.target} is not a subclass of ldns_framework.{interface.__name__}")
    if not attrs.has(getattr(cls, "config_class", None)):
        raise PluginError(f"{where}: {entry.target}.config_class must be an attrs class")
    return cls
