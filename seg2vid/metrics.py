"""Evaluation metrics: flow end-point error and binary-mask precision / recall / IoU.

Flow follows :mod:`seg2vid.flow` (pixels, ``(..., 2, H, W)``). Masks are ``(..., 1, H, W)``
(any shape works for the mask scores) and are read as binary: a pixel is POSITIVE where the mask
is > 0.5. Choose what "positive" means by what you pass: to score an occlusion detector, pass
``1 - visible`` for both prediction and truth, so the rare occluded pixels are the positives
(a visible-pixel IoU is close to 1 for any detector and says little).

Scores pool the pixel counts over everything they are given (micro-averaging): pass a whole
batch or a stack of clips at once, or add up :func:`mask_confusion` counts yourself.
"""

from __future__ import annotations

import torch

__all__ = [
    "end_point_error",
    "mask_confusion",
    "mask_iou",
    "mask_precision",
    "mask_recall",
    "mask_scores",
]


def end_point_error(
    flow_pred: torch.Tensor, flow_true: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean end-point error: the Euclidean distance between flow vectors, in pixels.

    Args:
        flow_pred: (..., 2, H, W) estimated flow in pixels.
        flow_true: (..., 2, H, W) true flow in pixels (same shape).
        mask: (..., 1, H, W) valid pixels (> 0.5), broadcast against the flows; ``None`` = all.
    Returns:
        0-d float tensor: ``mean_p |flow_pred(p) - flow_true(p)|_2`` over the valid pixels, in
        pixels; NaN when no pixel is valid (an average over nothing is undefined).
        Differentiable w.r.t. ``flow_pred`` wherever the two flows differ.
    """
    if flow_pred.shape != flow_true.shape or flow_pred.dim() < 3 or flow_pred.shape[-3] != 2:
        raise ValueError(
            f"flow_pred {tuple(flow_pred.shape)} and flow_true {tuple(flow_true.shape)} must both "
            "be (..., 2, H, W)"
        )
    distance = (flow_pred - flow_true).square().sum(dim=-3, keepdim=True).sqrt()  # (..., 1, H, W)
    if mask is None:
        return distance.mean()
    distance, valid = torch.broadcast_tensors(distance, mask > 0.5)
    return distance[valid].mean()  # mean of an empty tensor is NaN


def mask_confusion(pred: torch.Tensor, true: torch.Tensor) -> dict[str, int]:
    """Pixel counts of a binary prediction against the truth.

    Args:
        pred, true: masks of the same shape (e.g. (..., 1, H, W)); positive where > 0.5.
    Returns:
        ``{"tp": ..., "fp": ..., "fn": ..., "tn": ...}`` as Python ints, pooled over all pixels.
    """
    if pred.shape != true.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and true {tuple(true.shape)} differ in shape")
    p, t = pred > 0.5, true > 0.5
    return {
        "tp": int((p & t).sum()),
        "fp": int((p & ~t).sum()),
        "fn": int((~p & t).sum()),
        "tn": int((~p & ~t).sum()),
    }


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


def mask_precision(pred: torch.Tensor, true: torch.Tensor) -> float:
    """TP / (TP + FP): the share of predicted positives that are right; NaN if none predicted."""
    c = mask_confusion(pred, true)
    return _ratio(c["tp"], c["tp"] + c["fp"])


def mask_recall(pred: torch.Tensor, true: torch.Tensor) -> float:
    """TP / (TP + FN): the share of true positives that were found; NaN if there are none."""
    c = mask_confusion(pred, true)
    return _ratio(c["tp"], c["tp"] + c["fn"])


def mask_iou(pred: torch.Tensor, true: torch.Tensor) -> float:
    """TP / (TP + FP + FN): intersection over union of the positive sets; NaN if both are empty."""
    c = mask_confusion(pred, true)
    return _ratio(c["tp"], c["tp"] + c["fp"] + c["fn"])


def mask_scores(pred: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    """``{"precision", "recall", "iou"}`` of ``pred`` against ``true`` from one confusion count."""
    c = mask_confusion(pred, true)
    return {
        "precision": _ratio(c["tp"], c["tp"] + c["fp"]),
        "recall": _ratio(c["tp"], c["tp"] + c["fn"]),
        "iou": _ratio(c["tp"], c["tp"] + c["fp"] + c["fn"]),
    }
