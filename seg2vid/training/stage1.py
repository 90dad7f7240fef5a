"""Training stage 1 (label map -> first frame) on the synthetic streets, and its evaluation.

:class:`Stage1Trainer` trains a :class:`~seg2vid.models.spade.SpadeGenerator` against a
:class:`~seg2vid.models.spade.MultiScaleDiscriminator` on the FIRST frames of synthetic street
clips and their label maps, and writes everything to one folder (the layout of
:class:`seg2vid.training.stage2.Trainer`)::

    OUT/checkpoints/last.pt       generator + discriminator + both optimisers + step + configs + RNG
    OUT/log.csv                   one row per step: every loss term, the discriminator's, times
    OUT/summary.json              configs, status, throughput, the last losses
    OUT/samples/step_NNNNNN.png   rows = held-out label maps; columns = label map | generated | true

The generator's loss (weights in :class:`Stage1TrainConfig`)::

    w_l1 * |G(m) - x|_1  +  w_fm * feature matching  +  w_adv * hinge  [+ w_vgg * VGG-19 perceptual]

* L1 to the true first frame ``x`` of label map ``m``: the synthetic streets give the one image
  that goes with each map, so a plain reconstruction term is available (it is what makes a tiny
  model learn a recognisable street in minutes on a CPU; alone it gives blurry textures);
* feature matching (pix2pixHD): L1 between the discriminator's intermediate features of the
  generated and the true image, averaged over layers and scales;
* hinge adversarial loss, ``-mean D(G(m), m)``; the discriminator minimises
  ``mean relu(1 - D(x, m)) + mean relu(1 + D(G(m), m))`` (Park et al.);
* optional perceptual term, :class:`seg2vid.training.perceptual.VGGPerceptual` from a LOCAL weights file.

Both networks use Adam. The batch of step s is a pure function of (seed, s) (a fixed pool of
clips, each rendered at its first use, visited in a permutation per epoch), the global RNGs are
seeded from the config and saved in the checkpoint, so a resumed run continues the run it came from.

Checkpoints are written atomically and hold only tensors and plain values
(``torch.load(weights_only=True)``). :meth:`Stage1Trainer.export_generator` writes the
generator alone (a few MB), which :func:`seg2vid.models.loading.load_spade_generator` reads back, and
``scripts/evaluate_stage1.py`` scores with :func:`evaluate_first_frames` (fixed held-out maps).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seg2vid import __version__
from seg2vid.checkpoints import (
    GENERATOR_FORMAT,
    STAGE1_FORMAT,
    atomic_write,
    load_stage1_checkpoint,
    read_checkpoint,
)
from seg2vid.config_base import FrozenConfig
from seg2vid.data.first_frames import dataset_first_frames, render_first_frames, spread_indices
from seg2vid.data.labels import CITYSCAPES
from seg2vid.data.pool import ClipPool
from seg2vid.data.splits import SAMPLE_OFFSET
from seg2vid.data.synthetic import DEFAULT_STYLE, LEGACY_STYLE, STYLES, SceneConfig, SyntheticStreets
from seg2vid.models.spade import MultiScaleDiscriminator, SpadeConfig, SpadeGenerator
from seg2vid.training.adversarial import feature_matching_loss, hinge_discriminator_loss, hinge_generator_loss
from seg2vid.training.loop import NonFiniteError, TrainLoop
from seg2vid.training.perceptual import load_perceptual
from seg2vid.utils import pick_device, seed_everything
from seg2vid.viz import grid_image, label_video_rgb, save_png, to_uint8_video, upscale

__all__ = ["Stage1TrainConfig", "Stage1Trainer"]

_LOSS_TERMS = ("l1", "feature_matching", "adversarial", "perceptual")


# ----------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Stage1TrainConfig(FrozenConfig):
    """How to train stage 1 (what to train is the :class:`SpadeConfig`).

    Args:
        height, width: image size (multiples of the generator's ``size_multiple``). It lives here,
            not in :class:`SpadeConfig` (stage 2 keeps it in its model config): SPADE's weights
            fit any size, so the size is a property of the run (see :mod:`seg2vid.configs`).
        steps: optimiser steps in total (a resumed run continues up to this number).
        batch_size: label maps per step.
        lr_generator, lr_discriminator: Adam learning rates.
        betas: Adam's betas for both networks (pix2pix / pix2pixHD: (0.5, 0.999)).
        weight_l1, weight_feature_matching, weight_adversarial, weight_perceptual: loss weights
            (the perceptual one only counts when VGG-19 weights are given).
        seed: seeds the initialisation, the noise draws and the data.
        num_clips: size of the pool of clips, each rendered at its first use and then reused
            (about 8 ms per 64x64 clip).
        style: the synthetic streets' style (:data:`seg2vid.data.synthetic.STYLES`; default
            :data:`~seg2vid.data.synthetic.DEFAULT_STYLE`); ignored when a dataset is given. A
            checkpoint whose train config names no style was trained on "classic" streets.
        log_every: progress-bar refresh, and the window of the summary's "last losses".
        sample_every: write a sample PNG every N steps and at the end; 0 = never.
        checkpoint_every: write the checkpoint every N steps; it is always written at the end.
        device: "cpu", "cuda", "cuda:1", "mps"; None = the best available.
    """

    height: int = 64
    width: int = 64
    steps: int = 2000
    batch_size: int = 8
    lr_generator: float = 2e-4
    lr_discriminator: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_l1: float = 10.0
    weight_feature_matching: float = 10.0
    weight_adversarial: float = 1.0
    weight_perceptual: float = 10.0
    seed: int = 0
    num_clips: int = 2000
    style: str = DEFAULT_STYLE
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500
    device: str | None = None

    #: Fields that may differ between a checkpoint and the run that resumes it.
    RESUMABLE_CHANGES = ("steps", "log_every", "sample_every", "checkpoint_every", "device")

    def __post_init__(self) -> None:
        if self.height < 8 or self.width < 8:
            raise ValueError(f"images must be at least 8x8, got {self.height}x{self.width}")
        if self.steps < 0 or self.batch_size < 1 or self.num_clips < 1:
            raise ValueError("need steps >= 0, batch_size >= 1 and num_clips >= 1")
        if not (self.lr_generator > 0 and self.lr_discriminator > 0):
            raise ValueError("learning rates must be > 0")
        weights = [self.weight(term) for term in _LOSS_TERMS]
        if min(weights) < 0:
            raise ValueError(f"loss weights must be >= 0, got {weights}")
        if self.log_every < 1 or self.sample_every < 0 or self.checkpoint_every < 0:
            raise ValueError("need log_every >= 1, sample_every >= 0 and checkpoint_every >= 0")
        if self.style not in STYLES:
            raise ValueError(f"unknown synthetic style {self.style!r}; known: {', '.join(STYLES)}")

    def weight(self, term: str) -> float:
        """The weight of loss term ``term`` (one of l1, feature_matching, adversarial, perceptual)."""
        return getattr(self, f"weight_{term}")


# ----------------------------------------------------------------------------- trainer


class Stage1Trainer(TrainLoop):
    """Trains a :class:`SpadeGenerator` on synthetic first frames; see the module docstring.

    Args:
        model_config: the generator and discriminator (label channels: the Cityscapes table's).
        train_config: size, steps, batch, optimisers, loss weights, bookkeeping, device.
        out_dir: folder for the checkpoint, logs and samples (created at the first step).
        perceptual_weights: local VGG-19 weights file for the perceptual term; None = term off.
        dataset: None = synthetic streets; otherwise clips with Cityscapes label maps (e.g.
            ``build_dataset(DatasetConfig(kind="cityscapes", ...))``): the pool holds the first
            frames and label maps of ``num_clips`` clips spread evenly over the dataset.
        data_config: a description of ``dataset`` stored in the checkpoint (resuming on other
            data is refused).
        held_out: clips for the sample pictures (up to 4, spread over it), e.g. the held-out
            split of ``dataset``; None = synthetic label maps of dataset ``seed + SAMPLE_OFFSET``
            when training on synthetic streets, else clips of ``dataset`` itself (training clips).

    Typical use::

        trainer = Stage1Trainer(SPADE_PRESETS["tiny"], Stage1TrainConfig(steps=500), out_dir="runs/stage1")
        summary = trainer.train()
        trainer.export_generator("spade_tiny_64.pt")
    """

    _BAR_DESC = "train stage 1"
    _RESUME_HINT = "Stage1Trainer.resume(), seg2vid train-stage1 --resume"
    _POSTFIX_KEYS = ("l1", "adversarial", "d_loss")
    _SLOW_WHAT = "training stage 1"

    def __init__(
        self,
        model_config: SpadeConfig,
        train_config: Stage1TrainConfig | None = None,
        out_dir: str | Path = "runs/stage1",
        perceptual_weights: str | Path | None = None,
        dataset: Any = None,
        data_config: dict[str, Any] | None = None,
        held_out: Any = None,
    ):
        self.model_config = model_config
        self.config = tc = train_config or Stage1TrainConfig()
        if dataset is not None and getattr(dataset, "table", CITYSCAPES) != CITYSCAPES:
            raise ValueError(
                "stage 1 turns Cityscapes label maps into images; this dataset has no label maps "
                f"(table: {dataset.table.names}); use a user image as the first frame"
            )
        self.dataset = dataset
        #: The clips of the sample pictures (None: synthetic maps of seed + SAMPLE_OFFSET).
        self.held_out = held_out if held_out is not None else dataset
        self.data_config = data_config if data_config is not None else (
            {"kind": "synthetic"} if dataset is None else {"kind": type(dataset).__name__})
        if model_config.label_channels != CITYSCAPES.num_channels:
            raise ValueError(
                f"the synthetic streets use the Cityscapes labels ({CITYSCAPES.num_channels} one-hot "
                f"channels); the model expects {model_config.label_channels}"
            )
        m = model_config.size_multiple
        if tc.height % m or tc.width % m:
            raise ValueError(f"height and width must be multiples of {m} for this generator, "
                             f"got {tc.height}x{tc.width}")
        self.device = pick_device(tc.device)
        self._set_output_paths(out_dir)

        seed_everything(tc.seed)
        self.generator = SpadeGenerator(model_config).to(self.device)
        self.discriminator = MultiScaleDiscriminator(model_config).to(self.device)
        self.optimizer_g = torch.optim.Adam(self.generator.parameters(), lr=tc.lr_generator, betas=tc.betas)
        self.optimizer_d = torch.optim.Adam(
            self.discriminator.parameters(), lr=tc.lr_discriminator, betas=tc.betas
        )
        self.perceptual = load_perceptual(perceptual_weights, device=self.device)
        #: Optimiser steps done so far.
        self.step = 0
        self._started = False  # set by resume() or the first train(): guards existing runs
        self._epoch_order: tuple[int, Tensor] | None = None
        self._pool: ClipPool | None = None  # made at the first batch; clips load at first use
        self._sample_batch: tuple[Tensor, Tensor] | None = None
        #: Columns of the CSV log.
        self.columns = ["step", "g_total", *self.active_terms, "d_loss", "d_real", "d_fake", "grad_norm_g",
                        "data_s", "step_s"]

    @property
    def active_terms(self) -> list[str]:
        """The generator's loss terms this run computes (weight > 0; perceptual only with a VGG)."""
        return [t for t in _LOSS_TERMS
                if self.config.weight(t) > 0 and (t != "perceptual" or self.perceptual is not None)]

    # ------------------------------------------------------------------ data

    def _make_pool(self) -> ClipPool:
        """The pool of first frames and label maps (uint8): each loaded at its first use."""
        tc = self.config
        if self.dataset is not None:
            if len(self.dataset) == 0:
                raise ValueError("the stage-1 dataset holds no clips")
            spread = spread_indices(tc.num_clips, len(self.dataset))  # distinct clips spread over it

            def load(i: int) -> tuple[Tensor, Tensor]:
                images, labels = dataset_first_frames(self.dataset, [spread[i]], tc.height, tc.width)
                return images[0], labels[0]

            return ClipPool(len(spread), load)
        scene = SceneConfig(height=tc.height, width=tc.width, frames=1, style=tc.style)
        dataset = SyntheticStreets(tc.num_clips, scene, seed=tc.seed)

        def render(i: int) -> tuple[Tensor, Tensor]:
            clip = dataset[i]
            return (clip["frames"][0] * 255).round().to(torch.uint8), clip["labels"][0].to(torch.uint8)

        return ClipPool(tc.num_clips, render)

    def clip_indices(self, step: int) -> list[int]:
        """Pool indices of the images of (1-based) step ``step``: a pure function of (seed, step)."""
        b, n = self.config.batch_size, self.config.num_clips
        if self.dataset is not None:
            n = min(n, len(self.dataset))
        return [int(self._permutation(p // n, n)[p % n]) for p in range((step - 1) * b, step * b)]

    def load_batch(self, step: int) -> tuple[Tensor, Tensor]:
        """The CPU batch of (1-based) step ``step``: first frames (B, 3, H, W) in [0, 1] and their
        label maps (B, H, W) int64. Replace this method to train on other data."""
        if self._pool is None:
            self._pool = self._make_pool()
        images, labels = self._pool.get(self.clip_indices(step))
        return images.float() / 255, labels.long()

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self) -> Path:
        """Write ``OUT/checkpoints/last.pt`` atomically (loads with ``weights_only=True``)."""
        return self._write_checkpoint({
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict(),
            "model_config": self.model_config.to_dict(),
            "train_config": self.config.to_dict(),
        })

    def export_generator(self, path: str | Path) -> Path:
        """Write the generator alone (weights + configs, no optimiser: a few MB), atomically; read
        it back with :func:`seg2vid.models.loading.load_spade_generator`."""
        export = {
            "format": GENERATOR_FORMAT[0],
            "format_version": GENERATOR_FORMAT[1],
            "seg2vid_version": __version__,
            "step": self.step,
            "model": self.generator.state_dict(),
            "model_config": self.model_config.to_dict(),
            "train_config": self.config.to_dict(),
        }
        path = Path(path)
        atomic_write(path, lambda fh: torch.save(export, fh))
        return path

    _FORMAT = STAGE1_FORMAT

    def _read_checkpoint(self, path: str | Path) -> dict[str, Any]:
        return load_stage1_checkpoint(path)

    def _resume_configs(self, ckpt: dict[str, Any]) -> list[tuple[str, dict, dict, tuple[str, ...]]]:
        """The model and train configs (through ``from_dict``: fields added since the checkpoint
        was written take their defaults, so an older run resumes)."""
        return [
            ("model", SpadeConfig.from_dict(ckpt["model_config"]).to_dict(), self.model_config.to_dict(), ()),
            # a train config without a style predates the rich default: it was trained on classic
            ("train", Stage1TrainConfig.from_dict({"style": LEGACY_STYLE, **ckpt["train_config"]}).to_dict(),
             self.config.to_dict(), Stage1TrainConfig.RESUMABLE_CHANGES),
        ]

    def _load_state(self, ckpt: dict[str, Any]) -> None:
        self.generator.load_state_dict(ckpt["generator"])
        self.discriminator.load_state_dict(ckpt["discriminator"])
        self.optimizer_g.load_state_dict(ckpt["optimizer_g"])
        self.optimizer_d.load_state_dict(ckpt["optimizer_d"])

    def _read_weights(self, path: Path) -> dict[str, Any]:
        """A stage-1 training checkpoint or a generator export (:meth:`export_generator`)."""
        return read_checkpoint(path, (STAGE1_FORMAT, GENERATOR_FORMAT),
                               "seg2vid stage-1 checkpoint or generator export")

    def _warm_start_model_config(self, ckpt: dict[str, Any]) -> dict[str, Any]:
        return SpadeConfig.from_dict(ckpt["model_config"]).to_dict()

    def _load_weights(self, ckpt: dict[str, Any], new_modules: bool = False) -> None:
        """The generator's weights, and the discriminator's when the file holds them (a training
        checkpoint; a generator export leaves this run's fresh discriminator)."""
        self.generator.load_state_dict(ckpt["generator"] if "generator" in ckpt else ckpt["model"])
        if "discriminator" in ckpt:
            self.discriminator.load_state_dict(ckpt["discriminator"])

    # ------------------------------------------------------------------ training

    def train_step(self, images: Tensor, labels_onehot: Tensor) -> dict[str, float]:
        """One generator update, then one discriminator update, on a batch already on the device.

        Args:
            images: (B, 3, H, W) true first frames in [0, 1].
            labels_onehot: (B, L, H, W) their one-hot label maps.
        Returns:
            the log row: ``g_total`` and every active term (unweighted), ``d_loss``, ``d_real`` /
            ``d_fake`` (mean patch logits of true and generated images, over scales) and
            ``grad_norm_g``.
        Raises:
            NonFiniteError: a loss is NaN/inf (that network's update is not applied).
        """
        tc = self.config
        generator, discriminator = self.generator, self.discriminator
        generator.train()
        discriminator.train()
        fake = generator(labels_onehot)

        discriminator.requires_grad_(False)  # the generator's update: no gradient to D's weights
        try:
            fake_outputs = discriminator(fake, labels_onehot)
            with torch.no_grad():
                real_outputs = discriminator(images, labels_onehot)
        finally:
            discriminator.requires_grad_(True)
        available = {
            "l1": lambda: (fake - images).abs().mean(),
            "feature_matching": lambda: feature_matching_loss(fake_outputs, real_outputs),
            "adversarial": lambda: hinge_generator_loss(fake_outputs),
            "perceptual": lambda: self.perceptual(fake, images),
        }
        terms = {name: available[name]() for name in self.active_terms}
        g_total = sum(tc.weight(name) * value for name, value in terms.items())
        values = dict(zip(["g_total", *terms], torch.stack([g_total.detach(), *terms.values()]).tolist(),
                          strict=True))
        self._check_finite(values, "generator")
        self.optimizer_g.zero_grad(set_to_none=True)
        g_total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(generator.parameters(), math.inf).item()
        self.optimizer_g.step()

        real_outputs = discriminator(images, labels_onehot)
        fake_outputs = discriminator(fake.detach(), labels_onehot)
        d_loss = hinge_discriminator_loss(real_outputs, fake_outputs)
        d_real = torch.stack([r[-1].mean() for r in real_outputs]).mean()
        d_fake = torch.stack([f[-1].mean() for f in fake_outputs]).mean()
        d_stats = torch.stack([d_loss.detach(), d_real.detach(), d_fake.detach()]).tolist()
        d_values = dict(zip(["d_loss", "d_real", "d_fake"], d_stats, strict=True))
        self._check_finite(d_values, "discriminator")
        self.optimizer_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizer_d.step()
        self.step += 1
        return {**values, **d_values, "grad_norm_g": grad_norm}

    def _check_finite(self, values: dict[str, float], network: str) -> None:
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            shown = ", ".join(f"{k}={v}" for k, v in values.items())
            raise NonFiniteError(
                f"step {self.step + 1}: the {network}'s loss {bad} went non-finite ({shown})"
            )

    def train(self, until: int | None = None) -> dict[str, Any]:
        """Train from :attr:`step` up to ``until`` (default: ``train_config.steps``).

        Writes a CSV row every step, samples and checkpoints on their schedules, and the
        checkpoint, a last sample and ``summary.json`` at the end; returns the summary dict.
        On a non-finite loss it writes the summary with the reason and raises, leaving the last
        good checkpoint as it was.
        """
        return self._train_loop(until)

    def _before_loop(self, until: int) -> None:
        """Set up the pool before the clock starts (its clips load at their first use)."""
        if self._pool is None and self.step < until:
            self._pool = self._make_pool()

    def _history_keys(self) -> list[str]:
        """The generator's total and active terms, and the discriminator's loss."""
        return ["g_total", *self.active_terms, "d_loss"]

    def _train_one(self, step: int, fail: Any) -> tuple[dict[str, Any], float, float]:
        """Load and move the batch of step ``step`` and train on it; see
        :meth:`seg2vid.training.loop.TrainLoop._train_one`. A non-finite loss stops the run."""
        t0 = time.perf_counter()
        images, labels = self.load_batch(step)
        images = images.to(self.device, non_blocking=True)
        onehot = CITYSCAPES.one_hot(labels).to(self.device, non_blocking=True)
        t1 = time.perf_counter()
        try:
            row = self.train_step(images, onehot)
        except NonFiniteError as err:
            message = f"{err}. Stopped without saving: {self._failure_note()}"
            fail(message)
            raise NonFiniteError(message) from err
        return row, t0, t1

    @torch.no_grad()
    def write_samples(self, num_images: int = 4) -> Path:
        """A PNG of held-out label maps: rows = maps; columns = label map | generated | true frame.

        The maps are the first frames of ``held_out`` (up to ``num_images`` clips spread over
        it), or on synthetic streets those of dataset ``seed + SAMPLE_OFFSET``; drawing the
        sample uses its own seeded generator, never the global RNG, so it does not change the run.
        """
        tc = self.config
        if self._sample_batch is None:
            if self.held_out is None:
                held_out_seed = tc.seed + SAMPLE_OFFSET
                self._sample_batch = render_first_frames(num_images, tc.height, tc.width, held_out_seed)
            else:
                indices = spread_indices(num_images, len(self.held_out))
                images, labels = dataset_first_frames(self.held_out, indices, tc.height, tc.width)
                self._sample_batch = images.float() / 255, labels.long()
        images, labels = self._sample_batch
        was_training = self.generator.training
        self.generator.eval()
        try:
            g = torch.Generator(device=self.device).manual_seed(tc.seed)
            generated = self.generator.generate(CITYSCAPES.one_hot(labels).to(self.device), generator=g).cpu()
        finally:
            self.generator.train(was_training)
        scale = max(1, 128 // tc.height)
        colours = label_video_rgb(labels)
        columns = [colours, to_uint8_video(generated), to_uint8_video(images)]
        rows = [[upscale(column[i : i + 1], scale)[0] for column in columns] for i in range(len(labels))]
        return save_png(self.samples_dir / f"step_{self.step:06d}.png", grid_image(rows))
