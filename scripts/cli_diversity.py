#!/usr/bin/env python
"""Issue 11's CLI check: do 8 futures of ONE hand-drawn label map differ in how far the scene moves?

Draws a label map by hand -- sky, two facades, a sidewalk each side, a road trapezoid and two car
boxes; boxes, not the renderer's shapes -- saves it as a train-id PNG, and runs ONLY the command
line on it::

    seg2vid generate --labels MAP.png --samples 8 --seed SEED --scale 1 --out OUT [--checkpoint PT]

Then it reads the 8 GIFs back and, per sample, takes the mean absolute change between the first
and the last frame (all pixels and channels, in [0, 1]). The figure is their coefficient of
variation (std / mean over the 8 samples, population std): near 0 when every future moves the
scene by the same amount, >= 0.25 is issue 11's target.

Usage, from the repository root (about 10 s)::

    python scripts/cli_diversity.py [--checkpoint PT] [--seed 0] [--out cli_diversity_output]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZE = 64


def hand_drawn_map(size: int = SIZE) -> np.ndarray:
    """A (size, size) uint8 map of Cityscapes train ids drawn with boxes and one trapezoid."""
    from seg2vid.data.labels import CITYSCAPES

    ids = {name: CITYSCAPES.names.index(name) for name in
           ("road", "sidewalk", "building", "vegetation", "sky", "car")}
    out = np.full((size, size), ids["sky"], np.uint8)
    horizon = size * 3 // 8
    out[horizon // 2:, : size // 4] = ids["building"]
    out[horizon // 2:, 3 * size // 4:] = ids["vegetation"]
    out[horizon:, size // 4: 3 * size // 4] = ids["sidewalk"]
    for row in range(horizon, size):  # the road widens towards the camera
        half = int((row - horizon) / (size - horizon) * size * 0.45) + 2
        out[row, max(0, size // 2 - half): min(size, size // 2 + half)] = ids["road"]
    s = size / 64
    for top, left, h, w in ((30, 20, 8, 12), (40, 36, 12, 18)):  # two cars, boxes
        out[int(top * s): int((top + h) * s), int(left * s): int((left + w) * s)] = ids["car"]
    return out


def read_gif(path: Path) -> np.ndarray:
    """(T, H, W, 3) float in [0, 1]: every frame of a GIF."""
    with Image.open(path) as image:
        frames = []
        for index in range(image.n_frames):
            image.seek(index)
            frames.append(np.asarray(image.convert("RGB"), np.float64) / 255)
    return np.stack(frames)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="stage-2 checkpoint (default: the shipped one)")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("cli_diversity_output"))
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    label_png = args.out / "hand_drawn_trainids.png"
    Image.fromarray(hand_drawn_map()).save(label_png)
    command = [sys.executable, "-m", "seg2vid", "generate", "--labels", str(label_png),
               "--samples", str(args.samples), "--seed", str(args.seed), "--scale", "1",
               "--out", str(args.out / "generated")]
    if args.checkpoint:
        command += ["--checkpoint", args.checkpoint]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    changes = []
    for i in range(args.samples):
        video = read_gif(args.out / "generated" / f"sample_{i}.gif")
        changes.append(float(np.abs(video[-1] - video[0]).mean()))
    changes_arr = np.array(changes)
    cov = float(changes_arr.std() / changes_arr.mean()) if changes_arr.mean() > 0 else float("nan")
    report = {"command": " ".join(command[1:]), "mean_abs_change_first_to_last": changes,
              "coefficient_of_variation": cov, "target": 0.25}
    (args.out / "cli_diversity.json").write_text(json.dumps(report, indent=1))
    print("per-sample mean |last - first|:", " ".join(f"{c:.4f}" for c in changes))
    print(f"coefficient of variation over {args.samples} samples: {cov:.3f} (issue 11 target >= 0.25)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
