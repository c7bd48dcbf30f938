"""The layer rules of DESIGN.md section 1, checked by reading every module's imports."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE, REGISTRY, PLUGINS = ROOT / "ldns_framework", ROOT / "registry", ROOT / "plugins"
#: Core modules allowed to import the registry: the composition root.
COMPOSITION_ROOT = {"cli.py", "pipeline.py", "pytest_plugin.py"}
#: What a plugin may import from the core: the public API only.
PUBLIC_CORE = {"ldns_framework", "ldns_framework.interfaces", "ldns_framework.nn"}


def imported_modules(path: Path) -> set[str]:
    """Absolute module names imported anywhere in the file (function-level imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("path", python_files(CORE), ids=lambda p: p.name)
def test_core_never_imports_plugins_and_only_the_root_imports_the_registry(path):
    tops = {top(n) for n in imported_modules(path)}
    assert "ldns_plugins" not in tops
    if path.name not in COMPOSITION_ROOT:
        assert "ldns_registry" not in tops, f"{path.name} imports ldns_registry; only {COMPOSITION_ROOT} may"


@pytest.mark.parametrize("path", python_files(REGISTRY), ids=lambda p: p.name)
def test_registry_reaches_plugins_only_through_entry_points(path):
    tops = {top(n) for n in imported_modules(path)}
    assert "ldns_plugins" not in tops
    allowed = set(sys.stdlib_module_names) | {"ldns_framework", "ldns_registry", "pluggy", "attrs"}
    assert tops <= allowed, f"{path.name} imports {tops - allowed}"


PLUGIN_PACKAGES = sorted(p for p in PLUGINS.iterdir() if (p / "__init__.py").exists())


@pytest.mark.parametrize("package", PLUGIN_PACKAGES, ids=lambda p: p.name)
def test_plugins_import_only_the_public_api_and_themselves(package):
    own = f"ldns_plugins.{package.name}"
    for path in python_files(package):
        for name in imported_modules(path):
            if top(name) == "ldns_framework":
                assert name in PUBLIC_CORE, f"{path.relative_to(ROOT)} imports private core module {name}"
            assert top(name) != "ldns_registry", f"{path.relative_to(ROOT)} imports the registry"
            if top(name) == "ldns_plugins":
                assert name == own or name.startswith(own + "."), f"{path.relative_to(ROOT)} imports another plugin: {name}"


@pytest.mark.parametrize("package", PLUGIN_PACKAGES, ids=lambda p: p.name)
def test_plugin_entry_modules_stay_light(package):
    """Discovery imports each plugin's __init__: it must not pull in torch or numpy."""
    heavy = {top(n) for n in imported_modules(package / "__init__.py")} & {"torch", "numpy", "scipy"}
    assert not heavy


def test_public_api_names_resolve():
    import ldns_framework

    for name in ldns_framework.__all__:
        assert getattr(ldns_framework, name) is not None


def builtin_names() -> set[str]:
    """Registered names of every built-in component and of every sampler a built-in generator declares."""
    from ldns_registry import Registry

    registry = Registry()
    for package in PLUGIN_PACKAGES:
        registry.register(__import__(f"ldns_plugins.{package.name}", fromlist=["_"]), package.name)
    assert not registry.failures, registry.failures
    names = {entry.name for entry in registry.catalogue}
    for name in registry.names("generator"):
        names |= set(registry.component_class("generator", name).samplers)
    return names


SAMPLER_WORDS = ("ddpm", "ddim", "dpm-solver")


def test_core_names_no_builtin_component_or_sampler():
    """Defaults, metric order and samplers come from registrations: the core spells no built-in name."""
    names = builtin_names()
    assert {"lorenz", "poisson", "latent-diffusion", "dpm-solver++", "ddpm"} <= names  # the scan sees them
    found = []
    for path in python_files(CORE):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if node.value in names:
                found.append(f"{where} {node.value!r}")
            found += [f"{where} mentions {word!r}" for word in SAMPLER_WORDS if word in node.value.lower()]
    assert not found, "the core names built-in plugins: " + "; ".join(found)
