"""The ``spike-history`` observation model plugin: a per-neuron autoregressive Poisson GLM (METHOD.md section 5).

Usage (plain Python, no spec)::

    import torch
    from ldns_plugins.spike_history.glm import SpikeHistory, SpikeHistoryConfig

    model = SpikeHistory(SpikeHistoryConfig(history=20, max_spikes=5))
    figures = model.fit(train_counts, train_rates, train_mask)    # real spikes + encoder rates, (B, T, N)
    figures["nll"], figures["iterations"], figures["converged"]
    spikes = model.sample(generated_rates, mask, generator=torch.Generator().manual_seed(0))
    log_lik = model.log_prob(test_counts, test_rates, test_mask)  # (B,)

In a spec: ``observation: {type: spike-history, history: 20, max_spikes: 5, fit: {max_iter: 3000}}``.
"""

from ldns_framework import hookimpl


@hookimpl
def ldns_register_components(registrar):
    registrar.add("observation", "spike-history", "ldns_plugins.spike_history.glm:SpikeHistory",
                  config="ldns_plugins.spike_history.config:SpikeHistoryConfig",
                  summary="Per-neuron autoregressive Poisson GLM on the rates and the neuron's own "
                          "last `history` bins, capped at max_spikes (LDNS spike-history model).")
