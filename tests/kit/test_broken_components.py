"""The kit catches real bugs in every kind: each broken component of kit/broken.py fails the kit
with the property named; the kit's reference components and the correct examples pass, the
integration check included; skips are reported as skips, never as passes."""

from __future__ import annotations

import pytest
from kit.broken import (
    BROKEN,
    MeanCountRmse,
    NeedsACovariate,
    RequiresStimulus,
    ScaleNotInStateDict,
    VectorConditioner,
    stimulus_data,
)

from ldns_framework.testing import CHECKS, KitSettings, format_results, run_checks
from ldns_framework.testing.pytest_plugin import kit_registry
from ldns_framework.testing.reference import KitCountModel, KitData, KitGaussian, KitLinearEncoder, KitUnconditional

INTEGRATION = "integration_trains_saves_reloads_and_samples"


def failures(kind, factory, **kwargs) -> dict[str, str]:
    return {r.name: r.message for r in run_checks(factory, kind=kind, **kwargs) if r.failed}


@pytest.mark.parametrize(("kind", "component", "prop"), BROKEN, ids=[c.__name__ for _, c, _ in BROKEN])
def test_each_broken_component_fails_the_kit_naming_the_property(kind, component, prop):
    assert prop in CHECKS[kind]
    failed = failures(kind, component)
    assert prop in failed, f"{component.__name__} should fail {prop}; failures: {failed}"
    assert failed[prop].startswith(prop + ":"), failed[prop]


CORRECT = [("encoder", KitLinearEncoder), ("observation", KitCountModel), ("generator", KitGaussian),
           ("conditioner", KitUnconditional), ("conditioner", VectorConditioner), ("data", KitData),
           ("metric", MeanCountRmse)]


@pytest.mark.parametrize(("kind", "component"), CORRECT, ids=[c.__name__ for _, c in CORRECT])
def test_correct_components_pass_every_check_including_the_integration(kind, component):
    results = run_checks(component, kind=kind, registry=kit_registry(), settings=KitSettings(n_draws=600))
    assert not any(r.failed for r in results), format_results(results)
    assert next(r for r in results if r.name == INTEGRATION).passed, format_results(results)


def test_state_left_out_of_the_run_directory_fails_the_integration_check():
    failed = failures("observation", ScaleNotInStateDict, registry=kit_registry(), only=[INTEGRATION])
    assert "not saved" in failed[INTEGRATION]


def test_a_runtime_skip_is_reported_as_skipped_never_as_passed():
    results = {r.name: r for r in run_checks(NeedsACovariate, kind="metric")}
    skipped = results["identical_inputs_score_perfectly"]
    assert skipped.skipped and not skipped.passed and not skipped.failed
    assert "returned no values" in skipped.message
    assert "SKIP  identical_inputs_score_perfectly" in format_results(list(results.values()))


def test_inapplicable_checks_are_listed_with_their_reason():
    results = {r.name: r for r in run_checks(KitGaussian, kind="generator")}
    assert set(results) == set(CHECKS["generator"])
    assert results[INTEGRATION].skipped and "registry" in results[INTEGRATION].message


def test_classes_defined_in_a_function_skip_the_integration_with_the_reason():
    class Local(KitLinearEncoder):
        pass

    [result] = run_checks(Local, kind="encoder", registry=kit_registry(), only=[INTEGRATION])
    assert result.skipped and "cannot be imported by name" in result.message


def test_a_metric_is_integrated_with_the_data_it_is_checked_with():
    results = run_checks(RequiresStimulus, kind="metric", registry=kit_registry(), data=stimulus_data)
    assert not any(r.failed for r in results), format_results(results)
    assert next(r for r in results if r.name == INTEGRATION).passed
