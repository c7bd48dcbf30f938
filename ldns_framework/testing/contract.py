"""pytest-facing parts of the kit: ``parametrize_with_checks`` and one contract class per kind.

Imports pytest and hypothesis (the ``test`` extra).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Iterable, Mapping

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldns_framework.data import SpikeData
from ldns_framework.testing import strategies as spike_strategies
from ldns_framework.testing.checks import CHECKS, Check, CheckFailed, CheckSkipped, KitSettings, check_component
from ldns_framework.testing.core import Subject
from ldns_framework.testing.pytest_plugin import kit_registry
from ldns_framework.testing.reference import synthetic_spike_data

__all__ = [
    "ConditionerContract",
    "DataSourceContract",
    "EncoderContract",
    "GeneratorContract",
    "MetricContract",
    "ObservationModelContract",
    "parametrize_with_checks",
]

ExpectedFailures = Mapping[str, str] | Callable[[Any], Mapping[str, str]] | None


def _known(kind: str, table: Mapping[str, str]) -> None:
    unknown = sorted(set(table) - set(CHECKS[kind]))
    if unknown:
        raise ValueError(f"expected_failed_checks names unknown {kind} checks {unknown}; known: {', '.join(CHECKS[kind])}")


def parametrize_with_checks(factories: Iterable[Callable[..., Any]], *, kind: str = "observation",
                            expected_failed_checks: ExpectedFailures = None, settings: KitSettings | None = None,
                            registry: Any = None, plugins: Iterable[str] = ()) -> Any:
    """A ``pytest.mark.parametrize("check", ...)`` over every check of ``kind`` for every factory.

    Checks that do not apply are listed too and skip with their reason. ``expected_failed_checks``
    maps check names to the reason they are known to fail (or is a callable taking a component
    and returning such a mapping); those checks are marked ``xfail(strict=True)``, so a fixed bug
    is noticed. The integration check runs in a fresh registry per factory holding ``plugins``
    (import names of plugin modules the component names, e.g. its ``encoder_observation()``), or in ``registry``.
    Test ids are ``ComponentClass-check_name``::

        @parametrize_with_checks([MyEncoder], kind="encoder")
        def test_conformance(check):
            check()
    """
    params = []
    for factory in factories:
        checks = list(check_component(kind, factory, settings=settings, include_inapplicable=True,
                                      registry=registry if registry is not None else kit_registry(*plugins)))
        expected = dict(expected_failed_checks(checks[0].subject.probe) if callable(expected_failed_checks)
                        else (expected_failed_checks or {}))
        _known(kind, expected)
        for check in checks:
            marks = [pytest.mark.xfail(strict=True, raises=CheckFailed, reason=expected[check.name])] \
                if check.name in expected else []
            params.append(pytest.param(_PytestCheck(check), id=f"{check.model_name}-{check.name}", marks=marks))
    return pytest.mark.parametrize("check", params)


class _PytestCheck:
    """A :class:`Check` that reports CheckSkipped through pytest.skip (so the skip points at the test)."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.name = check.name

    def __call__(self) -> None:
        try:
            self.check()
        except CheckSkipped as exc:
            pytest.skip(str(exc))

    def __repr__(self) -> str:
        return repr(self.check)


def _conformance_test(kind: str) -> Callable[..., None]:
    """``test_conformance[check_name]`` over every check of ``kind`` (the subclass's component)."""

    @pytest.mark.parametrize("check_name", list(CHECKS[kind]))
    def test_conformance(self: "_Contract", check_name: str) -> None:
        _known(kind, self.expected_failed_checks)
        check = self._kit_checks()[check_name]
        reason = self.expected_failed_checks.get(check_name)
        try:
            check()
        except CheckSkipped as exc:
            pytest.skip(str(exc))
        except CheckFailed:
            if reason is None:
                raise
            pytest.xfail(reason)
        if reason is not None:
            pytest.fail(f"{check_name} is listed in expected_failed_checks ({reason}) but passed")

    return test_conformance


class _Contract:
    """Shared by the contract classes: the component is built (and prepared) once per class.

    Class attributes: ``plugins`` (plugin modules the component names), ``expected_failed_checks`` (``{check_name: reason}`` for known failures,
    strict xfail) and ``kit_settings`` (a :class:`KitSettings`). The integration check runs in a
    fresh registry holding the kit's reference components and the component's class, registered
    in-process (define the class at module level so that a spec can name it).
    """

    kind: ClassVar[str] = ""
    #: Import names of plugin modules the component names (e.g. its ``encoder_observation()``).
    plugins: ClassVar[tuple[str, ...]] = ()
    expected_failed_checks: ClassVar[Mapping[str, str]] = {}
    kit_settings: ClassVar[KitSettings | None] = None

    def make_model(self, **context: Any) -> Any:
        """Return a fresh component (called several times, with the keywords it takes)."""
        raise NotImplementedError(f"define make_model in your {type(self).__name__} subclass")

    def _data(self) -> Callable[[], SpikeData] | None:
        return None

    @classmethod
    def _kit_checks(cls) -> dict[str, Check]:
        cache = cls.__dict__.get("_ldns_kit_cache")
        if cache is None:
            instance = cls()
            checks = check_component(cls.kind, instance.make_model, settings=cls.kit_settings, registry=kit_registry(*cls.plugins),
                                     data=instance._data(), include_inapplicable=True)
            cache = {check.name: check for check in checks}
            cls._ldns_kit_cache = cache  # per subclass
        return cache

    def _subject(self) -> Subject:
        return next(iter(self._kit_checks().values())).subject


class EncoderContract(_Contract):
    """``class TestMyEncoder(EncoderContract): def make_model(self, n_neurons): return MyEncoder(cfg, n_neurons=n_neurons)``."""

    kind = "encoder"
    test_conformance = _conformance_test("encoder")


class GeneratorContract(_Contract):
    """``class TestMyGenerator(GeneratorContract)`` with ``def make_model(self, latent_dim, condition_kind=None,
    condition_dim=0)`` (leave the condition keywords out for an unconditional-only generator)."""

    kind = "generator"
    test_conformance = _conformance_test("generator")


class ConditionerContract(_Contract):
    """``class TestMyConditioner(ConditionerContract): def make_model(self): ...``; override ``make_data``
    when the conditioner reads covariates the kit's data lacks."""

    kind = "conditioner"
    test_conformance = _conformance_test("conditioner")

    def make_data(self) -> SpikeData:
        """The data the conditioner is fitted on and checked with (default: the kit's, with covariates
        ``vector``, ``sequence`` and ``condition``)."""
        return synthetic_spike_data()

    def _data(self) -> Callable[[], SpikeData] | None:
        return self.make_data


class DataSourceContract(_Contract):
    """``class TestMySource(DataSourceContract): def make_model(self): return MySource(MyConfig(path=...))``."""

    kind = "data"
    test_conformance = _conformance_test("data")


class MetricContract(_Contract):
    """``class TestMyMetric(MetricContract): def make_model(self): ...``; override ``make_data`` when the
    metric needs covariates the kit's data lacks."""

    kind = "metric"
    test_conformance = _conformance_test("metric")

    def make_data(self) -> SpikeData:
        """The real-data side of the comparisons (default: the kit's seeded data)."""
        return synthetic_spike_data(n_trials=30, length=20)

    def _data(self) -> Callable[[], SpikeData] | None:
        return self.make_data


class ObservationModelContract(_Contract):
    """Subclass as ``class TestMyObservation(ObservationModelContract)`` and define ``make_model``.

    Every observation check becomes a test (``test_conformance[check_name]``; checks the model's
    tags rule out are skipped with the reason), plus hypothesis-driven properties on random rates
    and masks. The model is built (and fitted, if it needs it) once per class.
    """

    kind = "observation"
    test_conformance = _conformance_test("observation")

    # -- hypothesis properties -----------------------------------------------------------------
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors])
    @given(data=st.data())
    def test_log_prob_of_own_samples_on_random_inputs(self, data: st.DataObject) -> None:
        """On random rates and padded masks: samples are counts, and their log_prob is finite and <= 0."""
        subject = self._subject()
        model = subject.component()
        n = subject.n_neurons
        shape = data.draw(spike_strategies.shapes(n_trials=st.integers(1, 4), n_time=st.integers(1, 10), n_neurons=n))
        rates = torch.as_tensor(data.draw(spike_strategies.rates(shape, min_rate=1e-3, max_rate=10.0)),
                                dtype=torch.float32)
        padded = "supports_mask" in subject.tags
        mask = torch.as_tensor(data.draw(spike_strategies.masks(shape[0], shape[1])) if padded
                               else torch.ones(shape[:2], dtype=torch.bool).numpy())
        seed = data.draw(st.integers(0, 2**31 - 1))
        with torch.no_grad():
            counts = model.sample(rates, mask, generator=torch.Generator().manual_seed(seed))
        values = counts.double()
        assert values.shape == rates.shape and (values >= 0).all() and torch.equal(values, values.round())
        if padded:
            assert values[~mask].abs().sum() == 0, "non-zero samples on padded bins"
        log_prob = model.log_prob(counts.to(rates.dtype), rates, mask).detach()
        assert log_prob.shape == (shape[0],)
        assert torch.isfinite(log_prob).all(), f"log_prob of the model's own samples is {log_prob.tolist()}"
        assert (log_prob <= 1e-3).all(), f"log_prob is positive: {log_prob.tolist()}"

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors])
    @given(data=st.data())
    def test_padding_is_ignored_on_random_inputs(self, data: st.DataObject) -> None:
        """On random inputs, changing counts and rates on padded bins leaves log_prob unchanged."""
        subject = self._subject()
        if "supports_mask" not in subject.tags:
            pytest.skip("the model does not declare the 'supports_mask' tag")
        model = subject.component()
        counts, rates, mask = data.draw(spike_strategies.observation_batches(n_neurons=subject.n_neurons, max_count=3))
        with torch.no_grad():
            counts = model.sample(rates, mask, generator=torch.Generator().manual_seed(0)).to(rates.dtype)
        noise = torch.as_tensor(data.draw(spike_strategies.spike_counts(tuple(counts.shape), max_count=9)),
                                dtype=counts.dtype)
        dirty_counts = torch.where(mask[..., None], counts, noise)
        dirty_rates = torch.where(mask[..., None], rates, rates * 7.0 + 1.0)
        clean = model.log_prob(counts, rates, mask).detach()
        dirty = model.log_prob(dirty_counts, dirty_rates, mask).detach()
        settings_ = subject.settings
        assert torch.allclose(clean, dirty, rtol=settings_.rtol, atol=settings_.atol), (clean.tolist(), dirty.tolist())
