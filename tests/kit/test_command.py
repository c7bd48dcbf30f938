"""``run_check_command``, what ``ldns check KIND NAME`` runs: a table of PASS / FAIL / SKIP lines and
the exit status; bad kinds, names and options are one-line errors."""

from __future__ import annotations

import re

import pytest

from ldns_framework import LdnsError, SpecError, hookimpl
from ldns_framework.testing import run_check_command
from ldns_framework.testing.pytest_plugin import kit_registry
from ldns_framework.testing.reference import register_reference_components


class BrokenPlugin:
    @hookimpl
    def ldns_register_components(self, registrar):
        registrar.add("generator", "seedless", "kit.broken:IgnoresTheSeed", summary="ignores its generator")


@pytest.fixture
def registry():
    registry = kit_registry()
    register_reference_components(registry)
    registry.register(BrokenPlugin(), "broken")
    return registry


def test_a_passing_component_prints_its_table_and_returns_0(registry, capsys):
    assert run_check_command("encoder", "kit-linear-encoder", ["latent_dim=3"], registry, progress=False) == 0
    out = capsys.readouterr().out
    assert out.startswith("ldns check encoder kit-linear-encoder: 11 checks")
    assert "PASS  integration_trains_saves_reloads_and_samples" in out and "0 failed" in out


def test_a_failing_component_names_the_property_and_returns_1(registry, capsys):
    assert run_check_command("generator", "seedless", [], registry, progress=True) == 1
    out = capsys.readouterr().out
    # the row names the check once, then what was seen
    assert re.search(r"FAIL  seed_reproduces_samples +\d+\.\d+s  two draws with generators seeded alike differ", out)


def test_properties_that_do_not_apply_are_listed_with_the_reason(registry, capsys):
    run_check_command("generator", "kit-gaussian", [], registry, progress=False)
    out = capsys.readouterr().out
    assert "PASS  closed_form_fit_matches_the_latents" in out
    assert "SKIP" not in out  # every generator check applies to a closed-form conditional generator
    run_check_command("observation", "kit-count-model", [], registry, progress=False)
    out = capsys.readouterr().out
    assert "SKIP  no_look_ahead" in out and "applies to autoregressive models only" in out


@pytest.mark.parametrize(("kind", "name", "overrides", "error", "text"), [
    ("encoders", "kit-linear-encoder", [], SpecError, "did you mean 'encoder'"),
    ("encoder", "kit-linear", [], LdnsError, "unknown encoder type 'kit-linear'"),
    ("encoder", "kit-linear-encoder", ["latent_dims=3"], LdnsError, "encoder.latent_dims"),
    ("encoder", "kit-linear-encoder", ["latent_dim"], SpecError, "--set"),
])
def test_bad_kind_name_or_option_is_an_error(registry, kind, name, overrides, error, text):
    with pytest.raises(error, match=text):
        run_check_command(kind, name, overrides, registry, progress=False)
