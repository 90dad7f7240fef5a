#!/usr/bin/env python
"""Write the sample label maps in ``data/label_maps/`` (for ``seg2vid generate --labels ...``).

Each map is the first-frame label map of a synthetic street scene (the default, rich streets) that
no shipped model was trained or evaluated on, saved twice: as train ids (8-bit grey PNG, 255 =
void) and in the
Cityscapes colour palette. Both encodings are read by ``seg2vid.generation.pipeline.read_label_png``.

    python scripts/make_sample_label_maps.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # works from a fresh checkout, before `pip install -e .`

from seg2vid.data.labels import CITYSCAPES  # noqa: E402
from seg2vid.data.synthetic import SceneConfig, render_clip  # noqa: E402

#: Scene seeds far from the training pools (which use SeedSequence-mixed seeds of small indices).
SEEDS = (90001, 90002, 90003)


def main() -> None:
    out = ROOT / "data" / "label_maps"
    out.mkdir(parents=True, exist_ok=True)
    for seed in SEEDS:
        labels = render_clip(SceneConfig(height=64, width=64, frames=1), seed)["labels"][0].numpy()
        Image.fromarray(labels.astype(np.uint8), mode="L").save(out / f"street_{seed}_trainids.png")
        Image.fromarray(CITYSCAPES.colorize(labels)).save(out / f"street_{seed}_color.png")
        print(f"wrote {out}/street_{seed}_trainids.png and _color.png")


if __name__ == "__main__":
    main()
