#!/usr/bin/env python
"""Train the shipped segmenter ``data/checkpoints/segmenter_tiny_64.pt`` and evaluate it (its recipe).

What it does, in order (about 7 minutes on one CPU core, all of it measured and written to the JSON):

1. renders a POOL of synthetic street clips once (dataset seed :data:`TRAIN_DATA_SEED`, 64x64,
   1 + 2 frames each: 4,500 frames; consecutive frames of one clip are near copies, so more clips
   with fewer frames each give more variety for the same rendering time) and keeps them as 8-bit
   frames;
2. trains :class:`seg2vid.models.segmenter.Segmenter` on random frames of the pool with a class-weighted
   cross-entropy (weights ``sqrt(median frequency / frequency)``, "median frequency balancing"
   softened by the square root: without it the thin classes -- poles, signs, people -- are never
   predicted), Adam with a short warm-up and a cosine decay, and two augmentations: horizontal
   flips, and a random blend with a 3x3 blur (generated frames are softer than rendered ones; a
   segmenter that only knows sharp edges would punish every generated video for blur alone);
3. writes the checkpoint atomically (``format`` = ``seg2vid-segmenter``; weights and configs
   only, loadable with ``torch.load(weights_only=True)``) and a CSV log;
4. evaluates it on held-out clips (dataset seed :data:`EVAL_DATA_SEED`, never used for training
   anywhere in the project; 1 + 4 frames each, the stage-2 model's clip length) and writes
   ``segmenter_tiny_64.json``: per-class IoU, mIoU and pixel accuracy on the TRUE frames --
   the ceiling that semantic fidelity of generated videos is compared with -- the timings and
   the command line. ``tests/test_segmenter.py`` re-runs :func:`evaluate` and compares.

Usage, from the repository root::

    python scripts/train_segmenter.py --threads 1            # train, export, evaluate
    python scripts/train_segmenter.py --evaluate-only        # re-evaluate the shipped file
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # works from a fresh checkout, before `pip install -e .`

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from seg2vid.checkpoints import SEGMENTER_FORMAT  # noqa: E402
from seg2vid.cli import tcmalloc_environment  # noqa: E402
from seg2vid.data.labels import CITYSCAPES  # noqa: E402
from seg2vid.data.synthetic import DEFAULT_STYLE, SceneConfig, SyntheticStreets  # noqa: E402
from seg2vid.evaluation.segmentation import confusion_matrix, iou_from_confusion  # noqa: E402
from seg2vid.models.segmenter import Segmenter, SegmenterConfig, load_segmenter, segment  # noqa: E402

#: Training pool: dataset seed (stage 2 trains on seed 0, samples on 1e6, evaluates on 2e6).
TRAIN_DATA_SEED = 4_000_000
#: Held-out clips of the evaluation; no training in the project uses this seed.
EVAL_DATA_SEED = 4_000_001
POOL = {"clips": 1500, "future_frames": 2}
EVAL = {"clips": 100, "future_frames": 4}
TRAIN = {"steps": 2800, "batch_size": 16, "lr": 2e-3, "warmup_steps": 100, "seed": 0, "flip_p": 0.5,
         "blur_p": 0.5}
LOG_EVERY = 50
DEFAULT_OUT = ROOT / "data" / "checkpoints" / "segmenter_tiny_64.pt"


def render_pool(num_clips: int, future_frames: int, seed: int, size: tuple[int, int] = (64, 64)
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Every frame of ``num_clips`` clips: uint8 RGB (N, 3, H, W) and uint8 train ids (N, H, W)."""
    dataset = SyntheticStreets(num_clips, SceneConfig(*size, frames=future_frames), seed=seed)
    frames, labels = [], []
    for i in range(num_clips):
        clip = dataset[i]
        frames.append((clip["frames"] * 255).round().to(torch.uint8))
        labels.append(clip["labels"].to(torch.uint8))  # train ids 0..18 and 255 fit in a byte
    return torch.cat(frames), torch.cat(labels)


def class_weights(labels: torch.Tensor, num_classes: int, ignore_id: int) -> torch.Tensor:
    """sqrt(median frequency / frequency) per class, over the classes present (absent: 1)."""
    ids = labels.reshape(-1).long()
    counts = torch.bincount(ids[ids != ignore_id], minlength=num_classes)[:num_classes].double()
    present = counts > 0
    freq = counts / counts.sum()
    weights = torch.ones(num_classes, dtype=torch.float64)
    weights[present] = (freq[present].median() / freq[present]).sqrt()
    return weights.float()


def augment(frames: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
            flip_p: float, blur_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Random horizontal flips (frame and labels together) and a random blend with a 3x3 blur."""
    b = frames.shape[0]
    flip = torch.rand(b, generator=generator) < flip_p
    frames = torch.where(flip.view(b, 1, 1, 1), frames.flip(-1), frames)
    labels = torch.where(flip.view(b, 1, 1), labels.flip(-1), labels)
    amount = torch.rand(b, generator=generator) * (torch.rand(b, generator=generator) < blur_p)
    blurred = F.avg_pool2d(frames, 3, stride=1, padding=1, count_include_pad=False)
    amount = amount.view(b, 1, 1, 1)
    return frames * (1 - amount) + blurred * amount, labels


def train(frames: torch.Tensor, labels: torch.Tensor, config: SegmenterConfig, settings: dict,
          log_path: Path | None = None) -> tuple[Segmenter, list[dict]]:
    """Train a segmenter on the pool; returns it (eval mode) and the log rows."""
    torch.manual_seed(settings["seed"])
    model = Segmenter(config)
    generator = torch.Generator().manual_seed(settings["seed"])
    weights = class_weights(labels, config.num_classes, config.ignore_id)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    steps, warmup = settings["steps"], settings["warmup_steps"]

    def lr_factor(step: int) -> float:  # linear warm-up, then cosine decay to zero
        if step <= warmup:
            return step / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: lr_factor(i + 1))
    rows, window, start = [], [], time.perf_counter()
    model.train()
    for step in range(1, steps + 1):
        index = torch.randint(len(frames), (settings["batch_size"],), generator=generator)
        x = frames[index].float() / 255
        y = labels[index].long()
        x, y = augment(x, y, generator, settings["flip_p"], settings["blur_p"])
        loss = F.cross_entropy(model(x), y, weight=weights, ignore_index=config.ignore_id)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        window.append(loss.item())
        if step % LOG_EVERY == 0 or step == steps:
            row = {"step": step, "loss": sum(window) / len(window), "lr": optimizer.param_groups[0]["lr"],
                   "seconds": time.perf_counter() - start}
            rows.append(row)
            window = []
            print(f"step {step:5d}  loss {row['loss']:.4f}  lr {row['lr']:.2e}  {row['seconds']:6.0f} s",
                  flush=True)
    if log_path is not None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: f"{v:.5g}" if isinstance(v, float) else v for k, v in r.items()} for r in rows)
        log_path.write_text(text.getvalue())
    return model.eval(), rows


def evaluate(model: Segmenter, num_clips: int = EVAL["clips"], seed: int = EVAL_DATA_SEED,
             future_frames: int = EVAL["future_frames"]) -> dict:
    """Scores of ``model`` on every frame of ``num_clips`` held-out clips (TRUE frames, float, not 8-bit).

    Returns:
        dict: ``miou`` (over the classes present in truth or prediction), ``pixel_accuracy``,
        ``per_class_iou`` and ``class_pixels`` (by class name; IoU None for a class absent from both),
        ``settings``.
    """
    c = model.config
    dataset = SyntheticStreets(num_clips, SceneConfig(c.height, c.width, frames=future_frames), seed=seed)
    confusion = torch.zeros(c.num_classes, c.num_classes, dtype=torch.int64)
    for start in range(0, num_clips, 20):
        clips = [dataset[i] for i in range(start, min(start + 20, num_clips))]
        frames = torch.stack([clip["frames"] for clip in clips])
        truth = torch.stack([clip["labels"] for clip in clips])
        confusion += confusion_matrix(segment(model, frames), truth, c.num_classes, c.ignore_id)
    miou, per_class = iou_from_confusion(confusion)
    names = CITYSCAPES.names[: c.num_classes]
    return {
        "miou": round(miou, 5),
        "pixel_accuracy": round(float(confusion.diagonal().sum() / confusion.sum()), 5),
        "per_class_iou": {n: None if math.isnan(v) else round(float(v), 4)
                          for n, v in zip(names, per_class, strict=True)},
        "class_pixels": {n: int(v) for n, v in zip(names, confusion.sum(1), strict=True)},
        "settings": {"dataset_seed": seed, "clips": num_clips, "frames_per_clip": future_frames + 1,
                     "height": c.height, "width": c.width},
    }


def save(model: Segmenter, path: Path, settings: dict) -> None:
    from seg2vid import __version__
    from seg2vid.checkpoints import atomic_write

    ckpt = {
        "format": SEGMENTER_FORMAT[0], "format_version": SEGMENTER_FORMAT[1], "seg2vid_version": __version__,
        "step": settings["steps"],
        "model": {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()},
        "model_config": model.config.to_dict(),
        "train_config": dict(settings, data_seed=TRAIN_DATA_SEED, style=DEFAULT_STYLE,
                             **{f"pool_{k}": v for k, v in POOL.items()}),
    }
    atomic_write(path, lambda fh: torch.save(ckpt, fh))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="checkpoint to write (and its .json, .log.csv)")
    parser.add_argument("--steps", type=int, default=TRAIN["steps"],
                        help=f"optimiser steps (default {TRAIN['steps']})")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="evaluate --out and print, write nothing")
    args = parser.parse_args(argv)
    if argv is None and not args.evaluate_only:  # the same tcmalloc fast path as `seg2vid train`
        env = tcmalloc_environment()
        if env is not None:
            sys.stdout.flush()
            os.execve(sys.executable, [sys.executable, *sys.argv], env)
    torch.set_num_threads(args.threads)

    if args.evaluate_only:
        print(json.dumps(evaluate(load_segmenter(args.out)), indent=2))
        return 0

    args.out.parent.mkdir(parents=True, exist_ok=True)
    config = SegmenterConfig()
    settings = dict(TRAIN, steps=args.steps)
    t0, cpu0 = time.perf_counter(), time.process_time()
    size = (config.height, config.width)
    frames, labels = render_pool(POOL["clips"], POOL["future_frames"], TRAIN_DATA_SEED, size)
    render_s = time.perf_counter() - t0
    print(f"rendered {len(frames)} frames in {render_s:.1f} s", flush=True)
    model, rows = train(frames, labels, config, settings, args.out.with_suffix(".log.csv"))
    train_s = time.perf_counter() - t0 - render_s
    save(model, args.out, settings)
    t1 = time.perf_counter()
    scores = evaluate(load_segmenter(args.out))  # the file as shipped, read back with weights_only=True
    eval_s = time.perf_counter() - t1
    report = {
        "checkpoint": args.out.name,
        "sha256": hashlib.sha256(args.out.read_bytes()).hexdigest(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "model_config": config.to_dict(),
        "train": dict(settings, data_seed=TRAIN_DATA_SEED, style=DEFAULT_STYLE, pool_clips=POOL["clips"],
                      pool_frames=len(frames), final_loss=round(rows[-1]["loss"], 5),
                      class_weights=[round(float(w), 4) for w in class_weights(labels, config.num_classes,
                                                                              config.ignore_id)]),
        "eval": scores,
        "seconds": {"render_pool": round(render_s, 1), "train": round(train_s, 1),
                    "evaluate": round(eval_s, 1),
                    "total": round(time.perf_counter() - t0, 1),
                    # CPU time of this process: what the run costs on an otherwise idle core
                    "total_cpu": round(time.process_time() - cpu0, 1)},
        "threads": torch.get_num_threads(),
        "malloc": os.environ.get("LD_PRELOAD") or "system",
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "command": "python scripts/train_segmenter.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"mIoU {scores['miou']:.4f}, pixel accuracy {scores['pixel_accuracy']:.4f}; "
          f"{report['seconds']['total']:.0f} s in all; wrote {args.out} and its .json, .log.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
