"""Train and evaluate every ablation of the stage-2 model over 3 seeds: the README's table.

Usage (from the repository root; resumable, a finished run is not redone):

    python scripts/ablations.py                      # the committed settings (ablations.FULL)
    python scripts/ablations.py --steps 50 --seeds 0 # a quick look

Writes runs/ablations/... (checkpoints, logs, one eval.json per run) and the committed results
data/results/ablations.json (settings, table, claims, timing) and data/results/ablations.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import torch

from seg2vid.checkpoints import atomic_write
from seg2vid.cli import EXIT_STOPPED
from seg2vid.evaluation.ablations import FULL, aggregate, check_claims, format_claims, run_ablations
from seg2vid.evaluation.evaluate import PROTOCOL, format_table
from seg2vid.models.segmenter import load_segmenter
from seg2vid.training.loop import TrainingStopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="runs/ablations", help="run folders (default: runs/ablations)")
    parser.add_argument(
        "--results", default="data/results", help="where the json/md go (default: data/results)"
    )
    parser.add_argument("--steps", type=int, default=None, help=f"training steps (default: {FULL.steps})")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help=f"seeds (default: {FULL.seeds})")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("SEG2VID_PROGRESS", "0")
    settings = FULL
    if args.steps is not None:
        settings = dataclasses.replace(settings, steps=args.steps)
    if args.seeds is not None:
        settings = dataclasses.replace(settings, seeds=tuple(args.seeds))
    segmenter = load_segmenter()
    start = time.perf_counter()
    try:
        results = run_ablations(settings, args.out, segmenter=segmenter)
    except TrainingStopped as stopped:  # SIGTERM: the run's checkpoint is saved, nothing partial is scored
        print(stopped, file=sys.stderr)
        return EXIT_STOPPED
    seconds = time.perf_counter() - start
    table = aggregate(results)
    claims = check_claims(table)
    train_seconds = sum(r.get("train_seconds", 0.0) for runs in results.values() for r in runs)
    summary = {
        "settings": settings.to_dict(),
        "protocol": PROTOCOL,
        "table": table,
        "claims": claims,
        "train_seconds_total": round(train_seconds, 1),
        "seconds_this_invocation": round(seconds, 1),
        "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}, {args.threads} threads",
        "command": "python scripts/ablations.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    markdown = (
        f"Ablations on synthetic streets ({settings.style} style, {settings.height}x{settings.width}, "
        f"1 + {settings.frames} frames, "
        f"preset {settings.preset}, {settings.steps} steps x batch {settings.batch_size} per run, "
        f"{len(settings.seeds)} seeds; {settings.test_clips} held-out clips, N = {settings.n_samples} "
        f"samples): mean ± std over seeds.\n\n" + format_table(table) + "\n\n" + format_claims(claims) + "\n"
    )
    out = Path(args.results)
    atomic_write(out / "ablations.json", lambda fh: fh.write(json.dumps(summary, indent=1).encode()))
    atomic_write(out / "ablations.md", lambda fh: fh.write(markdown.encode()))
    print(markdown)
    print(
        f"training {train_seconds / 60:.1f} min in all; this invocation {seconds / 60:.1f} min; "
        f"written {out / 'ablations.json'} and {out / 'ablations.md'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
