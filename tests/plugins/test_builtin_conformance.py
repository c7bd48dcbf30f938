"""Every built-in observation model passes the conformance kit (DESIGN.md section 8), found as users find it."""

from __future__ import annotations

from ldns_registry import Registry

from ldns_framework.testing import parametrize_with_checks

_REGISTRY = Registry.discover(strict=False, trace=False)
BUILTIN_OBSERVATIONS = sorted(e.name for e in _REGISTRY.catalogue
                              if e.kind == "observation" and e.provider.distribution == "ldns-framework")


def _factory(name: str):
    def build():
        return _REGISTRY.build("observation", {"type": name})

    build.__name__ = name
    return build


def test_poisson_is_among_the_builtin_observation_models():
    assert "poisson" in BUILTIN_OBSERVATIONS


@parametrize_with_checks([_factory(name) for name in BUILTIN_OBSERVATIONS])
def test_builtin_observation_models_pass_the_kit(check):
    check()
