"""Training stage 2 (first frame + label map -> video) on the synthetic streets.

:class:`Trainer` trains a :class:`~seg2vid.models.Seg2Vid` with
:func:`seg2vid.training.objective.seg2vid_loss` and Adam, and writes everything to one folder::

    OUT/checkpoints/last.pt     model + optimiser + step + configs + RNG states (atomic writes)
    OUT/log.csv                 one row per step: every unweighted loss term, total, grad norm, times
    OUT/summary.json            configs, status, throughput, the last losses (written at the end)
    OUT/samples/step_NNNNNN.gif rows = held-out clips; columns = true | posterior | prior sample

Data. Clips come from :class:`~seg2vid.data.synthetic.SyntheticStreets` at the model's size and
number of frames, rendered in the main process (no DataLoader workers: the reference machine has 2
cores, and a worker would steal one from the convolutions), and stored as 8-bit frames, like
real video. By DEFAULT (``num_clips=1000``) a fixed pool (:class:`~seg2vid.data.pool.ClipPool`)
is reused and each epoch visits it in a permutation seeded by (seed, epoch); each of its clips is
rendered the first time a batch asks for it, so a short run renders only the clips it uses. Why
a pool: rendering costs about 14 ms per 64x64 clip of 1 + 4 frames and 65 ms at 128x256 (one
core), i.e. 0.11 s per batch of 8 tiny clips, as much as a whole tiny-preset CPU training step,
and far more than a GPU step; a pool pays it once per clip, in the first epoch (14 s and 60 MB for
1000 tiny clips; 65 s and 0.5 GB at 128x256). A few thousand clips is also the paper's
regime (Cityscapes has 2975 training sequences). ``num_clips=None`` renders FRESH clips every step
instead (the indices of step s are ``(s-1)*B .. s*B-1``): data that never repeat, at the
rendering cost above. Either way the batch of step s is a pure function of (seed, s), so resuming
needs no data-loader state.

Shipping. :func:`seg2vid.models.loading.export_model` writes a model-only copy of a checkpoint
(weights and configs, no optimiser: about a third of the size) for
:func:`seg2vid.models.loading.load_model`; :func:`seg2vid.checkpoints.find_checkpoint` finds a
shipped file by its repository path (``data/checkpoints/...``) from wherever a lesson runs.

Resume. A checkpoint stores the model, the optimiser (and GradScaler) state, the step, the three
configs and the global RNG states (torch CPU/CUDA, NumPy, Python): :meth:`Trainer.resume` then
continues exactly; on the CPU, 2 + 2 resumed steps give bit-identical parameters to 4 straight
ones. Only the run length and the bookkeeping (``steps``, ``*_every``), and where it runs
(``device``, ``amp``) may differ from the checkpoint's config, and the model's inference-only
fields (``Seg2VidConfig.INFERENCE_ONLY``: ``object_pin``, ``forward_mask``); any other difference is an error
naming the fields.

Failures stop early and say what went wrong: a batch with the wrong shape, unknown label ids or
NaN/inf values, a loss term that is NaN/inf (named), non-finite gradients (the parameters named).
Nothing is written after the failure, so the last good checkpoint stays as it was.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from seg2vid.checkpoints import (
    STAGE2_FORMAT,
    CheckpointMismatchError,
    load_checkpoint,
)
from seg2vid.config_base import FrozenConfig
from seg2vid.data.build import frames_and_label_map
from seg2vid.data.labels import CITYSCAPES, LabelTable
from seg2vid.data.pool import ClipPool
from seg2vid.data.splits import SAMPLE_OFFSET
from seg2vid.data.synthetic import LEGACY_STYLE, SceneConfig, SyntheticStreets
from seg2vid.models.seg2vid import FITTED_PRIOR_BUFFERS, Seg2Vid, Seg2VidConfig
from seg2vid.training import distributed
from seg2vid.training.loop import NonFiniteError, TrainLoop
from seg2vid.training.objective import ALL_TERMS, LossConfig, seg2vid_loss
from seg2vid.training.perceptual import load_perceptual
from seg2vid.utils import pick_device, progress_enabled, seed_everything
from seg2vid.viz import PANEL_GAP_GREY, hstack_videos, save_gif, to_uint8_video, upscale

__all__ = ["TrainConfig", "Trainer", "check_batch"]


#: Clip-index range of the on-the-fly stream (2^31 clips: never exhausted in practice).
_STREAM_LENGTH = 2**31

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}



@dataclass(frozen=True)
class TrainConfig(FrozenConfig):
    """How to train (what to train is the :class:`Seg2VidConfig`; the loss is a :class:`LossConfig`).

    Args:
        steps: optimiser steps in total (a resumed run continues up to this number).
        batch_size: clips per step (the authors: 8 per GPU).
        lr: Adam's learning rate (the authors': 1e-3; betas are Adam's defaults).
        grad_clip: clip the global gradient norm to this value; ``None`` = no clipping (the
            authors'; Adam already bounds each update by about ``lr``). The norm before
            clipping is logged every step either way (about 5-25 when training starts).
        seed: seeds the model's initialisation, the latent and noise draws, and the data.
        log_every: progress-bar refresh and the window of the "last losses" in the summary
            (the CSV log gets every step).
        sample_every: write a sample GIF every N steps and at the end; 0 = never.
        checkpoint_every: write the checkpoint every N steps; it is always written at the end.
        amp: ``"off"``, or mixed precision: ``"bf16"`` (autocast; CUDA on Ampere or newer, also
            allowed on the CPU, where CI tests the path) or ``"fp16"`` (autocast + GradScaler;
            CUDA only, e.g. a T4). The model's parameters and the losses stay float32.
        num_clips: N = a fixed pool of N clips, each rendered at its first use and then reused
            (the default, 1000);
            ``None`` = fresh clips rendered at every step (see the module docstring).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``; ``None`` = the best available.
            Under ``torchrun`` on CUDA every process takes ``cuda:LOCAL_RANK``.
        num_workers: DataLoader worker processes that load the batches ahead of the step (0 = in
            the training process, the default: on a 2-core CPU a worker steals a core from the
            convolutions; on a GPU machine with real videos, 4-8 keep the GPU fed). On CUDA the
            batches are also put in pinned memory.
        compile: run the training forward pass through ``torch.compile`` (PyTorch 2; pays off on
            GPUs for long runs; the first steps are slow while it compiles).
    """

    steps: int = 2000
    batch_size: int = 8
    lr: float = 1e-3
    grad_clip: float | None = None
    seed: int = 0
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500
    amp: Literal["off", "bf16", "fp16"] = "off"
    num_clips: int | None = 1000
    device: str | None = None
    num_workers: int = 0
    compile: bool = False

    #: Fields that may differ between a checkpoint and the run that resumes it.
    RESUMABLE_CHANGES = ("steps", "log_every", "sample_every", "checkpoint_every", "amp", "device",
                         "num_workers", "compile")

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1:
            raise ValueError(f"need steps >= 0 and batch_size >= 1, got {self.steps} and {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}")
        if self.log_every < 1 or self.sample_every < 0 or self.checkpoint_every < 0:
            raise ValueError("need log_every >= 1, sample_every >= 0 and checkpoint_every >= 0")
        if self.amp not in ("off", *_AMP_DTYPES):
            raise ValueError(f"amp must be 'off', 'bf16' or 'fp16', got {self.amp!r}")
        if self.num_clips is not None and self.num_clips < 1:
            raise ValueError(f"num_clips must be >= 1 or None (fresh clips every step), got {self.num_clips}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")


# ----------------------------------------------------------------------------- batches


def check_batch(
    frames: Tensor, labels: Tensor, config: Seg2VidConfig, where: str = "batch",
    table: LabelTable = CITYSCAPES,
) -> None:
    """Refuse a bad batch before it reaches the model, saying what is wrong.

    Args:
        frames: (B, T+1, 3, H, W) float clip in [0, 1], T and H, W those of ``config``.
        labels: (B, H, W) integer train ids of the FIRST frame (``table.ignore_id`` = void).
        config: the model's configuration.
        where: names the batch in messages (e.g. "step 12 (clips 88..95)").
        table: the label table the ids belong to (default: Cityscapes).
    Raises:
        ValueError: wrong shapes or dtypes, frames outside [0, 1], unknown label ids.
        NonFiniteError: NaN or inf in the frames.
    """
    expected = (config.frames + 1, 3, config.height, config.width)
    if frames.dim() != 5 or tuple(frames.shape[1:]) != expected:
        raise ValueError(
            f"{where}: frames must be (B, {', '.join(map(str, expected))}), got {tuple(frames.shape)}"
        )
    if not frames.is_floating_point():
        raise ValueError(f"{where}: frames must be float in [0, 1], got dtype {frames.dtype}")
    if labels.shape != (frames.shape[0], config.height, config.width):
        raise ValueError(
            f"{where}: labels must be the first frames' integer maps (B, H, W) = "
            f"{(frames.shape[0], config.height, config.width)}, got {tuple(labels.shape)}"
        )
    bad = (~torch.isfinite(frames)).sum().item()
    if bad:
        raise NonFiniteError(f"{where}: the frames hold {bad} NaN/inf value(s)")
    low, high = frames.min().item(), frames.max().item()
    if low < 0 or high > 1:
        raise ValueError(f"{where}: frames must lie in [0, 1], got values in [{low:.3g}, {high:.3g}]")
    try:
        table.check(labels)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


def _collate(items: list[dict[str, Tensor]]) -> tuple[Tensor, Tensor]:
    """Stack dataset items into a batch: frames (B, T+1, 3, H, W) float, labels (B, H, W) int64."""
    pairs = [frames_and_label_map(item) for item in items]
    return torch.stack([f.float() for f, _ in pairs]), torch.stack([lab for _, lab in pairs])


def _as_uint8(item: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """A dataset item as 8-bit frames (T+1, 3, H, W) uint8 and first-frame labels (H, W) uint8
    (train ids 0..18, void 255): how the pool and the batches of synthetic clips store them."""
    frames, labels = frames_and_label_map(item)
    return (frames * 255).round().to(torch.uint8), labels.to(torch.uint8)


# ----------------------------------------------------------------------------- trainer


class Trainer(TrainLoop):
    """Trains a :class:`Seg2Vid` on synthetic streets; see the module docstring for the outputs.

    Args:
        model_config: the network (its height, width and frames also set the scenes' size).
        train_config: steps, batch, optimiser, bookkeeping, device.
        loss_config: the loss weights (default: the authors').
        out_dir: folder for checkpoints, logs and samples (created).
        perceptual_weights: local file with VGG-19 weights for the perceptual term; ``None``
            leaves the term off (and says so once).
        dataset: the training clips; ``None`` = synthetic streets at the model's size (a pool of
            ``num_clips`` or a fresh stream, see the module docstring). Otherwise any dataset
            whose items hold ``"frames"`` (T+1, 3, H, W) in [0, 1] and ``"label_map"`` (H, W)
            train ids of the first frame, and whose ``table`` attribute is the label table
            (e.g. :func:`seg2vid.data.build_dataset`); each epoch visits it in a permutation
            seeded by (seed, epoch).
        held_out: clips for the sample videos (the first two are shown); ``None`` = two synthetic
            clips from another seed, or the dataset's first two clips when ``dataset`` is given.
        data_config: a description of ``dataset`` (e.g. ``DatasetConfig.to_dict()``), stored in the
            checkpoint so that resuming on other data is refused.
        scene: settings of the default synthetic streets (e.g. ``style="rich"``) when ``dataset`` is
            None; default: ``SceneConfig`` at the model's size. Its size must be the model's.

    Under ``torchrun`` each process trains on its own ``batch_size`` clips of every step (see
    :mod:`seg2vid.training.distributed`); only rank 0 writes files.

    Typical use::

        trainer = Trainer(PRESETS["tiny"], TrainConfig(steps=500), out_dir="runs/tiny")
        trainer.resume()          # only to continue a run: loads OUT/checkpoints/last.pt
        trainer.warm_start("data/checkpoints/seg2vid_tiny_64.pt")  # or: a new run from its weights
        summary = trainer.train()
    """

    def __init__(
        self,
        model_config: Seg2VidConfig,
        train_config: TrainConfig | None = None,
        loss_config: LossConfig | None = None,
        out_dir: str | Path = "runs/seg2vid",
        perceptual_weights: str | Path | None = None,
        dataset: Dataset | None = None,
        held_out: Dataset | None = None,
        data_config: dict[str, Any] | None = None,
        scene: SceneConfig | None = None,
    ):
        self.model_config = model_config
        self.config = tc = train_config or TrainConfig()
        # default: the authors' weights converted for pixel flows at this width (see LossConfig)
        self.loss_config = loss_config or LossConfig.for_pixel_flows(model_config.width)
        #: The label table of the training data (one-hot channels, label checks).
        self.table: LabelTable = getattr(dataset, "table", CITYSCAPES) if dataset is not None else CITYSCAPES
        if model_config.label_channels != self.table.num_channels:
            where = "the synthetic streets use" if dataset is None else "the dataset's label table has"
            raise ValueError(
                f"{where} {self.table.num_channels} one-hot label channels; the model expects "
                f"{model_config.label_channels} (build the model with Seg2VidConfig.for_table(table, ...))"
            )
        self.data_config = data_config if data_config is not None else (
            {"kind": "synthetic"} if dataset is None else {"kind": type(dataset).__name__})
        if tc.amp == "fp16" and (wanted := pick_device(tc.device)).type != "cuda":
            raise ValueError(f"amp='fp16' needs a CUDA device (its GradScaler), and this run is on {wanted}; "
                             "bf16 also runs on the CPU")
        self.device, self.process = distributed.setup(tc.device)
        self.is_main = self.process.is_main
        self._set_output_paths(out_dir)

        seed_everything(tc.seed)
        self.model = Seg2Vid(model_config).to(self.device)
        #: What the training step calls: the model, wrapped in DDP and/or torch.compile if asked.
        self.step_model: torch.nn.Module = self.model
        if self.process.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.step_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
            # same initial weights everywhere (DDP broadcasts rank 0's); different noise per rank
            torch.manual_seed(tc.seed + 7919 * self.process.rank)
        if tc.compile:
            self.step_model = torch.compile(self.step_model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=tc.lr)
        self.scaler = torch.amp.GradScaler("cuda", enabled=tc.amp == "fp16")
        self.perceptual = load_perceptual(perceptual_weights, device=self.device)
        #: Optimiser steps done so far.
        self.step = 0
        self._started = False  # set by resume() or the first train(): guards existing runs
        self._epoch_order: tuple[int, Tensor] | None = None
        self._next_batch: tuple[Tensor, Tensor] | None = None  # a batch loaded ahead by a DataLoader
        #: Columns of the CSV log.
        self.columns = ["step", "total", *self.active_terms, "kl_weight", "grad_norm", "lr"]
        self.columns += ["data_s", "step_s"]

        if scene is not None and (scene.height, scene.width, scene.frames) != (
                model_config.height, model_config.width, model_config.frames):
            raise ValueError(f"scene {scene.height}x{scene.width}, 1 + {scene.frames} frames "
                             f"does not match the model's "
                             f"{model_config.height}x{model_config.width}, 1 + {model_config.frames}")
        scene = scene or SceneConfig(
            height=model_config.height, width=model_config.width, frames=model_config.frames)
        if dataset is None:  # the run's own streets, recorded in full: resuming on other streets is refused
            self.data_config = {**self.data_config, "scene": dataclasses.asdict(scene)}
        self._pool = None
        if dataset is not None:
            #: The training clips (synthetic streets by default).
            self.dataset = dataset
            if len(dataset) < 1:
                raise ValueError("the training dataset holds no clips")
            self._held_out = held_out if held_out is not None else Subset(
                dataset, range(min(2, len(dataset))))
        else:
            self.dataset = SyntheticStreets(tc.num_clips or _STREAM_LENGTH, scene, seed=tc.seed)
            if tc.num_clips is not None:
                # Lazy: each clip is rendered when a batch first asks for it (short runs render
                # only the clips they use; a resumed run re-renders the ones it meets).
                self._pool = ClipPool(tc.num_clips, self._load_clip)
            self._held_out = held_out if held_out is not None else SyntheticStreets(
                2, scene, seed=tc.seed + SAMPLE_OFFSET)
        self._sample_clips: tuple[Tensor, Tensor] | None = None  # rendered at the first sample

    # ------------------------------------------------------------------ data

    @property
    def active_terms(self) -> list[str]:
        """The loss terms this run computes and logs (weight > 0; perceptual only with a VGG)."""
        return [
            name for name in ALL_TERMS
            if getattr(self.loss_config, name) > 0 and (name != "perceptual" or self.perceptual is not None)
        ]

    def _render(
        self, indices: Iterable[int], desc: str | None, dataset: Dataset | None = None
    ) -> tuple[Tensor, Tensor]:
        """Clips ``indices`` of ``dataset`` (default: the training set) as 8-bit frames
        (N, T+1, 3, H, W) uint8 and first-frame label maps (N, H, W) uint8."""
        dataset = self.dataset if dataset is None else dataset
        if desc and progress_enabled():
            from tqdm.auto import tqdm

            indices = tqdm(indices, desc=desc, leave=False)
        clips = [_as_uint8(dataset[i]) for i in indices]
        return torch.stack([f for f, _ in clips]), torch.stack([lab for _, lab in clips])

    def _load_clip(self, index: int) -> tuple[Tensor, Tensor]:
        """Training clip ``index`` as the pool stores it: (T+1, 3, H, W) and (H, W) uint8."""
        return _as_uint8(self.dataset[index])

    @property
    def _num_source_clips(self) -> int | None:
        """Clips an epoch visits (None: the endless synthetic stream)."""
        if self._pool is not None:
            return len(self._pool)
        return None if isinstance(self.dataset, SyntheticStreets) else len(self.dataset)

    def clip_indices(self, step: int) -> list[int]:
        """Dataset indices of THIS process's clips of (1-based) step ``step``: a pure function of
        (seed, step, rank). Under ``torchrun`` the step's ``batch_size * world_size`` clips are
        split between the ranks."""
        b, n = self.config.batch_size, self._num_source_clips
        first = ((step - 1) * self.process.world_size + self.process.rank) * b
        positions = range(first, first + b)
        if n is None:
            return [p % _STREAM_LENGTH for p in positions]
        return [int(self._permutation(p // n, n)[p % n]) for p in positions]

    def load_batch(self, step: int) -> tuple[Tensor, Tensor]:
        """The CPU batch of (1-based) step ``step``: frames (B, T+1, 3, H, W) in [0, 1] and the first
        frames' label maps (B, H, W) int64. Replace this method to train on other data."""
        indices = self.clip_indices(step)
        if self._pool is not None:
            frames, labels = self._pool.get(indices)
            return frames.float() / 255, labels.long()
        if isinstance(self.dataset, SyntheticStreets):
            frames, labels = self._render(indices, None)
            return frames.float() / 255, labels.long()
        return _collate([self.dataset[i] for i in indices])

    def _steps(self, until: int, fail: Any) -> Iterator[tuple[int, dict[str, Any], float, float]]:
        """As :meth:`TrainLoop._steps`; with ``num_workers`` > 0 a DataLoader loads the batches of
        the coming steps in worker processes (the same clips as :meth:`load_batch`)."""
        if self.config.num_workers == 0 or self._pool is not None or self.step >= until:
            yield from super()._steps(until, fail)
            return
        batches = [self.clip_indices(s) for s in range(self.step + 1, until + 1)]
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=batches, num_workers=self.config.num_workers,
            collate_fn=_collate, pin_memory=self.device.type == "cuda",
            # its own generator: the loader draws its workers' base seed from it, and drawing it
            # from the global RNG would change the run's latent and noise draws
            generator=torch.Generator().manual_seed(self.config.seed + self.step),
        )
        waited = time.perf_counter()
        for batch in loader:
            step = self.step + 1
            self._next_batch = batch
            row, _, t1 = self._train_one(step, fail)
            yield step, row, waited, t1
            waited = time.perf_counter()

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self) -> Path:
        """Write ``OUT/checkpoints/last.pt`` atomically (only tensors and plain Python values, so it
        loads with ``torch.load(weights_only=True)``; the VGG is never part of it). Only rank 0
        writes it."""
        if not self.is_main:
            return self.checkpoint_path
        return self._write_checkpoint({
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "model_config": self.model_config.to_dict(),
            "loss_config": self.loss_config.to_dict(),
            "train_config": self.config.to_dict(),
        })

    _FORMAT = STAGE2_FORMAT

    def _read_checkpoint(self, path: str | Path) -> dict[str, Any]:
        return load_checkpoint(path)

    def _check_resumable(self, path: Path, ckpt: dict[str, Any]) -> None:
        if "optimizer" not in ckpt:
            raise ValueError(
                f"{path} is a model-only export (no optimiser or RNG state), so it cannot be resumed; "
                "load its weights with load_model(), or resume from the run's checkpoints/last.pt"
            )

    def _resume_configs(self, ckpt: dict[str, Any]) -> list[tuple[str, dict, dict, tuple[str, ...]]]:
        """The model, loss and train configs (through ``from_dict``: fields added since the
        checkpoint was written take their defaults, so an older run resumes; the model's
        inference-only fields, such as ``object_pin``, may differ)."""
        return [
            ("model", Seg2VidConfig.from_dict(ckpt["model_config"]).to_dict(),
             self.model_config.to_dict(), Seg2VidConfig.INFERENCE_ONLY),
            ("loss", LossConfig.from_dict(ckpt["loss_config"]).to_dict(), self.loss_config.to_dict(), ()),
            ("train", TrainConfig.from_dict(ckpt["train_config"]).to_dict(), self.config.to_dict(),
             TrainConfig.RESUMABLE_CHANGES),
        ]

    def _saved_data_config(self, ckpt: dict[str, Any]) -> dict[str, Any]:
        """A synthetic run saved without its scene (before seg2vid 0.2) trained on the default
        streets of its time: :data:`~seg2vid.data.synthetic.LEGACY_STYLE`, at the model's size."""
        saved = dict(super()._saved_data_config(ckpt))
        if saved.get("kind") == "synthetic" and "scene" in self.data_config:
            c = Seg2VidConfig.from_dict(ckpt["model_config"])
            scene = saved.get("scene") or {"height": c.height, "width": c.width, "frames": c.frames}
            saved["scene"] = dataclasses.asdict(SceneConfig(**{"style": LEGACY_STYLE, **scene}))
        return saved

    def _load_state(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scaler.is_enabled() and ckpt["scaler"] is not None:
            self.scaler.load_state_dict(ckpt["scaler"])

    def _warm_start_model_config(self, ckpt: dict[str, Any]) -> dict[str, Any]:
        return Seg2VidConfig.from_dict(ckpt["model_config"]).to_dict()

    def _load_weights(self, ckpt: dict[str, Any], new_modules: bool = False) -> None:
        """The model's weights (a training checkpoint or a model-only export)."""
        if not new_modules:
            self.model.load_state_dict(ckpt["model"])
            return
        weights = ckpt["model"]
        if self.model_config.latent_prior != "fitted":
            # a sampling prior fitted to the checkpoint's posteriors (latent_prior="fitted") is not a
            # trained weight and means nothing to this model: left out (refit it after training)
            prior = [name for name in weights if name in FITTED_PRIOR_BUFFERS]
            if prior:
                print(f"warm start: the checkpoint's fitted sampling prior is left out ({', '.join(prior)})")
                weights = {name: value for name, value in weights.items() if name not in prior}
        missing, unexpected = self.model.load_state_dict(weights, strict=False)
        if unexpected:
            raise CheckpointMismatchError(f"the checkpoint has weights this model lacks: {unexpected}")
        if missing:
            print(f"warm start: {len(missing)} weights of this model are new (initial values): "
                  f"{sorted({name.rsplit('.', 2)[0] for name in missing})}")

    def _after_resume(self) -> None:
        if self.process.distributed:  # the checkpoint holds rank 0's RNG: the others branch off it
            torch.manual_seed(self.config.seed + 7919 * self.process.rank + self.step)

    def _summary_configs(self) -> dict[str, Any]:
        """The configs of ``summary.json`` after ``model_config``: the loss's and the training's."""
        return {"loss_config": self.loss_config.to_dict(), "train_config": self.config.to_dict()}

    # ------------------------------------------------------------------ samples

    @torch.no_grad()
    def write_samples(self) -> Path:
        """A GIF of the held-out clips: true | reconstruction from the posterior mean | a prior sample.

        Uses its own seeded generator, never the global RNG, so writing samples does not change
        the training run. Only rank 0 writes them (other ranks return the path untouched).
        """
        path = self.samples_dir / f"step_{self.step:06d}.gif"
        if not self.is_main:
            return path
        if self._sample_clips is None:
            self._sample_clips = self._render(range(len(self._held_out)), None, self._held_out)
        frames, labels = self._sample_clips
        frames = (frames.float() / 255).to(self.device)
        onehot = self.table.one_hot(labels.long().to(self.device))
        was_training = self.model.training
        self.model.eval()
        try:
            g = torch.Generator(device=self.device).manual_seed(self.config.seed)
            recon = self.model.reconstruct(frames, onehot, generator=g).video
            sample = self.model.sample(frames[:, 0], onehot, generator=g).video
        finally:
            self.model.train(was_training)
        scale = max(1, 128 // self.model_config.height)
        gap = np.full((frames.shape[1], 2, 1, 3), PANEL_GAP_GREY, np.uint8)
        rows = []
        for i in range(frames.shape[0]):
            row = hstack_videos([upscale(to_uint8_video(v[i]), scale) for v in (frames, recon, sample)],
                                background=PANEL_GAP_GREY)
            rows += [row, np.repeat(gap, row.shape[2], axis=2)]
        return save_gif(path, np.concatenate(rows[:-1], axis=1))

    # ------------------------------------------------------------------ training

    def load_truth(self, step: int) -> dict[str, Tensor]:
        """The exact flows and visibility of step ``step``'s clips (for the ORACLE loss terms only):
        ``flow_fwd``/``flow_bwd`` (B, T, 2, H, W) pixels, ``visible_fwd``/``visible_bwd``
        (B, T, 1, H, W), on the device. The dataset must provide them (synthetic streets do)."""
        items = [self.dataset[i] for i in self.clip_indices(step)]
        keys = ("flow_fwd", "flow_bwd", "visible_fwd", "visible_bwd")
        missing = [k for k in keys if k not in items[0]]
        if missing:
            raise ValueError(f"the oracle loss needs {missing} but the training clips hold no such keys")
        return {k: torch.stack([it[k] for it in items]).to(self.device) for k in keys}

    def train_step(self, frames: Tensor, onehot: Tensor,
                   truth: dict[str, Tensor] | None = None) -> dict[str, float]:
        """One optimiser step on a checked batch already on the device.

        Args:
            frames: (B, T+1, 3, H, W) in [0, 1].
            onehot: (B, L, H, W) one-hot label maps of the first frames.
            truth: the exact flows/visibility, for the ORACLE loss terms only (:meth:`load_truth`).
        Returns:
            the log row: ``total`` and every active term (unweighted), ``kl_weight``,
            ``grad_norm`` (before clipping), ``lr``.
        Raises:
            NonFiniteError: a loss term or the gradient is NaN/inf (the update is not applied).
        """
        tc = self.config
        self.model.train()
        with torch.autocast(self.device.type, dtype=_AMP_DTYPES.get(tc.amp), enabled=tc.amp != "off"):
            output = self.step_model(frames, onehot)
        if tc.amp != "off":
            output = output.float32()  # losses are not computed in half
        total, terms = seg2vid_loss(output, frames, self.loss_config, self.step, self.perceptual, truth)
        values = dict(zip(["total", *terms], torch.stack([total.detach(), *terms.values()]).tolist(),
                          strict=True))
        bad = [k for k, v in values.items() if not math.isfinite(v) and k != "total"]
        # all ranks stop together: one rank alone would wait forever for the others' gradients
        if distributed.any_flag(bool(bad) or not math.isfinite(values["total"]), self.device):
            shown = ", ".join(f"{k}={v}" for k, v in values.items())
            raise NonFiniteError(
                f"step {self.step + 1}: loss term(s) {bad or ['total']} went non-finite "
                f"(unweighted values: {shown})"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip or math.inf).item()
        if not math.isfinite(grad_norm) and not self.scaler.is_enabled():  # (the same on every rank)
            # (with fp16 the scaler skips such a step and lowers its scale: that is its job)
            names = [n for n, p in self.model.named_parameters()
                     if p.grad is not None and not torch.isfinite(p.grad).all()]
            raise NonFiniteError(
                f"step {self.step + 1}: every loss term is finite but the gradient norm is {grad_norm}; "
                f"non-finite gradients in {names[:8]}"
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        values["kl_weight"] = self.loss_config.weight("kl", self.step) if "kl" in terms else 0.0
        values["grad_norm"] = grad_norm
        values["lr"] = self.optimizer.param_groups[0]["lr"]
        self.step += 1
        return values

    def train(self, until: int | None = None) -> dict[str, Any]:
        """Train from :attr:`step` up to ``until`` (default: ``train_config.steps``).

        Writes a CSV row every step, samples and checkpoints on their schedules, and the
        checkpoint, a last sample and ``summary.json`` at the end. Returns the summary dict.
        On a bad batch or a non-finite loss it writes the summary with the reason and raises,
        leaving the last good checkpoint as it was.
        """
        return self._train_loop(until)

    def _sync_stop(self, stop: bool) -> bool:
        """Stop when any rank was asked to (a SIGTERM reaches every process of a torchrun job,
        but not necessarily at the same step)."""
        return distributed.any_flag(stop, self.device)

    def close(self) -> None:
        """Leave the process group of a ``torchrun`` job (a no-op for a one-process run): with
        the other ranks after a normal end, at once while an exception is on its way out (a
        ``finally`` clause), since the other ranks are then not at the same point."""
        if self.process.distributed:
            distributed.teardown(wait=sys.exc_info()[0] is None)

    def _history_keys(self) -> list[str]:
        """The total and the active loss terms."""
        return ["total", *self.active_terms]

    def _train_one(self, step: int, fail: Any) -> tuple[dict[str, Any], float, float]:
        """Load, check and move the batch of step ``step`` and train on it; see
        :meth:`TrainLoop._train_one`. A bad batch or a non-finite loss stops the run."""
        t0 = time.perf_counter()
        indices = self.clip_indices(step)
        where = f"step {step} (clips {', '.join(map(str, indices[:8]))}{' ...' * (len(indices) > 8)})"
        try:
            batch, self._next_batch = self._next_batch, None
            frames, labels = batch if batch is not None else self.load_batch(step)
            check_batch(frames, labels, self.model_config, where, self.table)
            frames = frames.to(self.device, non_blocking=True)
            onehot = self.table.one_hot(labels.to(self.device, non_blocking=True))
            truth = self.load_truth(step) if self.loss_config.needs_truth else None
            t1 = time.perf_counter()
            row = self.train_step(frames, onehot, truth)
        except (NonFiniteError, ValueError) as err:
            message = f"{err}. Stopped without saving: {self._failure_note()}"
            fail(message)
            raise type(err)(message) from err
        return row, t0, t1
