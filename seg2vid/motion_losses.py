"""Extra stage-2 loss terms for learning motion and occlusion without flow labels (issue 11).

The authors' objective (:mod:`seg2vid.training.objective`, :mod:`seg2vid.losses`) compares warped and true
frames with a plain L1 at full resolution. On weakly textured frames that gives the flow almost
no gradient: a bilinear warp only "sees" intensity differences within one pixel of the sampled
position, and on a flat surface there is none. This module holds the options that
:class:`seg2vid.training.objective.LossConfig` can switch on, each a known remedy from the unsupervised
optical-flow literature (facts from UnFlow, Meister et al. AAAI 2018; DDFlow/SelFlow, Liu et al.;
Stone et al. "SMURF", CVPR 2021; code written here):

* :func:`census_loss` -- a soft ternary census transform compared between the warped and the
  true frame: invariant to brightness changes, and every pixel that differs from its neighbours
  (any texture at all) contributes as much as a strong edge does.
* :func:`multiscale_warp_error` -- the same photometric error at 1/2, 1/4 ... resolution, where
  one pixel of displacement is 2, 4 ... pixels of the full frame: a wider basin of attraction.
* :func:`second_order_smoothness` -- penalises the flow's CURVATURE, not its slope, so the
  perspective flow of a road or a facade (close to affine) costs nothing, while flow is still
  propagated into flat regions from their textured borders.
* :func:`match_objects` and :func:`object_match_loss` -- block matching of each object of the
  label map (``Seg2VidConfig.object_motion="rigid"``): the displacement that best maps the
  object's pixels of frame 0 onto frame t (squared error, every shift at once by FFT, tracked
  from frame to frame, sub-pixel by a parabola), a target for the object's rigid displacement
  far beyond the reach of a photometric gradient (a car crossing the view moves 5-15 pixels
  per frame at 64 px). The frames alone give it, no flow label: the classical matching that
  self-supervised flow methods start from.
* :func:`flow_supervision` and :func:`visibility_supervision` -- the ORACLE terms: L1 to the exact
  flow and a cross-entropy to the exact visibility. They exist to give the tables an upper bound
  and are never part of a default recipe.

Conventions: flows in pixels, ``(..., 2, H, W)``, backward warping (:func:`seg2vid.flow.warp`);
images ``(..., C, H, W)`` in [0, 1]; masks ``(..., 1, H, W)`` in [0, 1] (1 = visible).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from seg2vid.flow import warp
from seg2vid.models.objects import match_objects

__all__ = [
    "census_loss",
    "census_transform",
    "flow_supervision",
    "match_objects",
    "multiscale_warp_error",
    "object_match_loss",
    "second_order_smoothness",
    "visibility_supervision",
]


def _grey(image: Tensor) -> Tensor:
    """(..., C, H, W) -> (..., 1, H, W): the mean over channels (in [0, 1])."""
    return image.mean(dim=-3, keepdim=True)


def census_transform(image: Tensor, radius: int = 3) -> Tensor:
    """Soft ternary census transform of an image (Zabih & Woodfill 1994; soft form as in UnFlow).

    For every neighbour q in the (2r+1)^2 window around p, ``d = I(q) - I(p)`` (grey levels) is
    mapped to ``d / sqrt(0.81 + d^2)``, a smooth sign in (-1, 1): the transform records which
    neighbours are brighter or darker, nearly regardless of by how much, so a weak texture
    counts as much as a strong one and a global brightness change does not count at all.

    Args:
        image: (..., C, H, W) in [0, 1].
        radius: window radius r in pixels (3: a 7x7 window).
    Returns:
        (..., (2r+1)^2, H, W); borders use replicated pixels.
    """
    if radius < 1:
        raise ValueError(f"census radius must be >= 1, got {radius}")
    grey = _grey(image)
    lead, (h, w) = grey.shape[:-3], grey.shape[-2:]
    flat = grey.reshape(-1, 1, h, w)
    k = 2 * radius + 1
    padded = F.pad(flat, (radius,) * 4, mode="replicate")
    patches = F.unfold(padded, k).view(flat.shape[0], k * k, h, w)  # neighbours of every pixel
    diff = patches - flat
    soft = diff / torch.sqrt(0.81 + diff.square())
    return soft.view(*lead, k * k, h, w)


def census_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None, radius: int = 3) -> Tensor:
    """Per-pixel soft Hamming distance between the census transforms of two images.

    ``mean_q (t1 - t2)^2 / (0.1 + (t1 - t2)^2)`` over the window's neighbours q, in [0, 1):
    0 exactly where both images have the same local pattern (e.g. ``pred`` is ``target``
    shifted by the true flow, away from the borders).

    Args:
        pred: (..., C, H, W) e.g. the first frame warped to frame t, in [0, 1].
        target: (..., C, H, W) the true frame.
        mask: (..., 1, H, W) multiplied into the map (None = every pixel).
        radius: census window radius (pixels).
    Returns:
        the gated map (..., 1, H, W) (reduce it as the caller's gating rule says).
    """
    if pred.shape[-3:] != target.shape[-3:]:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in (C, H, W)")
    d = (census_transform(pred, radius) - census_transform(target, radius)).square()
    loss_map = (d / (0.1 + d)).mean(dim=-3, keepdim=True)
    return loss_map if mask is None else loss_map * mask


def _photometric_map(pred: Tensor, target: Tensor, kind: str, radius: int) -> Tensor:
    """(..., 1, H, W) per-pixel error of ``kind``: "l1", "census" or "l1+census" (their sum)."""
    if kind == "l1":
        return (pred - target).abs().mean(dim=-3, keepdim=True)
    if kind == "census":
        return census_loss(pred, target, radius=radius)
    if kind == "l1+census":
        return (pred - target).abs().mean(dim=-3, keepdim=True) + census_loss(pred, target, radius=radius)
    raise ValueError(f"photometric must be 'l1', 'census' or 'l1+census', got {kind!r}")


def _pool(x: Tensor, factor: int) -> Tensor:
    """Average-pool the last two dims of (..., C, H, W) by ``factor``."""
    lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
    return F.avg_pool2d(x.reshape(-1, c, h, w), factor).view(*lead, c, h // factor, w // factor)


def multiscale_warp_error(
    source: Tensor,
    flow: Tensor,
    target: Tensor,
    mask: Tensor | None = None,
    scales: int = 1,
    kind: str = "l1",
    radius: int = 3,
) -> Tensor:
    """Photometric error of ``warp(source, flow)`` against ``target``, averaged over scales.

    Scale s (s = 0 .. scales-1) average-pools the source, the target, the mask and the flow by
    2^s (the flow's values divided by 2^s, so it stays in pixels of that scale), warps there and
    takes the per-pixel error of ``kind``. On a coarse scale a smooth surface still has
    intensity differences within one (coarse) pixel, so a flow that is several full-resolution
    pixels off still gets a gradient; the full-resolution scale keeps the detail.

    Args:
        source: (..., C, H, W) the image to warp (broadcast against the flow's leading dims,
            e.g. (B, 1, 3, H, W) for T flows (B, T, 2, H, W)).
        flow: (..., 2, H, W) pixels, on the target's grid.
        target: (..., C, H, W) what the warp should rebuild.
        mask: (..., 1, H, W) in [0, 1] multiplied into each scale's map, or None.
        scales: number of scales (1 = full resolution only, the authors' term when kind="l1").
        kind: "l1", "census" or "l1+census".
        radius: census window radius (pixels at every scale).
    Returns:
        0-d tensor: per scale the MEAN over all pixels of ``mask * error`` (the authors' gating,
        nothing renormalised), averaged over the scales.
    """
    if scales < 1:
        raise ValueError(f"scales must be >= 1, got {scales}")
    h, w = flow.shape[-2:]
    if h % 2 ** (scales - 1) or w % 2 ** (scales - 1):
        raise ValueError(f"{h}x{w} frames cannot be halved {scales - 1} times")
    total = flow.new_zeros(())
    for s in range(scales):
        f = 2**s
        src, tgt, flo = (
            (source, target, flow) if f == 1 else (_pool(source, f), _pool(target, f), _pool(flow, f) / f))
        error = _photometric_map(warp(src, flo), tgt, kind, radius)
        if mask is not None:
            error = error * (mask if f == 1 else _pool(mask, f))
        total = total + error.mean()
    return total / scales


def second_order_smoothness(flow: Tensor, image: Tensor, edge_scale: float = 10.0) -> Tensor:
    """Edge-aware SECOND-order smoothness: ``|f(x-1) - 2 f(x) + f(x+1)|`` along x and y.

    Zero for any affine flow (a pan, a zoom, the flow of a plane seen by a moving camera is
    close to one), so unlike the first-order term it does not pull a correct perspective flow
    towards a constant; across an image edge (a possible motion boundary) the penalty is
    weighted down by ``exp(-edge_scale * mean_c |dI|)``, the larger of the two differences
    around the pixel.

    Args:
        flow: (..., 2, H, W) pixels.
        image: (..., C, H, W) the image on the flow's grid, in [0, 1] (leading dims broadcast).
        edge_scale: edge sensitivity (0 = edge-blind).
    Returns:
        0-d tensor: the mean over pixels and both directions (pixels of flow per pixel^2).
    """
    if flow.dim() < 3 or flow.shape[-3] != 2 or image.shape[-2:] != flow.shape[-2:]:
        raise ValueError(
            f"flow {tuple(flow.shape)} must be (..., 2, H, W) on the image's grid {tuple(image.shape)}")
    image = image.to(flow.dtype)
    ddx = (flow[..., :, :-2] - 2 * flow[..., :, 1:-1] + flow[..., :, 2:]).abs().mean(-3, keepdim=True)
    ddy = (flow[..., :-2, :] - 2 * flow[..., 1:-1, :] + flow[..., 2:, :]).abs().mean(-3, keepdim=True)
    gx = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(-3, keepdim=True)
    gy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean(-3, keepdim=True)
    wx = torch.exp(-edge_scale * torch.maximum(gx[..., :, :-1], gx[..., :, 1:]))
    wy = torch.exp(-edge_scale * torch.maximum(gy[..., :-1, :], gy[..., 1:, :]))
    return 0.5 * ((ddx * wx).mean() + (ddy * wy).mean())


def flow_supervision(flow: Tensor, flow_true: Tensor) -> Tensor:
    """ORACLE term: mean L1 (|dx| + |dy|, pixels) between a predicted and the exact flow.

    Args:
        flow, flow_true: (..., 2, H, W) pixels, same shape.
    Returns:
        0-d tensor, 0 exactly for ``flow == flow_true``.
    """
    if flow.shape != flow_true.shape:
        raise ValueError(f"flow {tuple(flow.shape)} and flow_true {tuple(flow_true.shape)} differ in shape")
    return (flow - flow_true).abs().sum(dim=-3).mean()


def visibility_supervision(mask: Tensor, visible: Tensor, balanced: bool = False) -> Tensor:
    """Binary cross-entropy of a predicted visibility mask against a 0/1 target (mean, nats).

    Used by the ORACLE (target: the exact visibility) and by the forward-backward option of
    :class:`seg2vid.training.objective.LossConfig` (target: the check run on the model's own flows).

    Args:
        mask: (..., 1, H, W) in (0, 1).
        visible: (..., 1, H, W) in [0, 1] (no gradient is taken through it).
        balanced: weight the two classes equally: the mean cross-entropy over the occluded pixels
            (target < 0.5) plus the mean over the visible ones, halved (a class with no pixel
            counts 0). Occluded pixels are a few percent of a frame, so the plain mean lets a
            mask that calls everything visible pay almost nothing.
    """
    if mask.shape != visible.shape:
        raise ValueError(f"mask {tuple(mask.shape)} and target {tuple(visible.shape)} differ in shape")
    target = visible.detach().to(mask.dtype)
    per_pixel = F.binary_cross_entropy(mask.clamp(1e-6, 1 - 1e-6), target, reduction="none")
    if not balanced:
        return per_pixel.mean()
    occluded = (target < 0.5).to(mask.dtype)
    hidden = (per_pixel * occluded).sum() / occluded.sum().clamp(min=1)
    seen = (per_pixel * (1 - occluded)).sum() / (1 - occluded).sum().clamp(min=1)
    return 0.5 * (hidden + seen)


def object_match_loss(object_shift: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """Huber distance (1 px) between the model's object displacements and the matched ones.

    Args:
        object_shift: (B, T, K, 2) pixels, the model's (``Seg2VidOutput.object_shift``).
        target, valid: :func:`match_objects`' output (no gradient).
    Returns:
        0-d tensor: the mean over the trusted (frame, object) pairs, in pixels (0 when none is).
    """
    if object_shift.shape != target.shape or valid.shape != target.shape[:-1]:
        raise ValueError(f"object_shift {tuple(object_shift.shape)}, target {tuple(target.shape)} and "
                         f"valid {tuple(valid.shape)} do not match")
    per_pair = F.huber_loss(object_shift, target.detach(), reduction="none", delta=1.0).sum(-1)
    weight = valid.to(per_pair.dtype)
    return (per_pair * weight).sum() / weight.sum().clamp(min=1)
