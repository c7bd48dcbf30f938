"""Registry behaviour: discovery through real entry points, isolation, conflicts, disabling, building."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ldns_framework import PluginError, SpecError, hookimpl
from ldns_framework.errors import SpecErrors
from ldns_registry import Registry
from toy_components import ToyEncoder, ToyPlugin

GOOD_PLUGIN = '''
from ldns_framework import hookimpl

@hookimpl
def ldns_register_components(registrar):
    registrar.add("observation", "fake-poisson", "ldns_plugins.poisson.model:PoissonObservation", summary="alias")
'''
BROKEN_PLUGIN = 'raise ImportError("this plugin is broken on purpose")\n'
DUPLICATE_PLUGIN = '''
from ldns_framework import hookimpl

@hookimpl
def ldns_register_components(registrar):
    registrar.add("observation", "poisson", "ldns_plugins.poisson.model:PoissonObservation", summary="clash")
'''


def test_builtin_components_come_through_entry_points():
    registry = Registry.discover()
    rows = {(e.kind, e.name): e for e in registry.catalogue}
    poisson = rows[("observation", "poisson")]
    assert poisson.provider.plugin == "poisson"
    assert poisson.provider.distribution == "ldns-framework"
    assert ("conditioner", "none") in rows and ("data", "arrays") in rows


def test_installed_third_party_plugin_is_discovered():
    """tests/plugin_dist is pip-installed by `make test`: a real distribution with a real entry point."""
    entry = Registry.discover().entry("observation", "test-bernoulli")
    assert (entry.provider.plugin, entry.provider.distribution, entry.provider.version) == ("test-plugin", "ldns-test-plugin", "0.0.1")
    model = Registry.discover().build("observation", {"type": "test-bernoulli"})
    assert type(model).__name__ == "BernoulliObservation"


def test_broken_plugin_is_recorded_and_others_still_load(install_distribution):
    install_distribution("ldns-aaa-broken", {"aaa-broken": "aaa_broken"}, {"aaa_broken": BROKEN_PLUGIN})
    install_distribution("ldns-zzz-good", {"zzz-good": "zzz_good"}, {"zzz_good": GOOD_PLUGIN})
    registry = Registry.discover(strict=False)
    failure = registry.failures["aaa-broken"]
    assert failure.provider.distribution == "ldns-aaa-broken"
    assert "ImportError: this plugin is broken on purpose" in failure.error
    assert registry.entry("observation", "fake-poisson").provider.plugin == "zzz-good"
    assert registry.entry("observation", "poisson").provider.plugin == "poisson"
    # fatal only when a spec asks for something it may have provided
    with pytest.raises(PluginError, match=r"unknown observation type 'missing'.*failed to load: aaa-broken"):
        registry.entry("observation", "missing")


def test_strict_mode_makes_a_broken_plugin_fatal(install_distribution, monkeypatch):
    install_distribution("ldns-broken", {"broken": "broken_mod"}, {"broken_mod": BROKEN_PLUGIN})
    with pytest.raises(PluginError, match="strict plugin mode.*'broken'.*broken on purpose"):
        Registry.discover(strict=True)
    monkeypatch.setenv("LDNS_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="strict plugin mode"):
        Registry.discover()


def test_duplicate_kind_and_name_is_an_error_naming_both(install_distribution):
    install_distribution("ldns-clash", {"clash": "clash_mod"}, {"clash_mod": DUPLICATE_PLUGIN}, version="2.0")
    registry = Registry.discover(strict=False)
    with pytest.raises(PluginError) as info:
        registry.entry("observation", "poisson")
    message = str(info.value)
    assert "plugin 'poisson' (ldns-framework" in message and "plugin 'clash' (ldns-clash 2.0)" in message
    with pytest.raises(SpecErrors, match="observation.type: observation 'poisson' is provided twice"):
        registry.resolve({"data": {"type": "arrays", "path": "x.npz"}, "observation": {"type": "poisson"}})
    # disabling one of them resolves the clash
    assert Registry.discover(disabled=["clash"]).entry("observation", "poisson").provider.plugin == "poisson"


def test_disable_by_flag_and_environment(monkeypatch):
    assert "poisson" not in Registry.discover(disabled=["poisson"]).catalogue.names("observation")
    monkeypatch.setenv("LDNS_DISABLE_PLUGINS", "poisson, arrays, lorenz")
    registry = Registry.discover()
    assert "poisson" not in registry.catalogue.names("observation")
    assert "test-bernoulli" in registry.catalogue.names("observation")
    assert registry.catalogue.names("data") == []
    assert registry.disabled == {"poisson", "arrays", "lorenz"}


def test_tracing_writes_hook_calls(capsys):
    registry = Registry(trace=True)
    registry.register(ToyPlugin(), "toy")
    assert "ldns_register_components" in capsys.readouterr().err


def test_in_process_registration_and_build(toy_registry):
    encoder = toy_registry.build("encoder", {"type": "toy-encoder", "latent_dim": 3}, n_neurons=5)
    assert isinstance(encoder, ToyEncoder) and encoder.latent_dim == 3 and encoder.n_neurons == 5
    spec = toy_registry.resolve({"data": {"type": "toy-data"}, "encoder": {"type": "toy-encoder"}, "generator": None})
    assert toy_registry.build("data", spec.components["data"]).load().n_trials == 6
    provenance = toy_registry.provenance(spec)
    assert provenance["encoder"]["plugin"] == "toy" and provenance["observation"]["distribution"] == "ldns-framework"


def test_build_errors_have_paths_and_suggestions(toy_registry):
    with pytest.raises(SpecError, match=r"^encoder.type: unknown encoder type 'toy-encodr' \(did you mean 'toy-encoder'\?\)"):
        toy_registry.build("encoder", {"type": "toy-encodr"}, n_neurons=2)
    with pytest.raises(SpecErrors, match=r"^encoder.hidden: expected int >= 1, got 0$"):
        toy_registry.build("encoder", {"type": "toy-encoder", "hidden": 0}, n_neurons=2)
    with pytest.raises(SpecError, match="encoder.type: expected the name of a registered encoder"):
        toy_registry.build("encoder", {"hidden": 3}, n_neurons=2)


def test_registrar_rejects_bad_registrations():
    class BadKind:
        @hookimpl
        def ldns_register_components(self, registrar):
            registrar.add("decoder", "x", "m:C")

    class BadTarget:
        @hookimpl
        def ldns_register_components(self, registrar):
            registrar.add("encoder", "x", "m.C")

    registry = Registry()
    registry.register(BadKind(), "bad-kind")
    registry.register(BadTarget(), "bad-target")
    assert "unknown kind 'decoder'" in registry.failures["bad-kind"].error
    assert "must be 'module.path:ClassName'" in registry.failures["bad-target"].error
    assert not list(registry.catalogue)


def test_component_class_must_implement_its_interface(toy_registry):
    class Mislabelled:
        @hookimpl
        def ldns_register_components(self, registrar):
            registrar.add("observation", "not-an-observation", "toy_components:ToyEncoder")
            registrar.add("observation", "not-importable", "no_such_module:Thing")

    toy_registry.register(Mislabelled(), "mislabelled")
    with pytest.raises(PluginError, match="is not a subclass of ldns_framework.ObservationModel"):
        toy_registry.component_class("observation", "not-an-observation")
    with pytest.raises(PluginError, match="cannot import no_such_module:Thing: ModuleNotFoundError"):
        toy_registry.component_class("observation", "not-importable")


def test_plugin_requiring_a_newer_api_is_refused():
    class Future:
        LDNS_PLUGIN_API = 99

    registry = Registry()
    registry.register(Future(), "future")
    assert "needs plugin API 99" in registry.failures["future"].error


def test_discovery_imports_no_torch():
    code = ("import sys; from ldns_registry import Registry; r = Registry.discover(); "
            "assert r.catalogue.names('observation'); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
