"""Deliberately broken components, one bug each, of every kind, next to correct ones they start from.

Written as a plugin author would write them (subclassing the public interfaces, or the kit's
reference components where one is the natural starting point). Module level, so the integration
check can name them in a spec.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import torch

from ldns_framework import Conditioner, DataError, DataSource, PooledMetric, SpikeData
from ldns_framework.testing.reference import (
    KitCountModel,
    KitData,
    KitGaussian,
    KitLinearEncoder,
    synthetic_spike_data,
)

# -- encoders ----------------------------------------------------------------------------------


class LeaksTheFuture(KitLinearEncoder):
    """Claims to be causal but adds the mean of the later bins to each latent."""

    def encode(self, counts, mask):
        later = torch.flip(torch.cumsum(torch.flip(counts, [1]), 1), [1])  # (B, T, N): sum over bins >= t
        return super().encode(counts, mask) + 0.1 * self.inward(later)


class NegativeRates(KitLinearEncoder):
    """Decodes with a plain linear map: rates can be negative."""

    def decode(self, latents, mask):
        return self.outward(latents)


class IgnoresTheObservationModel(KitLinearEncoder):
    """Trains on a squared error whatever observation model it is given."""

    def training_loss(self, batch, observation):
        rates = self.decode(self.encode(batch.counts, batch.mask), batch.mask)
        return {"loss": ((rates - batch.counts) ** 2 * batch.mask[..., None]).mean()}


class ScoresPadding(KitLinearEncoder):
    """Scores every bin, padded ones included."""

    def training_loss(self, batch, observation):
        rates = self.decode(self.encode(batch.counts, batch.mask), batch.mask)
        scored = torch.ones_like(batch.counts, dtype=torch.bool)
        return {"loss": -observation.log_prob_elements(batch.counts, rates, scored).mean()}


class OneNeuronTrials(KitLinearEncoder):
    """Scores the entries it hid as one-neuron, one-bin trials through log_prob: a model with one
    parameter per neuron no longer knows which neuron an entry belongs to."""

    def training_loss(self, batch, observation):
        keep = torch.rand(batch.counts.shape) >= 0.2  # (B, T, N)
        rates = self.decode(self.encode(batch.counts * keep / 0.8, batch.mask), batch.mask)
        hidden = batch.mask[..., None] & ~keep
        counts, rates = batch.counts[hidden][:, None, None], rates[hidden][:, None, None]  # (M, 1, 1)
        nll = -observation.log_prob(counts, rates, torch.ones(len(counts), 1, dtype=torch.bool))
        return {"loss": nll.sum() / batch.mask.sum()}


class BatchStatistics(KitLinearEncoder):
    """Centres the latents on the batch mean (a batch-norm slip): a trial depends on the others."""

    def encode(self, counts, mask):
        latents = super().encode(counts, mask)
        return latents - latents.mean(dim=0, keepdim=True)


# -- observation models ----------------------------------------------------------------------


class NegativeAtHighRates(KitCountModel):
    """Draws from a normal approximation above rate 5, without clipping: rare negative counts."""

    def sample(self, rates, mask, generator=None):
        exact = torch.poisson(rates.clamp_min(0.0), generator=generator)
        noise = torch.randn(rates.shape, generator=generator)
        approx = torch.round(rates + rates.sqrt() * noise)
        return torch.where(rates > 5.0, approx, exact) * mask[..., None]


class ElementsIgnoreScored(KitCountModel):
    """Ported from the old API: masks bins in log_prob, but log_prob_elements ignores ``scored``."""

    def log_prob_elements(self, counts, rates, scored):
        return super().log_prob_elements(counts, rates, torch.ones_like(scored))

    def log_prob(self, counts, rates, mask):
        return torch.where(mask[..., None], self.log_prob_elements(counts, rates, mask[..., None]), 0.0).sum(dim=(1, 2))


class UndeclaredFitting(KitCountModel):
    """Not usable before fit (is_fitted False) but declares needs_fitting False."""

    def __init__(self, config=None, *, n_neurons=None):
        super().__init__(config, n_neurons=n_neurons)
        self.fitted = False

    @property
    def is_fitted(self):
        return self.fitted

    def fit(self, counts, rates, mask):
        self.fitted = True
        return {}


class ScaleNotInStateDict(KitCountModel):
    """Fits a rate scale but keeps it in a plain attribute: a reloaded run loses it."""

    needs_fitting = True

    def __init__(self, config=None, *, n_neurons=None):
        super().__init__(config, n_neurons=n_neurons)
        self.scale = 1.0

    def fit(self, counts, rates, mask):
        self.scale = 1.3
        return {"scale": self.scale}

    def log_prob_elements(self, counts, rates, scored):
        return super().log_prob_elements(counts, rates * self.scale, scored)

    def sample(self, rates, mask, generator=None):
        return super().sample(rates * self.scale, mask, generator)


# -- generators --------------------------------------------------------------------------------


class IgnoresTheSeed(KitGaussian):
    """Draws its noise from torch's global generator."""

    def sample(self, n, lengths, condition=None, generator=None, *, sampler=None, options=None):
        return super().sample(n, lengths, condition, None, sampler=sampler, options=options)


class FixedLength(KitGaussian):
    """Always returns 12 bins, whatever lengths it is asked for."""

    def sample(self, n, lengths, condition=None, generator=None, *, sampler=None, options=None):
        return super().sample(n, torch.full_like(lengths, 12), condition, generator, sampler=sampler, options=options)


class IgnoresTheCondition(KitGaussian):
    """Accepts a condition kind but fits and samples the unconditional mean."""

    def _design(self, condition, n, length):
        design = super()._design(condition, n, length)
        return torch.cat([design[..., :1], torch.zeros_like(design[..., 1:])], dim=-1)


class AcceptsAnyCondition(KitGaussian):
    """Broadcasts whatever condition it gets instead of validating its shape."""

    def sample(self, n, lengths, condition=None, generator=None, *, sampler=None, options=None):
        if condition is not None and self.condition_kind == "vector":
            condition = condition.reshape(-1)[: n * self.condition_dim].reshape(n, self.condition_dim)
        elif condition is not None:
            condition = condition.reshape(condition.shape[0], -1, condition.shape[-1])[:n, :, : self.condition_dim]
            if condition.shape[1] != int(lengths.max()) or condition.shape[-1] != self.condition_dim:
                condition = torch.zeros(n, int(lengths.max()), self.condition_dim)
        return super().sample(n, lengths, condition, generator, sampler=sampler, options=options)


@attrs.define
class MutableOptions:
    steps: int = 10


class MutableSamplerOptions(KitGaussian):
    """Declares a sampler whose options class is not frozen."""

    samplers = {"ancestral": MutableOptions}


class StatisticsNotSaved(KitGaussian):
    """Keeps its fitted statistics in non-persistent buffers: they never reach the run directory."""

    def __init__(self, config=None, *, latent_dim, condition_kind=None, condition_dim=0):
        super().__init__(config, latent_dim=latent_dim, condition_kind=condition_kind, condition_dim=condition_dim)
        weights, log_std = self.weights, self.log_std
        del self.weights, self.log_std
        self.register_buffer("weights", weights, persistent=False)
        self.register_buffer("log_std", log_std, persistent=False)


class NoParametersButGradientTrained(KitGaussian):
    """Says it is trained by gradient descent but has nothing to train."""

    closed_form = False


class EmaNotSaved(KitGaussian):
    """Gradient-trained mean whose samples use an EMA of it, kept in a non-persistent buffer: the
    weights a run saves do not hold what sample uses."""

    closed_form = False

    def __init__(self, config=None, *, latent_dim, condition_kind=None, condition_dim=0):
        super().__init__(config, latent_dim=latent_dim)
        self.mean = torch.nn.Parameter(torch.zeros(latent_dim))
        self.register_buffer("ema", torch.zeros(latent_dim), persistent=False)

    def training_loss(self, latents, mask, condition):
        return {"loss": ((latents - self.mean) ** 2)[mask].mean()}

    def after_optimizer_step(self):
        with torch.no_grad():
            self.ema.mul_(0.5).add_(self.mean, alpha=0.5)

    def sample(self, n, lengths, condition=None, generator=None, *, sampler=None, options=None):
        return super().sample(n, lengths, None, generator) + self.ema


# -- conditioners ------------------------------------------------------------------------------


class VectorConditioner(Conditioner):
    """A correct conditioner: the ``vector`` covariate (trials, 2), standardised with training statistics."""

    kind = "vector"

    def __init__(self, config=None):
        super().__init__(config)
        self.mean = np.zeros(2)
        self.std = np.ones(2)

    @property
    def dim(self):
        return 2

    def fit(self, data, indices):
        values = data.covariates["vector"][indices]
        self.mean, self.std = values.mean(0), values.std(0) + 1e-6

    def from_data(self, data, indices):
        return torch.as_tensor((data.covariates["vector"][indices] - self.mean) / self.std, dtype=torch.float32)

    def validate(self, condition, n, length):
        if condition is None:
            raise DataError("condition", f"expected a ({n}, 2) condition, got none")
        tensor = torch.as_tensor(np.asarray(condition), dtype=torch.float32)
        if tuple(tensor.shape) != (n, 2):
            raise DataError("condition", f"expected shape ({n}, 2), got {tuple(tensor.shape)}")
        return tensor

    def state(self):
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    def load_state(self, state):
        self.mean, self.std = np.asarray(state["mean"]), np.asarray(state["std"])


class ValidatesNothing(VectorConditioner):
    """Accepts any condition as it is."""

    def validate(self, condition, n, length):
        return torch.as_tensor(np.asarray(condition), dtype=torch.float32)


class ForgetsItsState(VectorConditioner):
    """Its normalisation statistics are not in state()."""

    def state(self):
        return {}

    def load_state(self, state):
        pass


class WrongDim(VectorConditioner):
    """Declares three channels but produces two."""

    @property
    def dim(self):
        return 3


# -- data sources ------------------------------------------------------------------------------


class OverlappingSplits(KitData):
    """Draws train and test independently, so they share trials."""

    def load(self):
        data = super().load()
        rng = np.random.default_rng(self.config.seed)
        train = np.sort(rng.choice(data.n_trials, 15, replace=False))
        test = np.sort(rng.choice(data.n_trials, 8, replace=False))
        return SpikeData(data.counts, covariates=data.covariates, splits={"train": train, "test": test})


class SplitsEditedAfterwards(KitData):
    """Adds a validation split after construction, reusing training trials."""

    def load(self):
        data = super().load()
        data.splits["val"] = data.splits["train"][:3]
        return data


class Unseeded(KitData):
    """Draws its counts from an unseeded generator."""

    def load(self):
        data = super().load()
        counts = np.random.default_rng().poisson(1.0, data.counts.shape)
        return SpikeData(counts, covariates=data.covariates, splits=data.splits)


class SpikesOnPadding(DataSource):
    """Declares lengths but leaves the padded bins' counts in place."""

    def load(self):
        data = synthetic_spike_data()
        counts = np.ones_like(data.counts)
        lengths = np.full(data.n_trials, data.n_time // 2)
        return SpikeData(counts, lengths=lengths, splits=data.splits)


# -- metrics -----------------------------------------------------------------------------------


class MeanCountRmse(PooledMetric):
    """A correct pooled metric: RMSE between per-neuron mean counts per valid bin."""

    def trial_statistics(self, spikes, context):
        mask = spikes.mask()[..., None]
        return np.stack([(spikes.counts * mask).sum(1), np.repeat(mask.sum(1), spikes.n_neurons, 1)], -1)

    def pool(self, per_trial, weights, context):
        totals = (per_trial * np.asarray(weights)[:, None, None]).sum(0)  # (N, 2)
        return totals[:, 0] / np.maximum(totals[:, 1], 1)

    def compare_statistics(self, model, data, context):
        return {"mean_count_rmse": float(np.sqrt(np.mean((model - data) ** 2)))}

    def describe(self, context=None):
        return {"mean_count_rmse": {"unit": "spikes/bin", "better": "lower"}}


class NotZeroOnIdentical(MeanCountRmse):
    """Adds a small floor to the RMSE."""

    def compare_statistics(self, model, data, context):
        return {"mean_count_rmse": super().compare_statistics(model, data, context)["mean_count_rmse"] + 0.05}


class MissingDirection(MeanCountRmse):
    """Describes nothing."""

    def describe(self, context=None):
        return {}


class IgnoresWeights(MeanCountRmse):
    """Pools with unit weights whatever the weights are."""

    def pool(self, per_trial, weights, context):
        return super().pool(per_trial, np.ones(len(per_trial), np.int64), context)


class FirstTrialOnly(MeanCountRmse):
    """compute looks at the model's first trial only."""

    def compute(self, model, data):
        return super().compute(model.subset([0]), data)


class NanWhenIdle(MeanCountRmse):
    """Returns NaN (an unguarded 0/0)."""

    def compare_statistics(self, model, data, context):
        return {"mean_count_rmse": float("nan")}


class NeedsACovariate(MeanCountRmse):
    """Returns nothing when the data lack the covariate it compares (like a PSTH metric)."""

    def compute(self, model, data):
        return {} if "stimulus" not in data.covariates else super().compute(model, data)


class RequiresStimulus(MeanCountRmse):
    """A correct metric that refuses real data without its ``stimulus`` covariate (checked with make_data)."""

    def compute(self, model, data):
        if "stimulus" not in data.covariates:
            raise DataError("covariates", "expected a 'stimulus' covariate in the real data")
        return super().compute(model, data)


def stimulus_data() -> SpikeData:
    """The kit's data with a ``stimulus`` covariate added, as a MetricContract's make_data would build it."""
    data = synthetic_spike_data(n_trials=30, length=20)
    return attrs.evolve(data, covariates={**data.covariates, "stimulus": data.covariates["vector"]})


BROKEN: list[tuple[str, Any, str]] = [
    ("encoder", LeaksTheFuture, "causal_outputs_ignore_the_future"),
    ("encoder", NegativeRates, "rates_are_positive_and_finite"),
    ("encoder", IgnoresTheObservationModel, "training_loss_uses_the_observation_model"),
    ("encoder", ScoresPadding, "training_loss_ignores_padding"),
    ("encoder", BatchStatistics, "outputs_are_batch_invariant"),
    ("encoder", OneNeuronTrials, "training_loss_scores_entries_in_place"),
    ("observation", NegativeAtHighRates, "samples_are_counts"),
    ("observation", ElementsIgnoreScored, "log_prob_elements_are_zero_where_unscored"),
    ("observation", UndeclaredFitting, "fitting_is_declared"),
    ("observation", ScaleNotInStateDict, "state_dict_round_trips"),
    ("generator", IgnoresTheSeed, "seed_reproduces_samples"),
    ("generator", FixedLength, "sample_shapes_follow_lengths"),
    ("generator", IgnoresTheCondition, "conditions_change_samples"),
    ("generator", AcceptsAnyCondition, "bad_conditions_are_rejected"),
    ("generator", MutableSamplerOptions, "samplers_are_declared"),
    ("generator", StatisticsNotSaved, "state_dict_round_trips"),
    ("generator", EmaNotSaved, "state_dict_round_trips"),
    ("generator", NoParametersButGradientTrained, "training_loss_is_finite"),
    ("conditioner", ValidatesNothing, "validate_rejects_wrong_shapes"),
    ("conditioner", ForgetsItsState, "state_round_trips"),
    ("conditioner", WrongDim, "from_data_has_the_declared_shape"),
    ("data", OverlappingSplits, "splits_are_disjoint_and_in_range"),
    ("data", SplitsEditedAfterwards, "splits_are_disjoint_and_in_range"),
    ("data", Unseeded, "loads_are_deterministic"),
    ("data", SpikesOnPadding, "padding_holds_no_spikes"),
    ("metric", NotZeroOnIdentical, "identical_inputs_score_perfectly"),
    ("metric", MissingDirection, "every_value_declares_its_direction"),
    ("metric", IgnoresWeights, "pooled_weights_are_multiplicities"),
    ("metric", FirstTrialOnly, "trial_order_does_not_matter"),
    ("metric", NanWhenIdle, "values_are_finite_numbers"),
]
