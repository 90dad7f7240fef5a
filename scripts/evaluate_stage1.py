#!/usr/bin/env python
"""Evaluate a stage-1 generator (label map -> first frame) on fixed held-out synthetic label maps.

Everything is seeded: the label maps are the first frames of the 16 clips of dataset seed
:data:`seg2vid.data.splits.FIRST_FRAME_SEED` (training pools use seed 0, their sample pictures seed
1_000_000), and any noise is drawn from a generator seeded with 0. The computation runs on the CPU
with one thread, so the numbers are reproducible up to float rounding;
``tests/test_spade.py`` checks them against the JSON this script writes.

Usage, from the repository root::

    python scripts/evaluate_stage1.py              # print the scores of the shipped generator
    python scripts/evaluate_stage1.py --write      # ...and write them next to it (.json)
    python scripts/evaluate_stage1.py --checkpoint runs/stage1_tiny/checkpoints/last.pt

Scores (see :func:`seg2vid.evaluation.first_frames.evaluate_first_frames`):

* ``l1``: mean |generated - true| over all pixels and channels, images in [0, 1];
* ``psnr_db``: peak signal-to-noise ratio per image (dB), averaged over the images;
* ``class_color_error``: per class, the distance between the mean colour of its pixels in the
  generated and in the true images (Euclidean RGB, 8-bit levels 0..255), and
  ``mean_class_color_error``, its unweighted mean over the classes present;
* ``baseline_class_mean_painter``: the same scores for painting every pixel with the TRUE mean
  colour of its class over these 16 images (no texture, exact class colours): a generator
  must beat its L1/PSNR by adding texture and shading, while its colour error is 0 by construction.
* ``segmenter_agreement``: does the picture show the map? The shipped segmenter reads the
  generated images and its reading is scored against the input maps (mIoU, pixel accuracy,
  :func:`seg2vid.evaluation.first_frames.segmenter_agreement`), on the 16 renderer maps above
  (``renderer_maps``; ``true_frames``: the same for the true first frames, the ceiling) and on
  16 maps drawn with boxes as with the label-map editor (``box_maps``:
  :func:`seg2vid.generation.editor.box_street_map`, seeds :data:`BOX_MAP_SEED` + i), which the
  generator never saw anything like.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # works from a fresh checkout, before `pip install -e .`

from seg2vid.data.first_frames import render_first_frames  # noqa: E402
from seg2vid.data.labels import CITYSCAPES  # noqa: E402
from seg2vid.data.splits import FIRST_FRAME_SEED  # noqa: E402
from seg2vid.evaluation.first_frames import class_mean_colors, evaluate_first_frames  # noqa: E402
from seg2vid.models.loading import load_spade_generator  # noqa: E402
from seg2vid.models.stage1 import ImageFirstFrame  # noqa: E402

DEFAULT_CHECKPOINT = ROOT / "data" / "checkpoints" / "spade_tiny_64.pt"
NUM_IMAGES = 16
#: Seeds of the box-drawn maps (box_street_map(BOX_MAP_SEED + i)).
BOX_MAP_SEED = 0


def agreement_scores(model, height: int, width: int, num_images: int = NUM_IMAGES) -> dict:
    """``segmenter_agreement`` of the module docstring (the shipped segmenter)."""
    from seg2vid.evaluation.first_frames import segmenter_agreement
    from seg2vid.generation.editor import box_street_map
    from seg2vid.models.segmenter import load_segmenter

    segmenter = load_segmenter(None, device="cpu")
    images, labels = render_first_frames(num_images, height, width, FIRST_FRAME_SEED)
    boxes = torch.stack([torch.from_numpy(box_street_map(BOX_MAP_SEED + i, height, width))
                         for i in range(num_images)])

    def paint(maps: torch.Tensor) -> torch.Tensor:
        return model.generate(CITYSCAPES.one_hot(maps), generator=torch.Generator().manual_seed(0))

    return {
        "renderer_maps": segmenter_agreement(paint(labels), labels, segmenter),
        "true_frames": segmenter_agreement(images, labels, segmenter),
        "box_maps": segmenter_agreement(paint(boxes), boxes, segmenter),
        "box_map_seeds": [BOX_MAP_SEED, BOX_MAP_SEED + num_images - 1],
    }


def class_mean_painter(height: int, width: int, num_images: int = NUM_IMAGES) -> ImageFirstFrame:
    """The baseline: each evaluation label map painted with its classes' true mean colours."""
    images, labels = render_first_frames(num_images, height, width, FIRST_FRAME_SEED)
    painted = torch.zeros_like(images)
    for name, (rgb, _) in class_mean_colors(images, labels).items():
        painted += (labels == CITYSCAPES.id_of(name))[:, None] * rgb[None, :, None, None]
    return ImageFirstFrame(painted)


def evaluate_checkpoint(path: Path, num_images: int = NUM_IMAGES) -> dict:
    """The scores of the generator in ``path`` at its training size, plus the file's identity."""
    torch.set_num_threads(1)  # one summation order: reproducible to the last digits on a CPU
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    train = ckpt["train_config"]
    height, width = train["height"], train["width"]
    model = load_spade_generator(path, device="cpu")
    start = time.perf_counter()
    scores = evaluate_first_frames(model, height, width, num_images, device="cpu")
    seconds = time.perf_counter() - start
    baseline = evaluate_first_frames(class_mean_painter(height, width, num_images), height, width, num_images,
                                     device="cpu")
    return {
        "checkpoint": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "step": ckpt["step"],
        **scores,
        "baseline_class_mean_painter": {k: baseline[k] for k in ("l1", "psnr_db", "mean_class_color_error")},
        "segmenter_agreement": agreement_scores(model, height, width, num_images),
        "seconds": round(seconds, 2),
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT,
                        help="generator export or stage-1 training checkpoint "
                        "(default: the shipped data/checkpoints/spade_tiny_64.pt)")
    parser.add_argument("--num-images", type=int, default=NUM_IMAGES, help="label maps (default: 16)")
    parser.add_argument("--write", action="store_true", help="write the scores to CHECKPOINT with .json")
    args = parser.parse_args(argv)
    result = evaluate_checkpoint(args.checkpoint, args.num_images)
    text = json.dumps(result, indent=2) + "\n"
    print(text, end="")
    if args.write:
        out = args.checkpoint.with_suffix(".json")
        out.write_text(text)
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
