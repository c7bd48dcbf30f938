"""pytest plugin of ldns-framework, loaded through the ``pytest11`` entry point.

Fixtures for plugin authors:

- ``isolated_registry``: a registry holding only the plugin(s) under test, with no entry-point
  discovery, so other installed plugins can neither conflict with nor mask yours. Name the
  plugin module with a marker, ``@pytest.mark.ldns_plugin("my_package")``, with the ini option
  ``ldns_plugins = my_package`` (pyproject ``[tool.pytest.ini_options]``), or by overriding the
  ``ldns_plugin_modules`` fixture. Registration is strict: a plugin that fails to load fails the test.
- ``make_isolated_registry``: ``make_isolated_registry(module_or_name, ...)`` builds such registries on demand.
- ``build_observation``: ``build_observation("negative-binomial", dispersion=2.0)`` builds a
  component from the isolated registry exactly as a spec section would.
- ``observation_checks``: ``observation_checks("negative-binomial")`` runs the conformance kit
  on a registered observation model and returns its :class:`CheckResult` rows.
- ``component_checks``: ``component_checks("encoder", "gru", hidden=8)``, the same for any kind
  (each kind's integration check included: the isolated registry gets the kit's reference
  components beside the plugin under test).

:func:`kit_registry` gives an empty registry (no discovery) for the contract classes.

The registry package is imported inside the fixtures only: the core never imports it otherwise.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Callable

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("ldns_plugins", "plugin modules (import names) that the isolated_registry fixture registers",
                  type="linelist", default=[])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ldns_plugin(*modules): the ldns plugin modules isolated_registry registers")


def kit_registry(*plugins: ModuleType | str) -> Any:
    """A ``ldns_registry.Registry`` without entry-point discovery, holding only ``plugins`` (modules or
    import names): the plugin under test and what its components name (e.g. the observation model an
    autoregressive model's ``encoder_observation()`` returns). The kit registers its own reference
    components into it as needed."""
    from ldns_registry import Registry  # the composition root's package, imported lazily

    registry = Registry(strict=False)
    for plugin in plugins:
        module = importlib.import_module(plugin) if isinstance(plugin, str) else plugin
        registry.register(module, module.__name__)
    return registry


def _make_registry(*plugins: ModuleType | str) -> Any:
    if not plugins:
        raise pytest.UsageError("isolated_registry: no plugin under test; mark the test with "
                                "@pytest.mark.ldns_plugin('my_package'), set `ldns_plugins` in the pytest ini "
                                "options, or override the ldns_plugin_modules fixture")
    registry = kit_registry(*plugins)
    problems = [f.message() for f in registry.failures.values()]
    problems += [c.message() for c in registry.catalogue.conflicts.values()]
    if problems:
        pytest.fail("plugin under test failed to register: " + "; ".join(problems), pytrace=False)
    return registry


@pytest.fixture
def ldns_plugin_modules(request: pytest.FixtureRequest) -> list[str]:
    """Import names of the plugin modules under test (marker ``ldns_plugin``, else ini ``ldns_plugins``)."""
    marker = request.node.get_closest_marker("ldns_plugin")
    if marker is not None:
        return [m if isinstance(m, str) else m.__name__ for m in marker.args]
    return list(request.config.getini("ldns_plugins"))


@pytest.fixture
def isolated_registry(ldns_plugin_modules: list[str]) -> Any:
    """An ``ldns_registry.Registry`` holding only the plugin(s) under test."""
    return _make_registry(*ldns_plugin_modules)


@pytest.fixture
def make_isolated_registry() -> Callable[..., Any]:
    """Factory: ``make_isolated_registry(module_or_name, ...)`` -> a registry holding only those plugins."""
    return _make_registry


@pytest.fixture
def build_observation(isolated_registry: Any) -> Callable[..., Any]:
    """``build_observation(name, **options)``: an observation model built from the isolated registry."""

    def build(name: str, **options: Any) -> Any:
        return isolated_registry.build("observation", {"type": name, **options})

    return build


@pytest.fixture
def component_checks(isolated_registry: Any) -> Callable[..., list[Any]]:
    """``component_checks(kind, name, **options)``: the kit's :class:`CheckResult` rows for a registered component."""
    from ldns_framework.testing.checks import run_checks

    def run(kind: str, name: str, **options: Any) -> list[Any]:
        def factory(**context: Any) -> Any:
            return isolated_registry.build(kind, {"type": name, **options}, path=kind, **context)

        return run_checks(factory, kind=kind, registry=isolated_registry, name=name, options=options)

    return run


@pytest.fixture
def observation_checks(component_checks: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    """``observation_checks(name, **options)``: the kit's :class:`CheckResult` rows for a registered model."""

    def run(name: str, **options: Any) -> list[Any]:
        return component_checks("observation", name, **options)

    return run
