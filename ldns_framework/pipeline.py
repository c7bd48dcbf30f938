"""The pipeline: stages in order, each resumable, over one run directory.

Stages: data -> encoder -> observation (fit on encoder rates) -> later stages as they exist.
``Pipeline`` is the Python API that mirrors the CLI (sklearn-style ``fit`` returning self).
It is a composition root: it builds components through the registry from a resolved spec.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping

import attrs
import numpy as np
import torch

from ldns_framework.batch import Batch
from ldns_framework.checkpoint import load_module_weights, save_tensors
from ldns_framework.data import SpikeData
from ldns_framework.errors import DataError, LdnsError
from ldns_framework.latents import LatentStats
from ldns_framework.rundir import environment_record, read_json, write_json, write_yaml
from ldns_framework.spec import ResolvedSpec, apply_overrides, load_spec_file
from ldns_framework.training import Trainer, make_fabric

STAGES = ("data", "encoder", "observation", "latents", "generator")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@attrs.frozen
class Encoded:
    """Inferred latents (trials, T, D) and rates (trials, T, N) of real trials; zero on padding."""

    latents: np.ndarray
    rates: np.ndarray
    data: SpikeData
    trial_index: np.ndarray

    def to_npz_dict(self) -> dict[str, np.ndarray]:
        out = {"latents": self.latents, "rates": self.rates, "counts": self.data.counts,
               "lengths": self.data.lengths, "trial_index": self.trial_index}
        out.update({f"covariate/{k}": v for k, v in self.data.covariates.items()})
        return out


@attrs.frozen
class Samples:
    """Generated trials: latents (n, T, D) un-normalised, rates and counts (n, T, N), zero past each length."""

    latents: np.ndarray
    rates: np.ndarray
    counts: np.ndarray
    lengths: np.ndarray
    condition: np.ndarray | None
    sampler: str
    steps: int
    seed: int
    observation: str

    def to_npz_dict(self) -> dict[str, np.ndarray]:
        out = {"latents": self.latents, "rates": self.rates, "counts": self.counts, "lengths": self.lengths,
               "sampler": np.array(self.sampler), "steps": np.array(self.steps), "seed": np.array(self.seed),
               "observation": np.array(self.observation)}
        if self.condition is not None:
            out["condition"] = self.condition
        return out

    def to_spike_data(self, bin_width_s: float) -> SpikeData:
        return SpikeData(self.counts, lengths=self.lengths, bin_width_s=bin_width_s,
                         metadata={"generated": True, "sampler": self.sampler, "steps": self.steps, "seed": self.seed})


class Pipeline:
    """A spec, its components and (once fitted or loaded) their weights."""

    def __init__(self, spec: ResolvedSpec, registry: Any = None, run_dir: str | Path | None = None) -> None:
        self.spec = spec
        self.registry = registry if registry is not None else _discover()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._fabric = None
        self.data: SpikeData | None = None
        self.encoder: Any = None
        self.observation: Any = None
        self.conditioner: Any = None
        self.generator: Any = None
        self.latent_stats: LatentStats | None = None
        self.n_neurons: int | None = None

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: str | Path | Mapping[str, Any], overrides: list[str] | tuple[str, ...] = (),
                  registry: Any = None) -> "Pipeline":
        """From a YAML path or a dict; ``overrides`` are ``dotted.key=value`` strings."""
        registry = registry if registry is not None else _discover()
        raw = load_spec_file(spec) if isinstance(spec, (str, Path)) else dict(spec)
        return cls(registry.resolve(apply_overrides(raw, list(overrides))), registry)

    @classmethod
    def load(cls, run_dir: str | Path, registry: Any = None) -> "Pipeline":
        """Reopen a run directory: its resolved spec, checked provenance and trained weights."""
        run_dir = Path(run_dir)
        if not (run_dir / "spec.yaml").is_file():
            raise LdnsError(f"{run_dir}: not a run directory (no spec.yaml)")
        registry = registry if registry is not None else _discover()
        pipeline = cls(registry.resolve(load_spec_file(run_dir / "spec.yaml")), registry, run_dir)
        pipeline._check_provenance()
        pipeline._load_trained()
        return pipeline

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, data: SpikeData | None = None, run_dir: str | Path | None = None, *,
            until: str | None = None, resume: bool = False, progress: bool = True) -> "Pipeline":
        """Run every stage (or up to ``until``) into ``run_dir``; ``resume`` continues a stopped run."""
        if until is not None and until not in STAGES:
            raise LdnsError(f"--until: unknown stage {until!r}; stages: {', '.join(STAGES)}")
        self.run_dir = Path(run_dir) if run_dir is not None else self.run_dir
        if self.run_dir is None:
            raise LdnsError("fit needs a run directory (run_dir=...)")
        self._prepare_run_dir(resume)
        self._seed()
        stages = STAGES[: STAGES.index(until) + 1] if until else STAGES
        if self.spec.components["generator"] is None:
            stages = tuple(s for s in stages if s not in ("latents", "generator"))
        self.data = data
        for stage in stages:
            getattr(self, f"_stage_{stage}")(resume=resume, progress=progress)
        return self

    def _prepare_run_dir(self, resume: bool) -> None:
        spec_path = self.run_dir / "spec.yaml"
        if spec_path.is_file():
            if not resume:
                raise LdnsError(f"{self.run_dir}: run directory already exists; pass --resume to continue it or choose a new --out")
            stored = self.registry.resolve(load_spec_file(spec_path))
            if stored != self.spec:
                differing = _differing_keys(stored.to_dict(), self.spec.to_dict())
                raise LdnsError(f"{self.run_dir}: the spec differs from the run's spec.yaml at {', '.join(differing[:5])}; "
                                "resume without a spec or use a new --out")
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_yaml(spec_path, self.spec.to_dict())
        write_json(self.run_dir / "environment.json", environment_record(
            self.spec.seed, str(self.fabric.device), {"plugins": self.registry.provenance(self.spec)}))

    def _seed(self) -> None:
        torch.manual_seed(self.spec.seed)
        if self.spec.run.num_threads:
            torch.set_num_threads(self.spec.run.num_threads)

    @property
    def fabric(self) -> Any:
        if self._fabric is None:
            self._fabric = make_fabric(self.spec.run.device, self.spec.run.precision)
        return self._fabric

    def _hook(self, name: str, **kwargs: Any) -> None:
        getattr(self.registry.hook, name)(**kwargs)

    def _stage_data(self, *, resume: bool, progress: bool) -> None:
        self._hook("ldns_stage_start", stage="data", run_dir=self.run_dir, spec=self.spec)
        if self.data is None:
            self.data = self.load_data()
        summary = self.data.summary()
        for split in ("train",):
            if split not in self.data.splits or not len(self.data.splits[split]):
                raise DataError("splits", "the data has no training trials (split 'train')")
        self.n_neurons = self.data.n_neurons
        write_json(self.run_dir / "data" / "summary.json", summary)
        _say(f"data: {summary['trials']} trials ({', '.join(f'{k} {v}' for k, v in summary['splits'].items())}), "
             f"{summary['neurons']} neurons, {summary['bins']} bins")
        self._hook("ldns_stage_end", stage="data", run_dir=self.run_dir, summary=summary)

    def load_data(self) -> SpikeData:
        """Load the spec's data source."""
        return self.registry.build("data", self.spec.components["data"]).load()

    def _tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        part = self.data.split(split) if split in self.data.splits else None
        if part is None:
            return torch.zeros(0, self.data.n_time, self.data.n_neurons), torch.zeros(0, self.data.n_time, dtype=torch.bool)
        return torch.as_tensor(part.counts, dtype=torch.float32), torch.as_tensor(part.mask())

    def _stage_encoder(self, *, resume: bool, progress: bool) -> None:
        self._hook("ldns_stage_start", stage="encoder", run_dir=self.run_dir, spec=self.spec)
        self._build_modules()
        observation = self._encoder_likelihood()

        def loss_fn(model: Any, counts: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
            return model.training_loss(Batch(counts, mask), observation)

        trainer = self._trainer("encoder", progress)
        result = trainer.fit(self.encoder, loss_fn, self._tensors("train"), self._tensors("val"), resume=resume)
        summary = attrs.asdict(result)
        _say(f"encoder: best validation loss {result.best_val_loss} at epoch {result.best_epoch}")
        self._hook("ldns_stage_end", stage="encoder", run_dir=self.run_dir, summary=summary)

    def _encoder_likelihood(self) -> Any:
        """The observation model whose likelihood trains the encoder: the spec's, unless it is
        autoregressive (fitted after the encoder, METHOD.md section 5): then the factorised model it
        names in ``encoder_observation`` (default poisson)."""
        if not self.observation.is_autoregressive:
            return self.observation
        name = getattr(self.observation.config, "encoder_observation", "poisson")
        return self.registry.build("observation", {"type": name}, path="observation.encoder_observation")

    def _stage_observation(self, *, resume: bool, progress: bool) -> None:
        self._hook("ldns_stage_start", stage="observation", run_dir=self.run_dir, spec=self.spec)
        stage_dir = self.run_dir / "observation"
        if resume and (stage_dir / "state.json").is_file() and read_json(stage_dir / "state.json").get("complete"):
            self._load_observation_weights()
            return
        train = self.data.split("train")
        rates = self.encode(train, progress=False).rates
        counts = torch.as_tensor(train.counts, dtype=torch.float32)
        summary = self.observation.fit(counts, torch.as_tensor(rates), torch.as_tensor(train.mask())) or {}
        if self.observation.state_dict():
            save_tensors(stage_dir / "weights.safetensors", self.observation.state_dict())
        write_json(stage_dir / "state.json", {"complete": True, "fit": summary})
        self._hook("ldns_stage_end", stage="observation", run_dir=self.run_dir, summary=dict(summary))

    def _stage_latents(self, *, resume: bool, progress: bool) -> None:
        self._hook("ldns_stage_start", stage="latents", run_dir=self.run_dir, spec=self.spec)
        train = self.data.split("train")
        encoded = self.encode(train, progress=progress)
        self.latent_stats = LatentStats.from_latents(encoded.latents, train.mask(), self.spec.latents.clamp)
        self.latent_stats.save(self.run_dir / "latent_stats.json")
        summary = {"mean": self.latent_stats.mean.tolist(), "std": self.latent_stats.std.tolist()}
        self._hook("ldns_stage_end", stage="latents", run_dir=self.run_dir, summary=summary)

    def _generator_tensors(self, split: str) -> tuple[torch.Tensor, ...] | None:
        """(normalised latents, mask[, condition]) of a split, or None when the split is absent or empty."""
        if split not in self.data.splits or not len(self.data.splits[split]):
            return None
        part = self.data.split(split)
        latents = self.latent_stats.normalise(self.encode(part, progress=False).latents)
        mask = part.mask()
        tensors = [torch.as_tensor(latents * mask[..., None], dtype=torch.float32), torch.as_tensor(mask)]
        condition = self.conditioner.from_data(self.data, self.data.splits[split])
        if condition is not None:
            tensors.append(torch.as_tensor(condition, dtype=torch.float32))
        return tuple(tensors)

    def _stage_generator(self, *, resume: bool, progress: bool) -> None:
        self._hook("ldns_stage_start", stage="generator", run_dir=self.run_dir, spec=self.spec)
        self._build_generator()

        def loss_fn(model: Any, latents: torch.Tensor, mask: torch.Tensor, condition: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
            return model.training_loss(latents, mask, condition)

        train = self._generator_tensors("train")
        val = self._generator_tensors("val")
        after_step = getattr(self.generator, "update_ema", None)
        result = self._trainer("generator", progress).fit(self.generator, loss_fn, train, val, resume=resume,
                                                          after_step=after_step, select_best=False)
        write_json(self.run_dir / "conditioner.json", self.conditioner.state())
        self._hook("ldns_stage_end", stage="generator", run_dir=self.run_dir, summary=attrs.asdict(result))

    def _build_generator(self) -> None:
        if self.latent_stats is None:
            self.latent_stats = LatentStats.load(self.run_dir / "latent_stats.json")
        if self.conditioner is None:
            self.conditioner = self.registry.build("conditioner", self.spec.components["conditioner"])
        if self.generator is None:
            self.generator = self.registry.build(
                "generator", self.spec.components["generator"], latent_dim=int(self.latent_stats.mean.shape[0]),
                condition_kind=self.conditioner.kind, condition_dim=self.conditioner.dim)

    def _trainer(self, stage: str, progress: bool) -> Trainer:
        def on_epoch_end(record: dict[str, Any]) -> None:
            self._hook("ldns_epoch_end", stage=stage, epoch=record["epoch"], record=record)

        return Trainer(self.spec.train[stage], self.run_dir / stage, seed=self.spec.seed, fabric=self.fabric,
                       progress=progress, description=stage, on_epoch_end=on_epoch_end)

    def _build_modules(self) -> None:
        if self.encoder is None:
            self.encoder = self.registry.build("encoder", self.spec.components["encoder"], n_neurons=self.n_neurons)
        if self.observation is None:
            self.observation = self.registry.build("observation", self.spec.components["observation"],
                                                   n_neurons=self.n_neurons)

    # -- loading a trained run ------------------------------------------------------------
    def _check_provenance(self) -> None:
        stored = read_json(self.run_dir / "environment.json").get("plugins", {})
        current = self.registry.provenance(self.spec)
        for section, entry in stored.items():
            now = current.get(section)
            if now is None or now["distribution"] != entry["distribution"]:
                raise LdnsError(f"{self.run_dir}: {section} {entry['name']!r} was provided by {entry['distribution']} "
                                f"{entry['version']}, now by {now['distribution'] if now else 'nothing'}; install that plugin")
            if now["version"] != entry["version"]:
                _say(f"warning: {section} {entry['name']!r} was trained with {entry['distribution']} {entry['version']}, "
                     f"loading with {now['version']}")

    def _load_trained(self) -> None:
        summary_path = self.run_dir / "data" / "summary.json"
        if not summary_path.is_file():
            raise LdnsError(f"{self.run_dir}: the data stage has not run; run `ldns train --resume --out {self.run_dir}`")
        self.n_neurons = int(read_json(summary_path)["neurons"])
        self._build_modules()
        weights = self.run_dir / "encoder" / "weights.safetensors"
        if not weights.is_file():
            raise LdnsError(f"{self.run_dir}: the encoder stage has not finished; run `ldns train --resume --out {self.run_dir}`")
        load_module_weights(self.encoder, weights)
        self._load_observation_weights()
        generator_weights = self.run_dir / "generator" / "weights.safetensors"
        if self.spec.components["generator"] is not None and generator_weights.is_file():
            self._build_generator()
            load_module_weights(self.generator, generator_weights)
            conditioner_state = self.run_dir / "conditioner.json"
            if conditioner_state.is_file():
                self.conditioner.load_state(read_json(conditioner_state))

    def _load_observation_weights(self) -> None:
        weights = self.run_dir / "observation" / "weights.safetensors"
        if weights.is_file():
            load_module_weights(self.observation, weights)

    # -- inference -------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, data: SpikeData, batch_size: int = 256, progress: bool = True,
               trial_index: np.ndarray | None = None) -> Encoded:
        """Latents and rates of real trials (eval mode, no dropout), in batches."""
        if self.encoder is None:
            raise LdnsError("the pipeline has no trained encoder: call fit() or Pipeline.load(run_dir)")
        if data.n_neurons != self.n_neurons:
            raise DataError("counts", f"expected {self.n_neurons} neurons (as in training), got {data.n_neurons}")
        self.encoder.eval()
        device = self.fabric.device
        self.encoder.to(device)
        latents, rates = [], []
        from tqdm.auto import tqdm

        for start in tqdm(range(0, data.n_trials, batch_size), desc="encode", unit="batch",
                          disable=not progress or data.n_trials <= batch_size):
            counts = torch.as_tensor(data.counts[start:start + batch_size], dtype=torch.float32, device=device)
            mask = torch.as_tensor(data.mask()[start:start + batch_size], device=device)
            z = self.encoder.encode(counts, mask)  # (B, T, D)
            r = self.encoder.decode(z, mask)  # (B, T, N)
            latents.append((z * mask[..., None]).cpu().numpy())
            rates.append((r * mask[..., None]).cpu().numpy())
        index = np.arange(data.n_trials) if trial_index is None else np.asarray(trial_index)
        return Encoded(np.concatenate(latents).astype(np.float32), np.concatenate(rates).astype(np.float32), data, index)

    def encode_split(self, split: str) -> Encoded:
        """Encode one split of the spec's data ('train', 'val', 'test' or 'all')."""
        data = self.load_data()
        if split == "all":
            return self.encode(data)
        if split not in data.splits:
            raise DataError("splits", f"no split named {split!r}; available: {', '.join(data.splits)}, all")
        return self.encode(data.split(split), trial_index=data.splits[split])

    @torch.no_grad()
    def sample(self, n: int, *, length: int | None = None, condition: Any = None, sampler: str | None = None,
               steps: int | None = None, seed: int = 0, observation: str | None = None,
               batch_size: int | None = None, progress: bool = True) -> Samples:
        """Draw ``n`` trials: latents from the generator, rates from the decoder, spikes from the observation model.

        A fixed ``seed`` (with the same ``batch_size``) gives identical samples. ``length`` may differ
        from the training length.
        """
        if self.generator is None:
            raise LdnsError("the pipeline has no trained generator: fit() a spec with a generator, or Pipeline.load(run_dir)")
        if n < 1:
            raise LdnsError(f"--n: expected at least 1 trial, got {n}")
        length = int(length or read_json(self.run_dir / "data" / "summary.json")["bins"])
        sampler = sampler or self.spec.sample.sampler
        steps = int(steps or self.spec.sample.steps)
        batch_size = batch_size or self.spec.sample.batch_size
        name, obs_model = self._observation_named(observation)
        cond = self.conditioner.validate(condition, n, length)
        device = self.fabric.device
        for module in (self.generator, self.encoder, obs_model):
            module.to(device).eval()
        latent_gen = torch.Generator(device=device).manual_seed(seed)
        spike_gen = torch.Generator(device=device).manual_seed(seed + 1)
        from tqdm.auto import tqdm

        parts: dict[str, list[np.ndarray]] = {"latents": [], "rates": [], "counts": []}
        for start in tqdm(range(0, n, batch_size), desc=f"sample ({sampler}, {steps} steps)", unit="batch",
                          disable=not progress):
            size = min(batch_size, n - start)
            lengths = torch.full((size,), length, dtype=torch.long, device=device)
            batch_cond = None if cond is None else cond[start:start + size].to(device)
            z = self.generator.sample(size, lengths, batch_cond, latent_gen, sampler=sampler, steps=steps)  # (B, T, D)
            mask = torch.arange(length, device=device)[None, :] < lengths[:, None]  # (B, T)
            latents = torch.as_tensor(self.latent_stats.unnormalise(z.cpu().numpy()), dtype=torch.float32, device=device)
            rates = self.encoder.decode(latents, mask)  # (B, T, N)
            counts = obs_model.sample(rates, mask, generator=spike_gen)  # (B, T, N)
            parts["latents"].append((latents * mask[..., None]).cpu().numpy())
            parts["rates"].append((rates * mask[..., None]).cpu().numpy())
            parts["counts"].append(counts.round().to(torch.int32).cpu().numpy())
        return Samples(latents=np.concatenate(parts["latents"]), rates=np.concatenate(parts["rates"]),
                       counts=np.concatenate(parts["counts"]), lengths=np.full(n, length, dtype=np.int64),
                       condition=None if cond is None else cond.cpu().numpy(), sampler=sampler, steps=steps,
                       seed=seed, observation=name)

    def write_samples(self, samples: Samples, path: str | Path) -> Path:
        """Write samples as .npz (atomically) and tell the plugins."""
        from ldns_framework.rundir import atomic_path

        path = Path(path)
        if path.suffix != ".npz":
            raise LdnsError(f"--out: expected a .npz file, got {path.name}")
        with atomic_path(path) as tmp:
            np.savez_compressed(tmp, **samples.to_npz_dict())
        self._hook("ldns_samples_written", path=path, n_trials=int(samples.counts.shape[0]), sampler=samples.sampler)
        return path

    def _observation_named(self, name: str | None) -> tuple[str, Any]:
        """The fitted observation model of the run, or another registered one fitted now on the training split."""
        own = self.spec.components["observation"].type
        if name is None or name == own:
            return own, self.observation
        model = self.registry.build("observation", {"type": name}, path="--observation", n_neurons=self.n_neurons)
        if model.state_dict() or model.is_autoregressive:
            train = self.load_data().split("train")
            rates = self.encode(train, progress=False).rates
            model.fit(torch.as_tensor(train.counts, dtype=torch.float32), torch.as_tensor(rates), torch.as_tensor(train.mask()))
        return name, model

    def log_prob(self, data: SpikeData) -> np.ndarray:
        """Per-trial log-likelihood of real counts under the observation model at the encoder's rates."""
        encoded = self.encode(data, progress=False)
        counts = torch.as_tensor(data.counts, dtype=torch.float32)
        return self.observation.log_prob(counts, torch.as_tensor(encoded.rates), torch.as_tensor(data.mask())).numpy()


def _differing_keys(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(a) | set(b)):
        path = f"{prefix}{key}"
        va, vb = a.get(key), b.get(key)
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            keys += _differing_keys(va, vb, path + ".")
        elif va != vb:
            keys.append(path)
    return keys


def _discover() -> Any:
    from ldns_registry import Registry

    return Registry.discover()
