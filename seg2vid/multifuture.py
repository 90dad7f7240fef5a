"""Multi-future scores: does a model's prior cover the futures a first frame really has?

A test "scene" here is ONE first frame (frame 0 pixels and label map) with K exact futures
(different camera speeds and object velocities, each rendered exactly). A model draws N samples
from its prior for that first frame. Each sample and each true future is compared by its FLOW
(the per-pixel forward flows of frames 1..T), which is what differs between futures; pixels and
textures are the same.

Definitions (:data:`PROTOCOL`):

* distance ``d(a, b)`` between two futures = the mean end-point error between their forward
  flows over frames 1..T and ALL pixels (pixels; a flow field per frame, so speed, pan and the
  objects' motions all count);
* the scene's SPREAD = the median of ``d`` over the K(K-1)/2 pairs of true futures;
* a sample MATCHES a true future when ``d <= TOLERANCE * spread``, with :data:`TOLERANCE` = 0.25
  (fixed before any model was scored): a quarter of the typical distance between two true
  futures. With K futures evenly spread along one axis, a sample matches at most its one or two
  nearest futures, so one future repeated N times covers at most 2/K of them; N independent
  draws from the true distribution cover about 80% (for K = N = 8);
* ``future_coverage`` = share of the K true futures matched by at least one of the N samples;
* ``future_precision`` = share of the N samples that match at least one true future.

Both are averaged over scenes. The tolerance is relative, so a scene with nearly identical
futures does not reward a model for being vague, and a scene with wildly different ones does not
punish it for the rendering's scale.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "PROTOCOL",
    "TOLERANCE",
    "future_coverage",
    "future_distances",
    "future_precision",
    "multi_future_scenes",
    "multi_future_scores",
]

#: A sample matches a true future within this share of the scene's spread (see the module docstring).
TOLERANCE = 0.25

PROTOCOL = (
    "K true futures per first frame, N prior samples; d = mean EPE (px) between forward flows over frames "
    f"1..T and all pixels; spread = median d over pairs of true futures; match: d <= {TOLERANCE} * spread; "
    "coverage = share of true futures matched by some sample, precision = share of samples matching some "
    "true future; mean over scenes"
)


def future_distances(samples: Tensor, futures: Tensor) -> Tensor:
    """Mean EPE between every pair (sample, future) of flow sequences.

    Args:
        samples: (N, T, 2, H, W) pixels.
        futures: (K, T, 2, H, W) pixels.
    Returns:
        (N, K) float64, pixels.
    """
    if samples.dim() != 5 or samples.shape[1:] != futures.shape[1:] or samples.shape[2] != 2:
        raise ValueError(
            f"samples {tuple(samples.shape)} and futures {tuple(futures.shape)} must be (N/K, T, 2, H, W)"
        )
    s, f = samples.double(), futures.double()
    return torch.stack([(s - f[k]).square().sum(2).sqrt().mean(dim=(1, 2, 3)) for k in range(f.shape[0])], dim=1)


def _matches(samples: Tensor, futures: Tensor, tolerance: float) -> Tensor:
    """(N, K) bool: sample n matches future k (see the module docstring)."""
    if futures.shape[0] < 2:
        raise ValueError("need at least 2 true futures to measure their spread")
    d_true = future_distances(futures, futures)
    k = futures.shape[0]
    pairs = d_true[torch.triu_indices(k, k, offset=1).unbind()]
    spread = pairs.median()
    return future_distances(samples, futures) <= tolerance * spread


def future_coverage(samples: Tensor, futures: Tensor, tolerance: float = TOLERANCE) -> float:
    """Share of the K true futures that at least one of the N samples matches.

    Args:
        samples: (N, T, 2, H, W) the samples' forward flows (pixels).
        futures: (K, T, 2, H, W) the true futures' forward flows (pixels), K >= 2.
        tolerance: match when the distance is at most ``tolerance`` times the futures' spread.
    """
    return _matches(samples, futures, tolerance).any(dim=0).double().mean().item()


def future_precision(samples: Tensor, futures: Tensor, tolerance: float = TOLERANCE) -> float:
    """Share of the N samples that match at least one true future (arguments as :func:`future_coverage`)."""
    return _matches(samples, futures, tolerance).any(dim=1).double().mean().item()


def _future_renderer() -> Callable[..., dict[str, Tensor]] | None:
    """The data module's exact multi-future renderer (``render_futures(config, seed, k)``), if any."""
    from seg2vid.data import synthetic

    return getattr(synthetic, "render_futures", None)


#: Motion scales of the stand-in futures (when the data module has no multi-future renderer).
STAND_IN_MOTIONS = (0.4, 0.57, 0.74, 0.91, 1.09, 1.26, 1.43, 1.6)


def multi_future_scenes(scene: Any, num_scenes: int, k: int = 8, seed: int = 7_500_000) -> list[dict[str, Tensor]]:
    """``num_scenes`` first frames with ``k`` exact futures each.

    With a data module that renders alternative futures (:func:`seg2vid.data.synthetic.render_futures`:
    the same layout and frame 0, independently drawn camera and object motions) those are used; otherwise a
    stand-in: the same clip rendered with every speed scaled by :data:`STAND_IN_MOTIONS`
    (frame 0 is identical, the futures differ in how far everything moves).

    Args:
        scene: a :class:`~seg2vid.data.synthetic.SceneConfig` (size, frames, style).
        num_scenes: first frames.
        k: futures per first frame.
        seed: seed of the scenes (not a training or test seed).
    Returns:
        a list of dicts: ``frames`` (K, T+1, 3, H, W), ``label_map`` (H, W) int64 (frame 0's train
        ids), ``flow_fwd`` (K, T, 2, H, W), ``kind`` ("exact multi-future" or "speed-scaled stand-in").
    """
    import dataclasses

    import numpy as np

    from seg2vid.data.synthetic import render_clip

    render = _future_renderer()
    out = []
    for i in range(num_scenes):
        clip_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        if render is not None:
            futures = render(scene, clip_seed, k)
            out.append({"frames": futures["frames"], "label_map": futures["label_map"],
                        "flow_fwd": futures["flow_fwd"], "kind": "exact multi-future"})
            continue
        if k > len(STAND_IN_MOTIONS):
            raise ValueError(f"the stand-in has {len(STAND_IN_MOTIONS)} futures, asked for {k}")
        motions = STAND_IN_MOTIONS if k == len(STAND_IN_MOTIONS) else np.linspace(0.4, 1.6, k)
        clips = [render_clip(dataclasses.replace(scene, motion=float(m)), clip_seed) for m in motions]
        kind = "speed-scaled stand-in"
        out.append({
            "frames": torch.stack([c["frames"] for c in clips]),
            "label_map": clips[0]["labels"][0],
            "flow_fwd": torch.stack([c["flow_fwd"] for c in clips]),
            "kind": kind,
        })
    return out


@torch.no_grad()
def multi_future_scores(
    predict: Callable, scenes: list[dict[str, Tensor]], table: Any, n_samples: int = 8,
    seed: int = 0, device: str | torch.device = "cpu",
) -> dict[str, dict[str, Any]]:
    """``future_coverage`` and ``future_precision`` of a predictor over multi-future scenes.

    Args:
        predict: a predictor of :func:`seg2vid.evaluate.evaluate` (its ``flow_fwd`` is scored);
            a predictor that reads the truth (``uses_truth``) gets the FIRST future's truth.
        scenes: from :func:`multi_future_scenes`.
        table: the label table (one-hot channels).
        n_samples: N samples per first frame.
        seed: seeds the samples.
        device: where the predictor runs.
    Returns:
        ``{"future_coverage": {"mean", "std", "n", "per_frame"}, "future_precision": {...}}``
        (std over scenes; ``per_frame`` is empty: the scores are per scene).
    """
    generator = torch.Generator(device=device).manual_seed(seed)
    coverage, precision = [], []
    for scene in scenes:
        frames = scene["frames"].to(device)
        first = frames[:1, 0]
        onehot = table.one_hot(scene["label_map"][None].to(device))
        if getattr(predict, "uses_truth", False):
            truth = {"flow_fwd": scene["flow_fwd"][:1].to(device)}
            truth["flow_bwd"] = truth["flow_fwd"]  # unused by the flow score
            ones = truth["flow_fwd"].new_ones(1, truth["flow_fwd"].shape[1], 1, *truth["flow_fwd"].shape[-2:])
            truth["visible_fwd"] = truth["visible_bwd"] = ones
            pred = predict(first, onehot, n_samples, generator, truth=truth)
        else:
            pred = predict(first, onehot, n_samples, generator)
        if pred.flow_fwd is None:
            raise ValueError("the predictor gives no flow: multi-future scores compare flows")
        futures = scene["flow_fwd"].to(device)
        coverage.append(future_coverage(pred.flow_fwd, futures))
        precision.append(future_precision(pred.flow_fwd, futures))

    def summary(values: list[float]) -> dict[str, Any]:
        t = torch.tensor(values, dtype=torch.float64)
        return {"mean": t.mean().item(), "std": t.std().item() if len(values) > 1 else float("nan"),
                "n": len(values), "per_frame": []}

    return {"future_coverage": summary(coverage), "future_precision": summary(precision)}
