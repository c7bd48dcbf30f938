"""pytest-facing parts of the kit: ``parametrize_with_checks`` and the ``ObservationModelContract`` class.

Imports pytest and hypothesis (the ``test`` extra).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Iterable, Mapping

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldns_framework.testing import strategies as spike_strategies
from ldns_framework.testing.checks import (
    CHECKS,
    Check,
    CheckFailed,
    CheckSkipped,
    KitSettings,
    _Subject,
    check_observation_model,
)

__all__ = ["ObservationModelContract", "parametrize_with_checks"]

ExpectedFailures = Mapping[str, str] | Callable[[Any], Mapping[str, str]] | None


def _expected_for(expected: ExpectedFailures, model: Any) -> dict[str, str]:
    table = dict(expected(model) if callable(expected) else (expected or {}))
    unknown = sorted(set(table) - set(CHECKS))
    if unknown:
        raise ValueError(f"expected_failed_checks names unknown checks {unknown}; known: {', '.join(CHECKS)}")
    return table


def parametrize_with_checks(factories: Iterable[Callable[[], Any]], *, expected_failed_checks: ExpectedFailures = None,
                            settings: KitSettings | None = None) -> Any:
    """A ``pytest.mark.parametrize("check", ...)`` over every applicable check of every factory.

    ``expected_failed_checks`` maps check names to the reason they are known to fail (or is a
    callable taking a model and returning such a mapping); those checks are marked
    ``xfail(strict=True)``, so a fixed bug is noticed. Test ids are ``ModelClass-check_name``::

        @parametrize_with_checks([PoissonObservation], expected_failed_checks={})
        def test_conformance(check):
            check()
    """
    params = []
    for factory in factories:
        checks = list(check_observation_model(factory, settings=settings))
        expected = _expected_for(expected_failed_checks, factory()) if expected_failed_checks else {}
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


class ObservationModelContract:
    """Subclass as ``class TestMyObservation(ObservationModelContract)`` and define ``make_model``.

    Every property of :mod:`ldns_framework.testing.checks` becomes a test
    (``test_conformance[check_name]``; checks the model's tags rule out are skipped), plus
    hypothesis-driven properties on random rates and masks. Class attributes:

    - ``expected_failed_checks``: ``{check_name: reason}`` for known failures (strict xfail);
    - ``kit_settings``: a :class:`KitSettings` to change sizes and thresholds.

    The model is built (and fitted, if it needs it) once per class.
    """

    expected_failed_checks: ClassVar[Mapping[str, str]] = {}
    kit_settings: ClassVar[KitSettings | None] = None

    def make_model(self) -> Any:
        """Return a fresh observation model (called several times)."""
        raise NotImplementedError("define make_model(self) in your ObservationModelContract subclass")

    # -- shared subject ------------------------------------------------------------------------
    @classmethod
    def _kit_checks(cls) -> dict[str, Check]:
        cache = cls.__dict__.get("_ldns_kit_cache")
        if cache is None:
            instance = cls()
            checks = check_observation_model(instance.make_model, settings=cls.kit_settings, include_inapplicable=True)
            cache = {check.name: check for check in checks}
            cls._ldns_kit_cache = cache  # per subclass
        return cache

    def _subject(self) -> _Subject:
        return next(iter(self._kit_checks().values())).subject

    # -- the named checks ----------------------------------------------------------------------
    @pytest.mark.parametrize("check_name", list(CHECKS))
    def test_conformance(self, check_name: str) -> None:
        unknown = sorted(set(self.expected_failed_checks) - set(CHECKS))
        if unknown:
            pytest.fail(f"expected_failed_checks names unknown checks {unknown}; known: {', '.join(CHECKS)}")
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

    # -- hypothesis properties -----------------------------------------------------------------
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors])
    @given(data=st.data())
    def test_log_prob_of_own_samples_on_random_inputs(self, data: st.DataObject) -> None:
        """On random rates and padded masks: samples are counts, and their log_prob is finite and <= 0."""
        subject = self._subject()
        model = subject.model()
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
        model = subject.model()
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
