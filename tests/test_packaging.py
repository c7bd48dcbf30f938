"""Packaging: the package list matches the tree, names are prefixed, the spec reference is fresh."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_directory_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = set()
    for name, directory in config["package-dir"].items():
        for init in (ROOT / directory).rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(ROOT / directory).parts
            on_disk.add(".".join((name, *rel)))
    assert listed == on_disk


def test_builtin_entry_points_name_listed_packages():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = set(config["tool"]["setuptools"]["packages"])
    for target in config["project"]["entry-points"]["ldns_framework"].values():
        assert target in packages


def test_no_bare_plugins_or_registry_module_is_installed():
    site = Path(sysconfig.get_paths()["purelib"])
    for bare in ("plugins", "registry"):
        assert not (site / bare).exists() and not (site / f"{bare}.py").exists(), f"{bare} landed in {site}"
    import ldns_plugins
    import ldns_registry

    assert Path(ldns_registry.__file__).parent == ROOT / "registry"
    assert Path(ldns_plugins.__file__).parent == ROOT / "plugins"


def test_spec_reference_is_up_to_date():
    """docs/spec-reference.md is generated; regenerate with `ldns spec-docs` when this fails."""
    out = subprocess.run([sys.executable, "-m", "ldns_framework", "spec-docs", "--out", "-"],
                         capture_output=True, text=True, check=True)
    assert out.stdout == (ROOT / "docs" / "spec-reference.md").read_text(), "run `ldns spec-docs` and commit docs/spec-reference.md"
