"""Every spec shipped in docs/specs validates against the installed plugins."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldns_framework.spec import load_spec_file, parse_yaml
from ldns_registry import Registry

SPECS = sorted((Path(__file__).resolve().parents[1] / "docs" / "specs").glob("*.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_shipped_spec_is_valid_and_round_trips(path):
    registry = Registry.discover()
    spec = registry.resolve(load_spec_file(path))
    assert spec.components["encoder"] is not None
    generator = registry.component_class("generator", spec.components["generator"].type)
    assert spec.sample.sampler in generator.samplers
    assert isinstance(spec.sample.options, generator.samplers[spec.sample.sampler])
    assert registry.resolve(parse_yaml(spec.to_yaml())) == spec


def test_there_are_shipped_specs():
    assert {"lorenz.yaml", "lorenz-small.yaml"} <= {p.name for p in SPECS}
