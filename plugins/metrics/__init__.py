"""The built-in ``metric`` components: generated spikes against real ones (METHOD.md section 7).

Each metric compares model samples with real trials and returns named floats; the numbers
come from :mod:`ldns_framework.metrics` (one vectorised implementation, tested against the
reference and independent computations): these classes only wrap them. Every metric here is a
:class:`ldns_framework.PooledMetric`: per-trial statistics, pooled with a fold's trial weights,
then compared, so the evaluation's bootstrap folds re-weight per-trial statistics instead of
recomputing them (``ldns_framework.evaluation``). ``describe(context=None)`` declares the unit
and the better direction of every value.

=====================  =======================================================================
``mean-rate``          RMSE and Pearson r of per-neuron mean rates (Hz, or spikes/bin)
``population-count``   KL(model || data) of the population spike-count KDE, density Pearson r
``pairwise-correlation``  RMSE (unique pairs, and the reference's N^2 variant) and r of correlations
``isi``                RMSE and r of per-neuron mean and std ISI (seconds, or bins for Lorenz)
``autocorrelation``    RMSE of per-neuron auto-correlations (lags 1..10) and per neuron group
``psth``               RMSE and r of PSTHs per condition (needs an integer condition covariate)
``condition-psth``     r of smoothed PSTHs per reach direction or condition label (conditional runs)
``velocity-decoding``  R^2 of velocity decoded (ridge) from samples against their velocity condition
``reach-angle-error``  median error (degrees) of the decoded reach direction against the requested one
``length-buckets``     RMSE of mean rates and correlations per bucket of trial lengths (variable length)
=====================  =======================================================================

Usage::

    from ldns_plugins.metrics.isi import Isi, IsiConfig

    values = Isi(IsiConfig(min_isis=2)).compute(model=samples, data=test)   # two SpikeData
    values["mean_isi_rmse"], values["std_isi_rmse"]                          # seconds

In a spec or from the CLI they are named by their short names (``type: isi``); ``ldns
evaluate`` runs every registered metric.
"""

from ldns_framework import hookimpl

_COMPONENTS = (
    ("mean-rate", "rates:MeanRate", "RMSE and Pearson r of per-neuron mean firing rates."),
    ("population-count", "population:PopulationCount",
     "KL(model || data) of the population spike-count KDE (Scott bandwidth), and the densities' Pearson r."),
    ("pairwise-correlation", "correlation:PairwiseCorrelation",
     "RMSE and Pearson r of the pairwise (zero-lag) correlation matrices."),
    ("isi", "isi:Isi", "RMSE and Pearson r of per-neuron mean and std inter-spike intervals."),
    ("autocorrelation", "autocorrelation:Autocorrelation",
     "RMSE of per-neuron and per-group auto-correlations (optionally cross-correlations)."),
    ("psth", "psth:Psth", "RMSE and Pearson r of the PSTH per condition (integer condition covariate)."),
    ("condition-psth", "condition_psth:ConditionPsth",
     "Pearson r of smoothed PSTHs per reach direction (or condition label), samples vs data."),
    ("velocity-decoding", "decoding:VelocityDecoding",
     "R^2 of velocity decoded (ridge, fitted on real training trials) from samples against their condition."),
    ("reach-angle-error", "decoding:ReachAngleError",
     "Median absolute error (degrees) between decoded and requested reach direction."),
    ("length-buckets", "length_buckets:LengthBuckets",
     "RMSE of per-neuron mean rates and pairwise correlations per bucket of trial lengths (variable-length data)."),
)


@hookimpl
def ldns_register_components(registrar):
    for rank, (name, target, summary) in enumerate(_COMPONENTS):  # ranked in the reports' order
        registrar.add("metric", name, f"ldns_plugins.metrics.{target}", summary=summary, rank=rank)
