"""Variable-length latent diffusion: centred, edge-replicated windows with a mask channel (the
reference human setting), per-trial lengths at sampling, trimmed outputs, no padding leaks."""

from __future__ import annotations

import pytest
import torch

from ldns_plugins.latent_diffusion.centring import centre, centred_mask, uncentre
from ldns_plugins.latent_diffusion.model import LatentDiffusion, LatentDiffusionConfig
from ldns_plugins.latent_diffusion.schedule import DdimOptions

T, D, S = 24, 3, 2
CENTRED = {"hidden": 16, "blocks": 1, "state_size": 8, "train_steps": 50, "mask_channel": True, "centre": True}


@pytest.fixture(autouse=True)
def _seed_and_one_thread(one_torch_thread):
    torch.manual_seed(0)


def make_model(kind: str | None = None, **options) -> LatentDiffusion:
    return LatentDiffusion(LatentDiffusionConfig(**{**CENTRED, **options}), latent_dim=D, condition_kind=kind,
                           condition_dim=S if kind else 0)


def mask_of(lengths: list[int], length: int = T) -> torch.Tensor:
    return torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]  # (B, T)


def trained(model: LatentDiffusion, length: int = T) -> LatentDiffusion:
    """One loss evaluation records the window; random weights make every input matter."""
    cond = torch.randn(2, length, S) if model.condition_kind else None
    model.training_loss(torch.randn(2, length, D), mask_of([length, 5], length), cond)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for buffer in model.ema.buffers():
            buffer.copy_(0.3 * torch.randn(buffer.shape, generator=generator))
    return model


def test_centre_places_each_trial_in_the_middle_with_replicated_edges() -> None:
    values = torch.tensor([[1.0, 2.0, 3.0, -9.0, -9.0], [4.0, 5.0, 6.0, 7.0, 8.0]])[..., None]  # (2, 5, 1)
    lengths = torch.tensor([3, 5])
    windows = centre(values, lengths, 8)[..., 0]  # (2, 8)
    # left padding (8 - 3) // 2 = 2 and (8 - 5) // 2 = 1; padding copies the edge bins, never the -9s
    assert windows.tolist() == [[1, 1, 1, 2, 3, 3, 3, 3], [4, 4, 5, 6, 7, 8, 8, 8]]
    assert centred_mask(lengths, 8).int().tolist() == [[0, 0, 1, 1, 1, 0, 0, 0], [0, 1, 1, 1, 1, 1, 0, 0]]
    back = uncentre(centre(values, lengths, 8), lengths)[..., 0]  # (2, 5)
    assert back.tolist() == [[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]]
    with pytest.raises(ValueError, match="lengths: expected at most the window of 4 bins"):
        centre(values, lengths, 4)


def test_centre_needs_the_mask_channel() -> None:
    with pytest.raises(ValueError, match="^centre: needs mask_channel: true"):
        LatentDiffusionConfig(centre=True)


def test_the_window_is_the_longest_training_batch_and_is_saved() -> None:
    model = make_model()
    assert int(model.window) == 0 and "window" in model.state_dict()
    model.training_loss(torch.randn(2, T, D), mask_of([T, 7]), None)
    model.training_loss(torch.randn(2, 10, D), mask_of([10, 7], 10), None)
    assert int(model.window) == T
    assert "window" not in LatentDiffusion(LatentDiffusionConfig(mask_channel=True), latent_dim=D).state_dict()


@pytest.mark.parametrize("kind", [None, "sequence"])
def test_the_loss_ignores_whatever_lies_past_each_length(kind: str | None) -> None:
    model = make_model(kind)
    mask = mask_of([T, 13, 4])
    latents = torch.randn(3, T, D)
    cond = torch.randn(3, T, S) if kind else None
    garbage, garbage_cond = latents.clone(), None if cond is None else cond.clone()
    garbage[~mask] = 1e3
    if garbage_cond is not None:
        garbage_cond[~mask] = -1e3
    torch.manual_seed(4)
    clean = model.training_loss(latents, mask, cond)["loss"]
    torch.manual_seed(4)
    noisy = model.training_loss(garbage, mask, garbage_cond)["loss"]
    torch.testing.assert_close(noisy, clean, rtol=0, atol=0)


def test_samples_have_exactly_the_requested_lengths() -> None:
    model = trained(make_model())
    lengths = torch.tensor([24, 17, 5, 1, 11])
    out = model.sample(5, lengths, generator=torch.Generator().manual_seed(2), sampler="ddim",
                       options=DdimOptions(steps=4))
    assert out.shape == (5, 24, D) and torch.isfinite(out).all()
    for trial, length in enumerate(lengths.tolist()):
        assert (out[trial, length:] == 0).all() and (out[trial, :length] != 0).all()


@pytest.mark.parametrize("kind", [None, "sequence"])
def test_a_trial_does_not_depend_on_the_other_trials_or_on_its_condition_past_its_length(kind: str | None) -> None:
    """Every trial is sampled in the same training window, so a trial's draw is the same whatever
    the other trials' lengths (and so the batch's longest length) and whatever the condition holds
    past its own length: padding never leaks into valid outputs."""
    model = trained(make_model(kind))
    options = DdimOptions(steps=4)

    def draw(lengths: list[int], fill: float = 0.0) -> torch.Tensor:
        cond = None
        if kind:
            cond = torch.linspace(-1, 1, T * S).reshape(1, T, S).repeat(2, 1, 1)[:, :max(lengths)].clone()
            cond[0, lengths[0]:] = fill
        return model.sample(2, torch.tensor(lengths), cond, torch.Generator().manual_seed(3), sampler="ddim",
                            options=options)

    first = draw([12, 9])[0, :12]
    torch.testing.assert_close(draw([12, 20])[0, :12], first, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(draw([12, 24], fill=50.0)[0, :12], first, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(draw([13, 9])[0, :12], first)  # its own length does matter


def test_lengths_past_the_training_window_are_sampled_in_a_wider_window() -> None:
    model = trained(make_model(), length=16)
    out = model.sample(2, torch.tensor([30, 8]), generator=torch.Generator().manual_seed(0), sampler="ddim",
                       options=DdimOptions(steps=3))
    assert out.shape == (2, 30, D) and (out[1, 8:] == 0).all() and torch.isfinite(out).all()
