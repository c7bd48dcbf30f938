"""The behaviour conditioner plugins (METHOD.md section 4): ``reach-angle`` (vector [cos, sin] of the
reach direction), ``velocity`` (the hand-velocity trace as a sequence) and ``covariate`` (any named
covariate, vector or sequence). One module each; :mod:`.common` holds what they share.

In a spec::

    conditioner: {type: reach-angle, bin: 50, average_bins: 10}
    conditioner: {type: velocity}                      # hand_vel, (trials, time, 2) m/s
    conditioner: {type: covariate, covariate: target_pos}

Generated trials carry what they were conditioned on, in data units (``sample_covariates``):
``reach_angle`` (n, 1) radians, or the velocity / covariate under its own name. Besides the
interface, each has ``user_conditions(data, indices)`` (real trials' conditions in the units
``validate`` takes: what ``ldns sample --from-split test`` samples with); ``reach-angle`` has
``draw(n, length, generator)`` (uniform directions, for sampling without a given angle).
"""

from ldns_framework import hookimpl


@hookimpl
def ldns_register_components(registrar):
    registrar.add("conditioner", "reach-angle", "ldns_plugins.conditioners.reach_angle:ReachAngle",
                  config="ldns_plugins.conditioners.config:ReachAngleConfig",
                  summary="Reach direction [cos, sin] of the hand velocity at a bin (averaged over a few); "
                          "angles in degrees or radians, or drawn uniformly, at sampling time.")
    registrar.add("conditioner", "velocity", "ldns_plugins.conditioners.velocity:Velocity",
                  config="ldns_plugins.conditioners.config:VelocityConfig",
                  summary="Hand-velocity trace (trials, time, 2) as a sequence condition, standardised with "
                          "training statistics; refuses traces in the wrong units.")
    registrar.add("conditioner", "covariate", "ldns_plugins.conditioners.covariate:CovariateConditioner",
                  config="ldns_plugins.conditioners.config:CovariateConfig",
                  summary="Any named covariate of the data, vector or sequence, optionally z-normalised.")
