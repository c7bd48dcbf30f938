"""The latent-diffusion step rules (solvers.py) against the diffusers schedulers they replace.

diffusers is a test dependency only: the samplers were written in-house so that ``ldns sample``
does not import it (1.3-1.9 s). Each rule must give the same timesteps and, from the same
generator, the same latents as the diffusers scheduler configured as schedule.py documents.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from ldns_plugins.latent_diffusion.schedule import SAMPLERS, NoiseSchedule, make_solver, run_sampler

pytest.importorskip("diffusers")


def diffusers_scheduler(sampler: str, schedule: NoiseSchedule, steps: int, sde: bool = False):
    """The diffusers scheduler each sampler reproduces (the configuration schedule.py documents)."""
    common = {"num_train_timesteps": schedule.train_steps, "beta_start": schedule.beta_start,
              "beta_end": schedule.beta_end, "beta_schedule": "linear", "prediction_type": schedule.prediction}
    if sampler == "ddpm":
        from diffusers.schedulers.scheduling_ddpm import DDPMScheduler

        scheduler = DDPMScheduler(**common, variance_type="fixed_small", clip_sample=False)
    elif sampler == "ddim":
        from diffusers.schedulers.scheduling_ddim import DDIMScheduler

        scheduler = DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing")
    else:
        from diffusers.schedulers.scheduling_dpmsolver_multistep import DPMSolverMultistepScheduler

        scheduler = DPMSolverMultistepScheduler(**common, algorithm_type="sde-dpmsolver++" if sde else "dpmsolver++",
                                                solver_order=2, thresholding=False, lower_order_final=True)
    with warnings.catch_warnings():  # diffusers' np.array(tensor) trips a numpy 2 DeprecationWarning
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        scheduler.set_timesteps(steps)
    return scheduler


def options(sampler: str, steps: int):
    return SAMPLERS[sampler]() if sampler == "ddpm" else SAMPLERS[sampler](steps=steps)


def toy_denoiser(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A smooth, timestep-dependent stand-in for the network: (B, T, D), (B,) -> (B, T, D)."""
    scale = (t.float() / 1000.0)[:, None, None]  # (B, 1, 1)
    return torch.tanh(z) * (0.5 + scale) + 0.1 * z.roll(1, dims=1)


def diffusers_loop(sampler: str, schedule: NoiseSchedule, steps: int, shape: tuple[int, int, int],
                   seed: int, sde: bool = False, **step_options: float) -> torch.Tensor:
    """The sampling loop the project ran on diffusers until the step rules moved in-house."""
    scheduler = diffusers_scheduler(sampler, schedule, steps, sde)
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(shape, generator=generator) * scheduler.init_noise_sigma  # (B, T, D)
    for t in scheduler.timesteps:
        t_batch = torch.full((shape[0],), int(t), dtype=torch.long)  # (B,)
        z = scheduler.step(toy_denoiser(scheduler.scale_model_input(z, t), t_batch), t, z, generator=generator,
                           return_dict=False, **step_options)[0]
    return z


@pytest.mark.parametrize("sampler", ["dpm-solver++", "ddim"])
@pytest.mark.parametrize("steps", [1, 2, 3, 7, 10, 14, 15, 25, 30, 50, 333, 1000])
def test_timesteps_match_diffusers(sampler: str, steps: int) -> None:
    schedule = NoiseSchedule()
    ours = make_solver(sampler, schedule, options(sampler, steps)).timesteps
    assert ours == diffusers_scheduler(sampler, schedule, steps).timesteps.tolist()
    assert len(ours) == steps and ours[0] == 999


def test_ddpm_runs_every_training_step_downwards() -> None:
    solver = make_solver("ddpm", NoiseSchedule(train_steps=50))
    assert solver.timesteps == list(range(49, -1, -1))
    assert solver.timesteps == diffusers_scheduler("ddpm", NoiseSchedule(train_steps=50), 50).timesteps.tolist()


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize(("sampler", "steps", "train_steps"), [("dpm-solver++", 25, 1000), ("dpm-solver++", 10, 1000),
                                                               ("dpm-solver++", 1, 1000), ("dpm-solver++", 20, 100),
                                                               ("ddim", 25, 1000), ("ddim", 30, 1000),
                                                               ("ddpm", None, 100)])
def test_samples_match_diffusers(sampler: str, steps: int | None, train_steps: int, prediction: str) -> None:
    schedule = NoiseSchedule(train_steps, prediction=prediction)
    steps = train_steps if steps is None else steps
    shape = (3, 16, 2)
    ours = run_sampler(toy_denoiser, shape, schedule=schedule, sampler=sampler, options=options(sampler, steps),
                       generator=torch.Generator().manual_seed(7))
    reference = diffusers_loop(sampler, schedule, steps, shape, seed=7)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
    assert ours.abs().max() > 0.1  # not a degenerate all-zero comparison


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize(("eta", "steps"), [(1.0, 50), (1.0, 7), (0.3, 25)])
def test_stochastic_ddim_matches_diffusers(eta: float, steps: int, prediction: str) -> None:
    """DDIM with eta > 0 adds sigma_t times fresh noise from the generator each step, as diffusers does."""
    schedule = NoiseSchedule(prediction=prediction)
    shape = (3, 16, 2)
    ours = run_sampler(toy_denoiser, shape, schedule=schedule, sampler="ddim",
                       options=SAMPLERS["ddim"](steps=steps, eta=eta), generator=torch.Generator().manual_seed(7))
    reference = diffusers_loop("ddim", schedule, steps, shape, seed=7, eta=eta)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
    deterministic = run_sampler(toy_denoiser, shape, schedule=schedule, sampler="ddim",
                                options=SAMPLERS["ddim"](steps=steps), generator=torch.Generator().manual_seed(7))
    assert not torch.allclose(ours, deterministic, atol=1e-3)  # the noise did enter


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("steps", [1, 2, 10, 25, 50])
def test_sde_dpm_solver_matches_diffusers(steps: int, prediction: str) -> None:
    """The SDE form of DPM-Solver++ (2M) draws its noise as diffusers' sde-dpmsolver++ does."""
    schedule = NoiseSchedule(prediction=prediction)
    shape = (3, 16, 2)
    options = SAMPLERS["dpm-solver++"](steps=steps, sde=True)
    ours = run_sampler(toy_denoiser, shape, schedule=schedule, sampler="dpm-solver++", options=options,
                       generator=torch.Generator().manual_seed(7))
    reference = diffusers_loop("dpm-solver++", schedule, steps, shape, seed=7, sde=True)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
    ode = run_sampler(toy_denoiser, shape, schedule=schedule, sampler="dpm-solver++",
                      options=SAMPLERS["dpm-solver++"](steps=steps), generator=torch.Generator().manual_seed(7))
    assert steps == 1 or not torch.allclose(ours, ode, atol=1e-3)  # the noise did enter (one step lands on sigma 0)


def test_ddpm_draws_fresh_noise_from_the_generator() -> None:
    schedule = NoiseSchedule(train_steps=20)
    first, second = (run_sampler(toy_denoiser, (2, 8, 2), schedule=schedule, sampler="ddpm",
                                 generator=torch.Generator().manual_seed(seed)) for seed in (0, 1))
    again = run_sampler(toy_denoiser, (2, 8, 2), schedule=schedule, sampler="ddpm",
                        generator=torch.Generator().manual_seed(0))
    assert torch.equal(first, again) and not torch.allclose(first, second)


def test_dpm_solver_lands_on_its_clean_estimate() -> None:
    """The last step goes to sigma 0: its result is the clean latents implied by the last output."""
    schedule = NoiseSchedule(prediction="v_prediction")
    solver = make_solver("dpm-solver++", schedule, options("dpm-solver++", 1))
    z, v = torch.randn(2, 4, 2), torch.randn(2, 4, 2)
    ab = schedule.alphas_cumprod[999]
    torch.testing.assert_close(solver.step(0, v, z, None), ab.sqrt() * z - (1 - ab).sqrt() * v)
