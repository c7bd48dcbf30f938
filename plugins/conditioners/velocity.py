"""``velocity``: the hand-velocity trace as a sequence condition (METHOD.md section 4).

Each trial's 2 x T velocity [x, y] (m/s for MC_Maze: NLB ``hand_vel`` / 1000) is standardised per
channel with the mean and std of the training trials' valid bins, and the generator takes it as
extra input channels. Conditions given at sampling time are traces (n, T, 2) in the data's units,
for example the velocities of held-out trials (unseen trajectories: ``user_conditions(data,
data.splits["test"])``); a trace more than ``max_z`` training std from the mean (a trace in mm/s
where m/s are expected is 1000x too large) is refused with the likely unit mistake named.

    conditioner = Velocity(VelocityConfig())                    # covariate hand_vel
    conditioner.fit(data, data.splits["train"])
    traces = conditioner.user_conditions(data, data.splits["test"])   # (trials, T, 2) m/s
    c = conditioner.validate(traces, len(traces), data.n_time)        # normalised, for the generator
"""

from __future__ import annotations

from ldns_framework import DataError
from ldns_plugins.conditioners.config import VelocityConfig
from ldns_plugins.conditioners.covariate import CovariateConditioner

__all__ = ["Velocity", "VelocityConfig"]


class Velocity(CovariateConditioner):
    """The (trials, time, 2) velocity trace, standardised with training statistics."""

    config_class = VelocityConfig
    kind = "sequence"

    def _declared_kind(self) -> str:
        return "sequence"

    def _normalises(self) -> bool:
        return True

    def _check_dim(self, shape: tuple[int, ...]) -> None:
        if shape[-1] != 2:
            raise DataError(f"covariates[{self.config.covariate!r}]", f"expected (trials, time, 2) velocities [x, y], "
                                                                      f"got shape {shape}")

    def _unit_hint(self) -> str:
        return " (a trace in mm/s where m/s are expected is 1000x too large: divide it by 1000)"
