"""Motion metrics of a stage-2 evaluation that need the clip's truth (issue 11).

Two ways to ask a cVAE about motion, and which metric uses which:

* PRIOR samples (z ~ p(z), only the first frame given): what the model generates. A single
  first frame does not determine the future, so a sample's flow is not expected to equal the
  clip's; ``epe``, ``epe_best_of_n`` and ``epe_textured`` score the samples (mean-of-N, or the
  best of N), the multi-future scores (:mod:`seg2vid.evaluation.multifuture`) ask whether the samples cover
  the true futures.
* the POSTERIOR reconstruction (z = the mean of q(z | true clip), deterministic): whether the
  model can represent and decode THIS clip's motion -- the question the flow and masks must
  answer before diversity means anything. ``speed_correlation``, ``epe_posterior``,
  ``epe_posterior_textured``, ``occlusion_iou_fwd/bwd`` and ``occlusion_iou_*_fbcheck`` use it.

Definitions:

* textured pixel: the grey (mean RGB) image's gradient magnitude by central differences exceeds
  :data:`TEXTURE_THRESHOLD` = 0.03 (the definition of ``seg2vid.data.stats``), measured on the
  TRUE frame t on whose grid ``flow_fwd[t]`` lives, and only pixels visible in frame 0 count;
* a clip's speed: the mean forward-flow magnitude over frames 1..T and all pixels (px);
  ``speed_correlation`` is Pearson's r between the posterior's and the true speeds over the test
  clips (NaN for a predictor whose speed does not vary);
* occlusion IoU: predicted occluded = mask < 0.5, against the exact occlusion
  (``visible_* == 0``), per frame, forward (frame t's pixels hidden in frame 0) and backward
  (frame 0's pixels hidden in frame t); ``_fbcheck``: the masks replaced by the forward-backward
  check of the same flows.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from seg2vid import metrics
from seg2vid.data.stats import TEXTURE_THRESHOLD, texture_mask
from seg2vid.flow import forward_backward_occlusion

__all__ = [
    "TEXTURE_THRESHOLD", "fb_check_visibility", "posterior_scores", "prior_flow_scores", "speed",
    "speed_correlation", "textured",
]



def fb_check_visibility(flow_fwd: Tensor, flow_bwd: Tensor) -> tuple[Tensor, Tensor]:
    """Visibility of both directions from the forward-backward check of a pair of flows.

    Args:
        flow_fwd: (..., 2, H, W) pixels, frame 0 -> t, on frame t's grid.
        flow_bwd: (..., 2, H, W) pixels, frame t -> 0, on frame 0's grid.
    Returns:
        ``(visible_fwd, visible_bwd)``, each (..., 1, H, W) in {0, 1}: frame t's pixels seen in
        frame 0, and frame 0's pixels still seen in frame t (Sundaram et al.'s tolerances,
        :func:`seg2vid.flow.forward_backward_occlusion`).
    """
    return forward_backward_occlusion(flow_fwd, flow_bwd), forward_backward_occlusion(flow_bwd, flow_fwd)


def textured(frames: Tensor, threshold: float = TEXTURE_THRESHOLD) -> Tensor:
    """(..., 1, H, W) float {0, 1}: pixels of ``frames`` (..., 3, H, W) whose grey gradient
    magnitude exceeds ``threshold`` (:func:`seg2vid.data.stats.texture_mask`, the one definition)."""
    mask = texture_mask(frames.detach().cpu(), threshold)
    return mask.unsqueeze(-3).to(device=frames.device, dtype=frames.dtype)


def speed(flow: Tensor) -> Tensor:
    """(B,) mean flow magnitude (px) of flow sequences (B, T, 2, H, W)."""
    return flow.double().square().sum(2).sqrt().mean(dim=(1, 2, 3))


def speed_correlation(predicted: Tensor, true: Tensor) -> float:
    """Pearson's r between two (clips,) speed vectors; NaN when either does not vary."""
    p, t = predicted.double() - predicted.double().mean(), true.double() - true.double().mean()
    denominator = (p.square().sum() * t.square().sum()).sqrt()
    return (p * t).sum().div(denominator).item() if denominator > 1e-12 else float("nan")


def prior_flow_scores(flows: Tensor, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """Per-frame scores of N prior samples' flows: ``epe_best_of_n``, ``epe_textured``.

    Args:
        flows: (N, B, T, 2, H, W) pixels.
        batch: the truth: ``frames`` (B, T+1, 3, H, W), ``flow_fwd`` (B, T, 2, H, W),
            ``visible_fwd`` (B, T, 1, H, W).
    Returns:
        name -> (B, T) float64.
    """
    true, visible = batch["flow_fwd"], batch["visible_fwd"]
    epe = torch.stack([metrics.frame_end_point_error(f, true, visible) for f in flows])  # (N, B, T)
    best = epe.nanmean(2).nan_to_num(float("inf")).argmin(0)  # the sample with the best frame-mean EPE
    tex = textured(batch["frames"][:, 1:]) * visible
    epe_tex = torch.stack([metrics.frame_end_point_error(f, true, tex) for f in flows]).nanmean(0)
    return {"epe_best_of_n": epe[best, torch.arange(epe.shape[1])], "epe_textured": epe_tex}


def posterior_scores(post: Any, batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor]:
    """Per-frame posterior scores of one batch and the clips' predicted speeds.

    Args:
        post: a ``Prediction`` of the posterior reconstruction (B clips, one each), with
            ``flow_fwd``, ``mask_fwd`` and, for the backward scores, ``flow_bwd``/``mask_bwd``.
        batch: the truth: ``frames``, ``flow_fwd``, ``flow_bwd``, ``visible_fwd``, ``visible_bwd``.
    Returns:
        ``(scores, speeds)``: name -> (B, T) float; (B,) predicted speeds (px).
    """
    true, visible = batch["flow_fwd"], batch["visible_fwd"]
    scores = {
        "epe_posterior": metrics.frame_end_point_error(post.flow_fwd, true, visible),
        "epe_posterior_textured": metrics.frame_end_point_error(
            post.flow_fwd, true, textured(batch["frames"][:, 1:]) * visible),
        "occlusion_iou_fwd": metrics.frame_mask_iou(1 - post.mask_fwd, 1 - visible),
    }
    if post.mask_bwd is not None and "visible_bwd" in batch:
        scores["occlusion_iou_bwd"] = metrics.frame_mask_iou(1 - post.mask_bwd, 1 - batch["visible_bwd"])
    if post.flow_bwd is not None and "visible_bwd" in batch:
        fb_f, fb_b = fb_check_visibility(post.flow_fwd, post.flow_bwd)
        scores["occlusion_iou_fwd_fbcheck"] = metrics.frame_mask_iou(1 - fb_f, 1 - visible)
        scores["occlusion_iou_bwd_fbcheck"] = metrics.frame_mask_iou(1 - fb_b, 1 - batch["visible_bwd"])
    return scores, speed(post.flow_fwd)
