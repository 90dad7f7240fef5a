"""What the per-object motion options cost per training step (issue 11's ``tiny_objects`` preset).

Times one stage-2 training step (forward, the loss without the perceptual term, backward, Adam) of
the motion recipe (``tiny_motion`` model, ``motion`` loss; shipped in seg2vid 0.2 and 0.2.1, hence
its row's name) and of the object recipe (``tiny_objects``, ``objects`` loss; shipped since 0.3)
on the SAME batch of rich street clips, rounds alternating so that a changing load hits both
alike, and the two object pieces alone: the labelling of the objects
(:func:`seg2vid.models.objects.label_segments`) and the block matching
(:func:`seg2vid.models.objects.match_objects`). One thread; median over rounds.

    python benchmarks/bench_objects.py            # batch 8, 64x64, 1 + 4 frames, 5 rounds of 3 steps
    python benchmarks/bench_objects.py --rounds 2 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from seg2vid.data.labels import CITYSCAPES  # noqa: E402
from seg2vid.data.synthetic import SceneConfig, render_clip  # noqa: E402
from seg2vid.models import PRESETS  # noqa: E402
from seg2vid.models.objects import label_segments, match_objects  # noqa: E402
from seg2vid.models.seg2vid import Seg2Vid  # noqa: E402
from seg2vid.training.objective import loss_preset, seg2vid_loss  # noqa: E402

RECIPES = {"shipped (tiny_motion + motion)": ("tiny_motion", "motion"),
           "objects (tiny_objects + objects)": ("tiny_objects", "objects")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--json", action="store_true", help="print the results as JSON at the end")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    scene = SceneConfig(height=64, width=64, frames=4, style="rich")
    clips = [render_clip(scene, i) for i in range(args.batch)]
    frames = torch.stack([c["frames"] for c in clips])
    onehot = CITYSCAPES.one_hot(torch.stack([c["labels"][0] for c in clips]))
    runs = {}
    for name, (preset, loss_name) in RECIPES.items():
        model = Seg2Vid(PRESETS[preset])
        runs[name] = (model, loss_preset(loss_name, 64, perceptual=0), torch.optim.Adam(model.parameters()))

    def step(name: str) -> None:
        model, loss, optimizer = runs[name]
        total, _ = seg2vid_loss(model(frames, onehot), frames, loss, step=1000)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()

    for name in runs:  # warm-up
        step(name)
    times: dict[str, list[float]] = {name: [] for name in runs}
    times["labelling"], times["block matching"] = [], []
    foreground = onehot[:, list(CITYSCAPES.foreground_ids)]
    for _ in range(args.rounds):
        for name in runs:
            start = time.perf_counter()
            for _ in range(args.steps):
                step(name)
            times[name].append((time.perf_counter() - start) / args.steps)
        start = time.perf_counter()
        objects = label_segments(foreground)
        times["labelling"].append(time.perf_counter() - start)
        start = time.perf_counter()
        match_objects(frames, objects)
        times["block matching"].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    names = list(RECIPES)
    print(f"one training step, batch {args.batch}, 64x64, 1 + 4 frames, one thread "
          f"(median of {args.rounds} rounds x {args.steps} steps; {objects.shape[1]} object slots):")
    for name, value in medians.items():
        print(f"  {name:36s} {value * 1000:8.1f} ms")
    ratio = medians[names[1]] / medians[names[0]]
    print(f"  object recipe / shipped recipe: {ratio:.2f}x")
    if args.json:
        print(json.dumps({"seconds": medians, "ratio": ratio, "batch": args.batch}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
