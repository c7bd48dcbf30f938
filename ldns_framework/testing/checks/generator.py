"""Named property checks for latent generators: samplers, shapes, seeds, the loss, closed-form fits, conditions.

The factory is called as the pipeline builds a generator: ``factory(latent_dim=D)`` for an
unconditional one, plus ``condition_kind`` and ``condition_dim`` for a conditional one (a
component class is a factory; a factory that does not take ``condition_kind`` is checked
unconditional only). A closed-form generator (``closed_form = True``) is fitted once on seeded
smooth latents before the checks; a gradient-trained one is checked as built, except where a few
optimiser steps matter (the weights round trip, with ``after_optimizer_step``; the condition checks).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import attrs
import torch

from ldns_framework.errors import LdnsError
from ldns_framework.testing.core import (
    CheckSkipped,
    Subject,
    accepts,
    fail,
    finite_figures,
    register_check,
    seeds_reproduce,
    tensors_close,
    weights_round_trip,
)

__all__ = ["GeneratorSubject", "synthetic_latents"]

CONDITION_KINDS = ("vector", "sequence")
CONDITION_DIM = 2


def synthetic_latents(n_trials: int, length: int, dim: int, seed: int, *, offset: float = 0.0
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth normalised-scale latents (B, T, D) (sines with random phases plus noise) and a full mask."""
    generator = torch.Generator().manual_seed(seed)
    phase = 2 * math.pi * torch.rand(n_trials, 1, dim, generator=generator)
    t = torch.arange(length, dtype=torch.float32)[None, :, None]
    latents = torch.sin(2 * math.pi * t / 8.0 + phase) + 0.3 * torch.randn(n_trials, length, dim, generator=generator)
    return latents + offset, torch.ones(n_trials, length, dtype=torch.bool)


def _conditions(kind: str, n: int, length: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    shape = (n, CONDITION_DIM) if kind == "vector" else (n, length, CONDITION_DIM)
    return torch.randn(shape, generator=generator)


class GeneratorSubject(Subject):
    """A generator for ``KitSettings.latent_dim`` channels; closed-form ones fitted on :func:`synthetic_latents`."""

    kind = "generator"

    def context(self) -> dict[str, Any]:
        return {"latent_dim": self.settings.latent_dim}

    @property
    def closed_form(self) -> bool:
        return bool(getattr(self.probe, "closed_form", False))

    def prepare(self, component: Any, condition: torch.Tensor | None = None) -> Any:
        if self.closed_form:
            latents, mask = self.training_latents(condition)
            component.fit(latents, mask, condition)
        return component.eval()

    def training_latents(self, condition: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents to fit on; with a condition, their mean follows it (so a fitted model can use it)."""
        cfg = self.settings
        n = 32 if condition is None else condition.shape[0]
        latents, mask = synthetic_latents(n, cfg.length, cfg.latent_dim, cfg.seed)
        if condition is not None:
            drive = condition if condition.ndim == 3 else condition[:, None, :].expand(n, cfg.length, CONDITION_DIM)
            latents = latents + drive.sum(-1, keepdim=True)  # (B, T, D)
        return latents, mask

    def lengths(self, *values: int) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long)

    def conditional(self, kind: str) -> Any:
        """A prepared generator built with a condition of ``kind``; CheckSkipped when it refuses one."""
        try:
            model = self.build(condition_kind=kind, condition_dim=CONDITION_DIM)
        except (LdnsError, ValueError, NotImplementedError, TypeError) as exc:
            raise CheckSkipped(f"the generator does not take {kind} conditions ({type(exc).__name__}: {exc})") from None
        condition = _conditions(kind, 32, self.settings.length, self.settings.seed + 7)
        if self.closed_form:
            return self.prepare(model, condition)
        _train_steps(model, *self.training_latents(condition), condition)
        return model.eval()


def _train_steps(model: Any, latents: torch.Tensor, mask: torch.Tensor, condition: torch.Tensor | None,
                 steps: int = 5) -> None:
    """A few Adam steps, so zero-initialised gates (adaLN-Zero) open and the condition reaches the output."""
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for _ in range(steps):
            optimiser.zero_grad(set_to_none=True)
            model.training_loss(latents, mask, condition)["loss"].backward()
            optimiser.step()
            model.after_optimizer_step()


def _applies_closed_form(subject: Subject) -> str | None:
    return None if getattr(subject.probe, "closed_form", False) else "closed_form is False: trained by gradient descent"


def _applies_conditions(subject: Subject) -> str | None:
    if accepts(subject.factory, "condition_kind"):
        return None
    return "the factory takes no condition_kind keyword: checked as an unconditional generator"


def _check(name: str, **kwargs: Any) -> Any:
    return register_check("generator", name, **kwargs)


def _sample(model: Any, name: str, n: int, lengths: torch.Tensor, seed: int, condition: torch.Tensor | None = None,
            **kwargs: Any) -> torch.Tensor:
    with torch.no_grad():
        out = model.sample(n, lengths, condition, torch.Generator().manual_seed(seed), **kwargs)
    expected = (n, int(lengths.max()), model.latent_dim)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        raise fail(name, f"sample returned {type(out).__name__} {tuple(getattr(out, 'shape', ()))}, expected "
                         f"{expected} (n, max(lengths), latent_dim)")
    if not torch.isfinite(out).all():
        raise fail(name, "sample returned non-finite latents")
    return out


def _frozen(options: Any) -> bool:
    """Whether an attrs instance refuses assignment (one without fields has nothing to change)."""
    fields = attrs.fields(type(options))
    probe = fields[0].name if fields else "_ldns_kit_probe"
    try:
        setattr(options, probe, getattr(options, probe, 1))
    except attrs.exceptions.FrozenInstanceError:
        return True
    except AttributeError:
        return not fields
    return False


@_check("samplers_are_declared")
def _samplers(subject: GeneratorSubject, name: str) -> None:
    """samplers maps names to frozen attrs option classes, each built with its defaults; describe_sampler labels them."""
    samplers = type(subject.probe).samplers
    if not isinstance(samplers, Mapping) or not samplers:
        raise fail(name, f"samplers must be a non-empty mapping of name -> options class, got {samplers!r}")
    for sampler, options_class in samplers.items():
        if not isinstance(sampler, str) or not sampler:
            raise fail(name, f"sampler names must be non-empty strings, got {sampler!r}")
        if not (isinstance(options_class, type) and attrs.has(options_class)):
            raise fail(name, f"sampler {sampler!r}: options must be an attrs class, got {options_class!r}")
        try:
            options = options_class()
        except Exception as exc:  # noqa: BLE001 - reported as the failure
            raise fail(name, f"sampler {sampler!r}: {options_class.__name__}() fails ({exc}); every option needs a default") from None
        if not _frozen(options):
            raise fail(name, f"sampler {sampler!r}: {options_class.__name__} must be frozen (@attrs.frozen)")
        label = type(subject.probe).describe_sampler(sampler, options)
        if not isinstance(label, str) or not label:
            raise fail(name, f"describe_sampler({sampler!r}, ...) must return a non-empty label, got {label!r}")


@_check("every_sampler_runs")
def _every_sampler(subject: GeneratorSubject, name: str) -> None:
    """Every declared sampler, with its default options, and the default call (sampler=None) draw finite latents."""
    model, cfg = subject.component(), subject.settings
    lengths = subject.lengths(cfg.length, cfg.length)
    _sample(model, name, 2, lengths, 1)
    for sampler, options_class in type(model).samplers.items():
        try:
            _sample(model, name, 2, lengths, 1, sampler=sampler, options=options_class())
        except AssertionError:
            raise
        except Exception as exc:  # noqa: BLE001 - a crash of one sampler names it
            raise fail(name, f"sampler {sampler!r} with its default options raised {type(exc).__name__}: {exc}") from None


@_check("sample_shapes_follow_lengths")
def _shapes(subject: GeneratorSubject, name: str) -> None:
    """sample(n, lengths) returns (n, max(lengths), latent_dim), for mixed lengths and a length other than the training one."""
    model, cfg = subject.component(), subject.settings
    _sample(model, name, 3, subject.lengths(cfg.length, cfg.length - 3, 1), 2)
    _sample(model, name, 2, subject.lengths(cfg.length + 5, cfg.length + 5), 3)
    _sample(model, name, 1, subject.lengths(2), 4)


@_check("seed_reproduces_samples")
def _seed(subject: GeneratorSubject, name: str) -> None:
    """The same torch.Generator seed gives the same latents; another seed gives other latents."""
    model, cfg = subject.component(), subject.settings
    lengths = subject.lengths(cfg.length, cfg.length, cfg.length)
    seeds_reproduce(name, lambda seed: _sample(model, name, 3, lengths, seed))


@_check("training_loss_is_finite")
def _loss(subject: GeneratorSubject, name: str) -> None:
    """training_loss gives a finite scalar "loss"; a gradient-trained generator has parameters with finite, non-zero gradients."""
    model, cfg = subject.component(), subject.settings
    latents, mask = synthetic_latents(cfg.n_trials, cfg.length, cfg.latent_dim, cfg.seed + 3)
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        losses = model.training_loss(latents, mask, None)
    if not isinstance(losses, dict) or "loss" not in losses:
        raise fail(name, f"training_loss must return a dict with a 'loss' entry, got {type(losses).__name__}")
    for key, value in losses.items():
        if not isinstance(value, torch.Tensor) or value.ndim != 0 or not torch.isfinite(value):
            raise fail(name, f"training_loss entry {key!r} must be a finite scalar tensor, got {value!r}")
    if subject.closed_form:
        return
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise fail(name, "closed_form is False but the generator has no trainable parameters: declare closed_form = "
                         "True and compute them in fit")
    grads = [g for g in torch.autograd.grad(losses["loss"], parameters, allow_unused=True) if g is not None]
    if not grads or not all(torch.isfinite(g).all() for g in grads):
        raise fail(name, "the gradient of the loss is missing or not finite")
    model.after_optimizer_step()


@_check("training_loss_ignores_padding")
def _loss_padding(subject: GeneratorSubject, name: str) -> None:
    """The loss (same random draws) does not change when only latents on padded bins (mask False) change."""
    model, cfg = subject.component(), subject.settings
    latents, mask = synthetic_latents(cfg.n_trials, cfg.length, cfg.latent_dim, cfg.seed + 4)
    mask = torch.arange(cfg.length)[None, :] < torch.tensor([cfg.length - i for i in range(cfg.n_trials)])[:, None]
    latents = latents * mask[..., None]
    garbage = torch.where(mask[..., None], latents, torch.full_like(latents, 50.0))
    values = []
    for x in (latents, garbage):
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(cfg.seed)
            values.append(model.training_loss(x, mask, None)["loss"])
    if not tensors_close(values[0], values[1], cfg):
        raise fail(name, f"the loss went from {values[0].item():.6g} to {values[1].item():.6g} when only padded "
                         f"latents changed: padded bins must not be scored")


@_check("closed_form_fit_matches_the_latents", applies=_applies_closed_form)
def _closed_form(subject: GeneratorSubject, name: str) -> None:
    """closed_form: fit returns finite figures, and samples then have the fitted latents' per-channel mean (within half a std)."""
    model, cfg = subject.build(), subject.settings
    latents, mask = synthetic_latents(64, cfg.length, cfg.latent_dim, cfg.seed + 5, offset=2.0)
    finite_figures(name, "fit", model.fit(latents, mask, None))
    model.eval()
    drawn = _sample(model, name, 64, subject.lengths(*[cfg.length] * 64), 5)
    gap = (drawn.mean(dim=(0, 1)) - latents.mean(dim=(0, 1))).abs()
    scale = latents.std(dim=(0, 1))
    if (gap > 0.5 * scale).any():
        raise fail(name, f"after fit on latents with channel means {latents.mean(dim=(0, 1)).tolist()}, samples have "
                         f"means {drawn.mean(dim=(0, 1)).tolist()}: fit does not set the parameters")


@_check("state_dict_round_trips")
def _state_dict(subject: GeneratorSubject, name: str) -> None:
    """A generator (gradient-trained: after a few optimiser steps) and a fresh one given its weights through the run's loader sample alike."""
    model, cfg = subject.component(), subject.settings
    if not subject.closed_form:  # state kept by training or after_optimizer_step (an EMA) must be saved too
        _train_steps(model, *subject.training_latents(), None)
        model.eval()
    fresh = subject.build().eval()
    weights_round_trip(name, model, fresh)
    lengths = subject.lengths(cfg.length, cfg.length)
    if not torch.equal(_sample(model, name, 2, lengths, 9), _sample(fresh, name, 2, lengths, 9)):
        raise fail(name, "samples differ after the weights round trip: some state (e.g. fitted statistics, EMA "
                         "weights) is not in state_dict")


def _conditional_models(subject: GeneratorSubject, name: str) -> list[tuple[str, Any]]:
    """(condition kind, prepared generator) for each kind the generator takes; CheckSkipped when it takes neither."""
    models = []
    for kind in CONDITION_KINDS:
        try:
            models.append((kind, subject.conditional(kind)))
        except CheckSkipped:
            continue
    if not models:
        raise CheckSkipped(f"{name}: the generator takes neither vector nor sequence conditions")
    return models


@_check("conditions_change_samples", applies=_applies_conditions)
def _conditions_used(subject: GeneratorSubject, name: str) -> None:
    """Built with a vector or sequence condition (and fitted or trained a few steps), samples depend on the condition."""
    cfg = subject.settings
    for kind, model in _conditional_models(subject, name):
        lengths = subject.lengths(cfg.length, cfg.length)
        first = _conditions(kind, 2, cfg.length, 1)
        a = _sample(model, name, 2, lengths, 3, first)
        b = _sample(model, name, 2, lengths, 3, -3.0 * first)
        if torch.equal(a, b):
            raise fail(name, f"{kind} condition: samples are identical for different conditions (same seed): the "
                             f"condition is ignored")


@_check("bad_conditions_are_rejected", applies=_applies_conditions)
def _conditions_validated(subject: GeneratorSubject, name: str) -> None:
    """Built with a condition, sample raises an error for a condition of the wrong shape (rows, channels, axes)."""
    cfg = subject.settings
    for kind, model in _conditional_models(subject, name):
        good = _conditions(kind, 2, cfg.length, 1)
        wrong = {"one row too many": torch.cat([good, good[:1]]), "one channel too many": torch.cat([good, good[..., :1]], -1),
                 "the other kind's axes": good[:, 0] if kind == "sequence" else good[:, None].expand(2, cfg.length, CONDITION_DIM)}
        for label, condition in wrong.items():
            try:
                with torch.no_grad():
                    model.sample(2, subject.lengths(cfg.length, cfg.length), condition, torch.Generator().manual_seed(0))
            except (LdnsError, ValueError):
                continue
            except Exception as exc:  # noqa: BLE001 - a crash deep inside is not a validation
                raise fail(name, f"{kind} condition with {label} (shape {tuple(condition.shape)}) raised "
                                 f"{type(exc).__name__} ({exc}); validate it first and raise a DataError naming the "
                                 f"expected shape") from None
            raise fail(name, f"{kind} condition with {label} (shape {tuple(condition.shape)}) was accepted; raise "
                             f"a DataError naming the expected shape")
