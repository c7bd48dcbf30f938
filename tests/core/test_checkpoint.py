"""Weights files: one loader (load_module_weights) for run directories and the kit, which lets a
module's own _load_from_state_dict run before anything is compared."""

from __future__ import annotations

import pytest
import torch

from ldns_framework import LdnsError
from ldns_framework.checkpoint import load_module_weights, save_tensors
from toy_components import ZeroInflatedConfig, ZeroInflatedPoisson


def fitted_zero_inflated(n_neurons: int = 5) -> ZeroInflatedPoisson:
    generator = torch.Generator().manual_seed(0)
    rates = torch.rand(40, 12, n_neurons, generator=generator) + 0.5  # (B, T, N)
    counts = torch.poisson(rates, generator=generator) * (torch.rand(rates.shape, generator=generator) > 0.3)
    model = ZeroInflatedPoisson(ZeroInflatedConfig(em_steps=50))
    model.fit(counts, rates, torch.ones(40, 12, dtype=torch.bool))
    return model


def test_a_model_that_sizes_itself_from_its_weights_loads(tmp_path):
    fitted = fitted_zero_inflated()
    path = tmp_path / "weights.safetensors"
    save_tensors(path, fitted.state_dict())
    rebuilt = ZeroInflatedPoisson()  # as a run rebuilds it from its spec: no parameters yet
    assert rebuilt.zero_logit.shape == (0,)
    load_module_weights(rebuilt, path)
    assert rebuilt.is_fitted
    torch.testing.assert_close(rebuilt.zero_logit, fitted.zero_logit)
    counts, rates = torch.poisson(torch.ones(3, 4, 5)), torch.full((3, 4, 5), 1.0)
    mask = torch.ones(3, 4, dtype=torch.bool)
    torch.testing.assert_close(rebuilt.log_prob(counts, rates, mask), fitted.log_prob(counts, rates, mask))


def test_the_fit_found_distinct_zero_probabilities():
    """The toy model really is per neuron (so loading it needs its resize hook)."""
    logit = fitted_zero_inflated().zero_logit
    assert logit.shape == (5,) and len(set(logit.tolist())) == 5
    assert (torch.sigmoid(logit) - 0.3).abs().max() < 0.12  # 30% extra zeros were put in


@pytest.mark.parametrize(("module", "tensors", "message"), [
    (torch.nn.Linear(3, 5), {"weight": torch.zeros(4, 3), "bias": torch.zeros(5)},
     r"shape mismatch: weight \(4, 3\) in the file, \(5, 3\) in the model"),
    (torch.nn.Linear(3, 5), {"weight": torch.zeros(5, 3)}, r"missing \['bias'\]"),
    (torch.nn.Linear(3, 5), {"weight": torch.zeros(5, 3), "bias": torch.zeros(5), "scale": torch.ones(1)},
     r"unexpected \['scale'\]"),
    (ZeroInflatedPoisson(), {"zero_probability": torch.zeros(5)},
     r"missing \['zero_logit'\]; unexpected \['zero_probability'\]"),
])
def test_weights_that_do_not_fit_give_one_line_naming_the_file_and_tensor(tmp_path, module, tensors, message):
    path = tmp_path / "encoder" / "weights.safetensors"
    path.parent.mkdir()
    save_tensors(path, tensors)
    with pytest.raises(LdnsError, match=message) as raised:
        load_module_weights(module, path)
    text = str(raised.value)
    assert text.startswith(f"{path}: weights do not fit this {type(module).__name__}") and "\n" not in text


def test_a_resized_model_still_reports_a_wrong_shape(tmp_path):
    """The resize hook runs, and what still differs afterwards is reported."""

    class TwoTensors(ZeroInflatedPoisson):
        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(2))

    path = tmp_path / "weights.safetensors"
    save_tensors(path, {"zero_logit": torch.zeros(7), "scale": torch.ones(3)})
    model = TwoTensors()
    with pytest.raises(LdnsError, match=r"shape mismatch: scale \(3,\) in the file, \(2,\) in the model\)"):
        load_module_weights(model, path)
    assert model.zero_logit.shape == (7,)


def test_missing_and_unreadable_files_are_named(tmp_path):
    with pytest.raises(LdnsError, match="weights file not found"):
        load_module_weights(torch.nn.Linear(1, 1), tmp_path / "none.safetensors")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    with pytest.raises(LdnsError, match=r"broken\.safetensors: not a readable safetensors file"):
        load_module_weights(torch.nn.Linear(1, 1), broken)
