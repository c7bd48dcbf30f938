"""Options of the behaviour conditioners (``reach-angle``, ``velocity``, ``covariate``), without
torch (read when a spec is validated)."""

from __future__ import annotations

import attrs

from ldns_framework import option

__all__ = ["KINDS", "CovariateConfig", "ReachAngleConfig", "VelocityConfig"]

KINDS = ("vector", "sequence")


@attrs.frozen
class CovariateConfig:
    """Options of ``covariate``."""

    covariate: str = option(doc="Name of the covariate used as the condition.")
    kind: str | None = option(None, choices=KINDS, doc="vector ((trials, dim) covariate) or sequence ((trials, time, "
                                                       "dim)); null = from the covariate's shape at fit time.")
    normalise: bool = option(True, doc="Standardise each channel with the training trials' mean and std.")
    max_z: float | None = option(100.0, doc="Refuse conditions given at sampling time further than this many "
                                            "training std from the training mean (a unit mistake); null = any.", gt=0)


@attrs.frozen
class ReachAngleConfig:
    """Options of ``reach-angle``."""

    covariate: str = option("hand_vel", doc="Covariate holding the hand velocity [x, y]: (trials, time, 2), "
                                            "or (trials, 2) when it is one vector per trial.")
    bin: int = option(50, doc="First bin of the velocity whose direction is the reach angle (reference 50: "
                              "MC_Maze's -250..+450 ms window in 5 ms bins, behaviour lagged 100 ms).", ge=0)
    average_bins: int = option(10, doc="Bins from `bin` over which the velocity vector is averaged before its "
                                       "angle is taken (robust to a noisy, slow first bin; 1 = the reference).", ge=1)
    units: str = option("degrees", choices=("degrees", "radians"),
                        doc="Units of angles given at sampling time as an (n,) array.")
    min_speed: float = option(1.0e-3, doc="Trials whose averaged speed is below this (in the covariate's units, "
                                          "m/s for MC_Maze) have no direction: an error names them.", ge=0)


@attrs.frozen
class VelocityConfig:
    """Options of ``velocity``."""

    covariate: str = option("hand_vel", doc="Covariate holding the velocity [x, y], (trials, time, 2).")
    max_z: float | None = option(100.0, doc="Refuse traces given at sampling time further than this many training "
                                            "std from the training mean (mm/s given for m/s); null = any.", gt=0)
