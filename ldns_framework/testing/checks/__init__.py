"""Named property checks for every component kind (DESIGN.md section 8), usable imperatively::

    from ldns_framework.testing import check_component, format_results, run_checks

    for check in check_component("encoder", MyEncoder):      # a factory: MyEncoder(n_neurons=3) builds one
        check()                                               # raises CheckFailed naming the property
    print(format_results(run_checks(MyEncoder, kind="encoder", registry=registry)))

One module per kind (:mod:`.observation`, :mod:`.encoder`, :mod:`.generator`, :mod:`.conditioner`,
:mod:`.data`, :mod:`.metric`) and :mod:`.integration` (every kind's last check); the machinery
is in :mod:`ldns_framework.testing.core`. Every check is deterministic: inputs and draws come
from seeded generators, so a pass or a failure reproduces exactly.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Mapping

from ldns_framework.data import SpikeData
from ldns_framework.testing.checks.conditioner import ConditionerSubject
from ldns_framework.testing.checks.data import DataSubject
from ldns_framework.testing.checks.encoder import EncoderSubject
from ldns_framework.testing.checks.generator import GeneratorSubject
from ldns_framework.testing.checks.metric import MetricSubject
from ldns_framework.testing.checks.observation import ObservationSubject, synthetic_data
from ldns_framework.testing.checks import integration as _integration  # noqa: E402, F401, I001 - registers each kind's last check
from ldns_framework.testing.core import (
    CHECKS,
    KINDS,
    Check,
    CheckFailed,
    CheckResult,
    CheckSkipped,
    KitSettings,
    Subject,
    bind_checks,
    format_results,
    run_check_list,
)
from ldns_framework.testing.reference import register_reference_components

__all__ = [
    "CHECKS",
    "KINDS",
    "Check",
    "CheckFailed",
    "CheckResult",
    "CheckSkipped",
    "KitSettings",
    "check_component",
    "check_conditioner",
    "check_data_source",
    "check_encoder",
    "check_generator",
    "check_metric",
    "check_observation_model",
    "format_results",
    "make_subject",
    "run_checks",
    "synthetic_data",
]

SUBJECTS: dict[str, type[Subject]] = {
    "encoder": EncoderSubject,
    "observation": ObservationSubject,
    "generator": GeneratorSubject,
    "conditioner": ConditionerSubject,
    "data": DataSubject,
    "metric": MetricSubject,
}
Factory = Callable[..., Any]


def make_subject(kind: str, factory: Factory, *, settings: KitSettings | None = None, registry: Any = None,
                 name: str | None = None, options: Mapping[str, Any] | None = None,
                 data: Callable[[], SpikeData] | None = None) -> Subject:
    """The component under test (built once here, to read its tags and declared attributes)."""
    if kind not in SUBJECTS:
        raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    extra = {"data": data} if data is not None else {}
    if registry is not None:
        register_reference_components(registry)  # the integration spec and encoder_observation names use them
    return SUBJECTS[kind](factory, settings or KitSettings(), registry=registry, name=name, options=options, **extra)


def check_component(kind: str, factory: Factory, *, settings: KitSettings | None = None, registry: Any = None,
                    name: str | None = None, options: Mapping[str, Any] | None = None,
                    data: Callable[[], SpikeData] | None = None, include_inapplicable: bool = False) -> Iterator[Check]:
    """Yield one :class:`Check` per property of ``kind`` that applies to the component.

    ``factory`` builds a fresh component; it is called with the keywords the pipeline passes for
    the kind that it takes (encoder: ``n_neurons``; generator: ``latent_dim``, ``condition_kind``,
    ``condition_dim``), so the class itself will do. ``registry`` (with the registered ``name`` and
    ``options``, or else the factory's class registered in-process) enables the integration
    check. ``data`` gives conditioners and metrics their input data (default: the kit's).
    ``include_inapplicable`` also yields the checks that do not apply, which skip with the reason.
    """
    subject = make_subject(kind, factory, settings=settings, registry=registry, name=name, options=options, data=data)
    yield from bind_checks(kind, subject, include_inapplicable=include_inapplicable)


def _checker(kind: str, name: str) -> Callable[..., Iterator[Check]]:
    def check(factory: Factory, **kwargs: Any) -> Iterator[Check]:
        return check_component(kind, factory, **kwargs)

    check.__name__ = check.__qualname__ = name
    check.__doc__ = f"``check_component({kind!r}, factory, ...)``."
    return check


check_encoder = _checker("encoder", "check_encoder")
check_observation_model = _checker("observation", "check_observation_model")
check_generator = _checker("generator", "check_generator")
check_conditioner = _checker("conditioner", "check_conditioner")
check_data_source = _checker("data", "check_data_source")
check_metric = _checker("metric", "check_metric")


def run_checks(factory: Factory, *, kind: str = "observation", settings: KitSettings | None = None,
               registry: Any = None, name: str | None = None, options: Mapping[str, Any] | None = None,
               data: Callable[[], SpikeData] | None = None, only: Iterable[str] | None = None) -> list[CheckResult]:
    """Run every check of ``kind``, those that do not apply listed as skipped with their reason.

    A crash inside a check is a failure naming it; a factory that fails is one failed ``build`` row.
    This is what ``ldns check KIND NAME`` runs (:func:`ldns_framework.testing.command.run_check_command`).
    """
    try:
        checks = list(check_component(kind, factory, settings=settings, registry=registry, name=name,
                                      options=options, data=data, include_inapplicable=True))
    except Exception as exc:  # noqa: BLE001 - the factory itself failed
        return [CheckResult("build", "failed", f"build: the factory failed: {type(exc).__name__}: {exc}")]
    return run_check_list(checks, only)
