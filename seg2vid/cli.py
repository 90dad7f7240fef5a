"""The ``seg2vid`` console script.

Sub-commands (more arrive with the later parts of the course):

``seg2vid demo``
    Render one synthetic street clip and write it as a GIF and an MP4 (frames | label map |
    flow | visibility side by side), a PNG strip (rows: frames, labels, flow, visibility;
    columns: time) and the exact flows as Middlebury ``.flo`` files, then print where they are.

    With the shipped checkpoints at hand it then generates ``--samples`` futures (default 3) of a
    64x64 synthetic label map with :class:`seg2vid.generation.pipeline.Pipeline` (``future_i.gif``/``.mp4``
    and the contact sheet ``futures.png``); without them it prints a note and stops there.

``seg2vid generate``
    Read a label-map PNG (train ids or Cityscapes colours), generate ``--samples`` futures with
    the shipped 64x64 models and write ``sample_i.gif``/``.mp4`` and ``samples.png`` (rows:
    samples; columns: label map, then time).

``seg2vid train``
    Train the stage-2 model (a preset, optionally resized) on synthetic streets with
    :class:`seg2vid.training.stage2.Trainer`; print where the checkpoint, the CSV log, the summary and
    the sample GIFs go. ``--resume`` continues the run in ``--out``.

    Fast path: when ``libtcmalloc_minimal`` is installed (Debian: ``libtcmalloc-minimal4``) and
    not yet in ``LD_PRELOAD``, the command re-executes itself with it preloaded: glibc's malloc
    returns the large, short-lived tensors of a training step to the kernel and faults them in
    again at every step, tcmalloc keeps them (about 1.6x faster CPU steps on the reference
    machine). ``SEG2VID_NO_TCMALLOC=1`` turns this off; without the library nothing happens.

``seg2vid evaluate``
    Score a stage-2 checkpoint (default: the shipped one) on the held-out split of the data it was
    trained on (its saved data config; ``--config`` or ``--data/--data-root/--split`` override it;
    synthetic test clips for a checkpoint without one) with
    :func:`seg2vid.evaluation.evaluate.evaluate`: PSNR/SSIM best-of-N and mean-of-N, flow end-point
    error, occlusion IoU, diversity, semantic fidelity, and FVD/FID/LPIPS when local weight files are
    given; print the table with its protocol, save ``eval.json`` and ``table.md``.

``seg2vid train-stage1``
    Train the stage-1 generator (label map -> first frame; SPADE, a preset) on the first frames
    of synthetic streets (or a real dataset's) with :class:`seg2vid.training.stage1.Stage1Trainer`,
    same folder layout and ``--resume``; ``--config FILE`` reads a stage-1 run config
    (``stage = 1``, see :mod:`seg2vid.configs`), options override it; ``--export PATH`` also
    writes the generator alone (a few MB). It uses the same tcmalloc fast path as ``seg2vid train``.

Exit status: 0 on success; 2 for an error in the input or a fault (one line on stderr naming the
file and the cause: an empty, truncated or corrupt ``.pt``, an unusable ``--out``, a missing
device, a full disk); :data:`EXIT_STOPPED` (143) for a training run stopped by SIGTERM before its
last step (checkpoint saved, ``summary.json`` says ``"resumable": true``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from seg2vid import __version__

#: The synthetic streets' styles, for the ``--style`` options (``seg2vid.data.synthetic.STYLES``;
#: spelled out so that ``seg2vid --help`` imports neither NumPy nor torch).
STYLE_CHOICES = ("classic", "rich")


def _size(text: str) -> tuple[int, int]:
    """Parse "64" (square) or "128x256" (HxW)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 64 or 128x256, got {text!r}") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 8:
        raise argparse.ArgumentTypeError(f"size must be H or HxW with both >= 8, got {text!r}")
    return parts[0], parts[1]


def _positive(kind: type) -> Callable[[str], float | int]:
    """An argparse type: a number of ``kind`` that is > 0 (so ``--fps 0`` or ``--scale 0`` is refused
    while the arguments are parsed, before anything is generated)."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a{'n integer' if kind is int else ' number'}, "
                                             f"got {text!r}") from None
        if not value > 0:  # also refuses NaN
            raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _writable_folder(folder: str | Path) -> Path:
    """``folder``, created if missing, after checking that files can be written in it: a read-only or
    unusable ``--out`` is refused before any work is done, and nothing is left half-written there.

    Raises:
        OSError: (with ``filename``) it is a file, or it cannot be created or written.
    """
    import tempfile

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(20, "it is a file, not a folder (--out)", str(folder))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        cause = err.strerror[:1].lower() + err.strerror[1:] if err.strerror else str(err)
        raise type(err)(err.errno, f"cannot write there (--out): {cause}", str(folder)) from None
    return folder


def _os_error_message(err: OSError) -> str:
    """One line for an ``OSError``: the file and the cause, e.g. ``runs/x/checkpoints/last.pt: no
    space left on device`` (without Python's ``[Errno 28]`` prefix)."""
    cause = err.strerror or str(err)
    if err.strerror:  # "No space left on device" -> "no space left on device"
        cause = cause[:1].lower() + cause[1:]
    return f"{err.filename}: {cause}" if err.filename else cause


def _demo(args: argparse.Namespace) -> int:
    from seg2vid.data.synthetic import SceneConfig, render_clip
    from seg2vid.flow import write_flo
    from seg2vid.viz import clip_panel, clip_strip, save_gif, save_mp4, save_png

    height, width = args.size
    config = SceneConfig(height=height, width=width, frames=args.frames, motion=args.motion)
    clip = render_clip(config, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    panel = clip_panel(clip, scale=args.scale)
    written = [
        save_gif(out / "clip.gif", panel, fps=args.fps),
        save_mp4(out / "clip.mp4", panel, fps=args.fps),
        save_png(out / "strip.png", clip_strip(clip, scale=args.scale)),
    ]
    flow_dir = out / "flow"
    flow_dir.mkdir(exist_ok=True)
    for t, flow in enumerate(clip["flow_fwd"], start=1):
        write_flo(flow_dir / f"flow_0_to_{t}.flo", flow)
    print(f"seg2vid demo: synthetic clip, seed {args.seed}, {height}x{width}, 1 + {args.frames} frames")
    print("  panels: RGB frame | label map | flow from frame 0 | visible since frame 0")
    for path in written:
        print(f"  wrote {path}")
    print(f"  wrote {args.frames} exact flow fields to {flow_dir}/ (Middlebury .flo)")
    if args.samples > 0:
        _demo_futures(args, out)
    return 0


def _demo_futures(args: argparse.Namespace, out: Path) -> None:
    """The demo's second part: futures of a 64x64 synthetic label map from the shipped models."""
    import torch

    from seg2vid.data.synthetic import SceneConfig, render_clip
    from seg2vid.generation.pipeline import Pipeline, save_samples

    try:
        pipeline = Pipeline.from_shipped(device=args.device)
    except FileNotFoundError as err:
        print(f"seg2vid demo: note: no generated futures ({err}); the synthetic clip above is complete")
        return
    height, width = pipeline.size
    labels = render_clip(SceneConfig(height=height, width=width, frames=1), seed=args.seed)["labels"][0]
    videos = pipeline.generate(labels, n_samples=args.samples,
                               generator=torch.Generator().manual_seed(args.seed))
    written = save_samples(out, videos, labels, prefix="future", fps=args.fps, scale=args.scale)
    print(f"seg2vid demo: {args.samples} futures generated by the shipped models (stage 1 SPADE, "
          f"stage 2 tiny) from the {height}x{width} label map of synthetic scene {args.seed}")
    print("  sheet rows: samples; columns: label map, then frames 0..T")
    print(f"  {_how_far(videos)}")
    for path in written:
        print(f"  wrote {path}")


def _how_far(videos) -> str:
    """One line: how much each sampled future changes the scene, mean |frame T - frame 0| (RGB in
    [0, 1]); samples that differ in speed differ here (issue 11's CLI diversity check)."""
    change = (videos[:, -1] - videos[:, 0]).abs().mean(dim=(1, 2, 3))
    return ("how far each future moves the scene (mean |frame T - frame 0|): "
            + ", ".join(f"{float(c):.3f}" for c in change))


def _generate(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from PIL import Image

    from seg2vid.generation.pipeline import Pipeline, read_label_png, save_samples

    if args.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {args.samples}")
    labels = read_label_png(args.labels)
    first_frame = None
    if args.first_frame:
        if not Path(args.first_frame).is_file():
            raise FileNotFoundError(f"first frame {args.first_frame} does not exist")
        with Image.open(args.first_frame) as im:
            first_frame = np.asarray(im.convert("RGB"))
    out = _writable_folder(args.out)
    pipeline = Pipeline.from_shipped(device=args.device, stage1=args.stage1, stage2=args.checkpoint)
    generator = torch.Generator().manual_seed(args.seed) if args.seed is not None else None
    videos = pipeline.generate(labels, n_samples=args.samples, first_frame=first_frame, generator=generator,
                               chunk_size=args.chunk_size, precision=args.precision)
    written = save_samples(out, videos, labels, prefix="sample", fps=args.fps, scale=args.scale)
    source = f"first frame {args.first_frame}" if first_frame is not None else "stage-1 first frame"
    print(f"seg2vid generate: {args.samples} videos of 1 + {pipeline.frames} frames at "
          f"{pipeline.size[0]}x{pipeline.size[1]} from {args.labels} ({source}, on {pipeline.device})")
    print(f"  models: stage 1 {pipeline.sources['stage1']}, stage 2 {pipeline.sources['stage2']}")
    print(f"  {_how_far(videos)}")
    for path in written:
        print(f"  wrote {path}")
    return 0


#: Where Debian/Ubuntu/Fedora put tcmalloc's minimal build (the first that exists is used).
TCMALLOC_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib64/libtcmalloc_minimal.so.4",
    "/usr/lib/libtcmalloc_minimal.so.4",
)
NO_TCMALLOC_ENV = "SEG2VID_NO_TCMALLOC"


def tcmalloc_environment(environ: dict[str, str] | None = None) -> dict[str, str] | None:
    """The environment to re-execute the trainer with tcmalloc preloaded, or None to run as is.

    None when ``SEG2VID_NO_TCMALLOC=1``, when ``LD_PRELOAD`` already holds a tcmalloc, or when no
    library from :data:`TCMALLOC_CANDIDATES` exists (a safe no-op off Linux).
    """
    env = dict(os.environ if environ is None else environ)
    if env.get(NO_TCMALLOC_ENV, "").strip() == "1" or "tcmalloc" in env.get("LD_PRELOAD", ""):
        return None
    library = next((p for p in TCMALLOC_CANDIDATES if Path(p).is_file()), None)
    if library is None:
        return None
    env["LD_PRELOAD"] = " ".join(filter(None, [library, env.get("LD_PRELOAD", "")]))
    return env


#: ``seg2vid train`` options that override a field of the run config: option -> (table, field).
_TRAIN_OVERRIDES = {
    "size": ("model", None), "frames": ("model", "frames"),
    "steps": ("train", "steps"), "batch_size": ("train", "batch_size"), "lr": ("train", "lr"),
    "grad_clip": ("train", "grad_clip"), "seed": ("train", "seed"), "num_clips": ("train", "num_clips"),
    "log_every": ("train", "log_every"), "sample_every": ("train", "sample_every"),
    "checkpoint_every": ("train", "checkpoint_every"), "amp": ("train", "amp"),
    "device": ("train", "device"),
    "workers": ("train", "num_workers"), "compile": ("train", "compile"),
    "kl_warmup": ("loss", "kl_warmup_steps"),
    "data": ("data", "kind"), "data_root": ("data", "root"), "split": ("data", "split"),
    "style": ("data", "style"),
}


def _real_dataset(values: dict):
    """``build_dataset(DatasetConfig.from_dict(values))`` after checking that a real dataset's
    folder was given (returns the dataset and its config)."""
    if values.get("kind", "synthetic") != "synthetic" and not values.get("root"):
        raise ValueError(f"the {values['kind']} dataset needs its folder: --data-root PATH")
    from seg2vid.data import DatasetConfig, build_dataset

    config = DatasetConfig.from_dict(values)
    return build_dataset(config), config


def _synthetic_training_data(data: dict) -> dict:
    """The data config of a synthetic training run: ``{"kind": "synthetic"}``, after refusing what
    does not apply (the synthetic training clips are the train split, seeded by ``--seed``, sized
    by the model and counted by ``--num-clips``; held-out splits are for ``seg2vid evaluate``)."""
    extra = {k: v for k, v in data.items() if k not in ("kind", "split")}
    if extra.get("root"):
        raise ValueError("the synthetic dataset is generated on the fly and takes no --data-root")
    extra.pop("root", None)
    if extra:
        raise ValueError(f"[data] {', '.join(sorted(extra))} do(es) not apply to synthetic training data "
                         "(its size is the model's, its seed --seed, its length --num-clips)")
    if data.get("split", "train") != "train":
        raise ValueError(f"--split {data['split']}: synthetic training uses the train split; the "
                         "held-out splits (val, test) are for seg2vid evaluate")
    return {"kind": "synthetic"}


def _held_out_split(values: dict):
    """The held-out clips of a run on ``build_dataset(DatasetConfig.from_dict(values))``: the
    first of its "val" and "test" splits (other than the training split) that builds, holds
    clips and does not overlap training. Returns (dataset, split), or (None, None) when there is
    none (the samples then show training clips, and the command says so)."""
    import warnings

    from seg2vid.data import DatasetConfig, build_dataset

    for split in ("val", "test"):
        if split == values.get("split", "train"):
            continue
        try:
            with warnings.catch_warnings():  # a split that is missing or overlaps training is skipped
                warnings.simplefilter("ignore")
                dataset = build_dataset(DatasetConfig.from_dict({**values, "split": split}))
        except (ValueError, OSError):
            continue
        if len(dataset) and not getattr(dataset, "overlaps_training", False):
            return dataset, split
    return None, None


def _samples_source(held_out, split: str | None, dataset, kind: str) -> str:
    """Where a run's sample pictures or videos come from, for the command's summary lines."""
    if dataset is None:
        return "held-out synthetic clips"
    if held_out is None:
        return f"TRAINING clips: no held-out split of the {kind} data was found"
    return f"the held-out {split} split: {len(held_out)} {kind} clips"


def _resume_or_refuse(trainer, args: argparse.Namespace, command: str, say=print) -> None:
    """Resume the run in ``--out`` when it holds a checkpoint (the default); refuse it with
    ``--no-resume``; with ``--resume`` a checkpoint must be there."""
    if trainer.checkpoint_path.is_file():
        if args.no_resume:
            raise FileExistsError(f"{trainer.out_dir} already holds a run ({trainer.checkpoint_path}); "
                                  "without --no-resume it is resumed, or use another --out")
        say(f"seg2vid {command}: resuming {trainer.checkpoint_path} at step {trainer.resume()}")
    elif args.resume:
        raise FileNotFoundError(f"--resume: no checkpoint at {trainer.checkpoint_path}")


def train_settings(args: argparse.Namespace):
    """The run config of ``seg2vid train``: the ``--config`` file (or the ``--preset`` alone), then
    every option given on the command line on top. Returns a :class:`seg2vid.configs.RunConfig`."""
    from seg2vid.configs import RunConfig, load_run_config

    run = load_run_config(args.config) if args.config else RunConfig(preset=args.preset or "tiny")
    tables = {name: dict(getattr(run, name)) for name in ("model", "data", "train", "loss")}
    for option, (table, name) in _TRAIN_OVERRIDES.items():
        value = getattr(args, option)
        if value is None:
            continue
        if option == "size":
            tables["model"]["height"], tables["model"]["width"] = value
        elif option == "grad_clip":
            tables["train"]["grad_clip"] = value or None
        elif option == "num_clips":
            tables["train"]["num_clips"] = value or None
        else:
            tables[table][name] = value
    preset = args.preset if args.preset is not None else run.preset
    return RunConfig(preset, tables["model"], tables["data"], tables["train"], tables["loss"], run.source,
                     run.stage)


#: ``seg2vid train-stage1`` options that override a field of the run config: option -> (table, field).
_STAGE1_OVERRIDES = {
    "size": ("train", None), "steps": ("train", "steps"), "batch_size": ("train", "batch_size"),
    "lr": ("train", "lr_generator"), "lr_d": ("train", "lr_discriminator"), "seed": ("train", "seed"),
    "num_clips": ("train", "num_clips"), "log_every": ("train", "log_every"),
    "sample_every": ("train", "sample_every"), "checkpoint_every": ("train", "checkpoint_every"),
    "device": ("train", "device"), "style": ("train", "style"),
    "data": ("data", "kind"), "data_root": ("data", "root"), "split": ("data", "split"),
}


def stage1_settings(args: argparse.Namespace):
    """The run config of ``seg2vid train-stage1``: the ``--config`` file (``stage = 1``; or the
    ``--preset`` alone), then every option given on the command line on top. Returns a
    :class:`seg2vid.configs.RunConfig` with ``stage == 1``."""
    from seg2vid.configs import RunConfig, load_run_config

    run = load_run_config(args.config) if args.config else RunConfig(preset=args.preset or "tiny", stage=1)
    tables = {name: dict(getattr(run, name)) for name in ("model", "data", "train")}
    for option, (table, name) in _STAGE1_OVERRIDES.items():
        value = getattr(args, option)
        if value is None or (option == "lr_d" and value == 0):  # --lr-d 0: as --lr
            continue
        if option == "size":
            tables["train"]["height"], tables["train"]["width"] = value
        elif option == "lr":
            tables["train"]["lr_generator"] = value
            if not args.lr_d:  # --lr alone sets both networks' rates
                tables["train"]["lr_discriminator"] = value
        else:
            tables[table][name] = value
    preset = args.preset if args.preset is not None else run.preset
    return RunConfig(preset, tables["model"], tables["data"], tables["train"], run.loss, run.source,
                     run.stage)


def _train(args: argparse.Namespace) -> int:
    import torch

    from seg2vid.configs import model_for_table
    from seg2vid.training.stage2 import TrainConfig, Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    run = train_settings(args)
    model_config = run.model_config()
    data = {"kind": "synthetic", **run.data}
    dataset = scene = None
    if data["kind"] == "synthetic":
        from seg2vid.data.synthetic import SceneConfig

        if data.get("style") is not None:  # the streets' style (default: DEFAULT_STYLE)
            scene = SceneConfig(height=model_config.height, width=model_config.width,
                                frames=model_config.frames, style=data.pop("style"))
        # One synthetic dataset whatever was spelled out: the trainer's own SyntheticStreets (seed
        # --seed, a pool of --num-clips or fresh clips), stored as {"kind": "synthetic"} so that
        # runs with and without --split train resume each other.
        data = _synthetic_training_data(data)
    else:
        size = {"height": model_config.height, "width": model_config.width, "frames": model_config.frames}
        dataset, data_config = _real_dataset({**data, **size})
        model_config = model_for_table(model_config, dataset.table)
        data = data_config.to_dict()
    held_out, held_out_split = _held_out_split(data) if dataset is not None else (None, None)
    train_config = TrainConfig.from_dict(run.train)
    loss_config = run.loss_config(model_config.width)
    name = Path(run.source).stem if run.source else run.preset
    out = Path(args.out or f"runs/{name}")
    if _is_main_process():
        _writable_folder(out)
    trainer = Trainer(model_config, train_config, loss_config, out, args.perceptual_weights,
                      dataset=dataset, held_out=held_out, data_config=data, scene=scene)
    say = print if trainer.is_main else (lambda *a, **k: None)
    try:
        _resume_or_refuse(trainer, args, "train", say)
        c, tc = model_config, train_config
        preloaded = "tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "") else "system malloc"
        processes = trainer.process.world_size
        say(
            f"seg2vid train: {run.source or 'preset ' + run.preset}: {c.height}x{c.width}, "
            f"1 + {c.frames} frames, {sum(p.numel() for p in trainer.model.parameters()):,} parameters, "
            f"on {trainer.device} ({processes} process{'es' if processes > 1 else ''}, "
            f"{torch.get_num_threads()} threads, {preloaded})"
        )
        if dataset is None:
            source = (f"a pool of {tc.num_clips} synthetic clips" if tc.num_clips
                      else "fresh synthetic clips every step")
        else:
            source = f"{len(dataset)} {data['kind']} clips ({data.get('split', '')})"
        perceptual = args.perceptual_weights or "off (no --perceptual-weights)"
        say(f"  {tc.steps} steps of {tc.batch_size} clips per process ({source}); "
            f"perceptual loss: {perceptual}")
        say(f"  checkpoint: {trainer.checkpoint_path} (every {tc.checkpoint_every} steps, at the end "
            "and on SIGTERM)")
        say(f"  log:        {trainer.log_path} (every step), summary: {trainer.summary_path}")
        every = f"every {tc.sample_every} steps and at the end" if tc.sample_every else "off"
        say(f"  samples:    {trainer.samples_dir}/ ({every}; "
            f"{_samples_source(held_out, held_out_split, dataset, data['kind'])})")
        summary = _train_noting_checkpoint(trainer)
        say(f"seg2vid train: {summary['status']} at step {summary['step']}; "
            f"last losses: {', '.join(f'{k} {v:.4g}' for k, v in summary['last_losses'].items())}")
    finally:
        trainer.close()
    return _exit_status(summary)


#: Exit status of a ``train`` / ``train-stage1`` run stopped by SIGTERM before its last step
#: (128 + 15, what a shell reports for a process killed by SIGTERM): the checkpoint is saved and the
#: same command resumes it, but ``seg2vid train ... && seg2vid evaluate`` must not score a partial model.
EXIT_STOPPED = 143


def _exit_status(summary: dict) -> int:
    """0 for a finished (or deliberately paused) run, :data:`EXIT_STOPPED` for one stopped by SIGTERM."""
    return EXIT_STOPPED if summary.get("resumable") and summary["status"].startswith("stopped") else 0


def _is_main_process() -> bool:
    """Rank 0 of a torchrun launch (or a plain process): the one that writes files."""
    return os.environ.get("RANK", "0") == "0"


def _train_noting_checkpoint(trainer) -> dict:
    """``trainer.train()``; a failed write (a full disk) also names the last good checkpoint."""
    try:
        return trainer.train()
    except OSError as err:
        note = trainer._failure_note()
        raise type(err)(err.errno, f"{err.strerror or err}; {note}", err.filename) from err


def _train_stage1(args: argparse.Namespace) -> int:
    import torch

    from seg2vid.training.stage1 import Stage1TrainConfig, Stage1Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    run = stage1_settings(args)
    model_config = run.spade_config()
    train_config = Stage1TrainConfig.from_dict(run.train)
    height, width = train_config.height, train_config.width
    name = Path(run.source).stem if run.source else f"stage1_{run.preset}"
    out = _writable_folder(args.out or f"runs/{name}")
    data = {"kind": "synthetic", **run.data}
    dataset = held_out = held_out_split = None
    if data["kind"] != "synthetic" or len(data) > 1:
        dataset, data_config = _real_dataset({**data, "height": height, "width": width, "frames": 1})
        data = data_config.to_dict()
        held_out, held_out_split = _held_out_split(data)
    trainer = Stage1Trainer(model_config, train_config, out, args.perceptual_weights,
                            dataset=dataset, data_config=data if dataset is not None else None,
                            held_out=held_out)
    _resume_or_refuse(trainer, args, "train-stage1")
    tc = train_config
    preloaded = "tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "") else "system malloc"
    print(
        f"seg2vid train-stage1: {run.source or 'preset ' + run.preset}, {height}x{width}, "
        f"{sum(p.numel() for p in trainer.generator.parameters()):,} generator parameters, on "
        f"{trainer.device} ({torch.get_num_threads()} threads, {preloaded})"
    )
    perceptual = args.perceptual_weights or "off (no --perceptual-weights)"
    if dataset is None:
        source = f"a pool of {tc.num_clips} synthetic clips"
    else:
        source = (f"a pool of {min(tc.num_clips, len(dataset))} of the {len(dataset)} {data['kind']} clips "
                  f"({data.get('split', 'train')})")
    print(f"  {tc.steps} steps of {tc.batch_size} label maps ({source}); perceptual loss: {perceptual}")
    print(f"  checkpoint: {trainer.checkpoint_path}")
    print(f"  log:        {trainer.log_path} (every step), summary: {trainer.summary_path}")
    every = f"every {tc.sample_every} steps and at the end" if tc.sample_every else "off"
    print(f"  samples:    {trainer.samples_dir}/ ({every}; "
          f"{_samples_source(held_out, held_out_split, dataset, data['kind'])})")
    summary = _train_noting_checkpoint(trainer)
    print(f"seg2vid train-stage1: {summary['status']} at step {summary['step']} "
          f"({summary['seconds_this_session']:.0f} s); last losses: "
          f"{', '.join(f'{k} {v:.4g}' for k, v in summary['last_losses'].items())}")
    if args.export and not summary["resumable"]:
        print(f"  generator exported to {trainer.export_generator(args.export)}")
    return _exit_status(summary)


def _evaluation_data(args: argparse.Namespace, saved: dict | None) -> dict:
    """The data ``seg2vid evaluate`` scores on (a DatasetConfig dict less the size): the checkpoint's
    ``data_config`` (or ``--config``'s [data] table), then ``--data``/``--data-root``/``--split``
    on top; a new ``--data`` kind starts afresh. The split defaults to the held-out one ("test",
    Cityscapes "val"). A checkpoint without ``data_config`` was trained on synthetic streets."""
    from seg2vid.configs import load_run_config

    base = dict(load_run_config(args.config).data) if args.config else dict(saved or {"kind": "synthetic"})
    base = {k: v for k, v in base.items() if k not in ("height", "width", "frames", "scene", "split")}
    base.setdefault("kind", "synthetic")
    if args.data is not None and args.data != base["kind"]:
        base = {"kind": args.data}
    if args.data_root is not None:
        base["root"] = args.data_root
    if base["kind"] == "synthetic":  # the synthetic test clips are sized by the model, seeded by the split
        base = {"kind": "synthetic"}
    base["split"] = args.split or ("val" if base["kind"] == "cityscapes" else "test")
    return base


def _evaluate(args: argparse.Namespace) -> int:
    import json

    import torch

    from seg2vid.checkpoints import atomic_write, find_checkpoint, load_checkpoint
    from seg2vid.data.splits import split_seed
    from seg2vid.evaluation import evaluate as ev
    from seg2vid.models.loading import (
        load_model,
        parse_inference_options,
        trained_style,
        with_inference_options,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    path = find_checkpoint(args.checkpoint)
    if path is None:
        raise FileNotFoundError(f"no checkpoint at {args.checkpoint}")
    _writable_folder(args.out)  # refused before the (minutes of) scoring, not when saving
    options = parse_inference_options(args.inference)
    model = with_inference_options(load_model(path, args.device), options)
    c = model.config
    scene = None
    saved = load_checkpoint(path)
    data = _evaluation_data(args, saved.get("data_config"))
    if data["kind"] == "synthetic":
        seed = split_seed("test" if data["split"] == "test" else "val")
        dataset, table = ev.synthetic_test_set(c.height, c.width, c.frames, args.num_clips, seed,
                                               style=args.style or trained_style(saved)), None
        scene = dataset.config  # the multi-future scenes and the mean-flow baseline's training clips
    else:
        from torch.utils.data import Subset

        dataset, config = _real_dataset({**data, "height": c.height, "width": c.width, "frames": c.frames})
        data = config.to_dict()  # every field, for eval.json
        table = dataset.table  # (read before subsetting: a Subset has no table)
        if args.num_clips < len(dataset):
            step = len(dataset) // args.num_clips
            dataset = Subset(dataset, range(0, len(dataset), step)[: args.num_clips])
    segmenter = None
    if args.segmenter != "none" and c.label_channels == 20:
        from seg2vid.models.segmenter import load_segmenter

        segmenter = load_segmenter(None if args.segmenter == "shipped" else args.segmenter)
    features = {}
    if args.lpips_backbone or args.lpips_linear:
        from seg2vid.evaluation.lpips import load_lpips

        features["lpips_model"] = load_lpips(args.lpips_backbone, args.lpips_linear,
                                             device=args.device or "cpu")
    if args.i3d:
        from seg2vid.evaluation.fvd import load_fvd_extractor

        features["fvd_extractor"] = load_fvd_extractor(args.i3d)
    if args.inception:
        from seg2vid.evaluation.fid import load_fid_extractor

        features["fid_extractor"] = load_fid_extractor(args.inception)
    kwargs = {"table": table} if table is not None else {}
    device = next(model.parameters()).device
    if scene is not None and args.future_scenes:  # multi-future scenes: seg2vid.evaluation.multifuture
        from seg2vid.evaluation.multifuture import PROTOCOL as FUTURE_PROTOCOL
        from seg2vid.evaluation.multifuture import multi_future_scenes

        kwargs.update(multi_future=multi_future_scenes(scene, args.future_scenes, args.future_k),
                      future_samples=args.future_samples)
    result = ev.evaluate(model, dataset, n_samples=args.samples, seed=args.seed, segmenter=segmenter,
                         device=device, **kwargs, **features)
    result.update(checkpoint=str(path), data=data["kind"], split=data["split"], data_config=data)
    if options:  # scored with these inference-only fields instead of the checkpoint's
        result["inference_options"] = options
    if "multi_future" in kwargs:  # (a perfect sampler's coverage: the true_futures baseline)
        result.update(multi_future_protocol=FUTURE_PROTOCOL,
                      multi_future_kind=kwargs["multi_future"][0]["kind"])
    rows = {path.stem: result["metrics"]}
    # the same protocol for each baseline (seg2vid.evaluation.baselines); the mean flow from TRAINING clips
    if args.baselines:
        from seg2vid.evaluation.baselines import evaluate_baselines, training_mean_flow

        mean_flow = training_mean_flow(scene, args.mean_flow_clips) if scene is not None else None
        result["baselines"] = evaluate_baselines(
            dataset, scene, c.frames, mean_flow=mean_flow, n_samples=args.samples, seed=args.seed,
            segmenter=segmenter, device=device, **kwargs)
        result["baselines_protocol"] = (
            f"mean_flow: the average flow of training clips 0..{args.mean_flow_clips - 1} "
            "(SyntheticStreets seed 0, the trainer's pool) warps the first frame, all visible; "
            "exact_flow_warp: the exact flow and visibility; copy_first_frame: zero flow; "
            "true_futures (synthetic clips): a perfect sampler, N further exact futures of the same "
            "first frame (render_futures, futures 1000..), posterior = the clip itself")
        rows.update(result["baselines"])
    markdown = ev.format_table(rows, spread=args.spread)
    out = Path(args.out)
    atomic_write(out / "eval.json", lambda fh: fh.write(json.dumps(result, indent=1).encode()))
    atomic_write(out / "table.md", lambda fh: fh.write((markdown + "\n\n" + ev.PROTOCOL + "\n").encode()))
    print(f"seg2vid evaluate: {path} on {len(dataset)} {data['kind']} {data['split']} clips"
          f"{' from ' + data['root'] if data.get('root') else ''}, "
          f"N = {args.samples} samples ({result['seconds']:.0f} s)"
          + "".join(f", {key}={value!r}" for key, value in options.items()) + "\n")
    print(markdown)
    print(f"\nprotocol: {ev.PROTOCOL}")
    for name, protocol in result["feature_protocols"].items():
        print(f"{name}: {protocol}")
    print(f"\nsaved {out / 'eval.json'} and {out / 'table.md'}")
    return 0


#: ``generate --precision`` choices (= seg2vid.utils.PRECISIONS; a test keeps them equal).
PRECISION_CHOICES = ("fp32", "bf16", "auto")
#: ``generate --chunk-size`` default (= seg2vid.generation.pipeline.DEFAULT_CHUNK; not imported here,
#: so that ``seg2vid --help`` does not load torch).
DEFAULT_CHUNK_SIZE = 16

#: The exit statuses of the training commands, in their --help.
_EXIT_HELP = ("Exit status: 0 = finished; 2 = an error in the input or a fault (one line on stderr: "
              "the file and the cause); 143 = stopped by SIGTERM before the last step, checkpoint saved, "
              "run the same command again to resume.")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``seg2vid`` command (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="seg2vid", description="Video generation from a single semantic label map: course tools."
    )
    parser.add_argument("--version", action="version", version=f"seg2vid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser(
        "demo", help="render a synthetic clip, its label maps and exact flow to GIF/MP4/PNG",
        description="Render a synthetic street clip with its label maps, exact flow and "
        "visibility, and write them as GIF, MP4, a PNG strip and .flo files.",
    )
    demo.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    demo.add_argument("--size", type=_size, default=(128, 256), help="H or HxW (default: 128x256)")
    demo.add_argument("--frames", type=int, default=8, help="future frames T (default: 8)")
    demo.add_argument("--seed", type=int, default=0, help="scene seed (default: 0)")
    demo.add_argument("--motion", type=float, default=1.0, help="speed scale (default: 1)")
    demo.add_argument("--fps", type=_positive(float), default=4.0, help="frames per second (default: 4)")
    demo.add_argument("--scale", type=_positive(int), default=2, help="pixel upscaling (default: 2)")
    demo.add_argument("--samples", type=int, default=3,
                      help="futures generated by the shipped models, 0 = none (default: 3)")
    demo.add_argument("--device", default="cpu", help="device of the models (default: cpu)")
    demo.set_defaults(func=_demo)

    gen = sub.add_parser(
        "generate", help="generate videos from a label-map PNG with the shipped 64x64 models",
        description="Generate several futures of a label map (PNG, train ids or Cityscapes colours) "
        "with the shipped stage-1 and stage-2 models; write a GIF and an MP4 per sample and a "
        "contact sheet PNG.",
    )
    add = gen.add_argument
    add("--labels", required=True, metavar="PNG", help="label map: train ids (grey) or Cityscapes colours")
    add("--out", default="generate_output", help="output folder (default: generate_output)")
    add("--samples", type=int, default=3, help="number of futures (default: 3)")
    add("--seed", type=int, default=None, help="seed of the noise (default: random)")
    add("--first-frame", default=None, metavar="IMAGE", help="use this image as frame 0 (skips stage 1)")
    add("--fps", type=_positive(float), default=4.0, help="frames per second (default: 4)")
    add("--scale", type=_positive(int), default=2, help="pixel upscaling (default: 2)")
    add("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    add("--checkpoint", default=None, metavar="PT",
        help="stage-2 checkpoint (default: the shipped data/checkpoints/seg2vid_tiny_64.pt)")
    add("--chunk-size", type=_positive(int), default=DEFAULT_CHUNK_SIZE,
        help=f"futures generated per batch: memory grows with this, not with --samples; a seed gives "
        f"the same videos for the same chunk size (default: {DEFAULT_CHUNK_SIZE})")
    add("--stage1", default=None, metavar="PT",
        help="stage-1 generator file (default: the shipped data/checkpoints/spade_tiny_64.pt)")
    add("--precision", choices=PRECISION_CHOICES, default="fp32",
        help="stage 2 in fp32 (default: exact), bf16 (bfloat16 autocast: 1.5x faster per clip on an "
        "AVX-512 BF16 CPU, native on recent GPUs; videos within a grey level) or auto (bf16 where native)")
    gen.set_defaults(func=_generate)

    train = sub.add_parser(
        "train", help="train the stage-2 model on synthetic streets (checkpoints, CSV log, sample GIFs)",
        description="Train the stage-2 Seg2Vid model on synthetic street clips. Prints where the "
        "checkpoint, the logs and the sample videos go. " + _EXIT_HELP,
    )
    add = train.add_argument
    add("--config", default=None, metavar="NAME|FILE",
        help="run config: a shipped name (synthetic_tiny_64, synthetic_128_gpu, cityscapes_128x256_t4, "
        "cityscapes_128x256_t8, kth_128_t15, ucf101_128_t4) or a .toml file; options below override it")
    add("--preset", choices=("tiny", "paper"), default=None, help="model preset (default: tiny)")
    add("--size", type=_size, default=None, help="H or HxW, multiples of 16 (default: the preset's)")
    add("--frames", type=int, default=None, help="future frames T (default: the preset's)")
    add("--data", choices=("synthetic", "cityscapes", "kth", "ucf101", "folder"), default=None,
        help="training data (default: synthetic streets)")
    add("--data-root", default=None, metavar="PATH", help="folder of a real dataset (see data/README.md)")
    add("--split", default=None, help="dataset split (default: train)")
    add("--style", choices=STYLE_CHOICES, default=None,
        help="synthetic data: the streets' style (default: rich; classic = before seg2vid 0.2)")
    add("--steps", type=int, default=None, help="optimiser steps in total (default: 2000)")
    add("--batch-size", type=int, default=None, help="clips per step and process (default: 8)")
    add("--lr", type=float, default=None, help="Adam learning rate (default: 1e-3)")
    add("--grad-clip", type=float, default=None, help="gradient-norm clip, 0 = off (default: off)")
    add("--kl-warmup", type=int, default=None, help="linear KL warm-up steps (default: 0)")
    add("--seed", type=int, default=None, help="seed of the model, noise and data (default: 0)")
    add("--num-clips", type=int, default=None,
        help="synthetic data: size of the pool of clips, each rendered at its first use; 0 = fresh "
        "clips every step (default: 1000)")
    add("--out", default=None, help="output folder (default: runs/CONFIG or runs/PRESET)")
    add("--resume", action="store_true", help="require a checkpoint in --out to continue from")
    add("--no-resume", action="store_true",
        help="refuse to continue a run already in --out (by default it is resumed)")
    add("--perceptual-weights", default=None, metavar="PATH",
        help="local VGG-19 weights file for the perceptual loss (default: the term is off)")
    add("--log-every", type=int, default=None, help="progress-bar refresh (default: 10)")
    add("--sample-every", type=int, default=None, help="sample GIF every N steps, 0 = off (default: 500)")
    add("--checkpoint-every", type=int, default=None, help="checkpoint every N steps (default: 500)")
    add("--amp", choices=("off", "bf16", "fp16"), default=None, help="mixed precision, CUDA only")
    add("--compile", action="store_const", const=True, default=None, help="torch.compile the training step")
    add("--workers", type=int, default=None, help="DataLoader worker processes (default: 0)")
    add("--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best available)")
    add("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    train.set_defaults(func=_train)

    evaluate = sub.add_parser(
        "evaluate", help="score a stage-2 checkpoint: PSNR/SSIM, flow error, occlusion IoU, diversity, ...",
        description="Evaluate a stage-2 checkpoint on held-out clips with every metric of the course "
        "(FVD/FID/LPIPS only with local weight files). Prints the table and saves eval.json and table.md.",
    )
    add = evaluate.add_argument
    add("--checkpoint", default="data/checkpoints/seg2vid_tiny_64.pt",
        help="stage-2 checkpoint (default: the shipped tiny model)")
    add("--split", default=None, help="test or val (default: the held-out one: test, Cityscapes val)")
    add("--data", choices=("synthetic", "cityscapes", "kth", "ucf101", "folder"), default=None,
        help="held-out data (default: the checkpoint's data_config; none saved: synthetic streets)")
    add("--data-root", default=None, metavar="PATH",
        help="folder of a real dataset (default: the checkpoint's)")
    add("--config", default=None, metavar="NAME|FILE", help="run config whose [data] table is used")
    add("--num-clips", type=int, default=64, help="held-out clips (default: 64)")
    add("--samples", type=int, default=5, help="futures per input, N (default: 5)")
    add("--seed", type=int, default=0, help="seed of the samples (default: 0)")
    add("--segmenter", default="shipped", help="segmenter for semantic fidelity: shipped, a path, or none")
    add("--i3d", default=None, metavar="PATH",
        help="local I3D TorchScript file: adds FVD (TRUSTED files only: "
        "loading TorchScript runs code from the file)")
    add("--inception", default=None, metavar="PATH", help="local torchvision Inception-v3 weights: adds FID")
    add("--lpips-backbone", default=None, metavar="PATH", help="local AlexNet weights for LPIPS")
    add("--lpips-linear", default=None, metavar="PATH", help="local LPIPS linear-layer weights (alex.pth)")
    add("--out", default="eval_output", help="output folder (default: eval_output)")
    add("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    add("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    add("--baselines", action=argparse.BooleanOptionalAction, default=True,
        help="also score copy_first_frame, mean_flow, exact_flow_warp and (synthetic clips) "
        "true_futures, a perfect sampler (default: on)")
    add("--mean-flow-clips", type=_positive(int), default=256, metavar="N",
        help="synthetic data: training clips the mean_flow baseline averages (default: 256)")
    add("--style", choices=STYLE_CHOICES, default=None,
        help="synthetic scene style of the test clips (default: the checkpoint's training streets)")
    add("--future-scenes", type=int, default=16,
        help="first frames with K true futures for future_coverage/precision (0 = skip; default: 16)")
    add("--future-k", type=int, default=8, help="true futures per first frame, K (default: 8)")
    add("--future-samples", type=int, default=8, help="prior samples per first frame, N (default: 8)")
    add("--inference", action="append", default=[], metavar="FIELD=VALUE",
        help="score with one of the model's inference-only fields changed (Seg2VidConfig.INFERENCE_ONLY: "
        "object_pin, forward_mask), e.g. --inference forward_mask=geometry; repeatable; saved in eval.json")
    add("--spread", choices=("std", "sem"), default="std",
        help="what the table shows after ±: the spread over inputs (std, default) or the standard error "
        "of the mean (sem: is a gap to a target more than the noise of this many clips?); eval.json has both")
    evaluate.set_defaults(func=_evaluate)

    stage1 = sub.add_parser(
        "train-stage1", help="train the stage-1 generator (label map -> first frame, SPADE)",
        description="Train the stage-1 SPADE generator (label map -> first frame) with L1, feature-matching "
        "and hinge adversarial losses. Prints where the checkpoint, the logs and the sample images go. "
        + _EXIT_HELP,
    )
    add = stage1.add_argument
    add("--config", default=None, metavar="FILE",
        help="stage-1 run config (a .toml file saying stage = 1, see seg2vid.configs); "
        "options below override it")
    add("--preset", choices=("tiny", "large"), default=None, help="model preset (default: tiny)")
    add("--size", type=_size, default=None,
        help="H or HxW, multiples of 8 (tiny) or 16 (large) (default: 64)")
    add("--steps", type=int, default=None, help="optimiser steps in total (default: 2000)")
    add("--batch-size", type=int, default=None, help="label maps per step (default: 8)")
    add("--lr", type=float, default=None,
        help="generator's Adam learning rate, and the discriminator's without --lr-d (default: 2e-4)")
    add("--lr-d", type=float, default=None, help="discriminator's learning rate, 0 = as --lr (default)")
    add("--seed", type=int, default=None, help="seed of the models, noise and data (default: 0)")
    add("--num-clips", type=int, default=None,
        help="pool of clips, each rendered at its first use (default: 2000)")
    add("--style", choices=STYLE_CHOICES, default=None,
        help="synthetic data: the streets' style (default: rich; classic = before seg2vid 0.2)")
    add("--out", default=None, help="output folder (default: runs/CONFIG or runs/stage1_PRESET)")
    add("--data", choices=("synthetic", "cityscapes", "folder"), default=None,
        help="first frames + label maps to learn from (default: synthetic streets)")
    add("--data-root", default=None, metavar="PATH", help="folder of a real dataset (see data/README.md)")
    add("--split", default=None, help="dataset split (default: train)")
    add("--resume", action="store_true", help="require a checkpoint in --out to continue from")
    add("--no-resume", action="store_true",
        help="refuse to continue a run already in --out (by default it is resumed)")
    add("--export", default=None, metavar="PATH", help="also write the generator alone to PATH at the end")
    add("--perceptual-weights", default=None, metavar="PATH",
        help="local VGG-19 weights file for the perceptual loss (default: the term is off)")
    add("--log-every", type=int, default=None, help="progress-bar refresh (default: 10)")
    add("--sample-every", type=int, default=None, help="sample PNG every N steps, 0 = off (default: 500)")
    add("--checkpoint-every", type=int, default=None, help="checkpoint every N steps (default: 500)")
    add("--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best available)")
    add("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    stage1.set_defaults(func=_train_stage1)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``seg2vid`` console script; returns the exit code.

    Given ``argv`` (a call from Python), it runs in this process. From the command line
    (``argv`` None), ``seg2vid train`` may first re-execute itself with tcmalloc preloaded
    (see the module docstring).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if argv is None and args.command in ("train", "train-stage1"):
        env = tcmalloc_environment()
        if env is not None:
            sys.stdout.flush()
            sys.stderr.flush()
            os.execve(sys.executable, [sys.executable, "-m", "seg2vid", *sys.argv[1:]], env)
    try:
        if getattr(args, "device", None):
            from seg2vid.utils import pick_device

            pick_device(args.device)  # --device banana / cuda without a GPU: said before any work
        return args.func(args)
    except OSError as err:  # unwritable --out, a full disk, a missing file: the file and the cause
        print(f"seg2vid {args.command}: error: {_os_error_message(err)}", file=sys.stderr)
        return 2
    except (ValueError, FloatingPointError) as err:
        print(f"seg2vid {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
