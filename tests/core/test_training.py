"""The training engine: learns, schedules, checkpoints, resumes exactly, refuses to overwrite."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from ldns_framework.errors import LdnsError
from ldns_framework.spec import TrainConfig
from ldns_framework.training import Trainer, lr_factor, stage_complete


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
