"""What the light paths of the command line import (structure, not timings; benchmarks/startup.py times them).

- ``ldns plugins`` imports no torch; validating a spec whose components register their config
  classes apart (``config=`` / ``samplers=``) imports no torch and not the components' modules.
- Sampling a trained run imports neither Lightning Fabric (training only) nor diffusers (the
  samplers are in-house) nor scipy.stats.
- A registered config class or samplers mapping must be the very one the class carries.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ldns_framework import PluginError, SpecError, hookimpl
from ldns_framework.pipeline import Pipeline
from ldns_registry import Registry

TINY = {
    "seed": 0,
    "data": {"type": "lorenz", "n_trials": 16, "n_neurons": 6, "length": 16, "seed": 1},
    "encoder": {"type": "s4-autoencoder", "hidden": 8, "latent_dim": 2, "blocks": 1, "state_size": 4},
    "generator": {"type": "latent-diffusion", "hidden": 8, "blocks": 1, "state_size": 4},
    "train": {"encoder": {"epochs": 1, "batch_size": 8}, "generator": {"epochs": 1, "batch_size": 8}},
}
WATCHED = ("torch", "lightning_fabric", "diffusers", "scipy.stats", "h2_components")


def imported_after(code: str, path: Path | None = None) -> set[str]:
    """The watched modules in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = (f"import sys\nsys.path.insert(0, {str(path)!r})\n" if path else "import sys\n") + textwrap.dedent(code) + (
        f"\nprint('MODULES=' + __import__('json').dumps([m for m in {WATCHED!r} if m in sys.modules]))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    line = [x for x in result.stdout.splitlines() if x.startswith("MODULES=")][-1]
    return set(json.loads(line.removeprefix("MODULES=")))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("startup") / "run"
    Pipeline.from_spec(TINY).fit(run_dir=run, progress=False)
    return run


def test_listing_plugins_imports_no_torch() -> None:
    assert "torch" not in imported_after("from ldns_framework.cli import main\nassert main(['plugins']) == 0")


def test_sampling_a_run_imports_neither_lightning_nor_diffusers(run, tmp_path) -> None:
    out = tmp_path / "s.npz"
    loaded = imported_after(f"""
        from ldns_framework.cli import main
        assert main(['sample', {str(run)!r}, '--n', '3', '--out', {str(out)!r}, '--no-progress']) == 0
        assert main(['sample', {str(run)!r}, '--n', '2', '--sampler', 'ddim', '--steps', '3', '--out',
                     {str(tmp_path / 'd.npz')!r}, '--no-progress']) == 0
    """)
    assert out.is_file() and "torch" in loaded
    assert not loaded & {"lightning_fabric", "diffusers", "scipy.stats"}


def test_reopening_a_run_for_inference_makes_no_fabric(run) -> None:
    pipeline = Pipeline.load(run, device="cpu")
    assert pipeline._fabric is None and str(pipeline.model.device) == "cpu"


# --- components whose config classes are registered apart ---------------------------------------

CONFIG_MODULE = '''
import attrs
from ldns_framework import option


@attrs.frozen
class SourceConfig:
    trials: int = option(4, doc="trials", ge=1)


@attrs.frozen
class NetConfig:
    width: int = option(3, doc="width", ge=1)


@attrs.frozen
class FastOptions:
    steps: int = option(5, doc="steps", ge=1)


@attrs.frozen
class NoConfig:
    """No options."""


SAMPLERS = {"fast": FastOptions}
'''

COMPONENT_MODULE = '''
import torch
from ldns_framework import Conditioner, DataSource, Encoder, LatentGenerator, ObservationModel, Unconditional
from h2_config import NetConfig, NoConfig, SAMPLERS, SourceConfig


class Source(DataSource):
    config_class = SourceConfig

    def load(self):
        raise NotImplementedError


class Net(Encoder):
    config_class = NetConfig


class Observation(ObservationModel):
    config_class = NetConfig


class Generator(LatentGenerator):
    config_class = NetConfig
    samplers = SAMPLERS


class Cond(Unconditional):
    config_class = NoConfig
'''

PLUGIN_MODULE = '''
from ldns_framework import hookimpl


@hookimpl
def ldns_register_components(registrar):
    for kind, name, cls, config in (("data", "src", "Source", "SourceConfig"), ("encoder", "net", "Net", "NetConfig"),
                                    ("observation", "obs", "Observation", "NetConfig")):
        registrar.add(kind, name, f"h2_components:{cls}", config=f"h2_config:{config}", default=True)
    registrar.add("generator", "gen", "h2_components:Generator", config="h2_config:NetConfig",
                  samplers="h2_config:SAMPLERS", default=True)
    registrar.add("conditioner", "none", "h2_components:Cond", config="h2_config:NoConfig", default=True)
'''


@pytest.fixture
def split_plugin(tmp_path) -> Path:
    for name, source in (("h2_config", CONFIG_MODULE), ("h2_components", COMPONENT_MODULE),
                         ("h2_plugin", PLUGIN_MODULE)):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    return tmp_path


def test_a_spec_of_split_registrations_validates_without_torch(split_plugin) -> None:
    loaded = imported_after("""
        import h2_plugin
        from ldns_registry import Registry
        registry = Registry()
        registry.register(h2_plugin, "split")
        spec = registry.resolve({"encoder": {"width": 7}, "sample": {"steps": 9}})
        assert spec.components["encoder"].config.width == 7 and spec.sample.options.steps == 9
        assert spec.sample.sampler == "fast"
    """, split_plugin)
    assert not loaded & {"torch", "h2_components"}


def test_loading_a_split_registration_checks_the_class_carries_it(split_plugin, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(split_plugin))
    import h2_plugin

    registry = Registry()
    registry.register(h2_plugin, "split")
    assert registry.component_class("encoder", "net").__name__ == "Net"
    assert registry.component_class("generator", "gen").samplers["fast"]().steps == 5

    class Wrong:
        @hookimpl
        def ldns_register_components(self, registrar):
            registrar.add("encoder", "wrong", "h2_components:Net", config="h2_config:SourceConfig")
            registrar.add("generator", "odd", "h2_components:Generator", samplers="h2_config:NetConfig")

    registry.register(Wrong(), "wrong")
    with pytest.raises(PluginError, match=r"h2_components:Net\.config_class is not the registered config "
                                          r"h2_config:SourceConfig$"):
        registry.component_class("encoder", "wrong")
    with pytest.raises(PluginError, match=r"samplers h2_config:NetConfig must be a mapping of sampler name"):
        registry.sampler_options("odd", None, {}, "sample")


def test_a_config_target_that_does_not_import_is_a_spec_error_naming_the_type() -> None:
    class Missing:
        @hookimpl
        def ldns_register_components(self, registrar):
            registrar.add("encoder", "ghost", "nowhere_h2:Net", config="nowhere_h2:NetConfig")

    registry = Registry()
    registry.register(Missing(), "missing")
    with pytest.raises(SpecError, match=r"^encoder\.type: encoder 'ghost' of plugin 'missing' .*cannot import "
                                        r"nowhere_h2:NetConfig"):
        registry.structure_component("encoder", {}, "ghost", "encoder")


@pytest.mark.parametrize(("options", "message"), [({"config": "no-colon"}, "config must be 'module.path:ConfigClass'"),
                                                  ({"samplers": "m:S"}, "samplers are for generators only")])
def test_registrar_checks_the_config_and_samplers_targets(options, message) -> None:
    class Bad:
        @hookimpl
        def ldns_register_components(self, registrar):
            registrar.add("encoder", "x", "m:C", **options)

    registry = Registry()
    registry.register(Bad(), "bad")
    assert message in registry.failures["bad"].error and not list(registry.catalogue)


# --- the built-in components register their config classes apart --------------------------------

SHIPPED_SPECS = sorted((Path(__file__).resolve().parents[2] / "docs" / "specs").glob("*.yaml"))


@pytest.mark.parametrize("spec", SHIPPED_SPECS, ids=lambda p: p.stem)
def test_validating_a_shipped_spec_imports_no_torch(spec) -> None:
    loaded = imported_after(f"from ldns_framework.cli import main\nassert main(['validate', {str(spec)!r}]) == 0")
    assert "torch" not in loaded


def test_every_builtin_component_a_spec_configures_registers_a_torch_free_config() -> None:
    registry = Registry.discover()
    builtin = [e for e in registry.catalogue if e.target.startswith("ldns_plugins.") and e.kind != "metric"]
    assert len(builtin) >= 12 and [e.name for e in builtin if e.config is None] == []
    assert registry.entry("generator", "latent-diffusion").samplers is not None
    for entry in builtin:  # loading checks that the class carries the very config (and samplers) registered
        registry.component_class(entry.kind, entry.name)
    loaded = imported_after("""
        import importlib
        from ldns_registry import Registry
        for entry in Registry.discover().catalogue:
            for target in filter(None, (entry.config, entry.samplers)):
                importlib.import_module(target.partition(":")[0])
    """)
    assert "torch" not in loaded
