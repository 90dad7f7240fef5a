"""Statistics of synthetic street clips: how much texture, occlusion, foreground and motion a
dataset holds (what a photometric, occlusion-aware, multi-future model can learn from).

    >>> from seg2vid.data.synthetic import SceneConfig
    >>> from seg2vid.data.stats import clip_statistics, print_statistics
    >>> stats = clip_statistics(SceneConfig(frames=4, style="rich"), num_clips=64)
    >>> print_statistics(stats)

Definitions (each in one place, used by the tests, the benchmark and the CLI):

* **textured pixel**: :func:`texture_mask` -- the grey image's gradient magnitude (central
  differences, intensities in [0, 1]) exceeds :data:`TEXTURE_THRESHOLD` = 0.03; measured on the
  visible (``visible_fwd``) pixels of frames 1..T, where a photometric term compares the warp.
Print them for both styles: ``python -m seg2vid.data.stats --clips 64 --frames 4``.

* **occluded %** at t: share of frame t's pixels with ``visible_fwd[t-1] == 0`` (forward: the
  pixels a backward-warping model must inpaint) and of frame 0's pixels with
  ``visible_bwd[t-1] == 0`` (backward). ``in-frame`` counts only those whose correspondence lies
  inside the other frame: hidden by a nearer surface, not out of view (for the backward maps
  this also counts points that went behind the camera, whose flow is set to 0).
* **foreground %**: pixels of the Cityscapes foreground group (person .. bicycle), all frames.
* **speed** of a clip: the mean forward-flow magnitude over frames 1..T and all pixels (px);
  its spread over clips is reported as quantiles and a coefficient of variation.
* **blobiness** of the forward occlusion at t = T: ``erosion`` is the share of occluded pixels
  that survive a 3x3 binary erosion (a sliver one or two pixels wide does not); ``half IoU`` is
  the IoU between the occlusion map and itself pooled to half resolution (2x2 mean) and
  upsampled back (nearest, > 0.5) -- the ceiling of a half-resolution mask head.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from seg2vid.data.labels import CITYSCAPES
from seg2vid.data.synthetic import SceneConfig, render_clip

__all__ = [
    "TEXTURE_THRESHOLD",
    "DatasetStatistics",
    "clip_statistics",
    "future_spread",
    "gradient_magnitude",
    "occlusion_blobiness",
    "print_statistics",
    "texture_mask",
]

#: A pixel is "textured" when the grey image's gradient magnitude exceeds this (intensity units
#: per pixel, intensities in [0, 1]).
TEXTURE_THRESHOLD = 0.03


def gradient_magnitude(frames: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude of the grey image (mean of RGB) by central differences.

    Args:
        frames: (..., 3, H, W) float in [0, 1].
    Returns:
        (..., H, W) float: sqrt(gx^2 + gy^2) in intensity units per pixel (one-sided at borders).
    """
    grey = frames.float().mean(-3).numpy()
    gy, gx = np.gradient(grey, axis=(-2, -1))
    return torch.from_numpy(np.sqrt(gx * gx + gy * gy))


def texture_mask(frames: torch.Tensor, threshold: float = TEXTURE_THRESHOLD) -> torch.Tensor:
    """(..., H, W) bool: pixels of ``frames`` (..., 3, H, W) whose gradient magnitude > threshold."""
    return gradient_magnitude(frames) > threshold


def _erode3(mask: np.ndarray) -> np.ndarray:
    """3x3 binary erosion of (..., H, W) bool (outside the image counts as set)."""
    pad = np.pad(mask, [(0, 0)] * (mask.ndim - 2) + [(1, 1), (1, 1)], mode="edge")
    h, w = mask.shape[-2:]
    out = np.ones_like(mask)
    for dy in range(3):
        for dx in range(3):
            out &= pad[..., dy:dy + h, dx:dx + w]
    return out


def occlusion_blobiness(occluded: torch.Tensor | np.ndarray) -> tuple[float, float]:
    """How blob-like an occlusion map is.

    Args:
        occluded: (..., H, W) bool (or {0, 1}) occlusion maps; H and W even.
    Returns:
        (erosion share, half IoU): the share of occluded pixels surviving a 3x3 erosion, and the
        IoU of the map with its 2x2-mean-pooled, nearest-upsampled (> 0.5) self. NaN when nothing
        is occluded.
    """
    occ = np.asarray(occluded, dtype=bool)
    total = occ.sum()
    if total == 0:
        return float("nan"), float("nan")
    eroded = _erode3(occ).sum() / total
    h, w = occ.shape[-2:]
    occ_c = occ[..., : h // 2 * 2, : w // 2 * 2]
    pooled = occ_c.reshape(*occ.shape[:-2], h // 2, 2, w // 2, 2).mean((-3, -1))
    up = np.repeat(np.repeat(pooled > 0.5, 2, -2), 2, -1)
    iou = (up & occ_c).sum() / max((up | occ_c).sum(), 1)
    return float(eroded), float(iou)


def _in_frame(flow: torch.Tensor, sign: int) -> torch.Tensor:
    """(T, H, W) bool: the correspondence p - sign * ... lies inside the frame."""
    t, _, h, w = flow.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    qx, qy = xs - flow[:, 0], ys - flow[:, 1]
    return (qx >= -0.5) & (qx <= w - 0.5) & (qy >= -0.5) & (qy <= h - 0.5)


@dataclass
class DatasetStatistics:
    """What :func:`clip_statistics` measured (percentages in %, speeds in pixels).

    Per-t lists have T entries (t = 1..T).
    """

    config: SceneConfig
    num_clips: int
    occluded_fwd: list[float]
    occluded_bwd: list[float]
    occluded_fwd_in_frame: list[float]
    occluded_bwd_in_frame: list[float]
    occluded_fwd_last_median: float  # median over clips of the forward-occluded % at t = T
    textured_visible: float
    foreground: float
    speed_quantiles: dict[str, float]  # "q10", "q25", "q50", "q75", "q90" of per-clip speed
    speed_cv: float  # coefficient of variation of the per-clip speed over clips
    blob_erosion: float
    blob_half_iou: float
    clips_per_s: float
    per_clip_speed: list[float] = field(default_factory=list)


def clip_statistics(
    config: SceneConfig | None = None, num_clips: int = 64, seed: int = 0
) -> DatasetStatistics:
    """Render ``num_clips`` clips (seeds ``seed .. seed + num_clips - 1``) and measure them.

    Args:
        config: scene settings (default ``SceneConfig()``); the frame size should be even for
            the half-resolution IoU.
        num_clips: clips to render.
        seed: first clip seed.
    Returns:
        :class:`DatasetStatistics` (definitions in the module docstring).
    """
    config = config or SceneConfig()
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    T = config.frames
    fg_ids = torch.tensor(CITYSCAPES.foreground_ids)
    occ_f = np.zeros(T)
    occ_b = np.zeros(T)
    occ_f_in = np.zeros(T)
    occ_b_in = np.zeros(T)
    last = []
    tex = vis = 0.0
    fg = 0.0
    speeds = []
    occ_maps = []
    elapsed = 0.0
    for i in range(num_clips):
        start = time.perf_counter()
        clip = render_clip(config, seed + i)
        elapsed += time.perf_counter() - start
        hidden_f = clip["visible_fwd"][:, 0] < 0.5  # (T, H, W)
        hidden_b = clip["visible_bwd"][:, 0] < 0.5
        occ_f += hidden_f.float().mean((1, 2)).numpy()
        occ_b += hidden_b.float().mean((1, 2)).numpy()
        occ_f_in += (hidden_f & _in_frame(clip["flow_fwd"], 1)).float().mean((1, 2)).numpy()
        occ_b_in += (hidden_b & _in_frame(clip["flow_bwd"], 1)).float().mean((1, 2)).numpy()
        last.append(hidden_f[-1].float().mean().item())
        occ_maps.append(hidden_f[-1].numpy())
        visible = ~hidden_f
        tex += (texture_mask(clip["frames"][1:]) & visible).sum().item()
        vis += visible.sum().item()
        fg += torch.isin(clip["labels"], fg_ids).float().mean().item()
        speeds.append(clip["flow_fwd"].norm(dim=1).mean().item())
    speeds_a = np.asarray(speeds)
    erosion, half_iou = occlusion_blobiness(np.stack(occ_maps))
    return DatasetStatistics(
        config=config,
        num_clips=num_clips,
        occluded_fwd=list(100 * occ_f / num_clips),
        occluded_bwd=list(100 * occ_b / num_clips),
        occluded_fwd_in_frame=list(100 * occ_f_in / num_clips),
        occluded_bwd_in_frame=list(100 * occ_b_in / num_clips),
        occluded_fwd_last_median=100 * float(np.median(last)),
        textured_visible=100 * tex / max(vis, 1),
        foreground=100 * fg / num_clips,
        speed_quantiles={f"q{q}": float(np.quantile(speeds_a, q / 100)) for q in (10, 25, 50, 75, 90)},
        speed_cv=float(speeds_a.std() / max(speeds_a.mean(), 1e-9)),
        blob_erosion=erosion,
        blob_half_iou=half_iou,
        clips_per_s=num_clips / elapsed,
        per_clip_speed=speeds,
    )


def future_spread(config: SceneConfig | None = None, num_scenes: int = 12, k: int = 8,
                  seed: int = 0) -> tuple[float, float]:
    """How different the K futures of one first frame are (:func:`render_futures`).

    Args:
        config: scene settings; num_scenes: scenes (seeds ``seed ..``); k: futures per scene.
    Returns:
        (mean over scenes of the coefficient of variation of the K futures' speeds, mean over
        scenes of max - min speed in px), speed = mean forward-flow magnitude of a future.
    """
    from seg2vid.data.synthetic import render_futures

    cvs, spans = [], []
    for i in range(num_scenes):
        futures = render_futures(config, seed + i, k)
        speed = futures["flow_fwd"].norm(dim=2).mean((1, 2, 3)).numpy()
        cvs.append(speed.std() / max(speed.mean(), 1e-9))
        spans.append(speed.max() - speed.min())
    return float(np.mean(cvs)), float(np.mean(spans))


def print_statistics(stats: DatasetStatistics, say=print) -> None:
    """Print :class:`DatasetStatistics` as a short table (``say`` receives each line)."""
    c = stats.config
    per_t = lambda values: " / ".join(f"{v:.1f}" for v in values)  # noqa: E731
    say(f"synthetic streets, style {c.style!r}: {stats.num_clips} clips, {c.height}x{c.width}, "
        f"1 + {c.frames} frames (rendering {stats.clips_per_s:.1f} clips/s)")
    say(f"  occluded fwd % at t=1..{c.frames}:          {per_t(stats.occluded_fwd)}"
        f"  (median clip at t={c.frames}: {stats.occluded_fwd_last_median:.1f})")
    say(f"  occluded fwd % in-frame (not out of view): {per_t(stats.occluded_fwd_in_frame)}")
    say(f"  occluded bwd % at t=1..{c.frames}:          {per_t(stats.occluded_bwd)}")
    say(f"  occluded bwd % in-frame:                   {per_t(stats.occluded_bwd_in_frame)}")
    say(f"  occlusion blobs at t={c.frames}: {100 * stats.blob_erosion:.1f}% survive a 3x3 erosion, "
        f"half-resolution IoU {stats.blob_half_iou:.3f}")
    say(f"  textured visible pixels (|grad I| > {TEXTURE_THRESHOLD}): {stats.textured_visible:.1f}%")
    say(f"  foreground pixels: {stats.foreground:.1f}%")
    q = stats.speed_quantiles
    say(f"  per-clip mean flow (px): q10 {q['q10']:.2f}, q25 {q['q25']:.2f}, median {q['q50']:.2f}, "
        f"q75 {q['q75']:.2f}, q90 {q['q90']:.2f}; CV {stats.speed_cv:.2f}")


def main(argv: list[str] | None = None) -> int:
    """``python -m seg2vid.data.stats``: print the statistics of both styles (or one)."""
    import argparse

    from seg2vid.data.synthetic import STYLES

    parser = argparse.ArgumentParser(description="Statistics of the synthetic street clips.")
    parser.add_argument("--style", choices=(*STYLES, "both"), default="both")
    parser.add_argument("--size", default="64x64", help="HxW (default 64x64)")
    parser.add_argument("--frames", type=int, default=4, help="future frames T (default 4)")
    parser.add_argument("--clips", type=int, default=64, help="clips to measure (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="first clip seed (default 0)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    h, w = (int(v) for v in args.size.lower().split("x"))
    for style in STYLES if args.style == "both" else (args.style,):
        config = SceneConfig(height=h, width=w, frames=args.frames, style=style)
        print_statistics(clip_statistics(config, args.clips, args.seed))
        cv, span = future_spread(config, max(1, args.clips // 8), 8, args.seed)
        print(f"  K=8 futures of one first frame ({max(1, args.clips // 8)} scenes): speed CV {cv:.2f} "
              f"within a scene, max - min {span:.2f} px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
