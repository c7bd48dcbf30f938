"""Every built-in component of every kind passes the conformance kit (DESIGN.md section 8), found
as users find it (entry-point discovery) and checked as ``ldns check KIND NAME`` checks it: built
from its registered name, the integration check included."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from ldns_registry import Registry

from ldns_framework.testing import KINDS, CheckSkipped, check_component
from ldns_framework.testing.reference import synthetic_spike_data

_REGISTRY = Registry.discover(strict=False, trace=False)
BUILTIN = [(e.kind, e.name) for e in _REGISTRY.catalogue if e.provider.distribution == "ldns-framework"]


def _arrays_file() -> str:
    """An .npz for the file-reading data source (written once per session, in a temporary folder)."""
    data = synthetic_spike_data()
    path = Path(tempfile.mkdtemp(prefix="ldns-kit-")) / "spikes.npz"
    np.savez(path, counts=data.counts, **{f"split/{k}": v for k, v in data.splits.items()})
    return str(path)


def _nwb_file() -> str:
    """A small trial-structured NWB file (16 trials, 5 units, no behaviour) for the nwb data source."""
    import warnings
    from datetime import datetime, timezone

    import pynwb

    rng = np.random.default_rng(0)
    nwb = pynwb.NWBFile(session_description="kit", identifier="kit", session_start_time=datetime(2020, 1, 1,
                                                                                                  tzinfo=timezone.utc))
    nwb.add_trial_column(name="move_onset_time", description="alignment event")
    nwb.add_trial_column(name="split", description="split")
    for i in range(16):
        nwb.add_trial(start_time=float(i), stop_time=i + 0.9, move_onset_time=i + 0.4,
                      split="train" if i < 8 else "val")
    for unit in range(5):
        nwb.add_unit(id=unit, spike_times=np.sort(np.round(rng.uniform(0, 16, 200), 6)))
    path = Path(tempfile.mkdtemp(prefix="ldns-kit-")) / "session.nwb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pynwb.NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)
    return str(path)


#: Options a built-in needs to be built at all (a required path), or to stay small enough for CI.
OPTIONS = {("data", "arrays"): {"path": _arrays_file()},
           ("data", "lorenz"): {"n_trials": 40, "length": 32, "n_neurons": 8},
           ("conditioner", "reach-angle"): {"covariate": "sequence", "bin": 4},  # the kit's data have no hand_vel
           ("conditioner", "velocity"): {"covariate": "sequence"},
           ("conditioner", "covariate"): {"covariate": "vector"},
           # the kit's trials are 32 bins long and carry a 'sequence' covariate, not hand_vel
           ("metric", "velocity-decoding"): {"covariate": "sequence"},
           ("metric", "reach-angle-error"): {"covariate": "sequence", "angle_covariate": "vector", "angle_bin": 4,
                                             "angle_bins": 4},
           ("metric", "condition-psth"): {"covariate": "sequence", "angle_bin": 4, "angle_bins": 4},
           ("data", "nwb"): {"path": _nwb_file(), "align_range_ms": [-200, 200], "bin_ms": 10, "behavior": []},
           ("data", "speech-synthetic"): {"n_trials": 24, "n_channels": 8, "min_length": 8, "max_length": 32}}


def _params() -> list:
    params = []
    for kind, name in BUILTIN:
        options = OPTIONS.get((kind, name), {})

        def factory(_kind=kind, _name=name, _options=options, **context):
            return _REGISTRY.build(_kind, {"type": _name, **_options}, path=_kind, **context)

        for check in check_component(kind, factory, registry=_REGISTRY, name=name, options=options,
                                     include_inapplicable=True):
            params.append(pytest.param(check, id=f"{kind}-{name}-{check.name}"))
    return params


def test_every_kind_has_builtin_components():
    assert {kind for kind, _ in BUILTIN} == set(KINDS)


@pytest.mark.parametrize("check", _params())
def test_builtin_components_pass_the_kit(check):
    try:
        check()
    except CheckSkipped as exc:
        pytest.skip(str(exc))
