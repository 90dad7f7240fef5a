#!/usr/bin/env python
"""Does training in bf16 lose quality? The perceptual term in fp32 vs bf16 (issue 15, goal 1).

Issue 15 asks for the fast training step "with no loss of quality on the synthetic benchmark (same
PSNR/EPE within seed noise after the same number of steps)". This script trains the shipped
recipe's model (``tiny_motion`` preset, ``motion`` loss preset, rich streets, 64x64, 1 + 4) WITH
the perceptual term, in two variants, for the same steps and seeds:

* ``fp32``: the authors' term in fp32, no autocast (the default of every option);
* ``bf16``: the fastest switches of ``benchmarks/bench_model.py``: the perceptual term in bf16 on
  channels-last tensors (``LossConfig.perceptual_precision="bf16"``, ``perceptual_channels_last``)
  and the model's forward under bf16 autocast (``TrainConfig.amp="bf16"``);
* ``bf16_term``: only the perceptual term in bf16 + channels-last, the model in fp32;
* ``fp32_half``: the term in fp32 on channels-last tensors, on 2 x 2 average-pooled frames
  (``perceptual_downsample=2``: another, documented loss, four times cheaper; 32 x 32 inputs to
  VGG-19 at this size).

No ImageNet VGG-19 weights exist on this machine, so both variants use the SAME random-init VGG-19
(torchvision's initialisation, seed 0, written once to ``OUT/vgg19_random_seed0.pt``): its features
are not ImageNet's, but its arithmetic -- what bf16 could spoil -- is the same network's. Each run
is then scored on the 64 rich test clips (``seg2vid.evaluation.evaluate``, N = 5, seed 0).

Usage, from the repository root (one run per core; ``report`` prints the table)::

    python scripts/perceptual_precision_study.py run fp32 0 &
    python scripts/perceptual_precision_study.py run fp32 1; wait
    python scripts/perceptual_precision_study.py run bf16 0 &
    python scripts/perceptual_precision_study.py run bf16 1; wait
    python scripts/perceptual_precision_study.py run bf16_term 0 &
    python scripts/perceptual_precision_study.py run bf16_term 1; wait
    python scripts/perceptual_precision_study.py report
    python scripts/perceptual_precision_study.py report --runs data/results/perceptual_precision.json

The committed file holds every run made so far (seeds 0-5 of fp32 and bf16_term, 0-3 of bf16
and fp32_half; ``benchmarks/README.md`` has the table and what it says). A run records the CPU's
name: bf16 arithmetic runs on AVX-512 BF16 or AMX units depending on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: variant -> (TrainConfig.amp, LossConfig.perceptual_precision, LossConfig.perceptual_channels_last,
#: LossConfig.perceptual_downsample)
VARIANTS = {"fp32": ("off", "fp32", False, 1), "bf16": ("bf16", "bf16", True, 1),
            "bf16_term": ("off", "bf16", True, 1), "fp32_half": ("off", "fp32", True, 2)}
#: A run whose posterior EPE stays above this after its steps has not grown its flows yet (600 steps
#: end either near 3.1-3.7 px or near 4.3-4.5, close to copying the first frame's ~4.7).
GROWN_EPE = 4.0
#: The scores of the table (``evaluate``'s metric names).
SCORES = ("psnr_best_of_n", "psnr_mean_of_n", "epe_best_of_n", "epe_posterior", "speed_correlation")


def random_vgg_file(out: Path) -> Path:
    """The random-init VGG-19 state dict both variants use (written once)."""
    import torch
    import torchvision

    path = out / "vgg19_random_seed0.pt"
    if not path.exists():
        out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        state = torchvision.models.vgg19(weights=None).state_dict()
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # two runs started together each write their own
        torch.save(state, tmp)
        tmp.replace(path)
    return path


def run(variant: str, seed: int, steps: int, batch_size: int, out: Path) -> dict:
    """Train one variant and seed, score it, write ``OUT/VARIANT_sSEED/result.json``."""
    import torch

    from seg2vid.data.splits import TEST_SEED
    from seg2vid.data.synthetic import SceneConfig
    from seg2vid.evaluation.evaluate import evaluate, synthetic_test_set
    from seg2vid.models import PRESETS
    from seg2vid.training.objective import loss_preset
    from seg2vid.training.stage2 import TrainConfig, Trainer
    from seg2vid.utils import cpu_name

    torch.set_num_threads(1)
    amp, precision, channels_last, downsample = VARIANTS[variant]
    model_config = PRESETS["tiny_motion"]
    loss = loss_preset("motion", model_config.width, kl_warmup_steps=500, perceptual_precision=precision,
                       perceptual_channels_last=channels_last, perceptual_downsample=downsample)
    scene = SceneConfig(height=model_config.height, width=model_config.width, frames=model_config.frames,
                        style="rich")
    train = TrainConfig(steps=steps, seed=seed, batch_size=batch_size, sample_every=0, checkpoint_every=0,
                        device="cpu", amp=amp)
    folder = out / f"{variant}_s{seed}"
    start = time.perf_counter()
    trainer = Trainer(model_config, train, loss, folder, scene=scene, perceptual_weights=random_vgg_file(out))
    if trainer.checkpoint_path.exists():  # an interrupted run of this command: go on from its checkpoint
        trainer.resume()
    trainer.train()
    seconds = time.perf_counter() - start
    if trainer.step < steps:  # stopped early (SIGTERM): the checkpoint is saved, nothing is scored
        sys.exit(f"{folder}: stopped at step {trainer.step} of {steps}; run the same command again to resume")
    data = synthetic_test_set(64, 64, 4, 64, TEST_SEED, style="rich")
    scores = evaluate(trainer.model, data, n_samples=5, seed=0)["metrics"]
    result = {"variant": variant, "seed": seed, "steps": steps, "batch_size": batch_size,
              "train_seconds": round(seconds, 1), "cpu": cpu_name(),  # bf16 differs by CPU
              "scores": {k: scores[k]["mean"] for k in SCORES if k in scores}}
    (folder / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return result


def report(out: Path, runs_file: Path | None = None) -> None:
    """The table of every finished run under ``out`` (and those listed in ``runs_file``, a JSON
    file like ``data/results/perceptual_precision.json`` whose ``"runs"`` are result.json
    contents; a run under ``out`` wins over the file's of the same variant and seed), and the
    per-variant mean and seed spread."""
    results = [json.loads(p.read_text()) for p in sorted(out.glob("*/result.json"))]
    if runs_file is not None:  # a run under ``out`` replaces the file's run of the same variant and seed
        ran = {(r["variant"], r["seed"]) for r in results}
        results += [r for r in json.loads(runs_file.read_text())["runs"]
                    if (r["variant"], r["seed"]) not in ran]
    results.sort(key=lambda r: (list(VARIANTS).index(r["variant"]), r["seed"]))
    if not results:
        sys.exit(f"no finished runs under {out}")
    print(f"| variant | seed | steps | train s | cpu | {' | '.join(SCORES)} |")
    print("|---" * (5 + len(SCORES)) + "|")
    for r in results:
        cells = " | ".join(f"{r['scores'].get(k, float('nan')):.3f}" for k in SCORES)
        print(f"| {r['variant']} | {r['seed']} | {r['steps']} | {r['train_seconds']:.0f} "
              f"| {r.get('cpu', '?')} | {cells} |")
    for variant in VARIANTS:
        rows = [r for r in results if r["variant"] == variant]
        if rows:
            means = " | ".join(
                f"{sum(r['scores'][k] for r in rows) / len(rows):.3f} "
                f"(spread {max(r['scores'][k] for r in rows) - min(r['scores'][k] for r in rows):.3f})"
                for k in SCORES)
            print(f"| {variant}: mean of {len(rows)} | | | | | {means} |")
    print(f"\nflows grown (posterior EPE < {GROWN_EPE} px; copying the first frame scores about 4.7, trained "
          "runs 3.1-3.7):")
    for variant in VARIANTS:
        rows = [r for r in results if r["variant"] == variant]
        if rows:
            grown = sum(r["scores"]["epe_posterior"] < GROWN_EPE for r in rows)
            print(f"  {variant}: {grown} of {len(rows)} seeds")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and score one variant and seed")
    r.add_argument("variant", choices=sorted(VARIANTS))
    r.add_argument("seed", type=int)
    r.add_argument("--steps", type=int, default=600)
    r.add_argument("--batch-size", type=int, default=4)
    rep = sub.add_parser("report", help="print the table of the finished runs")
    rep.add_argument("--runs", type=Path, default=None, metavar="JSON",
                     help="also the runs listed in this file (data/results/perceptual_precision.json)")
    for p in (r, rep):
        p.add_argument("--out", type=Path, default=Path("runs/perceptual_precision"))
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.variant, args.seed, args.steps, args.batch_size, args.out)
    else:
        report(args.out, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
