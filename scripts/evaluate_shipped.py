#!/usr/bin/env python
"""Evaluate a shipped stage-2 checkpoint on fixed held-out synthetic clips.

Everything is seeded: the clips (dataset seed :data:`EVAL_DATA_SEED`, which neither training,
seed 0, nor the trainer's sample clips, seed 1_000_000, use), the prior samples and the fill noise
(:data:`EVAL_NOISE_SEED`). On the CPU the numbers are reproducible up to float rounding, and
``tests/test_shipped_checkpoints.py`` checks them against the JSON this script writes.

Usage, from the repository root::

    python scripts/evaluate_shipped.py                 # print the scores of the shipped checkpoint
    python scripts/evaluate_shipped.py --write         # ...and write them next to it (.json)
    python scripts/evaluate_shipped.py --checkpoint runs/tiny/checkpoints/last.pt   # any checkpoint

Scores (8 clips; PSNR in dB over the T future frames of a clip, averaged over clips; EPE in pixels):

* ``psnr_copy_first_frame``: the baseline "nothing moves" (every future frame = the first frame);
* ``psnr_exact_flow_warp``: the first frame warped with the EXACT flow (no refinement): what
  perfect flow alone gives, occlusions unrepaired;
* ``psnr_posterior``: decoded from the posterior MEAN of the true clip (a reconstruction);
* ``psnr_prior_best_of_n`` / ``psnr_prior_mean``: N futures sampled from the prior (no future
  frame seen): the best one per clip, and their average;
* ``epe_posterior_px`` / ``epe_zero_flow_px``: end-point error of the posterior's forward flow
  against the exact one on the pixels visible in frame 0, and of zero flow (the mean true speed);
* ``occlusion_iou``: IoU of the predicted occluded pixels (``mask_fwd < 0.5``) with the exact ones;
* ``kl_nats``: KL(q(z | clip) || N(0, I)) per clip; ``active_latents``: dimensions whose mean
  KL exceeds 0.01 nats (the others carry no information about the clip);
* ``diversity_l1``: mean L1 distance between two prior samples of the same first frame.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import itertools
import json
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # works from a fresh checkout, before `pip install -e .`

from seg2vid.checkpoints import load_checkpoint  # noqa: E402
from seg2vid.cvae import kl_diagonal_gaussian  # noqa: E402
from seg2vid.data.labels import CITYSCAPES  # noqa: E402
from seg2vid.data.splits import VAL_SEED  # noqa: E402
from seg2vid.data.synthetic import DEFAULT_STYLE, SceneConfig, SyntheticStreets  # noqa: E402
from seg2vid.flow import warp  # noqa: E402
from seg2vid.metrics import PSNR_CAP_DB, end_point_error, mask_iou, psnr  # noqa: E402
from seg2vid.models.loading import load_model, trained_style  # noqa: E402

DEFAULT_CHECKPOINT = ROOT / "data" / "checkpoints" / "seg2vid_tiny_64.pt"
EVAL_DATA_SEED = VAL_SEED  # the recorded evaluation of the shipped checkpoint
EVAL_NOISE_SEED = 0
NUM_CLIPS = 8
NUM_PRIOR_SAMPLES = 8
ACTIVE_KL_NATS = 0.01

#: The recorded numbers' PSNR: one per clip, from its MSE over all T future frames (capped like the
#: evaluation's), so a clip's score is not the mean of its frames' PSNRs.
clip_psnr = functools.partial(psnr, reduce="clip", cap_db=PSNR_CAP_DB)


@torch.no_grad()
def evaluate(model, num_clips: int = NUM_CLIPS, num_samples: int = NUM_PRIOR_SAMPLES,
             data_seed: int = EVAL_DATA_SEED, noise_seed: int = EVAL_NOISE_SEED,
             style: str = DEFAULT_STYLE) -> dict[str, float]:
    """The scores of the module docstring for ``model`` (a :class:`seg2vid.models.Seg2Vid`, on the
    CPU), on synthetic streets of ``style`` (the one the model was trained on: :func:`trained_style`)."""
    c = model.config
    scene = SceneConfig(height=c.height, width=c.width, frames=c.frames, style=style)
    dataset = SyntheticStreets(num_clips, scene, seed=data_seed)
    clips = [dataset[i] for i in range(num_clips)]
    frames = torch.stack([clip["frames"] for clip in clips])  # (B, T+1, 3, H, W)
    onehot = CITYSCAPES.one_hot(torch.stack([clip["labels"][0] for clip in clips]))
    flow_true = torch.stack([clip["flow_fwd"] for clip in clips])  # (B, T, 2, H, W)
    visible = torch.stack([clip["visible_fwd"] for clip in clips])  # (B, T, 1, H, W)
    first, future = frames[:, 0], frames[:, 1:]

    model = model.eval()
    generator = torch.Generator().manual_seed(noise_seed)
    mu, logvar = model.posterior(frames, onehot)
    recon = model.reconstruct(frames, onehot, generator=generator)
    prior = model.sample(first, onehot, n_samples=num_samples, generator=generator)
    prior_frames = prior.frames.view(num_clips, num_samples, *prior.frames.shape[1:])
    prior_psnr = torch.stack([clip_psnr(prior_frames[:, s], future) for s in range(num_samples)], dim=1)

    kl_per_dim = 0.5 * (mu.square() + logvar.exp() - 1 - logvar)  # (B, D) nats
    pairs = list(itertools.combinations(range(num_samples), 2))
    diversity = torch.stack([(prior_frames[:, i] - prior_frames[:, j]).abs().mean() for i, j in pairs])
    scores = {
        "psnr_copy_first_frame": clip_psnr(first.unsqueeze(1).expand_as(future), future).mean(),
        "psnr_exact_flow_warp": clip_psnr(warp(first.unsqueeze(1), flow_true), future).mean(),
        "psnr_posterior": clip_psnr(recon.frames, future).mean(),
        "psnr_prior_best_of_n": prior_psnr.max(dim=1).values.mean(),
        "psnr_prior_mean": prior_psnr.mean(),
        "epe_posterior_px": end_point_error(recon.flow_fwd, flow_true, visible),
        "epe_zero_flow_px": end_point_error(torch.zeros_like(flow_true), flow_true, visible),
        "occlusion_iou": torch.tensor(mask_iou(1 - recon.mask_fwd, 1 - visible)),
        "kl_nats": kl_diagonal_gaussian(mu, logvar),
        "active_latents": (kl_per_dim.mean(dim=0) > ACTIVE_KL_NATS).sum(),
        "diversity_l1": diversity.mean(),
    }
    out = {}
    for name, value in scores.items():
        value = value.item()
        if name == "active_latents":
            out[name] = int(value)
        else:
            out[name] = round(value, 4) if math.isfinite(value) else None
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT,
                        help="a model-only or training checkpoint (default: the shipped tiny one)")
    parser.add_argument("--write", action="store_true",
                        help="also write the report next to the checkpoint (suffix .json)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    model = load_model(args.checkpoint, device="cpu")
    style = trained_style(load_checkpoint(args.checkpoint)) or DEFAULT_STYLE
    scores = evaluate(model, style=style)
    seconds = time.perf_counter() - start
    report = {
        "checkpoint": args.checkpoint.name,
        "sha256": sha256(args.checkpoint),
        "bytes": args.checkpoint.stat().st_size,
        "command": "python scripts/evaluate_shipped.py --write",
        "clips": {"count": NUM_CLIPS, "dataset_seed": EVAL_DATA_SEED, "height": model.config.height,
                  "width": model.config.width, "frames": model.config.frames, "style": style},
        "prior_samples_per_clip": NUM_PRIOR_SAMPLES,
        "noise_seed": EVAL_NOISE_SEED,
        "scores": scores,
        "torch": torch.__version__,
    }
    print(json.dumps(report, indent=2))
    print(f"evaluated in {seconds:.1f} s", file=sys.stderr)
    if args.write:
        out = args.checkpoint.with_suffix(".json")
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
