"""The report's conditional section: PSTHs per reach direction, decoded behaviour, statistics per
length bucket; drawn from tiny fake reach data, left out when the run is not conditional."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ldns_framework import SpikeData
from ldns_framework.metrics import Behaviour
from ldns_framework.report import build_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BEHAVIOUR = Behaviour(angle_bin=10, angle_bins=1, directions=4, sigma_ms=40.0)
CONDITIONAL = {"conditional-psth", "conditional-decoding"}


def reaches(n: int, seed: int, n_time: int = 30, n_neurons: int = 6, variable: bool = False) -> SpikeData:
    """Centre-out reaches: a bell-shaped velocity along a random angle; neurons cosine-tuned to velocity."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(-np.pi, np.pi, n)
    speed = np.exp(-0.5 * ((np.arange(n_time) - n_time / 3) / 4.0) ** 2)  # (time,)
    velocity = speed[None, :, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)[:, None, :]  # (n, T, 2)
    tuning = np.random.default_rng(0).normal(size=(2, n_neurons)) * 2.0
    counts = rng.poisson(0.3 * np.exp(velocity @ tuning))
    lengths = rng.integers(n_time // 2, n_time + 1, n) if variable else None
    if lengths is not None:
        lengths[0] = n_time
        valid = (np.arange(n_time)[None, :] < lengths[:, None])[..., None]
        counts, velocity = counts * valid, velocity * valid
    return SpikeData(counts, lengths=lengths, covariates={"hand_vel": velocity}, bin_width_s=0.01)


def angle_samples(spikes: SpikeData) -> SpikeData:
    """Samples carrying only the direction they were generated for (reach_angle, radians)."""
    velocity = spikes.covariates["hand_vel"]
    angle = np.arctan2(velocity[:, BEHAVIOUR.angle_bin, 1], velocity[:, BEHAVIOUR.angle_bin, 0])
    return SpikeData(spikes.counts, lengths=spikes.lengths, covariates={"reach_angle": angle[:, None]},
                     bin_width_s=spikes.bin_width_s)


def images(page) -> list[str]:
    return re.findall(r"<img src='([^']+)'", page.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def conditional_page(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    train, test = reaches(40, 0, variable=True), reaches(12, 1, variable=True)
    samples = {"velocity-conditioned": reaches(10, 2, variable=True),
               "angle-conditioned": angle_samples(reaches(10, 3))}
    return build_report(run, samples, test, None, train=train, behaviour=BEHAVIOUR, training_logs={})


def test_the_conditional_figures_exist_and_the_page_names_them(conditional_page):
    text = conditional_page.read_text(encoding="utf-8")
    sources = set(images(conditional_page))
    assert {f"{anchor}.png" for anchor in CONDITIONAL | {"conditional-lengths"}} <= sources
    for anchor in CONDITIONAL | {"conditional-lengths"}:
        assert (conditional_page.parent / f"{anchor}.png").read_bytes()[:8] == PNG_MAGIC
        assert f"href='#{anchor}'" in text  # in the navigation
    assert "PSTH per reach direction" in text and "decoded behaviour" in text and "per trial length" in text
    assert "could not be drawn" not in text


def test_the_figures_are_small(conditional_page):
    from matplotlib.image import imread

    for anchor in CONDITIONAL | {"conditional-lengths"}:
        height, width = imread(conditional_page.parent / f"{anchor}.png").shape[:2]
        assert width <= 1400 and height <= 400


def test_an_unconditional_fixed_length_run_has_no_conditional_section(tmp_path):
    data = reaches(12, 1)
    bare = SpikeData(reaches(8, 2).counts, bin_width_s=0.01)
    page = build_report(tmp_path, bare, data, None, training_logs={}, baseline=False)
    assert not any(source.startswith("conditional-") for source in images(page))


def test_variable_length_alone_draws_only_the_length_buckets(tmp_path):
    data = reaches(12, 1, variable=True)
    generated = reaches(8, 2, variable=True)
    bare = SpikeData(generated.counts, lengths=generated.lengths, bin_width_s=0.01)
    page = build_report(tmp_path, bare, data, None, training_logs={}, baseline=False)
    assert [s for s in images(page) if s.startswith("conditional-")] == ["conditional-lengths.png"]
