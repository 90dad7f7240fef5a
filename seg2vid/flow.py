"""Optical flow in PIXEL units: backward warping, sampling grids, colours and ``.flo`` files.

Conventions (used by every module of seg2vid and by the synthetic data's exact flow):

* A flow field is a tensor ``(..., 2, H, W)``; channel 0 is the horizontal component ``x``
  (positive = to the right), channel 1 the vertical component ``y`` (positive = DOWN), both in
  pixels of the image the flow is defined on. Pixel centres sit at integer coordinates
  ``0 .. W-1`` and ``0 .. H-1``.
* :func:`warp` is BACKWARD warping, as in the paper: ``warp(image, flow)(p) = image(p - flow(p))``.
  The flow is defined on the grid of the OUTPUT and says how far the content seen at ``p`` has
  moved since ``image``. So for a clip, ``flow_fwd[t]`` (frame 0 -> frame t) lives on frame t's
  grid and ``warp(frame_0, flow_fwd[t])`` rebuilds frame t wherever frame t's pixel was visible
  in frame 0. For a pure translation by ``d`` pixels the flow is ``d`` everywhere, the same
  number as the classic (Middlebury) forward flow; for other motions ``flow(p)`` is
  the negative of the classic flow from frame t to frame 0.
* ``grid_sample`` is called with ``align_corners=ALIGN_CORNERS`` (False): normalised -1 and +1
  are the OUTER edges of the first and last pixel, the convention of ``F.interpolate``'s default.
  Pixel units make the choice invisible to callers except at the image border.
* Samples outside the image repeat the border pixel (``padding_mode="border"``) unless asked
  otherwise; the visibility masks say where such samples are meaningless.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

#: ``align_corners`` used for every ``grid_sample``/``interpolate`` on flow in this package.
ALIGN_CORNERS = False

#: Magic number at the start of a Middlebury ``.flo`` file (the bytes spell "PIEH").
FLO_MAGIC = 202021.25


def _check_flow(flow: torch.Tensor, name: str = "flow") -> None:
    if flow.dim() < 3 or flow.shape[-3] != 2:
        raise ValueError(f"{name} must have shape (..., 2, H, W), got {tuple(flow.shape)}")


def pixel_grid(
    height: int, width: int, device: torch.device | str | None = None, dtype=torch.float32
) -> torch.Tensor:
    """Pixel-centre coordinates, shape (2, H, W): ``[0]`` is x (column), ``[1]`` is y (row)."""
    ys = torch.arange(height, device=device, dtype=dtype)
    xs = torch.arange(width, device=device, dtype=dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy))


def _pixels_to_normalized(coord: torch.Tensor, size: int) -> torch.Tensor:
    # align_corners=False: pixel x covers [x-0.5, x+0.5]; the image spans [-0.5, size-0.5] -> [-1, 1]
    return (2.0 * coord + 1.0) / size - 1.0


def _normalized_to_pixels(coord: torch.Tensor, size: int) -> torch.Tensor:
    return ((coord + 1.0) * size - 1.0) / 2.0


def flow_to_grid(flow_px: torch.Tensor) -> torch.Tensor:
    """Sampling grid for ``grid_sample`` that performs :func:`warp` with ``flow_px``.

    Args:
        flow_px: (N, 2, H, W) flow in pixels (warp convention: sample at ``p - flow(p)``).
    Returns:
        (N, H, W, 2) grid of normalised (x, y) sample positions for ``align_corners=ALIGN_CORNERS``.
    """
    _check_flow(flow_px, "flow_px")
    _, _, h, w = flow_px.shape
    src = pixel_grid(h, w, flow_px.device, flow_px.dtype) - flow_px  # where each output pixel reads
    gx = _pixels_to_normalized(src[:, 0], w)
    gy = _pixels_to_normalized(src[:, 1], h)
    return torch.stack((gx, gy), dim=-1)


def grid_to_flow(grid: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`flow_to_grid`: (N, H, W, 2) normalised grid -> (N, 2, H, W) pixel flow."""
    if grid.dim() != 4 or grid.shape[-1] != 2:
        raise ValueError(f"grid must have shape (N, H, W, 2), got {tuple(grid.shape)}")
    _, h, w, _ = grid.shape
    src = torch.stack((_normalized_to_pixels(grid[..., 0], w), _normalized_to_pixels(grid[..., 1], h)), 1)
    return pixel_grid(h, w, grid.device, grid.dtype) - src


def warp(
    image: torch.Tensor,
    flow_px: torch.Tensor,
    padding_mode: str = "border",
    mode: str = "bilinear",
) -> torch.Tensor:
    """Backward-warp ``image`` with a pixel-unit flow: ``out(p) = image(p - flow_px(p))``.

    Args:
        image: (..., C, H, W) float tensor.
        flow_px: (..., 2, H, W) flow in pixels on the OUTPUT grid. Leading dimensions are
            broadcast against the image's, so one first frame (B, C, H, W) can be warped with
            T flows (B, T, 2, H, W) by passing ``image.unsqueeze(1)``.
        padding_mode: ``"border"`` (repeat edge pixels), ``"zeros"`` or ``"reflection"``.
        mode: ``"bilinear"`` or ``"nearest"``.
    Returns:
        (..., C, H, W) warped image; differentiable w.r.t. both ``image`` and ``flow_px``.
    """
    _check_flow(flow_px, "flow_px")
    if image.dim() < 3:
        raise ValueError(f"image must have shape (..., C, H, W), got {tuple(image.shape)}")
    if image.shape[-2:] != flow_px.shape[-2:]:
        raise ValueError(
            f"image {tuple(image.shape)} and flow {tuple(flow_px.shape)} differ in (H, W); "
            "resize the flow with resize_flow() first"
        )
    lead = torch.broadcast_shapes(image.shape[:-3], flow_px.shape[:-3])
    c, h, w = image.shape[-3:]
    img = image.expand(*lead, c, h, w).reshape(-1, c, h, w)
    flo = flow_px.expand(*lead, 2, h, w).reshape(-1, 2, h, w).to(img.dtype)
    out = F.grid_sample(
        img, flow_to_grid(flo), mode=mode, padding_mode=padding_mode, align_corners=ALIGN_CORNERS
    )
    return out.reshape(*lead, c, h, w)


def resize_flow(flow_px: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a pixel-unit flow (..., 2, H, W) to ``size`` = (H', W'), rescaling its values."""
    _check_flow(flow_px, "flow_px")
    h, w = flow_px.shape[-2:]
    lead = flow_px.shape[:-3]
    out = F.interpolate(
        flow_px.reshape(-1, 2, h, w), size=size, mode="bilinear", align_corners=ALIGN_CORNERS
    )
    scale = torch.tensor([size[1] / w, size[0] / h], dtype=out.dtype, device=out.device)
    return (out * scale.view(1, 2, 1, 1)).reshape(*lead, 2, *size)


# ----------------------------------------------------------------------------- colours


def make_colorwheel() -> np.ndarray:
    """The Middlebury flow colour wheel: float array (55, 3) of RGB in 0..255.

    Six hue ramps with 15, 6, 4, 11, 13 and 6 steps: red->yellow->green->cyan->blue->magenta->red
    (Baker et al., "A Database and Evaluation Methodology for Optical Flow", 2011).
    """
    # (steps, channel held at 255, channel ramped, ramp goes up); channels 0=R, 1=G, 2=B
    ramps = [(15, 0, 1, True), (6, 1, 0, False), (4, 1, 2, True), (11, 2, 1, False),
             (13, 2, 0, True), (6, 0, 2, False)]
    rows = []
    for steps, full, ramp, up in ramps:
        block = np.zeros((steps, 3))
        step = np.floor(255 * np.arange(steps) / steps)
        block[:, full] = 255
        block[:, ramp] = step if up else 255 - step
        rows.append(block)
    return np.concatenate(rows)


def flow_to_color(
    flow_px: torch.Tensor | np.ndarray, max_magnitude: float | None = None
) -> np.ndarray:
    """Colour-code flow with the Middlebury wheel, using ONE normalisation for the whole input.

    Hue gives the direction (right = red, down = yellow-orange, left = cyan, up = blue-violet),
    saturation the speed: white is no motion, full colour is ``max_magnitude`` pixels. Unlike
    ``flow_vis``, which normalises every image on its own, a whole sequence (..., 2, H, W) shares
    one scale, so a car that speeds up looks more saturated; vectors longer than
    ``max_magnitude`` are drawn darker.

    Args:
        flow_px: (..., 2, H, W) flow in pixels (numpy or torch).
        max_magnitude: pixels mapped to full saturation; default: the largest magnitude in the input.
    Returns:
        uint8 array (..., H, W, 3).
    """
    flow = flow_px.detach().cpu().numpy() if isinstance(flow_px, torch.Tensor) else np.asarray(flow_px)
    if flow.ndim < 3 or flow.shape[-3] != 2:
        raise ValueError(f"flow must have shape (..., 2, H, W), got {flow.shape}")
    u = flow[..., 0, :, :].astype(np.float64)
    v = flow[..., 1, :, :].astype(np.float64)
    rad = np.sqrt(u**2 + v**2)
    if max_magnitude is None:
        max_magnitude = float(rad.max()) if rad.size else 0.0
    scale = max_magnitude if max_magnitude > 0 else 1.0
    u, v, rad = u / scale, v / scale, rad / scale

    wheel = make_colorwheel()
    ncols = wheel.shape[0]
    angle = np.arctan2(-v, -u) / np.pi  # in [-1, 1]; rightward motion -> -1 -> index 0 (red)
    fk = (angle + 1) / 2 * (ncols - 1)
    k0 = np.floor(fk).astype(np.int64)
    k1 = (k0 + 1) % ncols
    f = (fk - k0)[..., None]
    col = ((1 - f) * wheel[k0] + f * wheel[k1]) / 255.0
    inside = (rad <= 1)[..., None]
    col = np.where(inside, 1 - rad[..., None] * (1 - col), col * 0.75)
    return np.floor(255 * col).astype(np.uint8)


# ----------------------------------------------------------------------------- .flo files


def write_flo(path: str | Path, flow_px: torch.Tensor | np.ndarray) -> None:
    """Write a (2, H, W) flow to a Middlebury ``.flo`` file (little-endian float32, u/v interleaved)."""
    flow = flow_px.detach().cpu().numpy() if isinstance(flow_px, torch.Tensor) else np.asarray(flow_px)
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f".flo holds one flow field of shape (2, H, W), got {flow.shape}")
    _, h, w = flow.shape
    with open(path, "wb") as fh:
        fh.write(struct.pack("<fii", FLO_MAGIC, w, h))
        fh.write(np.ascontiguousarray(flow.transpose(1, 2, 0), dtype="<f4").tobytes())


def read_flo(path: str | Path) -> torch.Tensor:
    """Read a Middlebury ``.flo`` file into a float32 tensor (2, H, W)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no .flo file at {path}")
    data = path.read_bytes()
    if len(data) < 12:
        raise ValueError(f"{path} is too short to be a .flo file ({len(data)} bytes)")
    magic, w, h = struct.unpack("<fii", data[:12])
    if magic != FLO_MAGIC:
        raise ValueError(f"{path} is not a .flo file: magic number {magic!r}, expected {FLO_MAGIC}")
    if w <= 0 or h <= 0 or len(data) != 12 + 8 * w * h:
        raise ValueError(f"{path}: header says {w}x{h} but the file has {len(data) - 12} data bytes")
    arr = np.frombuffer(data, dtype="<f4", offset=12).reshape(h, w, 2).transpose(2, 0, 1)
    return torch.from_numpy(arr.astype(np.float32))


# ----------------------------------------------------------------------------- occlusion


def in_frame_mask(flow_px: torch.Tensor) -> torch.Tensor:
    """Where :func:`warp` with ``flow_px`` reads from INSIDE the source image.

    Args:
        flow_px: (..., 2, H, W) flow in pixels (warp convention: pixel ``p`` reads ``p - flow(p)``).
    Returns:
        (..., 1, H, W) float mask: 1 where ``p - flow(p)`` lies within the image's outer edges
        ``[-0.5, W - 0.5] x [-0.5, H - 0.5]`` (the ``align_corners=False`` extent), else 0.
        Outside, the warp only repeats border pixels (or zeros): nothing there was seen.
    """
    _check_flow(flow_px, "flow_px")
    h, w = flow_px.shape[-2:]
    src = pixel_grid(h, w, flow_px.device, flow_px.dtype) - flow_px
    x, y = src[..., 0:1, :, :], src[..., 1:2, :, :]
    inside = (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)
    return inside.to(flow_px.dtype)


def forward_backward_occlusion(
    flow_fwd: torch.Tensor,
    flow_bwd: torch.Tensor,
    alpha: float = 0.01,
    beta: float = 0.5,
) -> torch.Tensor:
    """Visibility from the forward-backward consistency check (Sundaram et al., ECCV 2010).

    In this package's convention a pixel ``p`` of frame t came from ``q = p - f(p)`` in frame 0,
    and the backward flow there must send it back: ``b(q) = -f(p)``. With
    ``b~ = warp(b, f)`` (``b`` sampled at ``q``, on frame t's grid) the pixel is VISIBLE when

        |f + b~|^2 < alpha * (|f|^2 + |b~|^2) + beta          (all in squared pixels)

    and ``q`` lies inside frame 0 (:func:`in_frame_mask`). The relative term lets the
    tolerance grow with the speed (flow estimates are less accurate for fast motion); ``beta``
    forgives sub-pixel noise. A pixel that is hidden in frame 0 usually lands on the occluder's
    backward flow, which does not cancel its own forward flow, so the test fails there.

    Args:
        flow_fwd: (..., 2, H, W) pixels, frame 0 -> frame t, on frame t's grid
            (``warp(frame_0, flow_fwd) ~ frame_t``).
        flow_bwd: (..., 2, H, W) pixels, frame t -> frame 0, on frame 0's grid
            (``warp(frame_t, flow_bwd) ~ frame_0``); same shape as ``flow_fwd``.
        alpha: relative tolerance (dimensionless); Sundaram et al. use 0.01.
        beta: absolute tolerance in squared pixels; Sundaram et al. use 0.5.
    Returns:
        (..., 1, H, W) float mask on frame t's grid (the grid of ``flow_fwd``): 1 = visible in
        frame 0, 0 = occluded or out of frame. Not differentiable (a hard threshold).

    Swap the arguments for the mask of frame 0's pixels that stay visible in frame t: the
    relation ``b + warp(f, b) = 0`` holds in the same way.
    """
    _check_flow(flow_fwd, "flow_fwd")
    _check_flow(flow_bwd, "flow_bwd")
    if flow_fwd.shape != flow_bwd.shape:
        raise ValueError(
            f"flow_fwd {tuple(flow_fwd.shape)} and flow_bwd {tuple(flow_bwd.shape)} differ in shape"
        )
    bwd_at_source = warp(flow_bwd, flow_fwd, padding_mode="border")
    residual = (flow_fwd + bwd_at_source).square().sum(-3, keepdim=True)
    scale = flow_fwd.square().sum(-3, keepdim=True) + bwd_at_source.square().sum(-3, keepdim=True)
    consistent = (residual < alpha * scale + beta).to(flow_fwd.dtype)
    return consistent * in_frame_mask(flow_fwd)


# ----------------------------------------------------------------------------- label maps


def warp_labels(
    label_map: torch.Tensor,
    flow_px: torch.Tensor,
    ignore_id: int = 255,
    padding_mode: str = "ignore",
) -> torch.Tensor:
    """Backward-warp an INTEGER label map with nearest-neighbour sampling: ``out(p) = labels(q)``.

    The convention of :func:`warp`: ``q = p - flow_px(p)``, rounded to the nearest pixel centre
    (``floor(q + 0.5)``, so a source exactly half-way between two pixels reads the right / lower
    one). Class ids are never blended: interpolating ids would invent classes (the mean of road,
    0, and sky, 10, is 5 = pole).

    Args:
        label_map: (..., H, W) integer train ids.
        flow_px: (..., 2, H, W) flow in pixels on the OUTPUT grid; leading dimensions broadcast
            against the label map's, as in :func:`warp` (pass ``label_map.unsqueeze(1)`` to carry
            one map (B, H, W) with T flows (B, T, 2, H, W)).
        ignore_id: the id written where the source lies outside the frame.
        padding_mode: ``"ignore"`` (default): pixels whose rounded source is outside the frame
            become ``ignore_id`` -- nothing there was seen; ``"border"``: they repeat the nearest
            edge pixel, like :func:`warp`'s default for images.
    Returns:
        (..., H, W) label map of the label map's dtype (broadcast leading dimensions).
    """
    _check_flow(flow_px, "flow_px")
    if label_map.dim() < 2 or label_map.is_floating_point() or label_map.is_complex():
        raise ValueError(
            f"label_map must be an integer tensor (..., H, W), got {label_map.dtype} {tuple(label_map.shape)}"
        )
    if label_map.shape[-2:] != flow_px.shape[-2:]:
        raise ValueError(
            f"label map {tuple(label_map.shape)} and flow {tuple(flow_px.shape)} differ in (H, W)"
        )
    if padding_mode not in ("ignore", "border"):
        raise ValueError(f"padding_mode must be 'ignore' or 'border', got {padding_mode!r}")
    h, w = label_map.shape[-2:]
    lead = torch.broadcast_shapes(label_map.shape[:-2], flow_px.shape[:-3])
    labels = label_map.expand(*lead, h, w).reshape(-1, h * w)
    flow = flow_px.expand(*lead, 2, h, w).reshape(-1, 2, h, w)
    src = pixel_grid(h, w, flow.device, torch.float64) - flow.double()
    col = torch.floor(src[:, 0] + 0.5).long()
    row = torch.floor(src[:, 1] + 0.5).long()
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    index = (row.clamp(0, h - 1) * w + col.clamp(0, w - 1)).reshape(-1, h * w)
    out = torch.gather(labels, 1, index).reshape(-1, h, w)
    if padding_mode == "ignore":
        out = torch.where(inside, out, torch.full_like(out, ignore_id))
    return out.reshape(*lead, h, w)
