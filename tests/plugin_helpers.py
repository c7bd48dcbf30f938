"""Helpers for testing plugin modules through the real registration path."""

from __future__ import annotations

from types import ModuleType

from ldns_registry import Registry


def registered_classes(plugin: ModuleType) -> list[tuple[str, str, type, str]]:
    """(kind, name, class, summary) of every component ``plugin`` registers, each class imported
    and checked against its kind's interface by the registry."""
    registry = Registry()
    registry.register(plugin, "plugin-under-test")
    assert not registry.failures, registry.failures
    return [(e.kind, e.name, registry.component_class(e.kind, e.name), e.summary) for e in registry.catalogue]
