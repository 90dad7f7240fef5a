#!/usr/bin/env python
"""Train one issue-11 stage-2 recipe (the runs of ``data/results/motion_experiments.md``).

The tiny preset (64x64, 1 + 4 frames), overridden by ``--model k=v``; the loss preset ``--preset``
(:func:`seg2vid.training.objective.loss_preset`, KL warm-up 500) overridden by ``--loss k=v``; the synthetic
streets overridden by ``--scene k=v`` (e.g. ``style=rich``); a pool of 1000 clips, seed 0, batch 8.
Then score it with ``seg2vid evaluate --checkpoint OUT/NAME/checkpoints/last.pt [--style rich]``.

Usage, from the repository root (about 3 minutes for 600 steps on one quiet core)::

    python scripts/motion_experiment.py A1_rich_combo 600 --scene style=rich \\
        --model mask_head=full refiner_mask_grad=False --loss photometric=l1+census photometric_scales=3 \\
        smoothness_order=2 smoothness=0.05 mask_free_after=300 mask_fb=0.1
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def key_values(items: list[str] | None) -> dict:
    """``["a=1", "b=rich"]`` -> ``{"a": 1, "b": "rich"}`` (Python literals, else strings)."""
    out = {}
    for item in items or []:
        key, value = item.split("=", 1)
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("steps", type=int)
    parser.add_argument("--model", nargs="*", help="Seg2VidConfig fields k=v on top of the tiny preset")
    parser.add_argument("--loss", nargs="*", help="LossConfig fields k=v on top of the loss preset")
    parser.add_argument("--scene", nargs="*", help="SceneConfig fields k=v (e.g. style=rich)")
    parser.add_argument("--preset", default="pixel_flows", help="loss preset (default: pixel_flows)")
    parser.add_argument("--kl-warmup", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs"),
                        help="parent folder of the run (default: runs)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warm-start", type=Path, default=None, metavar="PT",
                        help="start from this checkpoint's weights and step count (steps counts on from it)")
    parser.add_argument("--warm-start-differ", nargs="*", default=(), metavar="FIELD",
                        help="model fields that may differ from the warm start's (options adding no weight)")
    args = parser.parse_args(argv)

    import torch

    from seg2vid.cli import EXIT_STOPPED
    from seg2vid.data.synthetic import SceneConfig
    from seg2vid.models import PRESETS
    from seg2vid.training.objective import loss_preset
    from seg2vid.training.stage2 import TrainConfig, Trainer

    torch.set_num_threads(args.threads)
    model = PRESETS["tiny"].replace(**key_values(args.model))
    loss = loss_preset(args.preset, model.width, kl_warmup_steps=args.kl_warmup, **key_values(args.loss))
    scene = SceneConfig(height=model.height, width=model.width, frames=model.frames, **key_values(args.scene))
    train = TrainConfig(steps=args.steps, seed=args.seed, sample_every=0, checkpoint_every=0, device="cpu")
    start = time.perf_counter()
    trainer = Trainer(model, train, loss, args.out / args.name, scene=scene)
    if args.warm_start is not None:
        trainer.warm_start(args.warm_start, differ=tuple(args.warm_start_differ))
    trainer.train()
    seconds = time.perf_counter() - start
    if trainer.step < args.steps:  # stopped by SIGTERM: the checkpoint is saved, no recipe.json
        print(f"{args.name}: stopped at step {trainer.step} of {args.steps} ({trainer.checkpoint_path} "
              "is saved)", file=sys.stderr)
        return EXIT_STOPPED
    (args.out / args.name / "recipe.json").write_text(json.dumps(
        {"model": model.to_dict(), "loss": loss.to_dict(), "scene": key_values(args.scene),
         "steps": args.steps, "seconds": seconds, "warm_start": str(args.warm_start), "argv": sys.argv},
        indent=1))
    print(f"{args.name}: trained {args.steps} steps in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
