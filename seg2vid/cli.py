"""The ``seg2vid`` console script.

Sub-commands (more arrive with the later parts of the course):

``seg2vid demo``
    Render one synthetic street clip and write it as a GIF and an MP4 (frames | label map |
    flow | visibility side by side), a PNG strip (rows: frames, labels, flow, visibility;
    columns: time) and the exact flows as Middlebury ``.flo`` files, then print where they are.

``seg2vid train``
    Train the stage-2 model (a preset, optionally resized) on synthetic streets with
    :class:`seg2vid.train.Trainer`; print where the checkpoint, the CSV log, the summary and
    the sample GIFs go. ``--resume`` continues the run in ``--out``.

    Fast path: when ``libtcmalloc_minimal`` is installed (Debian: ``libtcmalloc-minimal4``) and
    not yet in ``LD_PRELOAD``, the command re-executes itself with it preloaded: glibc's malloc
    returns the large, short-lived tensors of a training step to the kernel and faults them in
    again at every step, tcmalloc keeps them (about 1.6x faster CPU steps on the reference
    machine). ``SEG2VID_NO_TCMALLOC=1`` turns this off; without the library nothing happens.

``seg2vid train-stage1``
    Train the stage-1 generator (label map -> first frame; SPADE, a preset) on the first frames
    of synthetic streets with :class:`seg2vid.train_stage1.Stage1Trainer`, same folder layout
    and ``--resume``; ``--export PATH`` also writes the generator alone (a few MB). It uses the
    same tcmalloc fast path as ``seg2vid train``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from seg2vid import __version__


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


def _train(args: argparse.Namespace) -> int:
    import torch

    from seg2vid.models import PRESETS
    from seg2vid.objective import LossConfig
    from seg2vid.train import TrainConfig, Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    model_config = PRESETS[args.preset]
    changes = {}
    if args.size is not None:
        changes["height"], changes["width"] = args.size
    if args.frames is not None:
        changes["frames"] = args.frames
    model_config = model_config.replace(**changes)
    train_config = TrainConfig(
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, grad_clip=args.grad_clip or None,
        seed=args.seed, log_every=args.log_every, sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every, amp=args.amp, num_clips=args.num_clips or None,
        device=args.device,
    )
    loss_config = LossConfig.for_pixel_flows(model_config.width, kl_warmup_steps=args.kl_warmup)
    out = Path(args.out or f"runs/{args.preset}")
    trainer = Trainer(model_config, train_config, loss_config, out, args.perceptual_weights)
    if not args.resume and trainer.checkpoint_path.is_file():
        raise FileExistsError(f"{out} already holds a run: add --resume to continue it, or use another --out")
    if args.resume:
        print(f"seg2vid train: resuming {trainer.checkpoint_path} at step {trainer.resume()}")
    c = model_config
    preloaded = "tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "") else "system malloc"
    print(
        f"seg2vid train: preset {args.preset}, {c.height}x{c.width}, 1 + {c.frames} frames, "
        f"{sum(p.numel() for p in trainer.model.parameters()):,} parameters, on {trainer.device} "
        f"({torch.get_num_threads()} threads, {preloaded})"
    )
    data = f"a pool of {args.num_clips} clips" if args.num_clips else "fresh clips every step"
    perceptual = args.perceptual_weights or "off (no --perceptual-weights)"
    print(f"  {args.steps} steps of {args.batch_size} clips ({data}); perceptual loss: {perceptual}")
    print(f"  checkpoint: {trainer.checkpoint_path}")
    print(f"  log:        {trainer.log_path} (every step), summary: {trainer.summary_path}")
    every = f"every {args.sample_every} steps and at the end" if args.sample_every else "off"
    print(f"  samples:    {trainer.samples_dir}/ ({every})")
    summary = trainer.train()
    print(f"seg2vid train: {summary['status']} at step {summary['step']}; "
          f"last losses: {', '.join(f'{k} {v:.4g}' for k, v in summary['last_losses'].items())}")
    return 0


def _train_stage1(args: argparse.Namespace) -> int:
    import torch

    from seg2vid.models import SPADE_PRESETS
    from seg2vid.train_stage1 import Stage1TrainConfig, Stage1Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    height, width = args.size
    train_config = Stage1TrainConfig(
        height=height, width=width, steps=args.steps, batch_size=args.batch_size, lr_generator=args.lr,
        lr_discriminator=args.lr_d or args.lr, seed=args.seed, num_clips=args.num_clips,
        log_every=args.log_every, sample_every=args.sample_every, checkpoint_every=args.checkpoint_every,
        device=args.device,
    )
    out = Path(args.out or f"runs/stage1_{args.preset}")
    trainer = Stage1Trainer(SPADE_PRESETS[args.preset], train_config, out, args.perceptual_weights)
    if not args.resume and trainer.checkpoint_path.is_file():
        raise FileExistsError(f"{out} already holds a run: add --resume to continue it, or use another --out")
    if args.resume:
        print(f"seg2vid train-stage1: resuming {trainer.checkpoint_path} at step {trainer.resume()}")
    preloaded = "tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "") else "system malloc"
    print(
        f"seg2vid train-stage1: preset {args.preset}, {height}x{width}, "
        f"{sum(p.numel() for p in trainer.generator.parameters()):,} generator parameters, on "
        f"{trainer.device} ({torch.get_num_threads()} threads, {preloaded})"
    )
    perceptual = args.perceptual_weights or "off (no --perceptual-weights)"
    print(f"  {args.steps} steps of {args.batch_size} label maps (a pool of {args.num_clips} clips); "
          f"perceptual loss: {perceptual}")
    print(f"  checkpoint: {trainer.checkpoint_path}")
    print(f"  log:        {trainer.log_path} (every step), summary: {trainer.summary_path}")
    every = f"every {args.sample_every} steps and at the end" if args.sample_every else "off"
    print(f"  samples:    {trainer.samples_dir}/ ({every})")
    summary = trainer.train()
    print(f"seg2vid train-stage1: {summary['status']} at step {summary['step']} "
          f"({summary['seconds_this_session']:.0f} s); last losses: "
          f"{', '.join(f'{k} {v:.4g}' for k, v in summary['last_losses'].items())}")
    if args.export:
        print(f"  generator exported to {trainer.export_generator(args.export)}")
    return 0


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
    demo.add_argument("--fps", type=float, default=4.0, help="frames per second (default: 4)")
    demo.add_argument("--scale", type=int, default=2, help="pixel upscaling (default: 2)")
    demo.set_defaults(func=_demo)

    train = sub.add_parser(
        "train", help="train the stage-2 model on synthetic streets (checkpoints, CSV log, sample GIFs)",
        description="Train the stage-2 Seg2Vid model on synthetic street clips. Prints where the "
        "checkpoint, the logs and the sample videos go.",
    )
    add = train.add_argument
    add("--preset", choices=("tiny", "paper"), default="tiny", help="model preset (default: tiny)")
    add("--size", type=_size, default=None, help="H or HxW, multiples of 16 (default: the preset's)")
    add("--frames", type=int, default=None, help="future frames T (default: the preset's)")
    add("--steps", type=int, default=2000, help="optimiser steps in total (default: 2000)")
    add("--batch-size", type=int, default=8, help="clips per step (default: 8)")
    add("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    add("--grad-clip", type=float, default=0.0, help="gradient-norm clip, 0 = off (default: off)")
    add("--kl-warmup", type=int, default=0, help="linear KL warm-up steps (default: 0)")
    add("--seed", type=int, default=0, help="seed of the model, noise and data (default: 0)")
    add("--num-clips", type=int, default=1000,
        help="size of the pool of clips rendered once and reused; 0 = fresh clips every step (default: 1000)")
    add("--out", default=None, help="output folder (default: runs/PRESET)")
    add("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    add("--perceptual-weights", default=None, metavar="PATH",
        help="local VGG-19 weights file for the perceptual loss (default: the term is off)")
    add("--log-every", type=int, default=10, help="progress-bar refresh (default: 10)")
    add("--sample-every", type=int, default=500, help="sample GIF every N steps, 0 = off (default: 500)")
    add("--checkpoint-every", type=int, default=500, help="checkpoint every N steps (default: 500)")
    add("--amp", choices=("off", "bf16", "fp16"), default="off", help="mixed precision, CUDA only")
    add("--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best available)")
    add("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    train.set_defaults(func=_train)

    stage1 = sub.add_parser(
        "train-stage1", help="train the stage-1 generator (label map -> first frame, SPADE)",
        description="Train the stage-1 SPADE generator (label map -> first frame) with L1, feature-matching "
        "and hinge adversarial losses. Prints where the checkpoint, the logs and the sample images go.",
    )
    add = stage1.add_argument
    add("--preset", choices=("tiny", "large"), default="tiny", help="model preset (default: tiny)")
    add("--size", type=_size, default=(64, 64),
        help="H or HxW, multiples of 8 (tiny) or 16 (large) (default: 64)")
    add("--steps", type=int, default=2000, help="optimiser steps in total (default: 2000)")
    add("--batch-size", type=int, default=8, help="label maps per step (default: 8)")
    add("--lr", type=float, default=2e-4, help="generator's Adam learning rate (default: 2e-4)")
    add("--lr-d", type=float, default=0.0, help="discriminator's learning rate, 0 = same as --lr (default)")
    add("--seed", type=int, default=0, help="seed of the models, noise and data (default: 0)")
    add("--num-clips", type=int, default=2000, help="clips rendered once and reused (default: 2000)")
    add("--out", default=None, help="output folder (default: runs/stage1_PRESET)")
    add("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    add("--export", default=None, metavar="PATH", help="also write the generator alone to PATH at the end")
    add("--perceptual-weights", default=None, metavar="PATH",
        help="local VGG-19 weights file for the perceptual loss (default: the term is off)")
    add("--log-every", type=int, default=10, help="progress-bar refresh (default: 10)")
    add("--sample-every", type=int, default=500, help="sample PNG every N steps, 0 = off (default: 500)")
    add("--checkpoint-every", type=int, default=500, help="checkpoint every N steps (default: 500)")
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
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, FloatingPointError) as err:
        print(f"seg2vid {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
