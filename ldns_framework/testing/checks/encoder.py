"""Named property checks for encoders (autoencoders): shapes, positive rates, a trainable loss, causality.

The factory is called as the pipeline builds an encoder, ``factory(n_neurons=N)`` (a component
class is a factory). Inputs are seeded counts (B, T, N) with right-padded trials. The training
loss is computed with the kit's factorised observation model (``kit-count-model``), through
:meth:`~ldns_framework.interfaces.ObservationModel.log_prob_elements`, which must be handed
(trials, time, N) tensors (entries keep their neuron axis, so per-neuron parameters line up). Encoders whose
``is_causal`` is True are also checked never to look at later bins (changing bins >= t must leave
every output before t unchanged); those that are causal or tagged ``supports_mask`` never to let
padded bins change a valid output or the loss.
"""

from __future__ import annotations

from typing import Any

import torch

from ldns_framework.batch import Batch
from ldns_framework.testing.core import Subject, fail, register_check, tensors_close, weights_round_trip
from ldns_framework.testing.reference import KitCountModel

__all__ = ["EncoderSubject"]


class EncoderSubject(Subject):
    """An encoder built for ``KitSettings.n_neurons`` neurons, in eval mode unless a check trains it."""

    kind = "encoder"

    def context(self) -> dict[str, Any]:
        return {"n_neurons": self.settings.n_neurons}

    def prepare(self, component: Any) -> Any:
        return component.eval()

    def inputs(self, offset: int, *, padded: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Counts (B, T, N) float32 with mean 1, zero on padding, and the mask (B, T)."""
        cfg = self.settings
        counts = torch.poisson(torch.ones(cfg.n_trials, cfg.length, cfg.n_neurons), generator=self.generator(offset))
        lengths = torch.tensor([cfg.length - (i * cfg.length) // (cfg.n_trials + 1) for i in range(cfg.n_trials)])
        if not padded:
            lengths = torch.full_like(lengths, cfg.length)
        mask = torch.arange(cfg.length)[None, :] < lengths[:, None]  # (B, T)
        return counts * mask[..., None], mask


def _causal(subject: Subject) -> str | None:
    if bool(getattr(subject.probe, "is_causal", False)):
        return None
    return ("is_causal is False: a bidirectional encoder may read later and padded bins (variable-length data "
            "needs a causal one)")


def _honours_padding(subject: Subject) -> str | None:
    if _causal(subject) is None or "supports_mask" in getattr(subject.probe, "tags", ()):
        return None
    return "neither is_causal nor the supports_mask tag: the encoder does not claim that padding is ignored"


def _check(name: str, **kwargs: Any) -> Any:
    return register_check("encoder", name, **kwargs)


def _outputs(model: Any, counts: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        latents = model.encode(counts, mask)  # (B, T, D)
        rates = model.decode(latents, mask)  # (B, T, N)
    return latents, rates


def _loss(model: Any, counts: torch.Tensor, mask: torch.Tensor, observation: Any, seed: int) -> dict[str, Any]:
    """training_loss in train mode with torch's global generator seeded (coordinated dropout draws from it)."""
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model.training_loss(Batch(counts, mask), observation)


@_check("shapes_follow_the_contract")
def _shapes(subject: EncoderSubject, name: str) -> None:
    """encode gives (B, T, latent_dim) latents, decode (B, T, N) rates; latent_dim is a positive int, is_causal a bool."""
    model, cfg = subject.component(), subject.settings
    dim = model.latent_dim
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise fail(name, f"latent_dim must be a positive int, got {dim!r}")
    if not isinstance(model.is_causal, bool):
        raise fail(name, f"is_causal must be a bool, got {model.is_causal!r}")
    counts, mask = subject.inputs(1)
    latents, rates = _outputs(model, counts, mask)
    expected = (cfg.n_trials, cfg.length, dim)
    if not isinstance(latents, torch.Tensor) or tuple(latents.shape) != expected:
        raise fail(name, f"encode returned {tuple(getattr(latents, 'shape', ()))}, expected {expected} (trials, time, latent_dim)")
    if not isinstance(rates, torch.Tensor) or rates.shape != counts.shape:
        raise fail(name, f"decode returned {tuple(getattr(rates, 'shape', ()))}, expected {tuple(counts.shape)} (trials, time, neurons)")


@_check("rates_are_positive_and_finite")
def _positive(subject: EncoderSubject, name: str) -> None:
    """Rates are finite and > 0 on valid bins, for encoded data and for large random latents."""
    model = subject.component()
    counts, mask = subject.inputs(2)
    latents, rates = _outputs(model, counts, mask)
    wild = 5.0 * torch.randn(latents.shape, generator=subject.generator(3))  # (B, T, D)
    with torch.no_grad():
        wild_rates = model.decode(wild, mask)
    for label, r in (("encoded data", rates), ("latents of scale 5", wild_rates)):
        valid = r[mask]
        if not torch.isfinite(valid).all():
            raise fail(name, f"decode of {label} gave non-finite rates on valid bins")
        if (valid <= 0).any():
            raise fail(name, f"decode of {label} gave rates <= 0 on valid bins (min {valid.min().item():.4g}); rates "
                             f"are expected counts, e.g. through softplus or exp")


@_check("training_loss_is_finite_and_differentiable")
def _loss_finite(subject: EncoderSubject, name: str) -> None:
    """training_loss with a factorised observation model gives a finite scalar "loss" whose gradient is finite and non-zero."""
    model = subject.component()
    counts, mask = subject.inputs(4)
    losses = _loss(model, counts, mask, KitCountModel(), subject.settings.seed)
    if not isinstance(losses, dict) or "loss" not in losses:
        raise fail(name, f"training_loss must return a dict with a 'loss' entry, got {type(losses).__name__} "
                         f"{sorted(losses) if isinstance(losses, dict) else ''}")
    for key, value in losses.items():
        if not isinstance(value, torch.Tensor) or value.ndim != 0 or not torch.isfinite(value):
            raise fail(name, f"training_loss entry {key!r} must be a finite scalar tensor, got {value!r}")
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise fail(name, "the encoder has no trainable parameters")
    grads = torch.autograd.grad(losses["loss"], parameters, allow_unused=True)
    present = [g for g in grads if g is not None]
    if not all(torch.isfinite(g).all() for g in present):
        raise fail(name, "the gradient of the loss is not finite")
    if not any(g.abs().sum() > 0 for g in present):
        raise fail(name, "the gradient of the loss is zero for every parameter")


class _DoubledLikelihood(KitCountModel):
    """Twice the kit model's log-likelihood: an encoder trained through the observation model sees it."""

    def log_prob_elements(self, counts: torch.Tensor, rates: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
        return 2.0 * super().log_prob_elements(counts, rates, scored)


@_check("training_loss_uses_the_observation_model")
def _loss_uses_observation(subject: EncoderSubject, name: str) -> None:
    """The reconstruction term is the observation model's likelihood: another likelihood changes the loss."""
    model = subject.component()
    counts, mask = subject.inputs(5)
    seed = subject.settings.seed
    a = _loss(model, counts, mask, KitCountModel(), seed)["loss"].detach()
    b = _loss(model, counts, mask, _DoubledLikelihood(), seed)["loss"].detach()
    if torch.equal(a, b):
        raise fail(name, "the loss did not change when the observation model's log_prob_elements doubled: the "
                         "reconstruction term must come from the observation model it is given")


class _ShapeSpy(KitCountModel):
    """The kit's count model, recording the shape of every counts tensor it is asked to score."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def log_prob_elements(self, counts: torch.Tensor, rates: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(counts.shape))
        return super().log_prob_elements(counts, rates, scored)


@_check("training_loss_scores_entries_in_place")
def _entries_in_place(subject: EncoderSubject, name: str) -> None:
    """training_loss has the observation model score (trials, time, N) tensors, every entry on its own neuron, so per-neuron parameters line up."""
    model = subject.component()
    counts, mask = subject.inputs(12)
    spy = _ShapeSpy()
    _loss(model, counts, mask, spy, subject.settings.seed)
    moved = [shape for shape in spy.shapes if len(shape) != 3 or shape[-1] != counts.shape[-1]]
    if moved:
        raise fail(name, f"the observation model was asked to score counts of shape {moved[0]} for a batch of shape "
                         f"{tuple(counts.shape)}: score the entries in place with log_prob_elements(counts, rates, "
                         f"scored), so that a model with one parameter per neuron sees every entry on its own neuron")


@_check("outputs_are_batch_invariant")
def _batch_invariant(subject: EncoderSubject, name: str) -> None:
    """In eval mode a trial's latents and rates do not depend on the other trials in the batch."""
    model = subject.component()
    counts, mask = subject.inputs(6)
    latents, rates = _outputs(model, counts, mask)
    for i in range(counts.shape[0]):
        alone_latents, alone_rates = _outputs(model, counts[i:i + 1], mask[i:i + 1])
        valid = mask[i]
        if not (tensors_close(alone_latents[0][valid], latents[i][valid], subject.settings)
                and tensors_close(alone_rates[0][valid], rates[i][valid], subject.settings)):
            raise fail(name, f"trial {i}'s outputs differ when it is encoded alone: results must not depend on batching")


@_check("causal_outputs_ignore_the_future", applies=_causal)
def _future(subject: EncoderSubject, name: str) -> None:
    """is_causal: changing the counts at bins >= t leaves the latents and rates at bins < t unchanged."""
    model, cfg = subject.component(), subject.settings
    counts, mask = subject.inputs(7, padded=False)
    latents, rates = _outputs(model, counts, mask)
    for t in (1, cfg.length // 2, cfg.length - 1):
        changed = counts.clone()
        changed[:, t:] = torch.poisson(torch.full_like(counts[:, t:], 3.0), generator=subject.generator(8 + t))
        new_latents, new_rates = _outputs(model, changed, mask)
        if not (tensors_close(new_latents[:, :t], latents[:, :t], cfg) and tensors_close(new_rates[:, :t], rates[:, :t], cfg)):
            raise fail(name, f"is_causal is True, but outputs before bin {t} changed when only bins >= {t} changed: "
                             f"the encoder looks into the future")


@_check("padding_never_changes_valid_outputs", applies=_honours_padding)
def _padding(subject: EncoderSubject, name: str) -> None:
    """is_causal or supports_mask: whatever the counts on padded bins (mask False), the outputs on valid bins are unchanged."""
    model, cfg = subject.component(), subject.settings
    counts, mask = subject.inputs(9)
    latents, rates = _outputs(model, counts, mask)
    garbage = torch.where(mask[..., None], counts, torch.full_like(counts, 9.0))
    new_latents, new_rates = _outputs(model, garbage, mask)
    if not (tensors_close(new_latents[mask], latents[mask], cfg) and tensors_close(new_rates[mask], rates[mask], cfg)):
        raise fail(name, "outputs on valid bins changed when only padded bins changed: padding leaks into the data")


@_check("training_loss_ignores_padding", applies=_honours_padding)
def _loss_padding(subject: EncoderSubject, name: str) -> None:
    """is_causal or supports_mask: the training loss (same random draws) does not change when only padded counts change."""
    model, cfg = subject.component(), subject.settings
    counts, mask = subject.inputs(10)
    garbage = torch.where(mask[..., None], counts, torch.full_like(counts, 9.0))
    a = _loss(model, counts, mask, KitCountModel(), cfg.seed)["loss"].detach()
    b = _loss(model, garbage, mask, KitCountModel(), cfg.seed)["loss"].detach()
    if not tensors_close(a, b, cfg):
        raise fail(name, f"the loss went from {a.item():.6g} to {b.item():.6g} when only padded counts changed: "
                         f"padded bins must not be scored")


@_check("state_dict_round_trips")
def _state_dict(subject: EncoderSubject, name: str) -> None:
    """A freshly built encoder loads the weights through the run's loader and encodes and decodes identically."""
    model = subject.component()
    fresh = subject.build().eval()
    weights_round_trip(name, model, fresh)
    counts, mask = subject.inputs(11)
    (a_latents, a_rates), (b_latents, b_rates) = _outputs(model, counts, mask), _outputs(fresh, counts, mask)
    if not (torch.allclose(a_latents, b_latents, atol=1e-6) and torch.allclose(a_rates, b_rates, atol=1e-6)):
        raise fail(name, "outputs differ after the weights round trip: some state is not in state_dict")
