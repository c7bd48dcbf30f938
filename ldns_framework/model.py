"""The trained model: a run's components with their weights, for inference.

:class:`TrainedModel` is what a fit produces and what ``Pipeline.load`` reopens from a run
directory. It encodes real trials, samples new ones, scores counts and evaluates samples;
evaluation and reports receive it (with the data) instead of rebuilding components from
``spec.yaml``. It builds components only through the registry it is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from ldns_framework.allocator import keep_freed_memory
from ldns_framework.checkpoint import load_module_weights
from ldns_framework.data import SpikeData
from ldns_framework.errors import DataError, LdnsError
from ldns_framework.io.encodings import Encoded
from ldns_framework.io.samples import Samples, write_samples
from ldns_framework.latents import LatentStats
from ldns_framework.rundir import read_json
from ldns_framework.spec import ResolvedSpec
from ldns_framework.structure import unstructure_config
from ldns_framework.training import manifest_file, read_manifest, stage_complete

__all__ = ["TrainedModel", "build_autoencoder", "build_generator", "encode_trials", "load_generator",
           "load_stage_weights"]


def build_autoencoder(spec: ResolvedSpec, registry: Any, n_neurons: int) -> tuple[Any, Any]:
    """The spec's encoder and observation model for ``n_neurons`` neurons (untrained)."""
    encoder = registry.build("encoder", spec.components["encoder"], n_neurons=n_neurons)
    observation = registry.build("observation", spec.components["observation"], n_neurons=n_neurons)
    return encoder, observation


def build_generator(spec: ResolvedSpec, registry: Any, latent_dim: int, conditioner: Any) -> Any:
    """The spec's generator (untrained) for ``latent_dim`` channels and ``conditioner``'s condition."""
    return registry.build("generator", spec.components["generator"], latent_dim=latent_dim,
                          condition_kind=conditioner.kind, condition_dim=conditioner.dim)


def load_generator(run_dir: Path, spec: ResolvedSpec, registry: Any, latent_dim: int) -> tuple[Any, Any]:
    """(conditioner, generator) of a run whose generator stage completed, state and weights loaded."""
    conditioner = registry.build("conditioner", spec.components["conditioner"])
    conditioner.load_state(read_json(run_dir / "conditioner.json", dict))
    generator = build_generator(spec, registry, latent_dim, conditioner)
    load_stage_weights(generator, run_dir / "generator")
    return conditioner, generator


def load_stage_weights(module: Any, stage_dir: Path) -> None:
    """Load the weights file a completed stage's manifest names, after checking it against the
    sha256 the manifest recorded (a module without state, such as plain Poisson, has none)."""
    manifest = read_manifest(stage_dir)
    if manifest is None or not manifest.get("complete"):
        raise LdnsError(f"{stage_dir}: the {stage_dir.name} stage has not finished; "
                        f"run `ldns train --resume --out {stage_dir.parent}`")
    if "weights" not in manifest and not module.state_dict():
        return
    path, sha256 = manifest_file(stage_dir, manifest, "weights")
    load_module_weights(module, path, sha256)


@torch.no_grad()
def encode_trials(encoder: Any, data: SpikeData, device: Any, *, batch_size: int = 256, progress: bool = True,
                  trial_index: np.ndarray | None = None, rates: bool = True) -> Encoded:
    """Latents and rates of ``data``'s trials (eval mode, no dropout), in batches; zero on padding.
    ``rates=False`` keeps no rates (a (trials, T, 0) array): they are as large as the counts, which
    lazily read data cannot hold, and only fitting an observation model needs them."""
    from tqdm.auto import tqdm

    encoder.eval()
    encoder.to(device)
    mask_all = data.mask()  # (trials, T)
    latents, rate_parts = [], []
    for start in tqdm(range(0, data.n_trials, batch_size), desc="encode", unit="batch",
                      disable=not progress or data.n_trials <= batch_size):
        counts = torch.as_tensor(data.counts[start:start + batch_size], dtype=torch.float32, device=device)  # (B, T, N)
        mask = torch.as_tensor(mask_all[start:start + batch_size], device=device)  # (B, T)
        z = encoder.encode(counts, mask)  # (B, T, D)
        latents.append((z * mask[..., None]).cpu().numpy())
        if rates:
            r = encoder.decode(z, mask)  # (B, T, N)
            rate_parts.append((r * mask[..., None]).cpu().numpy())
    index = np.arange(data.n_trials) if trial_index is None else np.asarray(trial_index)
    all_rates = np.concatenate(rate_parts) if rates else np.zeros((data.n_trials, data.n_time, 0))
    return Encoded(np.concatenate(latents).astype(np.float32), all_rates.astype(np.float32), data, index)


class TrainedModel:
    """A run's trained components: encoder and observation model, and the generator when the spec has one.

    ``observation_fitted`` says whether the observation stage finished (a model that
    ``needs_fitting`` cannot score or sample before). ``data`` is a callable returning the run's
    data (the pipeline's, loaded at most once); it is called only by what needs real trials
    (:meth:`encode_split`, fitting another observation model, :meth:`evaluate` without data).
    ``train_encoding`` is the training split's encoding when the caller already has it (a fit),
    so it is not computed again. ``device``: where encoding and sampling run (a torch device;
    sampling runs under ``torch.inference_mode``).
    """

    def __init__(self, spec: ResolvedSpec, registry: Any, *, encoder: Any, observation: Any, n_neurons: int,
                 n_time: int, device: torch.device | str, run_dir: str | Path | None = None,
                 observation_fitted: bool = True, generator: Any = None, conditioner: Any = None,
                 latent_stats: LatentStats | None = None, data: Callable[[], SpikeData] | None = None,
                 train_encoding: Encoded | None = None) -> None:
        self.spec = spec
        self.registry = registry
        self.encoder = encoder
        self.observation = observation
        self.n_neurons = int(n_neurons)
        self.n_time = int(n_time)
        self.device = torch.device(device)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.observation_fitted = observation_fitted
        self.generator = generator
        self.conditioner = conditioner
        self.latent_stats = latent_stats
        self._data = data
        self._train_encoding = train_encoding
        keep_freed_memory()  # encoding and sampling reuse their large blocks (ldns_framework.allocator)

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def load(cls, run_dir: str | Path, spec: ResolvedSpec, registry: Any, device: torch.device | str,
             data: Callable[[], SpikeData] | None = None) -> "TrainedModel":
        """The trained components of ``run_dir`` (its spec already resolved), weights loaded, for inference
        on ``device`` (plain torch: a Lightning Fabric is for training and costs a second to import)."""
        run_dir = Path(run_dir)
        summary_path = run_dir / "data" / "summary.json"
        if not summary_path.is_file():
            raise LdnsError(f"{run_dir}: the data stage has not run; run `ldns train --resume --out {run_dir}`")
        summary = read_json(summary_path, dict)
        try:
            n_neurons, n_time = int(summary["neurons"]), int(summary["bins"])
        except (KeyError, TypeError, ValueError):
            raise LdnsError(f"{summary_path}: expected whole numbers 'neurons' and 'bins'") from None
        encoder, observation = build_autoencoder(spec, registry, n_neurons)
        load_stage_weights(encoder, run_dir / "encoder")
        observation_fitted = stage_complete(run_dir / "observation")
        if observation_fitted:
            load_stage_weights(observation, run_dir / "observation")
        generator = conditioner = latent_stats = None
        if spec.components["generator"] is not None and stage_complete(run_dir / "generator"):
            latent_stats = LatentStats.load(run_dir / "latent_stats.json")
            conditioner, generator = load_generator(run_dir, spec, registry, int(latent_stats.mean.shape[0]))
        return cls(spec, registry, encoder=encoder, observation=observation, n_neurons=n_neurons, n_time=n_time,
                   device=device, run_dir=run_dir, observation_fitted=observation_fitted, generator=generator,
                   conditioner=conditioner, latent_stats=latent_stats, data=data)

    # -- data ---------------------------------------------------------------------------------
    def data(self) -> SpikeData:
        """The run's data (through the callable given at construction)."""
        if self._data is None:
            raise LdnsError("this model was given no data; pass the data explicitly")
        return self._data()

    def train_encoding(self) -> Encoded:
        """The training split's encoding, computed at most once."""
        if self._train_encoding is None or self._train_encoding.rates.shape[-1] != self.n_neurons:  # none, or no rates
            data = self.data()
            self._train_encoding = self.encode(data.split("train"), progress=False, trial_index=data.splits["train"])
        return self._train_encoding

    # -- inference ----------------------------------------------------------------------------
    def encode(self, data: SpikeData, batch_size: int = 256, progress: bool = True,
               trial_index: np.ndarray | None = None) -> Encoded:
        """Latents and rates of real trials (eval mode, no dropout), in batches."""
        if data.n_neurons != self.n_neurons:
            raise DataError("counts", f"expected {self.n_neurons} neurons (as in training), got {data.n_neurons}")
        if data.n_trials == 0:
            raise DataError("counts", "no trials to encode (the split or file is empty)")
        return encode_trials(self.encoder, data, self.device, batch_size=batch_size, progress=progress,
                             trial_index=trial_index)

    def encode_split(self, split: str) -> Encoded:
        """Encode one split of the run's data ('train', 'val', 'test' or 'all')."""
        data = self.data()
        if split == "all":
            return self.encode(data)
        if split not in data.splits:
            raise DataError("splits", f"no split named {split!r}; available: {', '.join(data.splits)}, all")
        return self.encode(data.split(split), trial_index=data.splits[split])

    def log_prob(self, data: SpikeData) -> np.ndarray:
        """Per-trial log-likelihood (trials,) of real counts under the observation model at the encoder's rates."""
        self._check_observation_fitted()
        encoded = self.encode(data, progress=False)
        counts = torch.as_tensor(np.asarray(data.counts), dtype=torch.float32)  # (B, T, N); lazy counts loaded
        with torch.no_grad():
            return self.observation.to("cpu").log_prob(counts, torch.as_tensor(encoded.rates),
                                                       torch.as_tensor(data.mask())).numpy()

    def _check_observation_fitted(self) -> None:
        if self.observation.needs_fitting and not self.observation_fitted:
            where = f" `ldns train --resume --out {self.run_dir}`" if self.run_dir else " fit()"
            raise LdnsError(f"the observation model {self.spec.components['observation'].type!r} has not been "
                            f"fitted (the observation stage has not finished); run{where}")

    def observation_model(self, name: str | None = None) -> tuple[str, Any]:
        """(name, model): the run's fitted observation model, or another registered one built now
        and fitted on the training split's counts and encoder rates when it ``needs_fitting``."""
        own = self.spec.components["observation"].type
        if name is None or name == own:
            self._check_observation_fitted()
            return own, self.observation
        model = self.registry.build("observation", {"type": name}, path="--observation", n_neurons=self.n_neurons)
        if model.needs_fitting:
            encoded = self.train_encoding()
            train = encoded.data
            model.fit(torch.as_tensor(np.asarray(train.counts), dtype=torch.float32), torch.as_tensor(encoded.rates),
                      torch.as_tensor(train.mask()))
        return name, model

    def sampler(self, sampler: str | None = None, values: Mapping[str, Any] | None = None) -> tuple[str, Any]:
        """(name, options) of a sampler of the generator: the spec's ``sample`` section by default.

        Options given in ``values`` override the spec's when the sampler is the spec's; another
        sampler starts from its own defaults. Validated by the registry (errors name ``sample.<key>``).
        """
        default = self.spec.sample
        values = dict(values or {})
        if sampler in (None, default.sampler) and not values:
            return default.sampler, default.options
        carried = unstructure_config(default.options) if sampler in (None, default.sampler) else {}
        return self.registry.sampler_options(self.spec.components["generator"].type, sampler or default.sampler,
                                             {**carried, **values}, "sample")

    def sample(self, n: int, *, length: int | None = None, lengths: Any = None, condition: Any = None,
               sampler: str | None = None, seed: int = 0, observation: str | None = None,
               batch_size: int | None = None, progress: bool = True, **sampler_options: Any) -> Samples:
        """Draw ``n`` trials: latents from the generator, rates from the decoder, spikes from the observation model.

        ``sampler`` and ``sampler_options`` (e.g. ``steps=25``) choose how the generator samples
        (see :meth:`sampler`). A fixed ``seed`` (with the same ``batch_size``) gives identical
        samples; ``length`` (every trial) may differ from the training length; ``lengths`` (n,)
        gives each trial its own, the arrays being padded with zeros to the longest.
        """
        if self.generator is None:
            raise LdnsError("the model has no trained generator: fit() a spec with a generator (all stages), "
                            "or Pipeline.load a run whose generator stage finished")
        if n < 1:
            raise LdnsError(f"n: expected at least 1 trial, got {n}")
        per_trial = _trial_lengths(n, self.n_time if length is None else int(length), lengths)  # (n,)
        length = int(per_trial.max())
        name, options = self.sampler(sampler, sampler_options)
        label = self.generator.describe_sampler(name, options)
        batch_size = self.spec.sample.batch_size if batch_size is None else int(batch_size)
        if batch_size < 1:
            raise LdnsError(f"batch_size: expected at least 1 trial per batch, got {batch_size}")
        observation_name, observation_model = self.observation_model(observation)
        if condition is None:  # drawn by the conditioner (e.g. uniform reach directions), or refused
            cond = self.conditioner.draw(n, length, torch.Generator().manual_seed(seed + 2))
        else:
            cond = self.conditioner.validate(condition, n, length)
        device = self.device
        for module in (self.generator, self.encoder, observation_model):
            module.to(device).eval()  # outside inference mode: moved weights stay ordinary tensors
        latent_gen = torch.Generator(device=device).manual_seed(seed)
        spike_gen = torch.Generator(device=device).manual_seed(seed + 1)
        from tqdm.auto import tqdm

        parts: dict[str, list[np.ndarray]] = {"latents": [], "rates": [], "counts": []}
        with torch.inference_mode():
            for start in tqdm(range(0, n, batch_size), desc=f"sample {label}", unit="batch", disable=not progress):
                size = min(batch_size, n - start)
                batch_lengths = torch.as_tensor(per_trial[start:start + size], device=device)  # (B,)
                batch_cond = None if cond is None else cond[start:start + size].to(device)
                z = self.generator.sample(size, batch_lengths, batch_cond, latent_gen, sampler=name,
                                          options=options)  # (B, T_b, D), T_b = the batch's longest
                mask = torch.arange(z.shape[1], device=device)[None, :] < batch_lengths[:, None]  # (B, T_b)
                latents = torch.as_tensor(self.latent_stats.unnormalise(z.cpu().numpy()), dtype=torch.float32,
                                          device=device)  # (B, T_b, D)
                rates = self.encoder.decode(latents, mask)  # (B, T_b, N)
                counts = observation_model.sample(rates, mask, generator=spike_gen)  # (B, T_b, N)
                pad = (0, 0, 0, length - z.shape[1])  # to (B, T, channels)
                parts["latents"].append(F.pad(latents * mask[..., None], pad).cpu().numpy())
                parts["rates"].append(F.pad(rates * mask[..., None], pad).cpu().numpy())
                parts["counts"].append(F.pad(counts.round().to(torch.int32) * mask[..., None], pad).cpu().numpy())
        return Samples(counts=np.concatenate(parts["counts"]), lengths=per_trial,
                       latents=np.concatenate(parts["latents"]), rates=np.concatenate(parts["rates"]),
                       condition=None if cond is None else cond.cpu().numpy(),
                       covariates=self.conditioner.sample_covariates(cond), sampler=name,
                       sampler_options=unstructure_config(options), sampler_label=label, seed=seed,
                       observation=observation_name)

    def write_samples(self, samples: Samples, path: str | Path) -> Path:
        """Write ``samples`` (see :mod:`ldns_framework.io.samples`), with the run's provenance when
        they carry none (an NWB file needs it), and tell the plugins."""
        if not samples.provenance and self.run_dir is not None:
            from ldns_framework.io.provenance import run_provenance

            samples = attrs.evolve(samples, provenance=run_provenance(self.run_dir))
        path = write_samples(samples, path)
        self.registry.hook.ldns_samples_written(path=path, n_trials=samples.n_trials, sampler=samples.sampler)
        return path

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, samples: Samples | str | Path | None = None, *, data: SpikeData | None = None,
                 metrics: Mapping[str, Any] | Sequence[str] | None = None, against: str = "both", folds: int = 5,
                 seed: int = 0, protocol: str = "bootstrap", out: str | Path | None = None, progress: bool = True,
                 workers: int = 1) -> list[dict[str, Any]]:
        """Compare samples with the run's real trials; see :func:`ldns_framework.evaluation.evaluate_run`.

        ``samples``: in memory, a file, or None for the newest ``RUN/samples`` file; ``metrics``:
        name -> Metric, registered names, or None for every registered metric; ``data``
        defaults to the run's data; ``out`` to ``RUN/metrics.json``.
        """
        from ldns_framework.evaluation import evaluate_run, metrics_from_registry

        if not isinstance(metrics, Mapping):
            metrics = metrics_from_registry(self.registry, metrics)
        return evaluate_run(self.run_dir, self.data() if data is None else data, metrics, samples=samples,
                            against=against, folds=folds, seed=seed, protocol=protocol, out=out, progress=progress,
                            workers=workers)


def _trial_lengths(n: int, length: int, lengths: Any) -> np.ndarray:
    """Each trial's length (n,) int64: ``lengths`` when given (n whole numbers >= 1), else ``length`` for all."""
    if lengths is None:
        if length < 1:
            raise LdnsError(f"length: expected at least 1 bin, got {length}")
        return np.full(n, length, dtype=np.int64)
    per_trial = np.asarray(lengths)
    if per_trial.shape != (n,) or per_trial.dtype.kind not in "iu" or per_trial.min() < 1:
        raise LdnsError(f"lengths: expected {n} whole numbers >= 1 (one per trial), got an array of shape "
                        f"{per_trial.shape} and dtype {per_trial.dtype}")
    return per_trial.astype(np.int64)
