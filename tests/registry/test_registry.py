"""Registry behaviour: discovery through real entry points, isolation, conflicts, disabling, building."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ldns_framework import DataError, PluginError, SpecError, hookimpl
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
    assert not {"arrays", "lorenz"} & set(registry.catalogue.names("data"))
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
    with pytest.raises(SpecError, match="encoder.type: expected the name of a registered encoder, got 3"):
        toy_registry.build("encoder", {"type": 3}, n_neurons=2)


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


class Ranked:
    """Registrations with the optional metadata: defaults, ranks, file suffixes."""

    @hookimpl
    def ldns_register_components(self, registrar):
        registrar.add("metric", "zeta", "m:Zeta", rank=1)
        registrar.add("metric", "alpha", "m:Alpha")
        registrar.add("metric", "beta", "m:Beta", rank=1)
        registrar.add("metric", "gamma", "m:Gamma", rank=0.5)
        registrar.add("data", "tables", "m:Tables", file_suffixes=(".csv", ".TSV"), default=True)
        registrar.add("data", "archive", "m:Archive", file_suffixes=".tar.gz")


def test_names_follow_rank_then_name_with_unranked_last():
    registry = Registry()
    registry.register(Ranked(), "ranked")
    assert registry.names("metric") == ["gamma", "beta", "zeta", "alpha"]
    assert [e.name for e in registry.catalogue if e.kind == "metric"] == ["gamma", "beta", "zeta", "alpha"]
    assert registry.default_type("data") == "tables" and registry.default_type("metric") is None


def test_builtin_metrics_are_ranked_in_the_reports_order():
    assert Registry.discover(disabled=["test-plugin"]).names("metric")[:6] == [
        "mean-rate", "population-count", "pairwise-correlation", "isi", "autocorrelation", "psth"]


def test_data_type_for_file_goes_by_declared_suffix():
    registry = Registry()
    registry.register(Ranked(), "ranked")
    assert registry.data_type_for_file("/x/Session.tsv") == "tables"
    assert registry.data_type_for_file("runs/a.b.tar.gz") == "archive"
    with pytest.raises(DataError, match=r"^x\.nwb: no installed data source reads \.nwb files; known suffixes: "
                                        r"\.tar\.gz \(archive\), \.csv \(tables\), \.tsv \(tables\)$"):
        registry.data_type_for_file("x.nwb")
    with pytest.raises(DataError, match=r"^README: no installed data source reads files without a suffix; known"):
        registry.data_type_for_file("README")

    class SecondReader:
        @hookimpl
        def ldns_register_components(self, registrar):
            registrar.add("data", "csv-reader", "m:Csv", file_suffixes=[".csv"], default=True)

    registry.register(SecondReader(), "second")
    with pytest.raises(DataError, match=r"\.csv files are read by 2 data sources, 'csv-reader' by plugin 'second' "
                                        r"\(in-process\) and 'tables' by plugin 'ranked' \(in-process\)"):
        registry.data_type_for_file("a.csv")
    with pytest.raises(PluginError, match=r"2 data defaults are registered: 'csv-reader' by plugin 'second'.*"
                                          r"and 'tables' by plugin 'ranked'"):
        registry.default_type("data")


def test_registrar_checks_the_optional_metadata():
    class BadMetadata:
        @hookimpl
        def ldns_register_components(self, registrar):
            registrar.add("encoder", "x", "m:C", file_suffixes=(".npz",))

    class BadSuffix:
        @hookimpl
        def ldns_register_components(self, registrar):
            registrar.add("data", "x", "m:C", file_suffixes=("npz",))

    class BadRank:
        @hookimpl
        def ldns_register_components(self, registrar):
            registrar.add("metric", "x", "m:C", rank="first")

    registry = Registry()
    for plugin, name in ((BadMetadata(), "meta"), (BadSuffix(), "suffix"), (BadRank(), "rank")):
        registry.register(plugin, name)
    assert "file_suffixes are for data sources only" in registry.failures["meta"].error
    assert "file_suffixes must look like '.npz', got ['npz']" in registry.failures["suffix"].error
    assert "rank must be a number or None, got 'first'" in registry.failures["rank"].error


def test_a_file_reader_needs_a_path_option():
    class PathlessReader:
        @hookimpl
        def ldns_register_components(self, registrar):
            registrar.add("data", "pathless", "toy_components:ToyData", file_suffixes=(".toy",))

    registry = Registry()
    registry.register(PathlessReader(), "pathless")
    assert registry.data_type_for_file("a.toy") == "pathless"
    with pytest.raises(PluginError, match=r"declares file_suffixes, so toy_components:ToyData.config_class needs a "
                                          r"'path' option"):
        registry.component_class("data", "pathless")


def test_builtin_defaults_are_declared_by_their_plugins():
    registry = Registry.discover()
    defaults = {kind: registry.default_type(kind) for kind in ("data", "encoder", "observation", "generator",
                                                              "conditioner", "metric")}
    assert defaults == {"data": "lorenz", "encoder": "s4-autoencoder", "observation": "poisson",
                        "generator": "latent-diffusion", "conditioner": "none", "metric": None}
    assert registry.data_type_for_file("session.npz") == "arrays"
    assert type(registry.build("observation", {})).__name__ == "PoissonObservation"  # no type: the default
