"""Per-object motion for stage 2 (``Seg2VidConfig.object_motion="rigid"``, issue 11).

Why: the decoder predicts dense flows at half resolution, smooth across object boundaries, so a
car does not move as one piece and nothing says where it IS in frame t. Forward (disocclusion)
masks need exactly that: a pixel of frame t is revealed when it is background at t while its
source in frame 0 lay under a foreground object. ``motion_probe.py --geometry`` measured it: with
the TRUE foreground map of frame t, the shipped model's own flows would place the revealed pixels
at IoU 0.37; without that map no head got past 0.27.

What this module does, from the first label map:

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
4. Optionally (``object_head``, ``object_latent``): :class:`ObjectMotionHead` corrects each
   object's fitted motion from the decoder's features over it, and :class:`ObjectPosterior`
   gives each object its own latent z_k, read at training time from :func:`match_objects` (block
   matching of the object in the true clip). The dense decoder, smooth across objects and fed by
   one global z, learns object motions only slowly (``data/results/motion_experiments.md``).

Conventions as everywhere (:mod:`seg2vid.flow`): flows in pixels, ``flow_fwd`` (B, T, 2, H, W) on
frame t's grid (frame t's pixel p shows frame 0 at ``p - flow_fwd``), ``flow_bwd`` on frame 0's grid
(frame 0's pixel p is at ``p - flow_bwd`` in frame t); channel 0 is x (columns), 1 is y (rows).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from seg2vid.flow import in_frame_mask, pixel_grid, warp

__all__ = ["ObjectMotionHead", "ObjectPosterior", "compose_object_motion", "label_segments", "match_objects",
           "pin_to_matches", "pool_over_objects", "rigid_fit"]

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


def _centroids(masks: Tensor) -> tuple[Tensor, Tensor]:
    """(B, K, H, W) object masks -> centroids (B, K, 2) pixels (x, y; 0 for an empty slot) and
    areas (B, K) pixels."""
    h, w = masks.shape[-2:]
    area = masks.sum((2, 3))
    grid = pixel_grid(h, w, masks.device, masks.dtype)
    return torch.einsum("bkhw,chw->bkc", masks, grid) / area.clamp(min=1.0)[..., None], area


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
    grid = pixel_grid(h, w, flow_bwd.device, flow_bwd.dtype)  # (2, H, W)
    c, area = _centroids(masks)  # (B, K, 2), (B, K)
    u = -flow_bwd
    d = torch.einsum("bkhw,btchw->btkc", masks, u) / area.clamp(min=1.0)[:, None, :, None]  # (B, T, K, 2)
    rel = grid[None, None] - c[..., None, None]  # (B, K, 2, H, W)
    spread = (masks * (rel**2).sum(2)).sum((2, 3))  # (B, K)
    # sum (p - c).(u - d) = sum (p - c).u, since the (p - c) sum to zero over the object
    moment = torch.einsum("bkhw,bkchw,btchw->btk", masks, rel, u)
    s = (moment / (spread + damping * area).clamp(min=1e-6)[:, None]).clamp(*SCALE_RANGE)
    return d, s, c


class ObjectMotionHead(nn.Module):
    """A correction of each object's rigid motion, read from the decoder (``object_head=True``).

    Per object and frame: the decoder's frame features averaged over the object's pixels, z, the
    object's place and size (centroid x, y in [-1, 1], sqrt of its area share), t / T and the
    object's own latent z_k when there is one (:class:`ObjectPosterior`) -> an MLP ->
    (dx, dy) in pixels and a scale change, ADDED to the least-squares fit of :func:`rigid_fit`.
    The last layer starts at zero (no correction). It gives each object's displacement a direct
    path from z, which the dense decoder, smooth across objects, lacks.

    Args:
        channels: C, the decoder's feature channels; latent: the size of z; scale: pixels per unit
            of output (the flow heads' ``pixels_per_unit``).
    """

    def __init__(self, channels: int, latent: int, scale: float, hidden: int = 64, object_latent: int = 0):
        super().__init__()
        self.scale = scale
        self.net = nn.Sequential(
            nn.Linear(channels + latent + object_latent + 4, hidden), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2, inplace=True), nn.Linear(hidden, 3))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, features: Tensor, masks: Tensor, z: Tensor, object_z: Tensor | None = None) -> Tensor:
        """features (B * T, C, h, w), frame-major per clip; masks (B, K, H, W); z (B, Z); object_z
        (B, K, Z_k) each object's own latent (``object_latent > 0``) -> (B, T, K, 3): (dx, dy)
        pixels and the scale change."""
        b, k = masks.shape[:2]
        bt, c, h, w = features.shape
        t = bt // b
        # each frame's features averaged over each object: (B, K, T * C) -> (B, T, K, C)
        feats = pool_over_objects(features.reshape(b, t * c, h, w), masks).view(b, k, t, c).transpose(1, 2)
        when = torch.arange(1, t + 1, device=z.device, dtype=z.dtype).view(1, t, 1, 1) / t  # frame t / T
        parts = [feats, z[:, None, None].expand(b, t, k, -1), object_place(masks)[:, None].expand(b, t, k, 3),
                 when.expand(b, t, k, 1)]
        if object_z is not None:
            parts.append(object_z[:, None].expand(b, t, k, -1))
        x = torch.cat(parts, -1)
        out = self.net(x)
        return torch.cat([out[..., :2] * self.scale, 0.1 * out[..., 2:]], -1)


class ObjectPosterior(nn.Module):
    """q(z_k | clip) of each object's own latent (``object_latent > 0``), from its block matching.

    Per object: the displacements :func:`match_objects` found in the TRUE clip (divided by
    ``scale``, zeroed where not trusted), the trust flags, and the object's place (as in
    :class:`ObjectMotionHead`) -> an MLP -> (mu, logvar) of ``latent`` numbers. The global z of
    the motion encoders pools the whole frame, so it cannot say how each of several objects moves;
    z_k can. At sampling time z_k is drawn fresh per object from the objects' prior
    (:meth:`seg2vid.models.seg2vid.Seg2Vid.object_latent_from_noise`).

    With ``features > 0`` (``object_posterior="full"``) it also reads what the trusted matches
    leave out -- the UNTRUSTED matches' displacements and every match's confidence (the margin
    of :func:`match_objects`), and the motion encoder's features averaged over the object -- through
    an extra linear layer that starts at zero (a warm start from a ``"trusted"`` model begins
    with the same posterior). Most objects' matches are not trusted at t >= 2, and q places those
    objects hardly better than zero motion; measured, 1500 steps with this option did not change
    that (``data/results/motion_experiments.md``).

    Args:
        frames: T; latent: numbers per object; scale: pixels per unit of displacement;
        features: C, the channels of the motion features it pools (0: trusted matches only).
    """

    def __init__(self, frames: int, latent: int, scale: float, hidden: int = 64, features: int = 0):
        super().__init__()
        self.scale = scale
        self.net = nn.Sequential(
            nn.Linear(3 * frames + 3, hidden), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2, inplace=True), nn.Linear(hidden, 2 * latent))
        self.extra = nn.Linear(3 * frames + features, hidden) if features else None
        if self.extra is not None:
            nn.init.zeros_(self.extra.weight)
            nn.init.zeros_(self.extra.bias)

    def forward(self, shift: Tensor, valid: Tensor, masks: Tensor, confidence: Tensor | None = None,
                features: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """shift (B, T, K, 2) pixels, valid (B, T, K) bool, masks (B, K, H, W) -> (mu, logvar),
        each (B, K, latent). With ``features > 0`` also ``confidence`` (B, T, K) in [0, 1] and
        ``features`` (B, C, h, w), the motion encoder's feature map (:func:`pool_over_objects`)."""
        trusted = valid.to(shift.dtype)
        moves = (shift * trusted[..., None] / self.scale).permute(0, 2, 1, 3).flatten(2)  # (B, K, 2T)
        x = torch.cat([moves, trusted.transpose(1, 2), object_place(masks)], -1)
        if self.extra is None:
            mu, logvar = self.net(x).chunk(2, dim=-1)
            return mu, logvar
        if confidence is None or features is None:
            raise ValueError("an ObjectPosterior with features > 0 needs confidence and features")
        # the untrusted matches: (B, K, 2T)
        doubtful = (shift * (1 - trusted)[..., None] / self.scale).permute(0, 2, 1, 3).flatten(2)
        extra = torch.cat([doubtful, confidence.transpose(1, 2), pool_over_objects(features, masks)], -1)
        hidden = self.net[0](x) + self.extra(extra)
        mu, logvar = self.net[1:](hidden).chunk(2, dim=-1)
        return mu, logvar


def pool_over_objects(features: Tensor, masks: Tensor) -> Tensor:
    """The mean of a feature map over each object: features (B, C, h, w), masks (B, K, H, W)
    (area-resampled to h x w) -> (B, K, C); 0 for an empty slot."""
    b, c, h, w = features.shape
    pooled = F.adaptive_avg_pool2d(masks, (h, w)).flatten(2)  # (B, K, h*w)
    share = pooled.sum(2).clamp(min=1e-6)
    return torch.einsum("bkn,bcn->bkc", pooled, features.flatten(2)) / share[..., None]


def object_place(masks: Tensor) -> Tensor:
    """(B, K, H, W) object masks -> (B, K, 3): centroid x, y in [-1, 1] and sqrt of the area share."""
    h, w = masks.shape[-2:]
    centroid, area = _centroids(masks)
    return torch.stack([2 * centroid[..., 0] / max(w - 1, 1) - 1, 2 * centroid[..., 1] / max(h - 1, 1) - 1,
                        (area / (h * w)).sqrt()], -1)


def compose_object_motion(masks: Tensor, flow_fwd: Tensor, flow_bwd: Tensor, mask_fwd: Tensor,
                          foreground: Tensor, correction: Tensor | None = None,
                          pinned: Tensor | None = None
                          ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Move every object as a whole and mark what its motion reveals (see the module docstring).

    Args:
        masks: (B, K, H, W) frame-0 object masks (:func:`label_segments`).
        flow_fwd, flow_bwd: (B, T, 2, H, W) the decoder's dense flows, pixels.
        mask_fwd: (B, T, 1, H, W) the decoder's forward visibility in (0, 1).
        foreground: (B, 1, H, W) the first frame's whole foreground (1 = any foreground class,
            objects too small to be kept included).
        correction: (B, T, K, 3) optional (dx, dy, ds) added to the fitted displacement and scale
            (:class:`ObjectMotionHead`).
        pinned: optional (B, T, K, 2) pixels: the objects' displacements ARE these
            (:func:`pin_to_matches`), whatever the fit and the correction say; their scale
            changes are kept.
    Returns:
        ``(flow_fwd, flow_bwd, mask_fwd, shift, visibility)``: the first three of the same shapes
        (the rigid object flows composited over the dense ones, and the forward mask times the
        geometric visibility); ``shift`` (B, T, K, 2) pixels, each object's displacement ``d``
        (frame 0 -> t, x then y; 0 in empty slots); ``visibility`` (B, T, 1, H, W) in [0, 1],
        detached, that geometric visibility itself.
    """
    b, t, _, h, w = flow_fwd.shape
    k = masks.shape[1]
    d, s, c = rigid_fit(masks, flow_bwd)
    if correction is not None:
        d = d + correction[..., :2]
        s = (s + correction[..., 2]).clamp(*SCALE_RANGE)
    if pinned is not None:
        d = pinned.to(d.dtype)
    grid = pixel_grid(h, w, flow_fwd.device, flow_fwd.dtype)  # (2, H, W)
    # Frame 0: on object k, the displacement d + s (p - c), i.e. flow_bwd = -(that).
    rel = grid[None, None] - c[..., None, None]  # (B, K, 2, H, W)
    disp0 = d[..., None, None] + s[..., None, None, None] * rel[:, None]  # (B, T, K, 2, H, W)
    on_object = masks.sum(1, keepdim=True)[:, None]  # (B, 1, 1, H, W): objects are disjoint in frame 0
    flow_bwd = flow_bwd * (1 - on_object) + torch.einsum("bkhw,btkchw->btchw", masks, -disp0)
    # Frame t: p shows object k's frame-0 point q = c + (p - c - d) / (1 + s), if q is on it.
    q = c[:, None, :, :, None, None] + (grid - c[:, None, :, :, None, None] - d[..., None, None]) / (
        1 + s[..., None, None, None])  # (B, T, K, 2, H, W)
    object_flow = grid - q  # (B, T, K, 2, H, W): p reads q = p - object_flow, as in warp()
    cover = warp(masks[:, None, :, None], object_flow, padding_mode="zeros")  # (B, T, K, 1, H, W)
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
        source_fg = warp(foreground[:, None], flow_fwd)
        visible = covered + (1 - covered) * (1 - source_fg).clamp(0, 1) * in_frame_mask(flow_fwd)
    return flow_fwd, flow_bwd, mask_fwd * visible, d, visible


@torch.no_grad()
def pin_to_matches(shift: Tensor, trusted: Tensor) -> Tensor:
    """Where a posterior reconstruction puts each object (``Seg2VidConfig.object_pin``).

    The block matches are measurements of the true clip, and the path through the object's
    2-number latent z_k and the motion head loses much of them (``scripts/motion_probe.py
    --bounds``: 2.4 px even when fed the exact displacements). So every object is placed by its
    matches: at the match in its trusted frames; in its other frames at the constant velocity
    through the origin fitted to the trusted ones (``v = sum_t w_t t shift_t / sum_t w_t t^2``,
    ``w_t`` = trusted); and an object with no trusted frame at its (untrusted) match in every
    frame -- measured on 256 validation clips, even those are nearer the truth than the
    latent's displacement (``data/results/motion_experiments.md``).

    Args:
        shift: (B, T, K, 2) pixels, the matched displacements (:func:`match_objects`).
        trusted: (B, T, K) bool, which of them are trusted.
    Returns:
        (B, T, K, 2) pixels, each object's displacement from frame 0 to frame t.
    """
    if shift.dim() != 4 or shift.shape[-1] != 2 or trusted.shape != shift.shape[:3]:
        raise ValueError(f"shift must be (B, T, K, 2) and trusted (B, T, K), got {tuple(shift.shape)} "
                         f"and {tuple(trusted.shape)}")
    t = shift.shape[1]
    when = torch.arange(1, t + 1, device=shift.device, dtype=shift.dtype).view(1, t, 1, 1)
    weight = trusted.to(shift.dtype)[..., None]
    velocity = ((weight * shift * when).sum(1, keepdim=True)
                / (weight * when**2).sum(1, keepdim=True).clamp(min=1e-6))
    some_trusted = trusted.any(1, keepdim=True)[..., None]
    return torch.where(trusted[..., None] | ~some_trusted, shift, velocity * when)


def _subpixel(flat: Tensor, best: Tensor, by: Tensor, bx: Tensor, rows: int, cols: int,
              along_x: bool) -> Tensor:
    """The best match's position along one axis of a (rows x cols) window, refined by a parabola
    through its error (``best``) and its two neighbours' (``flat``: (B, K, rows * cols) errors;
    ``by``, ``bx``: the best row and column); no refinement at the window's edge."""
    centre = bx if along_x else by
    length = cols if along_x else rows
    lo, hi = (centre - 1).clamp(min=0), (centre + 1).clamp(max=length - 1)

    def at(i: Tensor) -> Tensor:
        return flat.gather(2, (by * cols + i if along_x else i * cols + bx)[..., None])[..., 0]

    e_lo, e_hi = at(lo), at(hi)
    curvature = e_lo + e_hi - 2 * best
    usable = (lo < centre) & (hi > centre) & torch.isfinite(curvature) & (curvature > 1e-9)
    offset = torch.where(usable, 0.5 * (e_lo - e_hi) / curvature.clamp(min=1e-9), torch.zeros_like(best))
    return centre.to(flat.dtype) + offset.clamp(-0.5, 0.5)


#: Squared colour error per pixel below which two matches count as equally good (FFT round-off,
#: and textures too faint to tell: 1e-3 is an RMS difference of ~0.02 per channel).
_MATCH_TOLERANCE = 1e-3


@torch.no_grad()
def match_objects(frames: Tensor, objects: Tensor, first_reach: tuple[int, int] = (10, 5),
                  reach: tuple[int, int] = (5, 3), cap: tuple[int, int] = (32, 16),
                  distinct: float = 0.8, min_pixels: int = 12, with_confidence: bool = False
                  ) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, Tensor]:
    """Each object's displacement from frame 0 to every frame t by block matching, tracked.

    The mean squared colour difference ``|I_t(p + delta) - I_0(p)|^2`` over the object's pixels p
    whose target lies in the frame is computed for EVERY integer displacement ``delta`` up to
    ``cap`` at once (three cross-correlations by FFT). The object is then tracked: frame 1 takes
    the best displacement within ``first_reach`` of 0, frame t the best within ``reach`` of the
    constant-velocity prediction ``2 shift[t-1] - shift[t-2]`` (motion changes little from frame
    to frame, and a small window leaves few look-alikes). The best one is refined to sub-pixel
    by a parabola through its neighbours in x and y.

    A match is trusted (``valid``) when the object has at least ``min_pixels`` pixels, at least
    half of it stays in view, and the best error is below ``distinct`` times the best error at
    least 2 pixels away from it in the window (less a small tolerance): a flat object, whose error
    is the same along a line, is not.

    Args:
        frames: (B, T+1, 3, H, W) the true clip in [0, 1].
        objects: (B, K, H, W) frame-0 object masks (:func:`seg2vid.models.objects.label_segments`).
        first_reach, reach: search radii (x, y) in pixels, around 0 for frame 1 and around the
            prediction after it.
        cap: the largest displacement (x, y) considered.
        distinct: the uniqueness ratio above.
        min_pixels: smaller objects are never trusted.
        with_confidence: also return each match's confidence.
    Returns:
        ``(shift, valid)``: shift (B, T, K, 2) pixels (x, y), frame-0 point p of object k is at
        ``p + shift`` in frame t; valid (B, T, K) bool. With ``with_confidence``, a third tensor
        (B, T, K) in [0, 1]: ``1 - (best + tol) / (runner_up + tol)`` (0 where no match was
        possible, or all are equally good), the margin the trust test thresholds, for untrusted
        matches too.
    """
    if frames.dim() != 5 or objects.dim() != 4 or frames.shape[0] != objects.shape[0]:
        raise ValueError(f"frames must be (B, T+1, 3, H, W) and objects (B, K, H, W), got "
                         f"{tuple(frames.shape)} and {tuple(objects.shape)}")
    b, n, _, h, w = frames.shape
    k = objects.shape[1]
    frames, objects = frames.float(), objects.float()
    size = (h + cap[1] + 1, w + cap[0] + 1)  # displacements up to cap do not wrap around
    first, future = frames[:, 0], frames[:, 1:]  # (B, 3, H, W), (B, T, 3, H, W)
    area = objects.sum((2, 3))  # (B, K)

    def spectrum(x: Tensor) -> Tensor:
        return torch.fft.rfft2(x, s=size)

    def correlate(template_spectrum: Tensor, image_spectrum: Tensor, channels: bool = False) -> Tensor:
        # out[..., dy, dx] = sum_p template(p) image(p + (dx, dy)); negative shifts at the end;
        # channels: summed over dimension 3 (before the inverse transform: it is linear)
        product = template_spectrum.conj() * image_spectrum
        return torch.fft.irfft2(product.sum(3) if channels else product, s=size)

    m = objects[:, None]  # (B, 1, K, H, W)
    f_future = spectrum(future)[:, :, None]  # (B, T, 1, 3, ...)
    # sum_p m |I_t(p+d) - I_0(p)|^2 = sum m I_t^2(p+d) - 2 sum m I_0 I_t(p+d) + sum m I_0^2 (over
    # the pixels whose target is in the frame), and the count of those pixels
    cross = correlate(spectrum(m[:, :, :, None] * first[:, None, None]), f_future, channels=True)
    f_m = spectrum(m)
    energy_t = correlate(f_m, spectrum(future.square().sum(2, keepdim=True)))
    f_ones = spectrum(frames.new_ones(1, 1, 1, h, w))
    energy_0 = correlate(spectrum(m * first.square().sum(1)[:, None, None]), f_ones)
    count = correlate(f_m, f_ones)  # (B, 1, K, ...)
    error = (energy_t - 2 * cross + energy_0) / count.clamp(min=1)  # (B, T, K, size)
    error = torch.where(count > 0.5 * area[:, None, :, None, None] - 0.5, error,
                        torch.full_like(error, float("inf")))
    shifts = frames.new_zeros(b, n - 1, k, 2)
    valid = torch.zeros(b, n - 1, k, dtype=torch.bool, device=frames.device)
    confidence = frames.new_zeros(b, n - 1, k)
    previous = frames.new_zeros(b, k, 2)
    before = frames.new_zeros(b, k, 2)
    for t in range(1, n):
        rx, ry = first_reach if t == 1 else reach
        centre = (2 * previous - before).round()
        centre = torch.stack([centre[..., 0].clamp(-cap[0] + rx, cap[0] - rx),
                              centre[..., 1].clamp(-cap[1] + ry, cap[1] - ry)], -1).long()  # (B, K, 2)
        oy = torch.arange(-ry, ry + 1, device=frames.device)
        ox = torch.arange(-rx, rx + 1, device=frames.device)
        rows = (centre[..., 1, None, None] + oy[:, None]) % size[0]  # (B, K, 2ry+1, 1)
        cols = (centre[..., 0, None, None] + ox[None, :]) % size[1]  # (B, K, 1, 2rx+1)
        index = (rows * size[1] + cols).flatten(2)  # (B, K, N)
        flat = error[:, t - 1].flatten(2).gather(2, index)  # (B, K, N)
        best, where = flat.min(2)  # (B, K)
        by, bx = where // (2 * rx + 1), where % (2 * rx + 1)
        ys = oy.view(1, 1, -1, 1) + ry
        xs = ox.view(1, 1, 1, -1) + rx
        far = (((ys - by[..., None, None]).abs() >= 2) | ((xs - bx[..., None, None]).abs() >= 2)).flatten(2)
        runner_up = torch.where(far, flat, torch.full_like(flat, float("inf"))).min(2).values
        ok = torch.isfinite(best) & (area >= min_pixels) & (best < distinct * runner_up - _MATCH_TOLERANCE)

        found = torch.stack([_subpixel(flat, best, by, bx, 2 * ry + 1, 2 * rx + 1, along_x=True) - rx,
                             _subpixel(flat, best, by, bx, 2 * ry + 1, 2 * rx + 1, along_x=False) - ry], -1)
        found = found + centre.to(frames.dtype)
        shifts[:, t - 1], valid[:, t - 1] = found, ok
        margin = 1 - (best + _MATCH_TOLERANCE) / (runner_up + _MATCH_TOLERANCE)
        confidence[:, t - 1] = torch.nan_to_num(margin, nan=0.0, neginf=0.0).clamp(0, 1)
        # an untrusted match does not steer the track: keep extrapolating
        before, previous = previous, torch.where(ok[..., None], found, 2 * previous - before)
    if with_confidence:
        return shifts, valid, confidence
    return shifts, valid
