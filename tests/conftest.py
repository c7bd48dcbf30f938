"""Shared fixtures: fake installed distributions, so entry-point discovery is tested for real."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable

import pytest


@pytest.fixture
def install_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Write a distribution (dist-info with entry points, plus modules) and put it on sys.path.

    importlib.metadata finds it exactly as it finds a pip-installed package.
    """
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))

    def install(name: str, entry_points: dict[str, str], modules: dict[str, str], version: str = "1.0") -> Path:
        dist_info = root / f"{name.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = ["[ldns_framework]"] + [f"{ep} = {target}" for ep, target in entry_points.items()]
        (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for module, source in modules.items():
            path = root / (module.replace(".", "/") + ".py")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        return root

    return install


@pytest.fixture
def toy_registry():
    """A registry holding the built-in plugins (discovered) plus the in-process toy plugin."""
    from ldns_registry import Registry
    from toy_components import ToyPlugin

    registry = Registry.discover(strict=False, trace=False)
    registry.register(ToyPlugin(), "toy")
    return registry


@pytest.fixture
def one_torch_thread():
    """Tiny models: one intra-op thread is faster than two, and much faster on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
