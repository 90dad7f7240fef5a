#!/usr/bin/env python
"""Train the shipped stage-2 checkpoint ``data/checkpoints/seg2vid_tiny_64.pt`` (its recipe, as code).

The run is :class:`seg2vid.training.stage2.Trainer` with the options of a recipe (:data:`RECIPES`):

* ``objects`` (the default, shipped since seg2vid 0.3): ``motion`` first (trained into
  ``--from-run``, or that run reused; or, with ``--from-export PT``, that recipe's export, e.g. the
  shipped file of seg2vid 0.2.1: ``git show f066999:data/checkpoints/seg2vid_tiny_64.pt``), then
  its weights trained on to 11000 steps with the ``tiny_objects`` preset (the label map's objects
  move as wholes, each with its own latent read from block matching; ``objects`` loss preset);
  then the export's sampling prior is fitted to 800 training clips (``scripts/fit_latent_prior.py``,
  ``Seg2VidConfig.latent_prior="fitted"``, the objects' latents too).
* ``motion`` (shipped in seg2vid 0.2 and 0.2.1): the ``tiny_motion`` model preset and the
  ``motion`` loss preset on the rich synthetic streets (the default data), 5000 steps, its prior
  fitted the same way; see ``data/results/motion_experiments.md`` for how each option was chosen.
* ``classic``: the seg2vid 0.1 checkpoint's recipe: the ``tiny`` preset with
  :meth:`LossConfig.for_pixel_flows` (the authors' weights, consistency and smoothness converted
  for flows in pixels) on the classic streets.

Only the default recipe writes the shipped file by default; the others need an explicit
``--export``.

It writes its folder (``runs/seg2vid_tiny_64``: checkpoint, full CSV log, summary, sample GIFs),
then the model-only export, a trimmed log (every ``--log-stride``-th step), the evaluation
``scripts/evaluate_shipped.py --write`` next to it, and the issue-11 protocol
``seg2vid evaluate --split test`` into ``EXPORT_eval/``.

Usage, from the repository root (``--steps N`` stops earlier, and running the same command with a
larger ``--steps`` resumes the run)::

    python scripts/train_shipped.py --threads 2     # motion, then objects: about 50 + 48 minutes
    git show f066999:data/checkpoints/seg2vid_tiny_64.pt > motion.pt   # or: start from 0.2.1's export
    python scripts/train_shipped.py --threads 2 --from-export motion.pt   # the objects part only
    python scripts/train_shipped.py --recipe motion --out runs/motion --export runs/motion/motion.pt
    python scripts/train_shipped.py --recipe classic --out runs/classic --export runs/classic/classic.pt
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # works from a fresh checkout, before `pip install -e .`

from seg2vid.cli import EXIT_STOPPED, tcmalloc_environment  # noqa: E402

KL_WARMUP_STEPS = 500
#: Per recipe: the model preset (seg2vid.models.PRESETS), the loss (a
#: seg2vid.training.objective.loss_preset name, or "pixel_flows" = LossConfig.for_pixel_flows), the
#: synthetic streets' style and the optimiser steps.
RECIPES = {
    # 5000 steps: 1336 + 731 + 851 s on one core (trained as 1500, then resumed to 3000 and 5000; the
    # loss was still falling, data/results/motion_experiments.md)
    # fit_prior: then scripts/fit_latent_prior.py on the export (the sampling prior fitted to 800
    # training clips' posteriors; 2026-12-01, data/results/motion_experiments.md)
    "motion": {"preset": "tiny_motion", "loss": "motion", "style": "rich", "steps": 5000,
               "fit_prior": True},
    "classic": {"preset": "tiny", "loss": "pixel_flows", "style": "classic", "steps": 5000,
                "fit_prior": False},
    # from: first the "motion" recipe (into --from-run, reused when it is there, or its export with
    # --from-export), then its weights trained on to 11000 steps with the label map's objects moving
    # as wholes, each with its own latent (6500 in the third session; four 1500-step legs to 11000
    # in the fourth gave forward IoU 0.249 -> 0.273; shipped in seg2vid 0.3: 6000 steps from 0.2.1's
    # export in 2890 s on 2 threads, forward IoU 0.263; 0.300 in 0.3.1, whose tiny_objects preset pins
    # the posterior's objects to their block matches, object_pin=0.9; data/results/motion_experiments.md)
    "objects": {"preset": "tiny_objects", "loss": "objects", "style": "rich", "steps": 11000,
                "fit_prior": True, "from": "motion"},
}
#: The recipe of the shipped file (the default, the only one that writes it without --export).
SHIPPED_RECIPE = "objects"
TRAIN = {"batch_size": 8, "lr": 1e-3, "seed": 0, "num_clips": 1000, "sample_every": 1000,
         "checkpoint_every": 500, "device": "cpu"}


def _rows(log_path: Path) -> tuple[list[str], list[list[str]]]:
    with open(log_path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def trimmed_log(log_path: Path, stride: int, before: Path | None = None, before_stride: int = 1) -> str:
    """Every ``stride``-th row of the trainer's CSV log (and the last), numbers to 5 significant digits.

    ``before``: the log of the run this one continues (a training folder's ``log.csv``, or an
    export's trimmed ``.log.csv``), whose rows before this log's first step come first, every
    ``before_stride``-th; a column only one of the two logs has is ``nan`` in the other's rows.
    """
    header, body = _rows(log_path)
    kept = [row for i, row in enumerate(body, start=1) if i % stride == 0 or i == 1 or i == len(body)]
    rows = [dict(zip(header, row, strict=True)) for row in kept]
    if before is not None and before.is_file():
        earlier_header, earlier = _rows(before)
        first = int(body[0][0]) if body else float("inf")
        earlier = [row for row in earlier if int(row[0]) < first]
        earlier = [row for i, row in enumerate(earlier, start=1)
                   if i % before_stride == 0 or i == 1 or i == len(earlier)]
        header = earlier_header + [name for name in header if name not in earlier_header]
        rows = [dict(zip(earlier_header, row, strict=True)) for row in earlier] + rows
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row["step"], *(f"{float(row.get(name, 'nan')):.5g}" for name in header[1:])])
    return text.getvalue()


def stopped(trainer) -> int:
    """A run stopped by SIGTERM before its last step: say so and export, fit and score nothing (a
    partial model must never replace the shipped checkpoint or its recorded scores)."""
    print(f"stopped at step {trainer.step} of {trainer.config.steps} ({trainer.checkpoint_path} is saved); "
          "run the same command again to resume", file=sys.stderr)
    return EXIT_STOPPED


def warm_start_from_export(trainer, export: Path, base_config) -> int:
    """Start ``trainer`` (a recipe that continues another) from the weights of that other recipe's
    EXPORT ``export`` (a model-only checkpoint: ``scripts/train_shipped.py`` of the base recipe,
    its sampling prior fitted or not); returns the step it continues from.

    Raises:
        CheckpointMismatchError: the export is not of the base recipe's model preset (every
            differing field is named; the sampling prior, ``latent_prior``, may differ).
    """
    from seg2vid.checkpoints import CheckpointMismatchError, config_differences, load_checkpoint
    from seg2vid.models.seg2vid import Seg2VidConfig

    # through from_dict: fields added since the export was written take their defaults
    saved = Seg2VidConfig.from_dict(load_checkpoint(export)["model_config"]).to_dict()
    problems = config_differences(saved, base_config.to_dict(), ignore=("latent_prior",))
    if problems:
        raise CheckpointMismatchError(f"{export} is not an export of the recipe this one continues; "
                                      "differing model fields:\n  " + "\n  ".join(problems))
    mine = trainer.model_config.to_dict()
    differ = tuple(key for key, value in mine.items() if saved.get(key) != value)
    return trainer.warm_start(export, differ=differ)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/seg2vid_tiny_64"), help="training folder")
    parser.add_argument("--export", type=Path, default=ROOT / "data" / "checkpoints" / "seg2vid_tiny_64.pt")
    parser.add_argument("--log-stride", type=int, default=25, help="keep every N-th log row (default: 25)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    parser.add_argument("--recipe", choices=tuple(RECIPES), default=SHIPPED_RECIPE,
                        help=f"{SHIPPED_RECIPE} (default): the shipped checkpoint's recipe; motion: seg2vid "
                        "0.2's; classic: seg2vid 0.1's")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's optimiser steps")
    parser.add_argument("--from-run", type=Path, default=Path("runs/seg2vid_tiny_64_motion"),
                        help="for a recipe that continues another (objects): that one's training folder")
    parser.add_argument("--from-steps", type=int, default=None,
                        help="override the optimiser steps of the recipe it continues (a quick check)")
    parser.add_argument("--from-export", type=Path, default=None,
                        help="for a recipe that continues another: start from that recipe's EXPORT "
                             "instead of its training folder (e.g. the motion recipe's shipped file)")
    args = parser.parse_args(argv)
    if args.recipe != SHIPPED_RECIPE and "--export" not in (argv if argv is not None else sys.argv):
        parser.error(f"--recipe {args.recipe} needs an explicit --export "
                     "(it must not replace the shipped checkpoint)")
    if argv is None:  # the same tcmalloc fast path as `seg2vid train`
        env = tcmalloc_environment()
        if env is not None:
            sys.stdout.flush()
            os.execve(sys.executable, [sys.executable, *sys.argv], env)

    import torch

    from seg2vid.data.synthetic import SceneConfig
    from seg2vid.models import PRESETS
    from seg2vid.models.loading import export_model
    from seg2vid.training.objective import LossConfig, loss_preset
    from seg2vid.training.stage2 import TrainConfig, Trainer

    torch.set_num_threads(args.threads)

    def make_trainer(name: str, out: Path, steps: int | None) -> Trainer:
        recipe = RECIPES[name]
        model = PRESETS[recipe["preset"]]
        if recipe["loss"] == "pixel_flows":
            loss = LossConfig.for_pixel_flows(model.width, kl_warmup_steps=KL_WARMUP_STEPS)
        else:
            loss = loss_preset(recipe["loss"], model.width, kl_warmup_steps=KL_WARMUP_STEPS)
        scene = SceneConfig(height=model.height, width=model.width, frames=model.frames,
                            style=recipe["style"])
        train = {**TRAIN, "steps": steps if steps is not None else recipe["steps"]}
        return Trainer(model, TrainConfig(**train), loss, out, scene=scene)

    recipe = RECIPES[args.recipe]
    trainer = make_trainer(args.recipe, args.out, args.steps)
    start = time.perf_counter()
    if trainer.checkpoint_path.is_file():
        print(f"resuming {trainer.checkpoint_path} at step {trainer.resume()}")
    elif "from" in recipe and args.from_export is not None:  # the recipe it continues, exported
        step = warm_start_from_export(trainer, args.from_export, PRESETS[RECIPES[recipe["from"]]["preset"]])
        print(f"warm start from {args.from_export} (step {step})")
    elif "from" in recipe:  # first the recipe it continues (or its finished run), then its weights
        base = make_trainer(recipe["from"], args.from_run, args.from_steps)
        if base.checkpoint_path.is_file():
            print(f"resuming {base.checkpoint_path} at step {base.resume()}")
        base.train()
        if base.step < base.config.steps:
            return stopped(base)
        differ = tuple(key for key, value in trainer.model_config.to_dict().items()
                       if base.model_config.to_dict().get(key) != value)
        step = trainer.warm_start(base.checkpoint_path, differ=differ)
        print(f"warm start from {base.checkpoint_path} (step {step}), new options: {', '.join(differ)}")
    summary = trainer.train()
    if trainer.step < trainer.config.steps:
        return stopped(trainer)
    print(f"trained to step {summary['step']} in {time.perf_counter() - start:.0f} s "
          f"({torch.get_num_threads()} threads, {os.environ.get('LD_PRELOAD') or 'system malloc'})")
    print(json.dumps(summary["last_losses"], indent=2))
    exported = export_model(trainer.checkpoint_path, args.export)
    if recipe["fit_prior"]:
        fit_prior = [sys.executable, str(ROOT / "scripts" / "fit_latent_prior.py"), "--checkpoint",
                     str(exported), "--out", str(exported), "--threads", str(args.threads)]
        subprocess.run(fit_prior, check=True, cwd=ROOT)
    # a recipe that continues another logs that one's steps first: its training log, or its export's
    if args.from_export is not None:
        before, before_stride = args.from_export.with_suffix(".log.csv"), 1
    else:
        before, before_stride = args.from_run / "log.csv", args.log_stride
    earlier = (before, before_stride) if "from" in recipe else (None, 1)
    exported.with_suffix(".log.csv").write_text(trimmed_log(trainer.log_path, args.log_stride, *earlier))
    size = exported.stat().st_size / 2**20
    print(f"wrote {exported} ({size:.2f} MiB) and {exported.with_suffix('.log.csv')}")
    shipped_scores = [sys.executable, str(ROOT / "scripts" / "evaluate_shipped.py"), "--checkpoint",
                      str(exported), "--write", "--threads", str(args.threads)]
    protocol = [sys.executable, "-m", "seg2vid", "evaluate", "--checkpoint", str(exported.resolve()),
                "--split", "test", "--threads", str(args.threads),
                "--out", str(exported.resolve().with_suffix("")) + "_eval"]  # the issue-11 acceptance
    return max(subprocess.run(command, check=False, cwd=ROOT).returncode
               for command in (shipped_scores, protocol))

if __name__ == "__main__":
    sys.exit(main())
