#!/usr/bin/env python
"""Fit a stage-2 model's sampling prior to the posteriors of its training clips (issue 11).

A cVAE trained with the method's small KL weight does not fill N(0, I): its posteriors over the
training clips have another mean and covariance (the dimensions that carry the speed spread MORE
than 1), so samples drawn from N(0, I) spread the futures less than the training clips do. This
script reads a model-only checkpoint, switches it to ``Seg2VidConfig(latent_prior="fitted")``,
computes the posterior q(z | clip) of ``--clips`` TRAINING clips (seeds 0..N-1 of the train split,
on the streets the checkpoint was trained on), fits the Gaussian of their mixture
(:meth:`seg2vid.models.seg2vid.Seg2Vid.fit_latent_prior`) and writes the checkpoint again with the
fitted mean and Cholesky factor as model buffers. The weights and the training are unchanged:
only what :meth:`~seg2vid.models.seg2vid.Seg2Vid.sample` draws z from.

Usage, from the repository root (21 s for 800 clips on one core)::

    python scripts/fit_latent_prior.py --checkpoint runs/seg2vid_tiny_64/export.pt --out fitted.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def fit(checkpoint: Path, out: Path, clips: int = 800, batch: int = 50) -> dict:
    """Fit and write; returns the per-dimension statistics that were printed."""
    import torch

    from seg2vid.checkpoints import atomic_write, load_checkpoint
    from seg2vid.data.labels import CITYSCAPES
    from seg2vid.data.splits import split_seed
    from seg2vid.data.synthetic import SceneConfig, render_clip
    from seg2vid.models.loading import trained_style
    from seg2vid.models.seg2vid import Seg2Vid, Seg2VidConfig

    ckpt = load_checkpoint(checkpoint)
    config = Seg2VidConfig.from_dict(ckpt["model_config"]).replace(latent_prior="fitted")
    model = Seg2Vid(config).eval()
    missing, unexpected = model.load_state_dict(ckpt["model"], strict=False)
    buffers = {"fitted_mean", "fitted_scale", "object_fitted_mean", "object_fitted_scale"}
    if unexpected or set(missing) - buffers:
        raise ValueError(f"{checkpoint}: not this model's weights "
                         f"(missing {missing}, unexpected {unexpected})")
    scene = SceneConfig(height=config.height, width=config.width, frames=config.frames,
                        style=trained_style(ckpt))
    mus, logvars, object_mus, object_logvars = [], [], [], []
    with torch.no_grad():
        for start in range(0, clips, batch):
            seeds = range(start, min(start + batch, clips))
            rendered = [render_clip(scene, split_seed("train", i)) for i in seeds]
            frames = torch.stack([c["frames"] for c in rendered])
            onehot = CITYSCAPES.one_hot(torch.stack([c["labels"][0] for c in rendered]))
            mu, logvar = model.posterior(frames, onehot)
            mus.append(mu)
            logvars.append(logvar)
            posteriors = model.object_posteriors(frames, onehot)
            if posteriors is not None:  # every real object's own posterior too
                objects, _, _, o_mu, o_logvar = posteriors
                real = objects.sum((2, 3)) > 0
                object_mus.append(o_mu[real])
                object_logvars.append(o_logvar[real])
    mu, logvar = torch.cat(mus), torch.cat(logvars)
    if object_mus:
        model.fit_latent_prior(mu, logvar, torch.cat(object_mus), torch.cat(object_logvars))
        object_variance = torch.diagonal(model.object_fitted_scale @ model.object_fitted_scale.T)
        print(f"  objects' latents ({sum(len(m) for m in object_mus)} objects): mean "
              + " ".join(f"{v:.2f}" for v in model.object_fitted_mean.tolist()) + ", variance "
              + " ".join(f"{v:.2f}" for v in object_variance.tolist()))
    else:
        model.fit_latent_prior(mu, logvar)
    variance = torch.diagonal(model.fitted_scale @ model.fitted_scale.T)
    stats = {"clips": clips, "mean": model.fitted_mean.tolist(), "variance": variance.tolist()}
    print(f"{checkpoint}: fitted the sampling prior to {clips} training clips ({scene.style} streets)")
    print("  mean per dimension    : " + " ".join(f"{v:.2f}" for v in stats["mean"]))
    print("  variance per dimension: " + " ".join(f"{v:.2f}" for v in stats["variance"]) + "  (N(0, I): 1)")
    fitted = dict(ckpt, model_config=config.to_dict(),
                  model={k: v.detach().clone().contiguous() for k, v in model.state_dict().items()})
    atomic_write(out, lambda fh: torch.save(fitted, fh))
    print(f"  wrote {out}")
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a model-only stage-2 checkpoint")
    parser.add_argument("--out", type=Path, required=True, help="where to write the fitted checkpoint")
    parser.add_argument("--clips", type=int, default=800, help="training clips to fit to (default 800)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    fit(args.checkpoint, args.out, args.clips)
    return 0


if __name__ == "__main__":
    sys.exit(main())
