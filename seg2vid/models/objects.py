"""Per-object motion for stage 2 (``Seg2VidConfig.object_motion="rigid"``, issue 11).

Why: the decoder predicts dense flows at half resolution, smooth across object boundaries, so a
car does not move as one piece and nothing says where it IS in frame t. Forward (disocclusion)
masks need exactly that: a pixel of frame t is revealed when it is background at t while its
source in frame 0 lay under a foreground object. ``motion_probe.py --geometry`` measured it: with
the TRUE foreground map of frame t, the shipped model's own flows would place the revealed pixels
at IoU 0.37; without that map no head got past 0.27.

What this module does, all from the first label map (no extra network, no extra weights):

1. :func:`label_segments` splits the foreground of the label map into objects: its 8-connected
   components, the largest ``max_objects`` of at least ``min_pixels``
   pixels.
2. :func:`rigid_fit` fits one motion per object and frame to the decoder's dense backward flow
   over the object's pixels: a displacement ``d`` (pixels) and a scale change ``s`` about the
   object's centroid ``c`` (least squares), so frame 0's point ``p`` of the object is at
   ``c + d + (1 + s) (p - c)`` in frame t. The photometric terms reach the dense flow through the
   fit, so the decoder learns flows whose fit moves each object right.
3. :func:`compose_object_motion` replaces the dense flows on the objects by the rigid ones: the
   backward flow on each object's frame-0 pixels, the forward flow where the object lands in
   frame t (its frame-0 mask sampled through the inverse motion; nearer objects, whose bottom is
   lower in the image, over farther ones), and multiplies the forward mask by the geometric
   visibility: a frame-t pixel that no object covers, whose source ``p - flow_fwd`` lies on the
   first frame's foreground or outside the frame, is marked occluded (no gradient through this
   part: a mask price must not move the flows).

Conventions as everywhere (:mod:`seg2vid.flow`): flows in pixels, ``flow_fwd`` (B, T, 2, H, W) on
frame t's grid (frame t's pixel p shows frame 0 at ``p - flow_fwd``), ``flow_bwd`` on frame 0's grid
(frame 0's pixel p is at ``p - flow_bwd`` in frame t); channel 0 is x (columns), 1 is y (rows).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from seg2vid.flow import ALIGN_CORNERS, warp

__all__ = ["ObjectMotionHead", "compose_object_motion", "label_segments", "rigid_fit"]

#: The scale change per frame is kept in [-0.5, 1.0] (an object at most halves or doubles).
SCALE_RANGE = (-0.5, 1.0)


@torch.no_grad()
def label_segments(foreground: Tensor, max_objects: int = 16, min_pixels: int = 4) -> Tensor:
    """Objects of a label map: the 8-connected components of each foreground class.

    Two touching objects of the same class (two parked cars) are one object; a person in front
    of a car is another object than the car.

    Args:
        foreground: (B, C, H, W) the one-hot channels of the C foreground classes (values 0 / 1;
            a pixel is in at most one of them).
        max_objects: K, the most objects kept per image (the largest).
        min_pixels: smaller components are left to the dense flow.
    Returns:
        (B, K, H, W) float masks, 1 on object k's pixels, K the most objects any image of the
        batch has (at least 1, at most ``max_objects``); images with fewer objects have all-zero
        masks in the remaining slots. Objects are ordered by size, largest first.
    """
    if foreground.dim() != 4:
        raise ValueError(f"foreground must be (B, C, H, W) one-hot channels, got {tuple(foreground.shape)}")
    b, _, h, w = foreground.shape
    member = foreground > 0.5
    if not member.any():
        return foreground.new_zeros(b, 1, h, w)
    present = member.flatten(2).any(2).any(0)  # only the classes some image has (cheaper)
    keep = member[:, present].float()  # (B, C', H, W)
    # Each foreground pixel starts with its own id (flat index + 1) and takes the largest id of its
    # same-class 3x3 neighbours until nothing changes: every component ends with one id.
    ids = torch.arange(1, h * w + 1, device=foreground.device, dtype=torch.float32).view(1, 1, h, w) * keep
    for step in range(h * w):
        grown = F.max_pool2d(ids, 3, stride=1, padding=1) * keep
        if step % 4 == 3 and torch.equal(grown, ids):
            break
        ids = grown
    ids = ids.amax(1)  # the classes are disjoint
    chosen = []
    for i in range(b):
        values, counts = torch.unique(ids[i], return_counts=True)
        counts = torch.where(values > 0, counts, torch.zeros_like(counts))
        order = torch.argsort(counts, descending=True, stable=True)
        chosen.append(values[order][counts[order] >= min_pixels][:max_objects])
    masks = foreground.new_zeros(b, max(1, max(c.numel() for c in chosen)), h, w)
    for i, values in enumerate(chosen):
        if values.numel():
            masks[i, : values.numel()] = (ids[i][None] == values[:, None, None]).float()
    return masks


def _pixel_grid(h: int, w: int, like: Tensor) -> Tensor:
    """(2, H, W) pixel centres: channel 0 = x (column), 1 = y (row)."""
    ys, xs = torch.meshgrid(torch.arange(h, device=like.device, dtype=like.dtype),
                            torch.arange(w, device=like.device, dtype=like.dtype), indexing="ij")
    return torch.stack([xs, ys])


def rigid_fit(masks: Tensor, flow_bwd: Tensor, damping: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
    """Least-squares displacement + scale of each object, from the dense backward flow.

    The displacement of frame 0's pixel p is ``u(p) = -flow_bwd(p)``; over object k it is modelled
    as ``d + s (p - c)`` with c the object's centroid: ``d`` = the mean of u over the object and
    ``s = sum (p - c).(u - d) / (sum |p - c|^2 + damping * area)`` (the damping pulls the scale
    of small objects towards 0, where it is poorly determined), clamped to :data:`SCALE_RANGE`.

    Args:
        masks: (B, K, H, W) object masks of frame 0 (:func:`label_segments`).
        flow_bwd: (B, T, 2, H, W) pixels, on frame 0's grid.
        damping: pixels^2 per object pixel added to the scale's denominator.
    Returns:
        ``(d, s, c)``: d (B, T, K, 2) pixels (x, y), s (B, T, K) unitless, c (B, K, 2) pixels;
        empty slots get d = 0, s = 0 and c = 0.
    """
    h, w = masks.shape[-2:]
    grid = _pixel_grid(h, w, flow_bwd)  # (2, H, W)
    area = masks.sum((2, 3))  # (B, K)
    safe = area.clamp(min=1.0)
    c = torch.einsum("bkhw,chw->bkc", masks, grid) / safe[..., None]  # (B, K, 2)
    u = -flow_bwd
    d = torch.einsum("bkhw,btchw->btkc", masks, u) / safe[:, None, :, None]  # (B, T, K, 2)
    rel = grid[None, None] - c[..., None, None]  # (B, K, 2, H, W)
    spread = (masks * (rel**2).sum(2)).sum((2, 3))  # (B, K)
    # sum (p - c).(u - d) = sum (p - c).u, since the (p - c) sum to zero over the object
    moment = torch.einsum("bkhw,bkchw,btchw->btk", masks, rel, u)
    s = (moment / (spread + damping * area).clamp(min=1e-6)[:, None]).clamp(*SCALE_RANGE)
    return d, s, c


class ObjectMotionHead(nn.Module):
    """A correction of each object's rigid motion, read from the decoder (``object_head=True``).

    Per object and frame: the decoder's frame features averaged over the object's pixels, z, and
    the object's place and size (centroid x, y in [-1, 1], sqrt of its area share) -> an MLP ->
    (dx, dy) in pixels and a scale change, ADDED to the least-squares fit of :func:`rigid_fit`.
    The last layer starts at zero (no correction). It gives each object's displacement a direct
    path from z, which the dense decoder, smooth across objects, lacks.

    Args:
        channels: C, the decoder's feature channels; latent: the size of z; scale: pixels per unit
            of output (the flow heads' ``pixels_per_unit``).
    """

    def __init__(self, channels: int, latent: int, scale: float, hidden: int = 64):
        super().__init__()
        self.scale = scale
        self.net = nn.Sequential(
            nn.Linear(channels + latent + 3, hidden), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2, inplace=True), nn.Linear(hidden, 3))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, features: Tensor, masks: Tensor, z: Tensor) -> Tensor:
        """features (B * T, C, h, w), frame-major per clip; masks (B, K, H, W); z (B, Z) ->
        (B, T, K, 3): (dx, dy) pixels and the scale change."""
        b, k, h_full, w_full = masks.shape
        bt, c, h, w = features.shape
        t = bt // b
        pooled = F.adaptive_avg_pool2d(masks, (h, w)).flatten(2)  # (B, K, h*w)
        share = pooled.sum(2).clamp(min=1e-6)
        feats = torch.einsum("bkn,btcn->btkc", pooled, features.reshape(b, t, c, h * w))
        feats = feats / share[:, None, :, None]
        grid = _pixel_grid(h_full, w_full, masks)
        area = masks.sum((2, 3))
        centroid = torch.einsum("bkhw,chw->bkc", masks, grid) / area.clamp(min=1)[..., None]
        place = torch.stack([2 * centroid[..., 0] / max(w_full - 1, 1) - 1,
                             2 * centroid[..., 1] / max(h_full - 1, 1) - 1,
                             (area / (h_full * w_full)).sqrt()], -1)  # (B, K, 3)
        x = torch.cat([feats, z[:, None, None].expand(b, t, k, -1), place[:, None].expand(b, t, k, 3)], -1)
        out = self.net(x)
        return torch.cat([out[..., :2] * self.scale, 0.1 * out[..., 2:]], -1)


def compose_object_motion(masks: Tensor, flow_fwd: Tensor, flow_bwd: Tensor, mask_fwd: Tensor,
                          foreground: Tensor, correction: Tensor | None = None
                          ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Move every object as a whole and mark what its motion reveals (see the module docstring).

    Args:
        masks: (B, K, H, W) frame-0 object masks (:func:`label_segments`).
        flow_fwd, flow_bwd: (B, T, 2, H, W) the decoder's dense flows, pixels.
        mask_fwd: (B, T, 1, H, W) the decoder's forward visibility in (0, 1).
        foreground: (B, 1, H, W) the first frame's whole foreground (1 = any foreground class,
            objects too small to be kept included).
        correction: (B, T, K, 3) optional (dx, dy, ds) added to the fitted displacement and scale
            (:class:`ObjectMotionHead`).
    Returns:
        ``(flow_fwd, flow_bwd, mask_fwd, shift)``: the first three of the same shapes (the rigid
        object flows composited over the dense ones, and the forward mask times the geometric
        visibility, detached); ``shift`` (B, T, K, 2) pixels, each object's displacement ``d``
        (frame 0 -> t, x then y; 0 in empty slots).
    """
    b, t, _, h, w = flow_fwd.shape
    k = masks.shape[1]
    d, s, c = rigid_fit(masks, flow_bwd)
    if correction is not None:
        d = d + correction[..., :2]
        s = (s + correction[..., 2]).clamp(*SCALE_RANGE)
    grid = _pixel_grid(h, w, flow_fwd)  # (2, H, W)
    # Frame 0: on object k, the displacement d + s (p - c), i.e. flow_bwd = -(that).
    rel = grid[None, None] - c[..., None, None]  # (B, K, 2, H, W)
    disp0 = d[..., None, None] + s[..., None, None, None] * rel[:, None]  # (B, T, K, 2, H, W)
    on_object = masks.sum(1, keepdim=True)[:, None]  # (B, 1, 1, H, W): objects are disjoint in frame 0
    flow_bwd = flow_bwd * (1 - on_object) + torch.einsum("bkhw,btkchw->btchw", masks, -disp0)
    # Frame t: p shows object k's frame-0 point q = c + (p - c - d) / (1 + s), if q is on it.
    q = c[:, None, :, :, None, None] + (grid - c[:, None, :, :, None, None] - d[..., None, None]) / (
        1 + s[..., None, None, None])  # (B, T, K, 2, H, W)
    norm = torch.tensor([2.0 / w, 2.0 / h], device=q.device, dtype=q.dtype).view(2, 1, 1)
    sample_at = ((q + 0.5) * norm - 1).permute(0, 1, 2, 4, 5, 3).reshape(b * t * k, h, w, 2)
    cover = F.grid_sample(masks[:, None].expand(b, t, k, h, w).reshape(b * t * k, 1, h, w), sample_at,
                          mode="bilinear", padding_mode="zeros", align_corners=ALIGN_CORNERS)
    cover = cover.view(b, t, k, 1, h, w)
    object_flow = grid - q  # (B, T, K, 2, H, W)
    # Nearer objects (bottom row lower in the image) are composited last, over farther ones.
    rows = torch.arange(h, device=masks.device, dtype=masks.dtype).view(1, 1, h, 1)
    bottom = torch.where(masks > 0, rows, torch.full_like(masks, -1.0)).amax((2, 3))  # (B, K)
    order = torch.argsort(bottom, dim=1)  # far (small bottom) first
    covered = flow_fwd.new_zeros(b, t, 1, h, w)
    for j in range(k):
        idx = order[:, j]
        alpha = cover[torch.arange(b), :, idx]  # (B, T, 1, H, W)
        flow_fwd = alpha * object_flow[torch.arange(b), :, idx] + (1 - alpha) * flow_fwd
        covered = alpha + (1 - alpha) * covered
    with torch.no_grad():
        # A pixel no object covers shows the background; it is revealed when its source in frame 0
        # was under the foreground, or outside the frame.
        source_fg = warp(foreground[:, None].expand(b, t, 1, h, w), flow_fwd)
        src = grid - flow_fwd
        inside = ((src[:, :, 0:1] >= -0.5) & (src[:, :, 0:1] <= w - 0.5)
                  & (src[:, :, 1:2] >= -0.5) & (src[:, :, 1:2] <= h - 0.5)).to(flow_fwd.dtype)
        visible = covered + (1 - covered) * (1 - source_fg).clamp(0, 1) * inside
    return flow_fwd, flow_bwd, mask_fwd * visible, d
