"""Named property checks for observation models (DESIGN.md section 8), one per property.

The model under test. ``factory()`` (or ``factory(n_neurons=...)`` when it takes the keyword, as
the pipeline builds a model for a run) must return a fresh model. A model that declares
``needs_fitting`` (or reports ``is_fitted == False``) is fitted once on :func:`synthetic_data`,
as the pipeline fits it after the encoder; each check then works on a deep copy. A model whose
``n_neurons`` attribute is a positive int is checked with that many neurons; any other model
with ``KitSettings.n_neurons`` (3).

Tags read (``model.tags``): ``supports_mask`` (padded bins are checked), ``rate_parameterised``
(E[count] = rate is checked), ``per_neuron`` (per-neuron parameters: no neuron-permutation
check), ``autoregressive`` (must agree with ``is_autoregressive``; one-step checks).

How the sampler is compared with log_prob, for any model: for every bin t and neuron j, the
conditional pmf p(x_tj = k | the sampled x_{<t} and x_t,-j) follows from log_prob of the prefix
x_{<=t} with x_tj set to k = 0..K, normalised over k. If the samples come from the distribution
log_prob describes, the number of draws with x_tj = k has mean sum_i p_i(k) and variance
sum_i p_i(k)(1 - p_i(k)); each count is z-tested. Since prefixes are scored through slicing,
this checks autoregressive models on their one-step conditionals given the sampled history. The
joint pmf of one bin (all neurons, on the grid 0..K per neuron) is also compared with the
sampler by a chi-square test, and checked to sum to 1.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from ldns_framework.testing.core import (
    CheckSkipped,
    KitSettings,
    Subject,
    fail,
    finite_figures,
    register_check,
    seeds_reproduce,
    weights_round_trip,
)

__all__ = ["ObservationSubject", "synthetic_data"]


class ObservationSubject(Subject):
    """An observation model, fitted on :func:`synthetic_data` first when it declares needs_fitting (or is not fitted)."""

    kind = "observation"

    def __init__(self, factory: Callable[..., Any], settings: KitSettings, **where: Any) -> None:
        self._fixed: int | None = None
        super().__init__(factory, settings, **where)  # the probe is built as the factory alone builds it
        self.is_autoregressive = bool(getattr(self.probe, "is_autoregressive", False))
        fixed = getattr(self.probe, "n_neurons", None)
        self._fixed = fixed if isinstance(fixed, int) and not isinstance(fixed, bool) and fixed > 0 else None

    def context(self) -> dict[str, Any]:
        """After the probe, models are built as a run builds them: with the number of neurons."""
        return {"n_neurons": self.n_neurons} if hasattr(self, "probe") else {}

    def prepare(self, component: Any) -> Any:
        if getattr(component, "needs_fitting", False) or getattr(component, "is_fitted", True) is False:
            counts, rates, mask = synthetic_data(n_neurons=self.n_neurons, seed=self.settings.seed)
            component.fit(counts, rates, mask)
        if isinstance(component, torch.nn.Module):
            component.eval()
        return component

    @property
    def n_neurons(self) -> int:
        return self._fixed or self.settings.n_neurons

    def rates(self, shape: tuple[int, ...], offset: int) -> torch.Tensor:
        """Rates log-uniform in [min_rate, max_rate], float32."""
        lo, hi = math.log(self.settings.min_rate), math.log(self.settings.max_rate)
        return torch.exp(lo + (hi - lo) * torch.rand(shape, generator=self.generator(offset)))

    def supports(self, tag: str) -> bool:
        return tag in self.tags

    def trial_lengths(self, n_trials: int, n_time: int) -> list[int]:
        """Padded lengths for models that support masks, full-length trials otherwise."""
        return _padding_lengths(n_trials, n_time) if self.supports("supports_mask") else [n_time] * n_trials


def _applies(requires: tuple[str, ...] = (), excludes: tuple[str, ...] = (),
             autoregressive: bool | None = None) -> Callable[[Any], str | None]:
    def why_not(subject: Any) -> str | None:
        if autoregressive is not None and autoregressive != subject.is_autoregressive:
            return f"applies to {'' if autoregressive else 'non-'}autoregressive models only"
        missing, present = set(requires) - subject.tags, set(excludes) & subject.tags
        reasons = [f"needs tag(s) {', '.join(sorted(missing))}" if missing else "",
                   f"not for tag(s) {', '.join(sorted(present))}" if present else ""]
        return "; ".join(filter(None, reasons)) or None

    return why_not


def _check(name: str, *, requires: tuple[str, ...] = (), excludes: tuple[str, ...] = (),
           autoregressive: bool | None = None) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return register_check("observation", name, applies=_applies(requires, excludes, autoregressive))


def _lengths_mask(lengths: list[int], n_time: int) -> torch.Tensor:
    return torch.arange(n_time)[None, :] < torch.tensor(lengths)[:, None]  # (B, T)


def _padding_lengths(n_trials: int, n_time: int) -> list[int]:
    """Trial lengths from n_time down to 1: a full trial, partial ones, a one-bin trial."""
    return [max(1, n_time - round(i * (n_time - 1) / max(1, n_trials - 1))) for i in range(n_trials)]


def _log_prob(model: Any, counts: torch.Tensor, rates: torch.Tensor, mask: torch.Tensor, name: str,
              **kwargs: Any) -> torch.Tensor:
    """model.log_prob with its output validated: a floating (B,) tensor."""
    out = model.log_prob(counts, rates, mask, **kwargs)
    if not isinstance(out, torch.Tensor) or out.shape != counts.shape[:1] or not out.is_floating_point():
        raise fail(name, f"log_prob must return a floating tensor of shape ({counts.shape[0]},), got "
                         f"{type(out).__name__} {tuple(getattr(out, 'shape', ()))} {getattr(out, 'dtype', '')}")
    return out.detach()


def _sample(model: Any, rates: torch.Tensor, mask: torch.Tensor, generator: torch.Generator, name: str,
            **kwargs: Any) -> torch.Tensor:
    with torch.no_grad():
        out = model.sample(rates, mask, generator=generator, **kwargs)
    if not isinstance(out, torch.Tensor) or out.shape != rates.shape:
        raise fail(name, f"sample must return a tensor of shape {tuple(rates.shape)}, got "
                         f"{type(out).__name__} {tuple(getattr(out, 'shape', ()))}")
    return out.detach().to(rates.dtype)


def _grid(n_neurons: int, max_count: int) -> torch.Tensor:
    """Every count vector in {0..K}^N: ((K+1)^N, N) float32, the last neuron varying fastest."""
    axes = [torch.arange(max_count + 1, dtype=torch.float32)] * n_neurons
    return torch.cartesian_prod(*axes).reshape(-1, n_neurons)


def _accepts(function: Callable[..., Any], argument: str) -> bool:
    import inspect

    try:
        return argument in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


# -- the checks --------------------------------------------------------------------------------

@_check("tags_are_consistent")
def _tags_are_consistent(subject: ObservationSubject, name: str) -> None:
    """The 'autoregressive' tag and is_autoregressive agree, and tags is a set of strings."""
    tags = getattr(subject.prepared(), "tags", frozenset())
    if not isinstance(tags, (set, frozenset)) or not all(isinstance(t, str) for t in tags):
        raise fail(name, f"tags must be a frozenset of strings, got {tags!r}")
    if ("autoregressive" in tags) != subject.is_autoregressive:
        raise fail(name, f"is_autoregressive is {subject.is_autoregressive} but the tags "
                          f"{'include' if 'autoregressive' in tags else 'lack'} 'autoregressive'; set both or neither")


@_check("samples_are_counts")
def _samples_are_counts(subject: ObservationSubject, name: str) -> None:
    """sample returns non-negative integer counts of the rates' shape and dtype (or an integer dtype), zero on
    padding, over KitSettings.n_count_draws entries at rates from 1e-3 to extreme_rate (rare bad draws show up)."""
    model, n, cfg = subject.component(), subject.n_neurons, subject.settings
    n_time = 20
    n_trials = max(2, math.ceil(cfg.n_count_draws / (n_time * n)))
    size = n_trials * n_time * n
    # Half the entries at 20 levels spaced geometrically over [1e-3, extreme_rate], half uniform in
    # [1, 30], where approximate samplers (normal, truncated series) go wrong.
    levels = torch.logspace(-3.0, math.log10(cfg.extreme_rate), 20)
    wide = levels[torch.arange(size // 2) % len(levels)]
    middle = 1.0 + 29.0 * torch.rand(size - size // 2, generator=subject.generator(1))
    rates = torch.cat([wide, middle])[torch.randperm(size, generator=subject.generator(2))].reshape(n_trials, n_time, n)
    _check_counts(subject, model, name, rates, torch.ones(n_trials, n_time, dtype=torch.bool), 3)
    small = subject.rates((4, 7, n), 4)  # (B, T, N), with padded trials where the model supports masks
    _check_counts(subject, model, name, small, _lengths_mask(subject.trial_lengths(4, 7), 7), 5)


def _check_counts(subject: ObservationSubject, model: Any, name: str, rates: torch.Tensor, mask: torch.Tensor,
                  offset: int) -> None:
    before = rates.clone()
    with torch.no_grad():
        out = model.sample(rates, mask, generator=subject.generator(offset))
    if not isinstance(out, torch.Tensor):
        raise fail(name, f"sample must return a torch.Tensor, got {type(out).__name__}")
    if out.shape != rates.shape:
        raise fail(name, f"sample returned shape {tuple(out.shape)}, expected {tuple(rates.shape)} (trials, time, neurons)")
    if out.dtype == torch.bool or not (out.dtype == rates.dtype or not out.is_floating_point()):
        raise fail(name, f"sample returned dtype {out.dtype}; expected the rates' dtype {rates.dtype} or an integer dtype")
    values = out.double()
    if not torch.isfinite(values).all():
        raise fail(name, "sample returned non-finite values")
    if (values < 0).any():
        worst = int(values.flatten().argmin())
        raise fail(name, f"sample returned negative counts ({int((values < 0).sum())} of {values.numel()} entries, "
                         f"min {values.min().item():g} at rate {rates.flatten()[worst].item():.4g})")
    if not torch.equal(values, values.round()):
        raise fail(name, "sample returned non-integer counts, e.g. " + str(values[values != values.round()][:3].tolist()))
    if subject.supports("supports_mask") and values[~mask].abs().sum() > 0:
        raise fail(name, "sample returned non-zero counts on padded bins (mask False)")
    if not torch.equal(rates, before):
        raise fail(name, "sample modified its rates argument in place")


@_check("log_prob_is_finite_and_nonpositive")
def _log_prob_is_finite(subject: ObservationSubject, name: str) -> None:
    """log_prob is a finite, <= 0, (B,) tensor on counts the sampler produces and on all-zero counts."""
    model, n = subject.component(), subject.n_neurons
    rates = subject.rates((5, 7, n), 3)
    mask = torch.ones(5, 7, dtype=torch.bool)
    counts = _sample(model, rates, mask, subject.generator(4), name)
    for label, x in (("the model's own samples", counts), ("all-zero counts", torch.zeros_like(counts))):
        lp = _log_prob(model, x, rates, mask, name)
        if not torch.isfinite(lp).all():
            raise fail(name, f"log_prob of {label} is not finite: {lp.tolist()}")
        if (lp > subject.settings.atol).any():
            raise fail(name, f"log_prob of {label} is positive ({lp.max().item():.4g}): a pmf is at most 1")


@_check("pmf_normalises")
def _pmf_normalises(subject: ObservationSubject, name: str) -> None:
    """For one bin, exp(log_prob) summed over every count vector in 0..K per neuron is 1."""
    model, n, cfg = subject.component(), subject.n_neurons, subject.settings
    if n > cfg.grid_neurons:
        raise CheckSkipped(f"{name}: the model has {n} fixed neurons; the joint grid needs <= {cfg.grid_neurons}")
    grid = _grid(n, cfg.max_count)[:, None, :]  # (G, 1, N)
    mask = torch.ones(grid.shape[0], 1, dtype=torch.bool)
    for config in range(3):
        rates = subject.rates((1, 1, n), 10 + config).expand(grid.shape[0], 1, n)
        total = torch.logsumexp(_log_prob(model, grid, rates, mask, name).double(), 0).exp().item()
        if abs(total - 1.0) > cfg.normalisation_tolerance:
            raise fail(name, f"the pmf of one bin sums to {total:.6g} over counts 0..{cfg.max_count} per neuron at "
                              f"rates {[round(r, 4) for r in rates[0, 0].tolist()]}; expected 1 (wrong normaliser? "
                              f"if the model has heavy tails, raise KitSettings.max_count)")


def _pooled_groups(expected: np.ndarray, minimum: float = 5.0) -> list[list[int]]:
    """Adjacent categories merged (in order) until each group expects >= minimum hits; the rest joins the last."""
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0.0
    for k, e in enumerate(expected):
        current.append(k)
        total += e
        if total >= minimum:
            groups.append(current)
            current, total = [], 0.0
    if current:
        if groups:
            groups[-1].extend(current)
        else:
            groups.append(current)
    return groups


def _chi_square(observed: np.ndarray, expected: np.ndarray) -> tuple[float, int, float]:
    """Pearson chi-square with categories of expected count < 5 pooled; -> (statistic, dof, p-value)."""
    from scipy import stats

    big = expected >= 5
    obs = np.append(observed[big], observed[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    if exp[-1] < 1e-12:
        obs, exp = obs[:-1], exp[:-1]
    dof = max(1, len(exp) - 1)
    statistic = float(((obs - exp) ** 2 / np.maximum(exp, 1e-12)).sum())
    return statistic, dof, float(stats.chi2.sf(statistic, dof))


def _joint_sampler_test(subject: ObservationSubject, model: Any, name: str, rates_row: torch.Tensor,
                        offset: int, where: str, **kwargs: Any) -> None:
    """Chi-square of one bin's joint sampled counts against exp(log_prob) on the grid (N <= grid_neurons)."""
    cfg = subject.settings
    n = rates_row.shape[-1]
    grid = _grid(n, cfg.max_count)  # (G, N)
    history = kwargs.get("history")
    grid_kwargs = {} if history is None else {"history": history[:1].expand(grid.shape[0], *history.shape[1:])}
    draw_kwargs = {} if history is None else {"history": history[:1].expand(cfg.n_draws, *history.shape[1:])}
    pmf = _log_prob(model, grid[:, None, :], rates_row.expand(grid.shape[0], 1, n),
                    torch.ones(grid.shape[0], 1, dtype=torch.bool), name, **grid_kwargs).double().exp().numpy()
    draws = _sample(model, rates_row.expand(cfg.n_draws, 1, n), torch.ones(cfg.n_draws, 1, dtype=torch.bool),
                    subject.generator(offset), name, **draw_kwargs)[:, 0].long()  # (M, N)
    inside = (draws <= cfg.max_count).all(1)
    codes = (draws[inside] * (cfg.max_count + 1) ** torch.arange(n - 1, -1, -1)).sum(1)
    observed = np.bincount(codes.numpy(), minlength=len(pmf)).astype(float)
    observed = np.append(observed, float((~inside).sum()))
    expected = np.append(pmf, max(0.0, 1.0 - pmf.sum())) * cfg.n_draws
    impossible = (expected < 1e-6) & (observed > 0)
    if impossible.any():
        index = int(np.flatnonzero(impossible)[0])
        what = grid[index].long().tolist() if index < len(pmf) else f"above {cfg.max_count}"
        raise fail(name, f"{where}: the sampler drew counts {what} ({int(observed[index])} times in {cfg.n_draws}), "
                          f"which log_prob gives probability {expected[index] / cfg.n_draws:.3g}")
    statistic, dof, p_value = _chi_square(observed, expected)
    if p_value < cfg.p_threshold:
        worst = int(np.argmax(np.abs(observed - expected) / np.sqrt(np.maximum(expected, 1.0))))
        what = grid[worst].long().tolist() if worst < len(pmf) else f"above {cfg.max_count}"
        raise fail(name, f"{where}: the sampler's counts disagree with exp(log_prob) (chi-square {statistic:.1f} on "
                          f"{dof} dof, p = {p_value:.2g}); e.g. counts {what} drawn {int(observed[worst])} times "
                          f"in {cfg.n_draws}, expected {expected[worst]:.1f}")


@_check("sampler_matches_log_prob")
def _sampler_matches_log_prob(subject: ObservationSubject, name: str) -> None:
    """Draws follow exp(log_prob): one bin's joint counts (chi-square) and every bin's conditionals given the sampled past."""
    model, n, cfg = subject.component(), subject.n_neurons, subject.settings
    if n <= cfg.grid_neurons:
        for config in range(2):
            _joint_sampler_test(subject, model, name, subject.rates((1, 1, n), 20 + config), 30 + config,
                                f"one bin at rates {[round(r, 3) for r in subject.rates((1, 1, n), 20 + config).flatten().tolist()]}")
    # Every bin's one-entry conditionals given the sampled earlier bins (and the bin's other neurons).
    n_time, n_draws = cfg.n_time, cfg.n_draws
    rates = subject.rates((1, n_time, n), 40).expand(n_draws, n_time, n)
    draws = _sample(model, rates, torch.ones(n_draws, n_time, dtype=torch.bool), subject.generator(41), name)
    # Draws above the grid are left out of a (bin, neuron) test: given x <= K, x follows the conditional
    # pmf renormalised over 0..K, which is what is computed, so the test stays exact.
    max_count = min(max(cfg.max_count, int(draws.max().item()) + 5), 4 * cfg.max_count)
    ks = torch.arange(max_count + 1, dtype=draws.dtype)
    for t in range(n_time):
        for j in range(min(n, cfg.grid_neurons)):
            kept = draws[draws[:, t, j] <= max_count]  # (M', T, N)
            if len(kept) < n_draws // 2:
                raise CheckSkipped(f"{name}: at bin {t} most draws exceed {max_count} spikes; raise KitSettings.max_count")
            prefix = kept[:, :t + 1].repeat_interleave(len(ks), 0)  # (M' * (K+1), t+1, N)
            prefix[:, t, j] = ks.repeat(len(kept))
            lp = _log_prob(model, prefix, rates[:1, :t + 1].expand(prefix.shape[0], t + 1, n),
                           torch.ones(prefix.shape[0], t + 1, dtype=torch.bool), name).double()
            lp = lp.view(len(kept), len(ks))
            if not torch.isfinite(lp.logsumexp(1)).all():
                raise fail(name, f"bin {t}, neuron {j}: log_prob is -inf for every count 0..{max_count} given some "
                                  f"sampled history")
            probs = torch.softmax(lp, 1).numpy()  # (M', K+1): each draw's conditional pmf
            observed = np.bincount(kept[:, t, j].long().numpy(), minlength=len(ks)).astype(float)
            impossible = (probs.sum(0) < 1e-6) & (observed > 0)
            if impossible.any():
                k = int(np.flatnonzero(impossible)[0])
                raise fail(name, f"bin {t}, neuron {j}: the sampler drew count {k} {int(observed[k])} times in "
                                  f"{len(kept)}, which log_prob's conditional makes (nearly) impossible")
            for group in _pooled_groups(probs.sum(0)):
                p_group = probs[:, group].sum(1)  # (M,)
                hits, expected = observed[group].sum(), p_group.sum()
                sd = math.sqrt(max((p_group * (1 - p_group)).sum(), 1e-12))
                z = (hits - expected) / sd
                if abs(z) > cfg.z_threshold:
                    counts_text = f"count {group[0]}" if len(group) == 1 else f"counts {group[0]}..{group[-1]}"
                    kind = "one-step conditional given the sampled history" if subject.is_autoregressive else "conditional"
                    raise fail(name, f"bin {t}, neuron {j}: the sampler drew {counts_text} in {int(hits)} of "
                                      f"{len(kept)} trials where log_prob's {kind} expects {expected:.1f} +- {sd:.1f} "
                                      f"(z = {z:.1f})")
    # With a given history (when both methods take one), the first bin again.
    if subject.is_autoregressive and _accepts(model.sample, "history") and _accepts(model.log_prob, "history") \
            and n <= cfg.grid_neurons:
        history = draws[:1, :]  # (1, T, N): a sampled history
        _joint_sampler_test(subject, model, name, subject.rates((1, 1, n), 50), 51,
                            "the bin after a given history", history=history)


@_check("sample_mean_tracks_rates", requires=("rate_parameterised",))
def _sample_mean_tracks_rates(subject: ObservationSubject, name: str) -> None:
    """For a rate-parameterised model, the mean of many draws equals the rate."""
    model, n, cfg = subject.component(), subject.n_neurons, subject.settings
    n_draws = 2 * cfg.n_draws
    rates = subject.rates((1, 4, n), 60).expand(n_draws, 4, n)
    draws = _sample(model, rates, torch.ones(n_draws, 4, dtype=torch.bool), subject.generator(61), name).double()
    mean, sd = draws.mean(0), draws.std(0).clamp_min(1e-3)
    z = (mean - rates[0].double()) / (sd / math.sqrt(n_draws))
    worst = int(z.abs().argmax())
    if z.abs().max() > cfg.z_threshold:
        t, j = divmod(worst, n)
        raise fail(name, f"the mean of {n_draws} draws at rate {rates[0, t, j].item():.4f} is "
                          f"{mean[t, j].item():.4f} (z = {z.flatten()[worst].item():.1f}); a rate-parameterised "
                          f"model's samples have mean = rate")


@_check("log_prob_is_batch_invariant")
def _batch_invariant(subject: ObservationSubject, name: str) -> None:
    """A trial's log_prob does not depend on the other trials in the batch or on their order."""
    model, n, cfg = subject.component(), subject.n_neurons, subject.settings
    n_trials, n_time = 6, 7
    lengths = subject.trial_lengths(n_trials, n_time)
    mask = _lengths_mask(lengths, n_time)
    rates = subject.rates((n_trials, n_time, n), 70)
    counts = _sample(model, rates, mask, subject.generator(71), name)
    whole = _log_prob(model, counts, rates, mask, name)
    alone = torch.cat([_log_prob(model, counts[i:i + 1], rates[i:i + 1], mask[i:i + 1], name) for i in range(n_trials)])
    order = torch.randperm(n_trials, generator=subject.generator(72))
    permuted = torch.empty_like(whole)
    permuted[order] = _log_prob(model, counts[order], rates[order], mask[order], name)
    doubled = _log_prob(model, counts.repeat(2, 1, 1), rates.repeat(2, 1, 1), mask.repeat(2, 1), name)
    for label, other in (("each trial alone", alone), ("the batch permuted", permuted),
                         ("the batch repeated twice", doubled[:n_trials]), ("the repeat's second half", doubled[n_trials:])):
        if not torch.allclose(whole, other, rtol=cfg.rtol, atol=cfg.atol):
            i = int((whole - other).abs().argmax())
            raise fail(name, f"trial {i}'s log_prob is {whole[i].item():.6g} in the batch but {other[i].item():.6g} "
                              f"with {label}: per-trial results must not depend on batching")


@_check("log_prob_is_neuron_permutation_invariant", excludes=("per_neuron",))
def _neuron_permutation(subject: ObservationSubject, name: str) -> None:
    """Permuting the neurons of counts and rates together leaves log_prob unchanged (models without per-neuron parameters)."""
    model, n, cfg = subject.component(), subject.n_neurons, subject.settings
    if n < 2:
        raise CheckSkipped(f"{name}: one neuron")
    rates = subject.rates((4, 6, n), 80)
    mask = torch.ones(4, 6, dtype=torch.bool)
    counts = _sample(model, rates, mask, subject.generator(81), name)
    order = torch.roll(torch.arange(n), 1)
    a = _log_prob(model, counts, rates, mask, name)
    b = _log_prob(model, counts[..., order], rates[..., order], mask, name)
    if not torch.allclose(a, b, rtol=cfg.rtol, atol=cfg.atol):
        raise fail(name, f"log_prob changed from {a.tolist()} to {b.tolist()} when the neurons were permuted; "
                          f"a model with per-neuron parameters should carry the tag 'per_neuron'")


@_check("padding_contributes_nothing", requires=("supports_mask",))
def _padding(subject: ObservationSubject, name: str) -> None:
    """Padded bins (mask False) contribute nothing: any counts or rates there, or cutting them off, give the same log_prob."""
    model, n, cfg = subject.component(), subject.n_neurons, subject.settings
    n_trials, n_time = 4, 8
    lengths = _padding_lengths(n_trials, n_time)
    mask = _lengths_mask(lengths, n_time)
    rates = subject.rates((n_trials, n_time, n), 90)
    counts = _sample(model, rates, mask, subject.generator(91), name) * mask[..., None]
    clean = _log_prob(model, counts, rates, mask, name)
    garbage_counts = torch.where(mask[..., None], counts, torch.full_like(counts, 7.0))
    garbage_rates = torch.where(mask[..., None], rates, torch.where(torch.rand(rates.shape, generator=subject.generator(92)) < 0.5,
                                                                    torch.zeros_like(rates), torch.full_like(rates, 50.0)))
    dirty = _log_prob(model, garbage_counts, garbage_rates, mask, name)
    if not torch.allclose(clean, dirty, rtol=cfg.rtol, atol=cfg.atol):
        i = int((clean - dirty).abs().argmax())
        raise fail(name, f"trial {i} (length {lengths[i]} of {n_time}): log_prob went from {clean[i].item():.6g} to "
                          f"{dirty[i].item():.6g} when only its padded bins changed: padding leaks into the likelihood")
    for i, length in enumerate(lengths):
        cut = _log_prob(model, counts[i:i + 1, :length], rates[i:i + 1, :length],
                        torch.ones(1, length, dtype=torch.bool), name)
        if not torch.allclose(cut, clean[i:i + 1], rtol=cfg.rtol, atol=cfg.atol):
            raise fail(name, f"trial {i}: log_prob with {n_time - length} padded bins is {clean[i].item():.6g} but "
                              f"{cut.item():.6g} with the padding cut off")


@_check("gradients_are_finite")
def _gradients(subject: ObservationSubject, name: str) -> None:
    """The gradient of log_prob w.r.t. the rates is finite (zero on padded bins), small rates included."""
    model, n = subject.component(), subject.n_neurons
    n_trials, n_time = 3, 6
    with_mask = subject.supports("supports_mask")
    mask = _lengths_mask(subject.trial_lengths(n_trials, n_time), n_time)
    rates = subject.rates((n_trials, n_time, n), 100)
    counts = _sample(model, rates, mask, subject.generator(101), name)
    rates[0, 0, 0] = 1e-6  # a tiny rate
    if with_mask:
        rates = torch.where(mask[..., None], rates, torch.zeros_like(rates))  # zero rates on padding
    rates.requires_grad_(True)
    with torch.enable_grad():
        lp = model.log_prob(counts, rates, mask)
        if not isinstance(lp, torch.Tensor) or not lp.requires_grad:
            raise fail(name, "log_prob is not differentiable w.r.t. the rates (the encoder is trained through it)")
        (grad,) = torch.autograd.grad(lp.sum(), rates, allow_unused=True)
    if grad is None or not torch.isfinite(grad).all():
        raise fail(name, "the gradient of log_prob w.r.t. the rates is " + ("missing" if grad is None else
                          f"not finite at {(~torch.isfinite(grad)).nonzero()[:3].tolist()} (trial, bin, neuron)"))
    if with_mask and grad[~mask].abs().sum() > 0:
        raise fail(name, "the gradient of log_prob w.r.t. the rates is non-zero on padded bins")
    if grad.abs().sum() == 0:
        raise fail(name, "the gradient of log_prob w.r.t. the rates is zero everywhere")


@_check("seed_reproduces_samples")
def _seed(subject: ObservationSubject, name: str) -> None:
    """The same torch.Generator seed gives the same samples; another seed gives other samples."""
    model, n = subject.component(), subject.n_neurons
    rates = subject.rates((8, 10, n), 110) + 0.5
    mask = torch.ones(8, 10, dtype=torch.bool)
    seeds_reproduce(name, lambda seed: _sample(model, rates, mask, torch.Generator().manual_seed(seed), name))


@_check("fit_returns_figures")
def _fit(subject: ObservationSubject, name: str) -> None:
    """fit(counts, rates, mask) returns a dict of named finite numbers, and the model still scores data after."""
    model, n = subject.component(), subject.n_neurons
    counts, rates, mask = synthetic_data(n_neurons=n, n_trials=32, n_time=30, seed=subject.settings.seed + 1)
    finite_figures(name, "fit", model.fit(counts, rates, mask))
    own = _sample(model, rates, mask, subject.generator(5), name)
    lp = _log_prob(model, own, rates, mask, name)
    if not torch.isfinite(lp).all():
        raise fail(name, "after fit, log_prob of the model's own samples is not finite")


@_check("state_dict_round_trips")
def _state_dict(subject: ObservationSubject, name: str) -> None:
    """A model rebuilt as a run rebuilds it loads the saved weights through the run's own loader
    (``ldns_framework.checkpoint.load_module_weights``) and then scores and samples identically."""
    model, n = subject.component(), subject.n_neurons
    fresh = subject.build()
    if isinstance(model, torch.nn.Module):
        weights_round_trip(name, model, fresh)
    if isinstance(fresh, torch.nn.Module):
        fresh.eval()
    rates = subject.rates((3, 6, n), 120)
    mask = torch.ones(3, 6, dtype=torch.bool)
    counts = _sample(model, rates, mask, subject.generator(121), name)
    a, b = _log_prob(model, counts, rates, mask, name), _log_prob(fresh, counts, rates, mask, name)
    if not torch.allclose(a, b, rtol=1e-6, atol=1e-6):
        raise fail(name, f"log_prob differs after the weights round trip: {a.tolist()} vs {b.tolist()}")
    again = _sample(fresh, rates, mask, subject.generator(121), name)
    if not torch.equal(counts, again):
        raise fail(name, "samples differ after the weights round trip (same seed)")


@_check("log_prob_elements_are_zero_where_unscored")
def _elements_zero(subject: ObservationSubject, name: str) -> None:
    """log_prob_elements returns (B, T, N), exactly 0 on unscored entries, with no NaN gradient reaching them."""
    model, n = subject.component(), subject.n_neurons
    n_trials, n_time = 4, 6
    rates = subject.rates((n_trials, n_time, n), 160)
    full = torch.ones(n_trials, n_time, dtype=torch.bool)
    counts = _sample(model, rates, full, subject.generator(161), name)
    scored = torch.rand(counts.shape, generator=subject.generator(162)) < 0.6  # (B, T, N): coordinated dropout
    scored[:, 0] = True
    rates = torch.where(scored, rates, torch.zeros_like(rates)).requires_grad_(True)  # zero rates where unscored
    with torch.enable_grad():
        elements = model.log_prob_elements(counts, rates, scored)
        if not isinstance(elements, torch.Tensor) or elements.shape != counts.shape:
            raise fail(name, f"log_prob_elements must return a tensor of shape {tuple(counts.shape)} (trials, time, "
                             f"neurons), got {type(elements).__name__} {tuple(getattr(elements, 'shape', ()))}")
        off = elements.detach()[~scored]
        if (off != 0).any():
            raise fail(name, f"log_prob_elements is non-zero on {int((off != 0).sum())} unscored entries (e.g. "
                             f"{off[off != 0][:3].tolist()}); use torch.where(scored, value, 0.0)")
        if not torch.isfinite(elements.detach()[scored]).all():
            raise fail(name, "log_prob_elements is not finite on scored entries of the model's own samples")
        if elements.requires_grad:
            (grad,) = torch.autograd.grad(elements.sum(), rates, allow_unused=True)
            if grad is not None and not torch.isfinite(grad).all():
                raise fail(name, "the gradient of log_prob_elements w.r.t. the rates is not finite where rates on "
                                 "unscored entries are 0: mask with torch.where before anything can be -inf")


@_check("log_prob_is_the_sum_of_elements")
def _elements_sum(subject: ObservationSubject, name: str) -> None:
    """log_prob equals log_prob_elements summed over neurons and valid bins (scored = the bin mask)."""
    model, n, cfg = subject.component(), subject.n_neurons, subject.settings
    n_trials, n_time = 4, 7
    mask = _lengths_mask(subject.trial_lengths(n_trials, n_time), n_time)
    rates = subject.rates((n_trials, n_time, n), 170)
    counts = _sample(model, rates, mask, subject.generator(171), name)
    whole = _log_prob(model, counts, rates, mask, name)
    elements = model.log_prob_elements(counts, rates, mask[..., None].expand_as(counts)).detach()
    summed = elements.sum(dim=(1, 2))
    if not torch.allclose(whole, summed, rtol=cfg.rtol, atol=cfg.atol):
        i = int((whole - summed).abs().argmax())
        raise fail(name, f"trial {i}: log_prob is {whole[i].item():.6g} but its elements sum to {summed[i].item():.6g}")


@_check("fitting_is_declared")
def _fitting_declared(subject: ObservationSubject, name: str) -> None:
    """A model that is not fitted when built declares needs_fitting; after fit, is_fitted is True."""
    fresh = subject.build()
    needs = bool(getattr(fresh, "needs_fitting", False))
    if getattr(fresh, "is_fitted", True) is False and not needs:
        raise fail(name, "a freshly built model reports is_fitted False but needs_fitting is False: the pipeline "
                         "would use it unfitted; declare needs_fitting = True")
    counts, rates, mask = synthetic_data(n_neurons=subject.n_neurons, n_trials=16, n_time=20, seed=subject.settings.seed)
    fresh.fit(counts, rates, mask)
    if getattr(fresh, "is_fitted", True) is not True:
        raise fail(name, f"after fit, is_fitted is {getattr(fresh, 'is_fitted', None)!r}, expected True")


@_check("encoder_observation_is_declared")
def _encoder_observation(subject: ObservationSubject, name: str) -> None:
    """encoder_observation() is None or a registered name; an autoregressive model names a factorised one."""
    declared = subject.prepared().encoder_observation()
    if declared is not None and (not isinstance(declared, str) or not declared):
        raise fail(name, f"encoder_observation() must return None or a registered name, got {declared!r}")
    if subject.is_autoregressive and declared is None:
        raise fail(name, "an autoregressive model is fitted after the encoder, on its rates, so it cannot train it: "
                         "encoder_observation() must name the factorised model that trains the encoder")
    if declared is not None and subject.registry is not None:
        if subject.registry.catalogue.get("observation", declared) is None:
            raise fail(name, f"encoder_observation() names {declared!r}, which is not a registered observation model "
                             f"(in a contract test, list its plugin module in `plugins`)")


@_check("factorises_over_time", autoregressive=False)
def _factorises(subject: ObservationSubject, name: str) -> None:
    """A model that is not autoregressive scores each bin on its own: log_prob is the sum over single bins."""
    model, n, cfg = subject.component(), subject.n_neurons, subject.settings
    n_time = 6
    rates = subject.rates((3, n_time, n), 130)
    mask = torch.ones(3, n_time, dtype=torch.bool)
    counts = _sample(model, rates, mask, subject.generator(131), name)
    whole = _log_prob(model, counts, rates, mask, name)
    parts = sum(_log_prob(model, counts[:, t:t + 1], rates[:, t:t + 1], mask[:, t:t + 1], name) for t in range(n_time))
    if not torch.allclose(whole, parts, rtol=cfg.rtol, atol=cfg.atol):
        raise fail(name, f"is_autoregressive is False, but log_prob ({whole.tolist()}) is not the sum of its bins' "
                          f"({parts.tolist()}); declare is_autoregressive = True and the 'autoregressive' tag if a "
                          f"bin depends on earlier ones")


@_check("no_look_ahead", requires=("supports_mask",), autoregressive=True)
def _no_look_ahead(subject: ObservationSubject, name: str) -> None:
    """log_prob of bins <= t (the rest masked) does not change when the counts after t change."""
    model, n, cfg = subject.component(), subject.n_neurons, subject.settings
    n_trials, n_time = 4, 10
    rates = subject.rates((n_trials, n_time, n), 140)
    full = torch.ones(n_trials, n_time, dtype=torch.bool)
    counts = _sample(model, rates, full, subject.generator(141), name)
    other = _sample(model, rates, full, subject.generator(142), name)
    for t in (0, 3, 6):
        prefix = torch.arange(n_time)[None, :].expand(n_trials, n_time) <= t
        changed = torch.where(prefix[..., None], counts, other + (other == counts).to(other.dtype))
        a = _log_prob(model, counts, rates, prefix, name)
        b = _log_prob(model, changed, rates, prefix, name)
        if not torch.allclose(a, b, rtol=cfg.rtol, atol=cfg.atol):
            i = int((a - b).abs().argmax())
            raise fail(name, f"the log_prob of bins 0..{t} of trial {i} went from {a[i].item():.6g} to "
                              f"{b[i].item():.6g} when only counts after bin {t} changed: the model looks ahead")


@_check("one_step_conditionals_normalise", autoregressive=True)
def _one_step_normalise(subject: ObservationSubject, name: str) -> None:
    """Given a sampled history, the pmf of the next bin, exp(log_prob(<= t) - log_prob(< t)), sums to 1 over its counts."""
    model, n, cfg = subject.component(), subject.n_neurons, subject.settings
    if n > cfg.grid_neurons:
        raise CheckSkipped(f"{name}: the model has {n} fixed neurons; the joint grid needs <= {cfg.grid_neurons}")
    n_trials, n_time = 3, 8
    rates = subject.rates((n_trials, n_time, n), 150)
    counts = _sample(model, rates, torch.ones(n_trials, n_time, dtype=torch.bool), subject.generator(151), name)
    grid = _grid(n, cfg.max_count)  # (G, N)
    g = grid.shape[0]
    for t in (1, n_time // 2, n_time - 1):
        before = _log_prob(model, counts[:, :t], rates[:, :t], torch.ones(n_trials, t, dtype=torch.bool), name).double()
        rows = counts[:, :t + 1].repeat_interleave(g, 0)  # (B * G, t + 1, N)
        rows[:, t] = grid.repeat(n_trials, 1)
        lp = _log_prob(model, rows, rates[:, :t + 1].repeat_interleave(g, 0),
                       torch.ones(rows.shape[0], t + 1, dtype=torch.bool), name).double().view(n_trials, g)
        totals = (lp - before[:, None]).logsumexp(1).exp()
        i = int((totals - 1).abs().argmax())
        if abs(totals[i].item() - 1) > cfg.normalisation_tolerance:
            raise fail(name, f"trial {i}: the one-step pmf of bin {t} given bins 0..{t - 1} sums to "
                              f"{totals[i].item():.6g}, not 1: log_prob of a prefix is not a marginal (does a bin's "
                              f"term depend on later bins?)")



def synthetic_data(*, n_trials: int = 64, n_time: int = 50, n_neurons: int = 3,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Counts, rates (B, T, N) float32 and mask (B, T) with a known history effect, for fitting in checks.

    Rates are smooth positive curves (one random phase per trial and neuron); counts are drawn bin
    by bin with rate r_t exp(-1.5 s_{t-1} - 0.5 s_{t-2}) (refractoriness), so an autoregressive
    model learns a non-zero history filter. Trials have lengths between T/2 and T (right-padded).
    """
    generator = torch.Generator().manual_seed(seed)
    phase = 2 * math.pi * torch.rand(n_trials, 1, n_neurons, generator=generator)
    t = torch.arange(n_time, dtype=torch.float32)[None, :, None]
    rates = 0.4 * torch.exp(0.8 * torch.sin(2 * math.pi * t / 25.0 + phase))  # (B, T, N)
    counts = torch.zeros(n_trials, n_time, n_neurons)
    for step in range(n_time):
        drive = torch.zeros(n_trials, n_neurons)
        if step >= 1:
            drive = drive - 1.5 * counts[:, step - 1]
        if step >= 2:
            drive = drive - 0.5 * counts[:, step - 2]
        counts[:, step] = torch.poisson(rates[:, step] * torch.exp(drive), generator=generator)
    lengths = torch.randint(max(1, n_time // 2), n_time + 1, (n_trials,), generator=generator)
    lengths[0] = n_time
    mask = torch.arange(n_time)[None, :] < lengths[:, None]  # (B, T)
    return counts * mask[..., None], rates, mask
