"""The training engine: learns, schedules, checkpoints, resumes exactly, refuses to overwrite; splits
batches over data-parallel processes and agrees on what process 0 read (the 2-process runs
themselves are in tests/e2e/test_ddp.py)."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from ldns_framework.errors import LdnsError, SpecError
from ldns_framework.spec import RunConfig, TrainConfig
from ldns_framework.training import Trainer, lr_factor, make_fabric, on_rank_zero, shard_batches, stage_complete


def regression_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([[1.5], [-2.0], [0.5]]) + 0.3
    return x, y


def mse_loss(model, x, y):
    loss = (model(x) - y).pow(2).mean()
    return {"loss": loss, "mse": loss.detach()}


def noisy_mse_loss(model, x, y):
    """With dropout: draws from the global RNG, which a resumed run must reproduce."""
    pred = torch.nn.functional.dropout(model(x), p=0.1, training=model.training)
    loss = (pred - y).pow(2).mean()
    return {"loss": loss, "mse": loss.detach()}


def make_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(3, 1)


CONFIG = TrainConfig(epochs=12, batch_size=16, lr=0.05, warmup_fraction=0.1, val_every=2, checkpoint_every=3, grad_clip=1.0)


def test_a_toy_component_learns_a_known_target(tmp_path):
    model = make_model()
    x, y = regression_data()
    cfg = TrainConfig(epochs=60, batch_size=16, lr=0.05, val_every=5, grad_clip=0.0)
    result = Trainer(cfg, tmp_path, seed=0, progress=False).fit(model, mse_loss, (x, y), regression_data(32, 1))
    assert result.best_val_loss < 0.05
    torch.testing.assert_close(model.weight.detach(), torch.tensor([[1.5, -2.0, 0.5]]), atol=0.1, rtol=0)
    lines = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(lines) == 60 and {"epoch", "lr", "train_loss", "train_mse", "seconds"} <= set(lines[0])
    assert "val_loss" in lines[4] and "val_loss" not in lines[0]
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["complete"] and state["epoch"] == 60
    # a finished stage keeps its product and manifest only; the manifest names the weights and their checksum
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl", "state.json", "weights.safetensors"]
    assert state["weights"]["file"] == "weights.safetensors"
    assert state["weights"]["sha256"] == hashlib.sha256((tmp_path / "weights.safetensors").read_bytes()).hexdigest()


def test_resume_gives_the_same_result_as_an_uninterrupted_run(tmp_path):
    x, y = regression_data()
    val = regression_data(16, 1)
    straight = make_model()
    Trainer(CONFIG, tmp_path / "a", seed=3, progress=False).fit(straight, noisy_mse_loss, (x, y), val)

    # the interrupted run is killed during epoch 8; its last checkpoint is from epoch 6
    def kill_at_epoch_8(record):
        if record["epoch"] == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(CONFIG, tmp_path / "b", seed=3, progress=False, on_epoch_end=kill_at_epoch_8).fit(
            make_model(), noisy_mse_loss, (x, y), val)
    assert json.loads((tmp_path / "b" / "state.json").read_text())["epoch"] == 6
    resumed = make_model(seed=99)  # different init: everything must come from the checkpoint
    result = Trainer(CONFIG, tmp_path / "b", seed=3, progress=False).fit(resumed, noisy_mse_loss, (x, y), val, resume=True)
    assert result.resumed_from == 6
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_an_existing_stage_is_not_overwritten_without_resume(tmp_path):
    x, y = regression_data()
    cfg = TrainConfig(epochs=2, batch_size=32)
    Trainer(cfg, tmp_path, seed=0, progress=False).fit(make_model(), mse_loss, (x, y))
    with pytest.raises(LdnsError, match="already has a checkpoint; pass --resume"):
        Trainer(cfg, tmp_path, seed=0, progress=False).fit(make_model(), mse_loss, (x, y))
    trainer = Trainer(cfg, tmp_path, seed=0, progress=False)
    assert stage_complete(tmp_path)
    result = trainer.fit(make_model(5), mse_loss, (x, y), resume=True)
    assert result.epochs_run == 0


def test_best_weights_are_the_best_on_validation(tmp_path):
    x, y = regression_data()
    val = regression_data(32, 1)
    model = make_model()
    result = Trainer(CONFIG, tmp_path, seed=0, progress=False).fit(model, mse_loss, (x, y), val)
    logged = {l["epoch"]: l["val_loss"] for l in map(json.loads, (tmp_path / "log.jsonl").read_text().splitlines()) if "val_loss" in l}
    assert result.best_epoch == min(logged, key=logged.get)
    assert result.best_val_loss == pytest.approx(min(logged.values()))


def test_learning_rate_schedule_warms_up_then_decays_to_the_floor():
    total = 100
    factors = [lr_factor(s, total, 0.1, 0.1) for s in range(total + 1)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b - 1e-12 for a, b in zip(factors[10:], factors[11:]))
    assert factors[-1] == pytest.approx(0.1)


def test_epoch_callback_sees_every_epoch(tmp_path):
    seen = []
    x, y = regression_data()
    Trainer(TrainConfig(epochs=3, batch_size=32), tmp_path, seed=0, progress=False,
            on_epoch_end=seen.append).fit(make_model(), mse_loss, (x, y))
    assert [r["epoch"] for r in seen] == [1, 2, 3]


def test_a_module_without_trainable_parameters_is_an_error_naming_the_stage(tmp_path):
    frozen = torch.nn.Linear(3, 1).requires_grad_(False)
    x, y = regression_data(8)
    with pytest.raises(LdnsError, match="^generator: Linear has no trainable parameters to optimise$"):
        Trainer(CONFIG, tmp_path, seed=0, progress=False, description="generator").fit(frozen, mse_loss, (x, y))


# -- data parallelism ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "batch_size", "world"), [(17, 8, 2), (16, 8, 2), (10, 4, 3), (5, 8, 4), (3, 2, 4)])
def test_the_processes_shards_make_up_the_single_process_batches(n, batch_size, world):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    single = shard_batches(order, batch_size, 0, 1)
    per_rank = [shard_batches(order, batch_size, rank, world) for rank in range(world)]
    assert all(len(shards) == len(single) for shards in per_rank)  # every process takes every step
    for step, whole in enumerate(single):
        assert (whole.trials, whole.batch_trials) == (len(whole.indices), len(whole.indices))
        parts = [shards[step] for shards in per_rank]
        own = [i for p in parts if p.trials for i in p.indices.tolist()]
        assert sorted(own) == sorted(whole.indices.tolist())  # the same trials, each once
        assert sum(p.trials for p in parts) == whole.batch_trials  # shares add up to the batch
        for part in parts:  # an idle process gets one stand-in trial of the batch, weighed 0
            assert len(part.indices) == max(1, part.trials)
            assert part.trials or part.indices.tolist() == whole.indices[:1].tolist()


class FakeFabric:
    """One process of a 2-process group, for the rank-0 protocol: ``broadcast`` hands over what
    process 0 sends (as the collective would)."""

    world_size = 2

    def __init__(self, rank, sent=None):
        self.global_rank = rank
        self.is_global_zero = rank == 0
        self.sent = sent
        self.broadcasts = []

    def broadcast(self, obj, src=0):
        self.broadcasts.append(obj)
        return obj if self.is_global_zero else self.sent


def test_process_zero_runs_the_step_and_the_others_receive_its_result():
    assert on_rank_zero(FakeFabric(0), lambda: {"epoch": 3}) == {"epoch": 3}
    assert on_rank_zero(FakeFabric(1, sent=(True, {"epoch": 3})), lambda: pytest.fail("ran on process 1")) == {
        "epoch": 3}


def test_a_failure_of_process_zero_is_raised_everywhere_instead_of_hanging():
    zero = FakeFabric(0)

    def fails():
        raise SpecError("run.devices", "wrong")

    with pytest.raises(SpecError, match="^run.devices: wrong$"):  # process 0: its own error, after telling the others
        on_rank_zero(zero, fails)
    assert zero.broadcasts == [(False, "run.devices: wrong")]
    with pytest.raises(LdnsError, match="^run.devices: wrong$"):
        on_rank_zero(FakeFabric(1, sent=zero.broadcasts[0]), fails)
    with pytest.raises(ZeroDivisionError):
        on_rank_zero(zero, lambda: 1 / 0)
    assert zero.broadcasts[-1] == (False, "process 0 stopped with ZeroDivisionError: division by zero")


@pytest.mark.parametrize(("env", "devices", "nodes", "option"), [
    ({"LOCAL_WORLD_SIZE": "2", "WORLD_SIZE": "2"}, 1, 1,
     "run.devices: the launcher started 2 processes on this node but the spec asks for 1; set run.devices: 2"),
    ({"LOCAL_WORLD_SIZE": "2", "WORLD_SIZE": "4"}, 2, 1,
     ("run.num_nodes: the launcher started 4 processes in all (2 node(s) of 2) but the spec asks for 2; "
      "set run.num_nodes: 2")),
])
def test_a_launcher_that_contradicts_the_spec_names_the_option_to_change(monkeypatch, env, devices, nodes, option):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SpecError) as raised:
        make_fabric("cpu", devices=devices, num_nodes=nodes)
    assert str(raised.value).startswith(option)


def test_a_slurm_allocation_that_contradicts_the_spec_is_a_spec_error(monkeypatch):
    for name, value in {"SLURM_NTASKS": "4", "SLURM_NTASKS_PER_NODE": "4", "SLURM_JOB_NAME": "train",
                        "SLURM_NNODES": "1", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SpecError, match=r"^run: You set `devices=2` in Lightning, but the number of tasks per node "
                                        r"configured in SLURM `--ntasks-per-node=4` does not match"):
        make_fabric("cpu", devices=2)


def test_run_processes_are_checked_for_form_and_against_the_machine():
    assert RunConfig(device="cpu", devices=4, num_nodes=2).world_size == 8
    with pytest.raises(ValueError, match="^devices: 'cuda:1' names one device, so devices must be 1, got 2"):
        RunConfig(device="cuda:1", devices=2)
    RunConfig(device="cpu", devices=4).check_machine()  # CPU processes: any number
    if not torch.cuda.is_available():
        with pytest.raises(SpecError, match="^run.device: 'cuda' asked for"):
            RunConfig(device="cuda", devices=2).check_machine()


def test_mixed_precision_runs_the_loss_under_autocast_on_inputs_kept_in_float32(tmp_path):
    """bf16-mixed: matrix products in bfloat16, but the data reaches the loss unrounded."""
    seen = []

    def loss(model, x, y):
        prediction = model(x)
        seen.append((x.dtype, y.dtype, prediction.dtype))
        return {"loss": (prediction.float() - y).pow(2).mean()}

    x, y = regression_data()
    Trainer(TrainConfig(epochs=1, batch_size=32), tmp_path, seed=0, progress=False,
            fabric=make_fabric("cpu", "bf16-mixed")).fit(make_model(), loss, (x, y))
    assert set(seen) == {(torch.float32, torch.float32, torch.bfloat16)}
