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


def _make_registry(*plugins: ModuleType | str) -> Any:
    from ldns_registry import Registry  # the composition root's package, imported lazily

    if not plugins:
        raise pytest.UsageError("isolated_registry: no plugin under test; mark the test with "
                                "@pytest.mark.ldns_plugin('my_package'), set `ldns_plugins` in the pytest ini "
                                "options, or override the ldns_plugin_modules fixture")
    registry = Registry(strict=False)
    for plugin in plugins:
        module = importlib.import_module(plugin) if isinstance(plugin, str) else plugin
        registry.register(module, module.__name__)
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
def observation_checks(build_observation: Callable[..., Any]) -> Callable[..., list[Any]]:
    """``observation_checks(name, **options)``: the kit's :class:`CheckResult` rows for a registered model."""
    from ldns_framework.testing.checks import run_checks

    def run(name: str, **options: Any) -> list[Any]:
        return run_checks(lambda: build_observation(name, **options))

    return run
