"""Losses for learning flow WITHOUT flow labels: photometric, 3x3 SSIM, smoothness, consistency.

The paper trains its flow decoder only through these terms (see the losses table of the method
notes): a predicted flow is good when warping the first frame with it rebuilds the true frame
(photometric L1 and SSIM), when it is smooth except at image edges (edge-aware smoothness), and
when the forward and backward flows undo each other where the content is visible
(forward-backward consistency). Flow follows :mod:`seg2vid.flow`: pixels, ``(..., 2, H, W)``,
channel 0 = x (right), channel 1 = y (down), backward warping ``out(p) = image(p - flow(p))``.

Every loss builds a per-pixel map ``(..., 1, H, W)`` and reduces it explicitly:

* ``reduction="mean"``: the mean over the valid pixels (mask > 0, weighted by the mask) of the
  whole input, a 0-d tensor. An EMPTY mask (no valid pixel) gives ``0`` (not NaN), still attached
  to the graph, so a batch where everything is occluded contributes nothing instead of breaking
  training;
* ``reduction="sum"``: the sum of ``map * mask``, a 0-d tensor;
* ``reduction="none"``: ``map * mask`` itself, ``(..., 1, H, W)``.

Masks are float ``(..., 1, H, W)`` in [0, 1] (1 = the pixel counts) that broadcast against the
map; ``None`` means every pixel counts.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from seg2vid.flow import warp

__all__ = [
    "Reduction",
    "forward_backward_consistency_loss",
    "masked_mean",
    "photometric_l1",
    "smoothness_loss",
    "ssim_3x3",
    "ssim_photometric",
]

Reduction = Literal["mean", "sum", "none"]

#: SSIM's stabilising constants for images in [0, 1]: (0.01 * 1)^2 and (0.03 * 1)^2 (Wang et al. 2004).
SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``values`` over the pixels where ``mask`` is non-zero, weighted by the mask.

    Args:
        values: (..., C, H, W) any float tensor (usually a per-pixel loss map).
        mask: float weights in [0, 1] that broadcast against ``values`` (e.g. (..., 1, H, W)),
            or ``None`` for a plain mean.
    Returns:
        0-d tensor ``sum(values * mask) / sum(mask)`` (the mask counted once per channel of
        ``values``). When the mask is all zeros the result is exactly ``0``, not NaN, and its
        gradient is zero.
    """
    if mask is None:
        return values.mean()
    values, mask = torch.broadcast_tensors(values, mask.to(values.dtype))
    weight = mask.sum()
    total = (values * mask).sum()
    # An empty mask: 0/0. Return a zero that is still part of the graph (backward() works).
    return torch.where(weight > 0, total / weight.clamp_min(torch.finfo(values.dtype).tiny), total * 0)


def _reduce(loss_map: torch.Tensor, mask: torch.Tensor | None, reduction: Reduction) -> torch.Tensor:
    if reduction == "mean":
        return masked_mean(loss_map, mask)
    gated = loss_map if mask is None else loss_map * mask.to(loss_map.dtype)
    if reduction == "sum":
        return gated.sum()
    if reduction == "none":
        return gated
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.dim() < 3 or pred.shape[-3:] != target.shape[-3:]:
        raise ValueError(
            f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must both be (..., C, H, W) "
            "with the same C, H, W"
        )


# ----------------------------------------------------------------------------- photometric


def photometric_l1(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Masked L1 photometric error: the mean over channels of ``|pred - target|`` per pixel.

    Args:
        pred: (..., C, H, W) e.g. the first frame warped to frame t, values in [0, 1].
        target: (..., C, H, W) the true frame t (leading dims broadcast against ``pred``'s).
        mask: (..., 1, H, W) in [0, 1]: pixels that count (visible, in frame), or ``None``.
        reduction: ``"mean"`` over valid pixels (empty mask -> 0), ``"sum"``, or ``"none"``.
    Returns:
        0-d tensor (mean/sum, in intensity units) or the gated map (..., 1, H, W).
    """
    _check_pair(pred, target)
    loss_map = (pred - target).abs().mean(dim=-3, keepdim=True)
    return _reduce(loss_map, mask, reduction)


def _box_sum_3x3(z: torch.Tensor) -> torch.Tensor:
    """(..., H + 2, W + 2) -> (..., H, W): the sum over each 3x3 window, taken tap by tap in
    avg_pool2d's order (row by row), so that ``/ 9`` gives its exact float result."""
    h, w = z.shape[-2] - 2, z.shape[-1] - 2
    total = z[..., 0:h, 0:w].clone()
    for i in range(3):
        for j in range(3):
            if i or j:
                total += z[..., i:i + h, j:j + w]
    return total


class _BoxMean3x3(torch.autograd.Function):
    """3x3 mean over a padded map, stride 1, no padding of its own: (..., H+2, W+2) -> (..., H, W).

    Forward: the same numbers as ``F.avg_pool2d(z, 3, stride=1)``. Backward: the adjoint, the
    3x3 box mean of the zero-padded gradient, in one pass (autograd through nine slices would
    allocate and scatter nine full-size gradients).
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:
        return _box_sum_3x3(z) / 9

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _box_sum_3x3(F.pad(grad, (2, 2, 2, 2))) / 9


def ssim_3x3(x: torch.Tensor, y: torch.Tensor, c1: float = SSIM_C1, c2: float = SSIM_C2) -> torch.Tensor:
    """Per-pixel structural similarity over 3x3 windows (the cheap SSIM of photometric losses).

    NOT the evaluation metric: :func:`seg2vid.metrics.ssim` is Wang et al.'s 11-tap Gaussian SSIM,
    one number per frame; this is a per-pixel map for a training loss.

    Local means, variances and the covariance come from 3x3 box means (stride 1) of
    the reflection-padded images, instead of the 11x11 Gaussian of Wang et al. (2004): a
    small window keeps the loss local, which is what a flow needs. For each pixel and channel

        SSIM = (2 mu_x mu_y + c1)(2 sigma_xy + c2) / ((mu_x^2 + mu_y^2 + c1)(sigma_x^2 + sigma_y^2 + c2)).

    Args:
        x, y: (..., C, H, W) images in [0, 1] (same C, H, W; leading dims broadcast), H, W >= 2.
        c1, c2: stabilisers for a dynamic range of 1.
    Returns:
        (..., C, H, W) SSIM in [-1, 1]; 1 where the windows are identical.
    """
    _check_pair(x, y)
    lead = torch.broadcast_shapes(x.shape[:-3], y.shape[:-3])
    c, h, w = x.shape[-3:]
    x4 = x.expand(*lead, c, h, w).reshape(-1, c, h, w)
    y4 = y.expand(*lead, c, h, w).reshape(-1, c, h, w)

    # The five local means in ONE pass: the maps stacked along the channels, reflection-padded
    # once, then a 3x3 box mean (bit-identical to F.avg_pool2d(kernel_size=3, stride=1), whose CPU
    # kernel was ~12% of a training step, issue 15; see _BoxMean3x3).
    stacked = F.pad(torch.cat([x4, y4, x4 * x4, y4 * y4, x4 * y4], dim=1), (1, 1, 1, 1), mode="reflect")
    means = _BoxMean3x3.apply(stacked)
    mu_x, mu_y, mean_xx, mean_yy, mean_xy = means.split(c, dim=1)
    sigma_x = mean_xx - mu_x * mu_x
    sigma_y = mean_yy - mu_y * mu_y
    sigma_xy = mean_xy - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (sigma_x + sigma_y + c2)
    return (numerator / denominator).reshape(*lead, c, h, w)


def ssim_photometric(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    alpha: float = 0.85,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """The method's SSIM term: ``alpha * (1 - SSIM) / 2 + (1 - alpha) * L1`` per pixel (:func:`ssim_3x3`).

    ``(1 - SSIM) / 2`` is clamped to [0, 1] and, like the L1 term, averaged over channels.
    SSIM compares local structure (means, contrasts, correlation), so it tolerates the
    brightness changes that L1 punishes; the L1 part keeps colours right.

    Args:
        pred: (..., C, H, W) prediction in [0, 1].
        target: (..., C, H, W) truth in [0, 1].
        mask: (..., 1, H, W) in [0, 1] or ``None``.
        alpha: weight of the SSIM part (0.85 in the method).
        reduction: ``"mean"`` over valid pixels (empty mask -> 0), ``"sum"``, or ``"none"``.
    Returns:
        0-d tensor (mean/sum, dimensionless) or the gated map (..., 1, H, W); 0 when equal.
    """
    _check_pair(pred, target)
    dissimilarity = ((1 - ssim_3x3(pred, target)) / 2).clamp(0, 1)
    loss_map = alpha * dissimilarity + (1 - alpha) * (pred - target).abs()
    return _reduce(loss_map.mean(dim=-3, keepdim=True), mask, reduction)


# ----------------------------------------------------------------------------- flow regularisers


def smoothness_loss(
    flow_px: torch.Tensor,
    image: torch.Tensor,
    edge_scale: float = 10.0,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Edge-aware first-order smoothness of a flow field (or a whole sequence of them).

    Neighbouring flow vectors should agree, except across image edges, where objects and so
    their motions meet. With forward differences ``dx`` (along x) and ``dy`` (along y), per pixel

        |dx f| * exp(-edge_scale * mean_c |dx I|) + |dy f| * exp(-edge_scale * mean_c |dy I|),

    averaged over the two flow channels. The differences live between pixels; the map puts
    each at its left/top pixel and 0 on the last column/row.

    Args:
        flow_px: (..., 2, H, W) flow in pixels, e.g. (B, 2, H, W) or a sequence (B, T, 2, H, W).
        image: (..., C, H, W) the image on the flow's grid whose edges may break the
            smoothness, values in [0, 1]; leading dims broadcast, so (B, 1, C, H, W) serves
            every frame of a sequence and (B, T, C, H, W) gives each frame its own edges.
        edge_scale: how strongly edges switch the penalty off (per unit of intensity
            difference; 0 gives plain, edge-blind smoothness).
        reduction: ``"mean"`` over all differences, ``"sum"``, or ``"none"`` for the map
            (..., 1, H, W).
    Returns:
        0-d tensor (pixels of flow per pixel), or the map. A constant flow gives exactly 0.
    """
    if flow_px.dim() < 3 or flow_px.shape[-3] != 2:
        raise ValueError(f"flow_px must have shape (..., 2, H, W), got {tuple(flow_px.shape)}")
    if image.dim() < 3 or image.shape[-2:] != flow_px.shape[-2:]:
        raise ValueError(
            f"image {tuple(image.shape)} must be (..., C, H, W) on the flow's grid {tuple(flow_px.shape)}"
        )
    flow_dx = (flow_px[..., :, 1:] - flow_px[..., :, :-1]).abs()  # (..., 2, H, W-1)
    flow_dy = (flow_px[..., 1:, :] - flow_px[..., :-1, :]).abs()  # (..., 2, H-1, W)
    image = image.to(flow_px.dtype)
    weight_x = torch.exp(-edge_scale * (image[..., :, 1:] - image[..., :, :-1]).abs().mean(-3, keepdim=True))
    weight_y = torch.exp(-edge_scale * (image[..., 1:, :] - image[..., :-1, :]).abs().mean(-3, keepdim=True))
    term_x = (flow_dx * weight_x).mean(-3, keepdim=True)  # (..., 1, H, W-1)
    term_y = (flow_dy * weight_y).mean(-3, keepdim=True)  # (..., 1, H-1, W)
    if reduction == "mean":
        return 0.5 * (term_x.mean() + term_y.mean())
    if reduction == "sum":
        return term_x.sum() + term_y.sum()
    if reduction == "none":
        return F.pad(term_x, (0, 1)) + F.pad(term_y, (0, 0, 0, 1))
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def forward_backward_consistency_loss(
    flow_fwd: torch.Tensor,
    flow_bwd: torch.Tensor,
    mask: torch.Tensor | None = None,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Forward-backward consistency: ``|f + warp(b, f)|_1`` per pixel, gated by a mask.

    A pixel ``p`` of frame t came from ``q = p - f(p)`` in frame 0, and the backward flow must
    send it back, ``b(q) = -f(p)`` (see :func:`seg2vid.flow.forward_backward_occlusion`). The
    residual is only meaningful where ``p`` was visible in frame 0, so gate it with a
    visibility mask: the predicted one, the forward-backward check's, or the exact one.

    Args:
        flow_fwd: (..., 2, H, W) pixels, frame 0 -> t, on frame t's grid.
        flow_bwd: (..., 2, H, W) pixels, frame t -> 0, on frame 0's grid.
        mask: (..., 1, H, W) in [0, 1] on frame t's grid (1 = visible), or ``None``.
        reduction: ``"mean"`` over valid pixels (empty mask -> 0), ``"sum"``, or ``"none"``.
    Returns:
        0-d tensor in pixels (``|r_x| + |r_y|``; L1, whose gradient stays finite at a zero
        residual, unlike the Euclidean norm's), or the gated map (..., 1, H, W).
        Differentiable w.r.t. both flows.
    """
    if flow_fwd.shape != flow_bwd.shape or flow_fwd.dim() < 3 or flow_fwd.shape[-3] != 2:
        raise ValueError(
            f"flow_fwd {tuple(flow_fwd.shape)} and flow_bwd {tuple(flow_bwd.shape)} must both be "
            "(..., 2, H, W)"
        )
    residual = flow_fwd + warp(flow_bwd, flow_fwd, padding_mode="border")
    return _reduce(residual.abs().sum(dim=-3, keepdim=True), mask, reduction)
