"""Procedural street clips with EXACT label maps, optical flow and occlusion: the course's default data.

The world is a tiny 2.5-D street, built so that everything about a pixel can be computed from
the scene geometry instead of estimated:

* a pinhole camera at height ``CAMERA_HEIGHT`` that drives forward along +Z, drifts sideways and
  pans (a horizontal image shift), looking down the street;
* a ground plane (road with lane marks, sidewalks, grass verges), two facade planes parallel to
  the street (buildings, walls, fences, hedges) and two backdrop planes behind them, the sky at
  infinity;
* upright "billboards" (planar objects facing the camera) standing on the ground: poles with signs
  or traffic lights, trees, and independently moving cars, trucks, buses, cyclists and people.

Each surface ("layer") maps a pixel of frame t to its own 2-D surface coordinates and back, in
closed form. A frame is rendered by finding the nearest layer at every pixel centre (a z-buffer)
and shading its surface point; textures are box-filtered with the pixel's footprint so that they
do not alias. Because the maps are exact:

* ``flow_fwd[t-1](p) = p - q``, where q is where the surface point seen at pixel p of frame t
  was in frame 0 (the warp convention of :mod:`seg2vid.flow`: ``warp(frame_0, flow_fwd[t-1])``
  rebuilds frame t);
* ``visible_fwd[t-1](p) = 1`` exactly when that point was inside frame 0 AND the nearest surface
  there, evaluated at the continuous position q (not a rounded pixel);
* ``flow_bwd`` / ``visible_bwd`` are the same from frame 0's pixels to frame t.

Shapes and units (T = ``SceneConfig.frames`` future frames, H x W pixels):

========== ====================== =====================================================
key        shape, dtype           meaning
========== ====================== =====================================================
frames     (T+1, 3, H, W) float32 RGB in [0, 1]; frames[0] is the given first frame
labels     (T+1, H, W) int64      Cityscapes train ids (see :data:`SYNTHETIC_CLASSES`)
flow_fwd   (T, 2, H, W) float32   pixels, frame 0 -> frame t, on frame t's grid
flow_bwd   (T, 2, H, W) float32   pixels, frame t -> frame 0, on frame 0's grid
visible_fwd (T, 1, H, W) float32  1 where frame t's pixel was visible in frame 0, else 0
visible_bwd (T, 1, H, W) float32  1 where frame 0's pixel is still visible in frame t
========== ====================== =====================================================

Index ``[t-1]`` of the flow and mask tensors belongs to ``frames[t]``, t = 1..T.

Styles (``SceneConfig(style=...)``, :data:`STYLES`; the default is :data:`DEFAULT_STYLE`):

* ``"classic"``: the original streets (the default, and what the shipped checkpoints were
  trained on, before seg2vid 0.2). Its output for a given config and seed never changes.
* ``"rich"`` (the default; ``SceneConfig.rich()``): textures at every scale a pixel resolves (asphalt grain,
  repair patches, seams and zebra crossings; tiled sidewalks and kerbs; brick or plaster
  facades with framed windows, storeys and shop fronts; striped clothes, car details), more
  and nearer moving objects (up to 8 vehicles incl. vans, up to 8 people, half of them
  crossing) and a camera whose motion varies per clip: stopped (1 in 6), 0.05-1 m/frame,
  accelerating or braking, drifting, turning (a pan of up to 2.2% of the width per frame).
  At 64x64, 1 + 4 frames its forward occlusion covers about 7% of pixels at t = 4 (classic
  2.5%); ``python -m seg2vid.data.stats`` prints both styles' statistics.

Multi-future ground truth: :func:`render_futures` renders one scene (identical frame 0 and
label map) with K independently drawn motions, each exact; :class:`SyntheticFutures` is the
dataset of such scenes. The scene's random draws are split into layout and motion
(:class:`_Draws`) so that changing the motion can never move what frame 0 shows.

Occlusion semantics: ``visible_fwd[t-1] == 0`` marks the pixels of frame t that a model
warping frame 0 backwards with ``flow_fwd`` cannot copy -- they were hidden behind a nearer
surface or out of view in frame 0 -- i.e. what it must inpaint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from seg2vid.data.labels import CITYSCAPES

__all__ = [
    "DEFAULT_STYLE",
    "LEGACY_STYLE",
    "STYLES",
    "SYNTHETIC_CLASSES",
    "SceneConfig",
    "SyntheticFutures",
    "SyntheticStreets",
    "render_clip",
    "render_futures",
]

# ----------------------------------------------------------------------------- constants

CAMERA_HEIGHT = 1.4  # metres above the ground
ROAD_HALF_WIDTH = 4.0  # the road spans X in [-4, 4] m; lanes are 4 m wide
SIDEWALK_WIDTH = 3.0
FACADE_X = ROAD_HALF_WIDTH + SIDEWALK_WIDTH  # facades stand at X = +-7 m
BACKDROP_X = FACADE_X + 14.0  # a second row of buildings, seen over low walls and fences
NEAR_CLIP = 0.3  # metres: surfaces closer than this to the camera are not drawn
FAR_CLIP = 400.0
SKY_DEPTH = np.float32(1e9)
_GRASS = np.array([0.35, 0.55, 0.25], np.float32)

_ID = {name: CITYSCAPES.id_of(name) for name in CITYSCAPES.names}

#: The Cityscapes classes this generator draws (train ids, in table order). Every one of them
#: appears in a few dozen clips at the default settings (``tests/test_synthetic.py`` checks 100).
SYNTHETIC_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "bicycle",
)


#: The scene styles. "classic": the original streets (seg2vid 0.1's checkpoints were trained on
#: them); "rich" (the shipped checkpoints since 0.2): textured surfaces everywhere (asphalt grain
#: and patches, zebra crossings, tiled sidewalks, brick and window facades), more, closer and wider
#: moving objects, and camera motions that vary per clip (stopped, slow to fast, accelerating,
#: turning).
STYLES: tuple[str, ...] = ("classic", "rich")

#: The style a plain ``SceneConfig()`` (and every dataset built without naming one) renders: the
#: rich streets since seg2vid 0.2 (the shipped checkpoints are trained on them). A saved config
#: that names no style predates the switch and means "classic" (:data:`LEGACY_STYLE`).
DEFAULT_STYLE = "rich"

#: The style of a saved config (checkpoint, run folder) that names none: it was written before the
#: rich default, when every synthetic clip was classic.
LEGACY_STYLE = "classic"

# Per style: (max_cars, max_people) when the config leaves them at None.
_STYLE_COUNTS = {"classic": (4, 3), "rich": (8, 8)}


@dataclass(frozen=True)
class SceneConfig:
    """Settings of the synthetic street generator.

    Args:
        height, width: frame size in pixels (any size; the field of view scales with the width).
        frames: T, the number of FUTURE frames; a clip holds T + 1 frames.
        max_cars: at most this many vehicles (cars, vans, trucks, buses) per clip (at least one);
            None = the style's default (classic 4, rich 8).
        max_people: at most this many pedestrians and cyclists per clip; None = the style's
            default (classic 3, rich 8).
        motion: scales every speed (camera and objects); 0 gives a still scene, 2 twice the motion.
        focal: focal length as a fraction of the width (0.7 W pixels: about 71 degrees across).
        horizon: height of the horizon as a fraction of H from the top.
        antialias: average 4 sub-samples on surface boundaries (smoother edges, easier to warp).
        style: one of :data:`STYLES` (default :data:`DEFAULT_STYLE`); see the module docstring.
    """

    height: int = 64
    width: int = 64
    frames: int = 8
    max_cars: int | None = None
    max_people: int | None = None
    motion: float = 1.0
    focal: float = 0.7
    horizon: float = 0.42
    antialias: bool = True
    style: str = DEFAULT_STYLE

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"unknown scene style {self.style!r}; known: {', '.join(STYLES)}")
        cars, people = _STYLE_COUNTS[self.style]
        if self.max_cars is None:
            object.__setattr__(self, "max_cars", cars)
        if self.max_people is None:
            object.__setattr__(self, "max_people", people)
        if self.height < 8 or self.width < 8:
            raise ValueError(f"frames must be at least 8x8 pixels, got {self.height}x{self.width}")
        if self.frames < 1:
            raise ValueError(f"frames (T future frames) must be >= 1, got {self.frames}")
        if self.max_cars < 1 or self.max_people < 0:
            raise ValueError("max_cars must be >= 1 and max_people >= 0")
        if self.motion < 0:
            raise ValueError(f"motion must be >= 0, got {self.motion}")

    @classmethod
    def rich(cls, **kwargs) -> SceneConfig:
        """``SceneConfig(style="rich", **kwargs)``: the textured, occlusion-rich streets."""
        return cls(style="rich", **kwargs)


# ----------------------------------------------------------------------------- textures


def _fract(x):
    return x - np.floor(x)


def _hash2(i, j, salt: float):
    """Pseudo-random value in [0, 1) for each lattice point (i, j); float-only for speed."""
    p = _fract(i * np.float32(0.1031) + salt * np.float32(0.37))
    q = _fract(j * np.float32(0.1030) + salt * np.float32(0.61))
    s = p * (p + np.float32(33.33)) + q * (q + np.float32(19.19))
    return _fract((p + q) * s)


def _noise(u, v, scale: float, salt: float):
    """Smooth value noise in [0, 1) with lattice spacing ``scale`` (surface units)."""
    u = u / np.float32(scale)
    v = v / np.float32(scale)
    i, j = np.floor(u), np.floor(v)
    fu, fv = u - i, v - j
    fu = fu * fu * (3 - 2 * fu)
    fv = fv * fv * (3 - 2 * fv)
    a = _hash2(i, j, salt)
    b = _hash2(i + 1, j, salt)
    c = _hash2(i, j + 1, salt)
    d = _hash2(i + 1, j + 1, salt)
    return a + (b - a) * fu + (c - a) * fv + (a - b - c + d) * fu * fv


def _pulse(x, period: float, width: float, footprint):
    """Box-filtered pulse train: 1 on [k*period, k*period + width), 0 elsewhere.

    Averaged over a window of size ``footprint`` (the pixel's extent in surface units), which
    turns far-away stripes into their mean grey instead of aliasing noise.
    """
    fp = np.maximum(footprint, np.float32(1e-4))

    def integral(z):
        k = np.floor(z / period)
        return k * width + np.minimum(z - k * period, width)

    return (integral(x + fp / 2) - integral(x - fp / 2)) / fp


def _rgb(*c) -> np.ndarray:
    return np.asarray(c, dtype=np.float32) / 255.0


def _mix(a, b, w):
    """Blend colour arrays a (..., 3) and b (..., 3) with weight w (...) of b."""
    return a + (b - a) * w[..., None]


#: Rich textures are box-filtered over this many pixel footprints (1 = exactly one pixel): a
#: slightly wider filter keeps one-pixel lines and sub-pixel grain out of the picture, which
#: bilinear warping cannot reproduce (the warp of frame 0 would then miss frame t by more).
_RICH_BLUR = np.float32(1.5)


def _fbm(u, v, fp, scale: float, octaves: int, salt: float, gain: float = 0.6):
    """Filtered fractal noise: ``octaves`` value-noise octaves from lattice ``scale`` down by
    halves (amplitude x ``gain`` each), in about [-0.5, 0.5] / (1 - gain).

    An octave fades out where its lattice spacing drops below two pixel footprints ``fp``
    (surface units per pixel, per point), so the texture is as fine as the pixel allows at
    every distance and never aliases (aliased texture would not warp like the surface).
    """
    total = np.zeros(np.shape(u), np.float32)
    s, amp = np.float32(scale), np.float32(1.0)
    for k in range(octaves):
        w = np.clip(s / fp - 1.0, 0, 1) * amp
        if not np.any(w > 0):
            break  # finer octaves are all below the footprint
        total += w * (_noise(u, v, float(s), salt + 13.0 * k) - np.float32(0.5))
        s, amp = s / 2, amp * np.float32(gain)
    return total


def _cells(u, v, size: float, fp, salt: float):
    """Per-cell random value in [-0.5, 0.5) on a square grid of ``size`` (tiles, bricks, panes),
    faded to 0 where a cell is smaller than two footprints ``fp`` (no aliasing)."""
    i = np.floor(u / np.float32(size))
    j = np.floor(v / np.float32(size))
    return (_hash2(i, j, salt) - np.float32(0.5)) * np.clip(size / fp - 1.0, 0, 1)


def _box(x, lo: float, hi: float, footprint):
    """Box-filtered indicator of lo <= x < hi (a single pulse), filtered like :func:`_pulse`."""
    fp = np.maximum(footprint, np.float32(1e-4))
    return np.clip((np.minimum(x + fp / 2, hi) - np.maximum(x - fp / 2, lo)) / fp, 0, 1)


# ----------------------------------------------------------------------------- camera


@dataclass
class _Camera:
    f: float  # focal length in pixels
    cx: float  # principal point x (pixels)
    horizon: float  # row of the horizon (pixels)
    z: np.ndarray  # (T+1,) forward position (m)
    x: np.ndarray  # (T+1,) lateral position (m)
    pan: np.ndarray  # (T+1,) horizontal image shift (pixels)


# ----------------------------------------------------------------------------- layers
# Every layer offers (t: frame indices, broadcastable against the point coordinates x, y):
#   surface(t, x, y) -> (a, b, depth): surface coordinates and distance of the plane at (x, y);
#   depth(t, x, y)   -> distance where the layer covers the point, +inf elsewhere;
#   project(t, a, b) -> (x, y, depth): where surface point (a, b) appears in frame t;
#   shade(a, b, depth, t) -> (rgb (n, 3), label (n,)) for 1-D arrays of points it owns.
# Grid passes pass x as (1, 1, W) and y as (1, H, 1): the camera's projection is separable, so
# most per-layer arithmetic runs on rows or columns and only the final tests on whole frames.


class _Sky:
    def __init__(self, cam: _Camera, rng: np.random.Generator, width: int, height: int, rich: bool = False):
        self.cam, self.rich = cam, rich
        self.salt = float(rng.uniform(0, 100))
        self.width, self.height = width, height
        self.top = _rgb(*rng.uniform([60, 110, 170], [110, 150, 210]))
        self.low = _rgb(*rng.uniform([170, 190, 210], [215, 225, 235]))

    def surface(self, t, x, y):
        # At infinity only the pan moves the sky.
        a = x - self.cam.pan[t]
        return a, y + 0 * a, np.full(np.shape(a), SKY_DEPTH, np.float32)

    def depth(self, t, x, y):
        return SKY_DEPTH  # covers everything, behind everything

    def project(self, t, a, b):
        return a + self.cam.pan[t], b, np.full(np.shape(a), SKY_DEPTH, np.float32)

    def shade(self, a, b, depth, t):
        h = np.clip(b / max(self.cam.horizon, 1.0), 0, 1)
        rgb = _mix(self.top[None], self.low[None], h.astype(np.float32))
        clouds = _noise(a / self.width * 64, b / self.width * 64, 9.0, self.salt)
        if self.rich:  # more, broken-up clouds: the sky shows the pan too
            a64, b64 = a / self.width * 64, b / self.width * 64
            clouds = (clouds + 0.5 * _noise(a64, b64, 3.5, self.salt + 1)
                      + 0.35 * _noise(a64, b64, 1.8, self.salt + 2) - 0.25)
            rgb = _mix(rgb, np.ones(3, np.float32)[None], np.clip(clouds * 2.0 - 0.8, 0, 0.85))
        else:
            rgb = _mix(rgb, np.ones(3, np.float32)[None], np.clip(clouds * 1.6 - 0.8, 0, 0.7))
        return rgb, np.full(a.shape, _ID["sky"], np.int64)


class _Segments:
    """Random runs along the street (Z): building / wall / fence / hedge segments of one side."""

    KINDS = ("building", "wall", "fence", "vegetation")

    def __init__(self, rng: np.random.Generator, n: int = 48, backdrop: bool = False, rich: bool = False):
        # Segment starts snap to a 0.25 m grid so that a lookup table replaces a binary search.
        lengths = np.round(rng.uniform(6.0, 18.0, n) * 4) / 4
        self.start = np.concatenate([[-20.0], -20.0 + np.cumsum(lengths)]).astype(np.float32)
        bins = (self.start[-1] + 20.0) * 4 + 1
        self._table = np.clip(
            np.searchsorted(self.start, -20.0 + np.arange(int(bins)) / 4, side="right") - 1, 0, n - 1
        )
        if backdrop:
            kind = np.zeros(n, np.int64)
            height = rng.uniform(8.0, 30.0, n)
        else:
            kind = rng.choice(4, size=n, p=[0.62, 0.12, 0.1, 0.16])
            height = np.where(
                kind == 0, rng.uniform(5.0, 22.0, n),
                np.where(kind == 3, rng.uniform(2.0, 5.0, n), rng.uniform(1.0, 2.2, n)),
            )
        self.kind = kind
        self.height = height.astype(np.float32)
        base = np.array([[200, 190, 170], [170, 160, 150], [150, 140, 130], [190, 150, 120],
                         [140, 150, 160], [210, 200, 185], [120, 110, 105]], np.float32)
        self.color = (base[rng.integers(0, len(base), n)] * rng.uniform(0.85, 1.1, (n, 1))) / 255.0
        self.window_period = rng.uniform(2.6, 3.6, n).astype(np.float32)
        if rich:  # brick or plaster, storey height, window width, shop fronts on the ground floor
            self.brick = rng.random(n) < 0.45
            self.storey = rng.uniform(2.8, 3.5, n).astype(np.float32)
            self.window_share = rng.uniform(0.35, 0.65, n).astype(np.float32)
            self.shop = rng.random(n) < 0.5
            frames = np.array([[235, 235, 230], [60, 55, 50], [150, 120, 90], [200, 200, 205]], np.float32)
            self.trim = frames[rng.integers(0, len(frames), n)] / 255.0

    def kind_at(self, z):
        """Segment kind (0 building, 1 wall, 2 fence, 3 hedge) at street positions z (metres)."""
        return self.kind[self.index(z)]

    def index(self, z):
        """Segment index of street positions z (metres); non-finite z gives segment 0."""
        with np.errstate(invalid="ignore"):
            k = np.floor((z + np.float32(20.0)) * 4)
            # fmax / fmin clip like np.clip but map NaN to 0 (fmax ignores a NaN operand).
            k = np.fmin(np.fmax(k, 0), len(self._table) - 1)
        return self._table[k.astype(np.int64)]


class _Facade:
    """Vertical plane X = side * plane_x along the street; surface coords (a, b) = (Z, Y)."""

    def __init__(self, cam: _Camera, rng, side: int, plane_x: float, segments: _Segments, rich: bool = False):
        self.cam, self.side, self.plane_x, self.seg = cam, side, float(side * plane_x), segments
        self.salt = float(rng.uniform(0, 100))
        self.rich = rich

    def _plane_depth(self, t, x):
        cam = self.cam
        dx = x - cam.cx - cam.pan[t]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.float32(cam.f) * (self.plane_x - cam.x[t]) / dx

    def surface(self, t, x, y):
        cam = self.cam
        depth = self._plane_depth(t, x)
        return cam.z[t] + depth, CAMERA_HEIGHT - (y - cam.horizon) * depth / cam.f, depth

    def depth(self, t, x, y):
        cam = self.cam
        depth = self._plane_depth(t, x)  # per column in grid passes
        with np.errstate(invalid="ignore"):
            seg_h = self.seg.height[self.seg.index(cam.z[t] + depth)]
            ok = (depth > NEAR_CLIP) & (depth < FAR_CLIP)
            depth = np.where(ok, depth, np.inf).astype(np.float32)
            # 0 <= height above ground < segment height, as rows: y_top < y <= y_bottom
            y_bottom = cam.horizon + CAMERA_HEIGHT * cam.f / depth
            y_top = cam.horizon + (CAMERA_HEIGHT - seg_h) * cam.f / depth
            cover = (y <= y_bottom) & (y > y_top)
        return np.where(cover, depth, np.float32(np.inf))

    def project(self, t, a, b):
        cam = self.cam
        depth = a - cam.z[t]
        with np.errstate(divide="ignore", invalid="ignore"):
            x = cam.cx + cam.pan[t] + cam.f * (self.plane_x - cam.x[t]) / depth
            y = cam.horizon + cam.f * (CAMERA_HEIGHT - b) / depth
        return x, y, depth

    def shade(self, a, b, depth, t):
        if self.rich:
            return self._shade_rich(a, b, depth, t)
        seg = self.seg
        k = seg.index(a)
        kind = seg.kind[k]
        # Footprint of one pixel on the plane: vertical d/f, along the street d^2/(f * lateral).
        lateral = np.abs(self.plane_x - self.cam.x[t]).astype(np.float32)
        fp_y = depth / self.cam.f
        fp_z = depth * depth / (self.cam.f * np.maximum(lateral, 0.5))
        rgb = np.empty(a.shape + (3,), np.float32)
        zoff = a - seg.start[k]
        plain = np.nonzero(kind != 3)[0]
        if plain.size:
            n = _noise(a[plain], b[plain], 0.7, self.salt)
            rgb[plain] = seg.color[k[plain]] * (0.92 + 0.12 * n)[:, None]
        i = np.nonzero(kind == 0)[0]  # buildings: a grid of windows above the ground floor
        if i.size:
            per = seg.window_period[k[i]]
            win = _pulse(zoff[i] + per * 0.3, per, per * 0.5, fp_z[i]) * _pulse(b[i] - 0.9, 3.0, 1.5, fp_y[i])
            win = (win * (b[i] > 2.5))[:, None]
            glass = np.array([0.28, 0.33, 0.42], np.float32)
            rgb[i] = rgb[i] + (glass - rgb[i]) * win
        i = np.nonzero(kind == 1)[0]  # walls: brick courses
        if i.size:
            bricks = 0.6 * _pulse(b[i], 0.3, 0.05, fp_y[i])[:, None]
            rgb[i] = rgb[i] + (0.45 - rgb[i]) * bricks
        i = np.nonzero(kind == 2)[0]  # fences: vertical bars
        if i.size:
            bars = _pulse(zoff[i], 0.35, 0.12, fp_z[i])[:, None]
            rgb[i] = rgb[i] + (0.35 - rgb[i]) * bars
        i = np.nonzero(kind == 3)[0]  # hedges
        if i.size:
            leaf = _noise(a[i], b[i], 0.45, self.salt + 7)[:, None]
            rgb[i] = np.array([0.2, 0.38, 0.12], np.float32) + leaf * np.array([0.15, 0.2, 0.08], np.float32)
        names = np.array([_ID["building"], _ID["wall"], _ID["fence"], _ID["vegetation"]])
        return np.clip(rgb, 0, 1), names[kind]

    def _shade_rich(self, a, b, depth, t):
        """Rich facades: brick or grainy plaster, storeys, framed windows with per-pane
        reflections, shop fronts; brick walls, railed fences and leafy hedges."""
        seg = self.seg
        k = seg.index(a)
        kind = seg.kind[k]
        lateral = np.abs(self.plane_x - self.cam.x[t]).astype(np.float32)
        fp_y = depth / self.cam.f * _RICH_BLUR
        fp_z = depth * depth / (self.cam.f * np.maximum(lateral, 0.5)) * _RICH_BLUR
        fp = np.maximum(fp_y, fp_z)
        zoff = a - seg.start[k]
        rgb = np.empty(a.shape + (3,), np.float32)
        mortar = np.float32(0.78)

        def bricks(i, tone):
            # Staggered courses (0.25 m x 0.6 m): joints, per-brick tone, fine grain.
            course = np.floor(b[i] / np.float32(0.25))
            shift = np.where(course % 2 == 1, np.float32(0.3), np.float32(0))
            joints = np.maximum(_pulse(b[i], 0.25, 0.04, fp_y[i]),
                                _pulse(zoff[i] + shift, 0.6, 0.04, fp_z[i]))
            per_brick = _cells(zoff[i] + shift, b[i] * 2.4, 0.6, fp[i], self.salt + 5)
            grain = _fbm(a[i], b[i], fp[i], 0.3, 2, self.salt)
            base = seg.color[k[i]] * tone * (1 + 0.35 * per_brick + 0.25 * grain)[:, None]
            return base + (mortar - base) * (0.8 * joints)[:, None]

        i = np.nonzero(kind == 0)[0]  # buildings
        if i.size:
            ki = k[i]
            plaster = seg.color[ki] * (1 + 0.45 * _fbm(a[i], b[i], fp[i], 1.2, 4, self.salt))[:, None]
            brick = np.nonzero(seg.brick[ki])[0]
            if brick.size:
                plaster[brick] = bricks(i[brick], np.float32(0.9))
            per, storey, share = seg.window_period[ki], seg.storey[ki], seg.window_share[ki]
            # Windows from the first floor up; a frame around each; per-pane reflection.
            col = _pulse(zoff[i] + per * 0.3, per, per * share, fp_z[i])
            row = _pulse(b[i] - storey * 0.3, storey, storey * 0.5, fp_y[i])
            col_f = _pulse(zoff[i] + per * 0.3 + 0.12, per, per * share + 0.24, fp_z[i])
            row_f = _pulse(b[i] - storey * 0.3 + 0.12, storey, storey * 0.5 + 0.24, fp_y[i])
            upper = (b[i] > storey).astype(np.float32)
            win = col * row * upper
            frame = np.clip(col_f * row_f * upper - win, 0, 1)
            pane = _cells(zoff[i] + per * 0.3, b[i] - storey * 0.3, 1.0, fp[i] * 0.5, self.salt + 9)
            glass = np.array([0.25, 0.31, 0.42], np.float32) * (1 + 0.9 * pane)[:, None]
            rgb_i = plaster + (seg.trim[ki] - plaster) * frame[:, None]
            rgb_i = rgb_i + (glass - rgb_i) * win[:, None]
            # Storey bands (a ledge line at every floor).
            band = 0.6 * _pulse(b[i], storey, 0.12, fp_y[i]) * upper
            rgb_i = rgb_i + (seg.trim[ki] * 0.8 - rgb_i) * band[:, None]
            # Shop fronts: dark glass and doors on the ground floor, a fascia above.
            shop = seg.shop[ki] & (b[i] < storey)
            j = np.nonzero(shop)[0]
            if j.size:
                ij = i[j]
                glass_low = _box(b[ij], 0.25, 2.3, fp_y[ij]) * _pulse(zoff[ij], 4.0, 3.2, fp_z[ij])
                fascia = _box(b[ij], 2.4, 2.9, fp_y[ij])
                grain = _fbm(a[ij], b[ij], fp[ij], 0.8, 2, self.salt + 2)
                dark = np.array([0.12, 0.14, 0.17], np.float32) * (1 + 0.6 * grain)[:, None]
                rgb_j = rgb_i[j] + (dark - rgb_i[j]) * glass_low[:, None]
                rgb_i[j] = rgb_j + (seg.trim[ki[j]] * 0.6 - rgb_j) * fascia[:, None]
            rgb[i] = rgb_i
        i = np.nonzero(kind == 1)[0]  # walls: staggered bricks
        if i.size:
            rgb[i] = bricks(i, np.float32(1.0))
        i = np.nonzero(kind == 2)[0]  # fences: posts, bars and a rail, grainy wood or metal
        if i.size:
            base = seg.color[k[i]] * (1 + 0.4 * _fbm(a[i], b[i], fp[i], 0.5, 3, self.salt + 4))[:, None]
            bars = np.maximum(_pulse(zoff[i], 0.35, 0.12, fp_z[i]), _pulse(b[i] - 0.2, 0.8, 0.1, fp_y[i]))
            rgb[i] = base + (0.25 - base) * bars[:, None]
        i = np.nonzero(kind == 3)[0]  # hedges
        if i.size:
            leaf = 0.5 + _fbm(a[i], b[i], fp[i], 0.8, 4, self.salt + 7)[:, None]
            rgb[i] = np.array([0.16, 0.32, 0.1], np.float32) + leaf * np.array([0.22, 0.3, 0.12], np.float32)
        names = np.array([_ID["building"], _ID["wall"], _ID["fence"], _ID["vegetation"]])
        return np.clip(rgb, 0, 1), names[kind]


class _Ground:
    """The plane Y = 0; surface coords (a, b) = (X, Z)."""

    def __init__(self, cam: _Camera, rng, segments: tuple[_Segments, _Segments], rich: bool = False):
        self.cam, self.segments = cam, segments
        self.salt = float(rng.uniform(0, 100))
        self.road = _rgb(*rng.uniform([70, 70, 75], [105, 100, 105]))
        self.walk = _rgb(*rng.uniform([150, 140, 135], [190, 180, 175]))
        self.dash = float(rng.uniform(2.0, 4.0))
        self.rich = rich
        if rich:
            self.road = self.road * np.float32(1.25)  # lighter asphalt: its grain shows
            # Zebra crossings (street positions, 4 m deep), the road seam spacing, tile size.
            self.zebra = rng.uniform(4.0, 40.0, 2).astype(np.float32)
            self.zebra[1] = self.zebra[1] if rng.random() < 0.6 else -1e4  # a second one, often
            self.seam = float(rng.uniform(4.0, 9.0))
            self.tile = float(rng.uniform(0.4, 0.7))

    def surface(self, t, x, y):
        cam = self.cam
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = np.float32(cam.f * CAMERA_HEIGHT) / (y - cam.horizon)
        X = cam.x[t] + (x - cam.cx - cam.pan[t]) * depth / cam.f
        return X, cam.z[t] + depth, depth

    def depth(self, t, x, y):
        # The ground's distance depends on the row only (and not on the frame).
        below = y - self.cam.horizon
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = np.float32(self.cam.f * CAMERA_HEIGHT) / below
            ok = (below > 0) & (depth > NEAR_CLIP) & (depth < FAR_CLIP)
        return np.where(ok, depth, np.inf).astype(np.float32)

    def project(self, t, a, b):
        cam = self.cam
        depth = b - cam.z[t]
        with np.errstate(divide="ignore", invalid="ignore"):
            x = cam.cx + cam.pan[t] + cam.f * (a - cam.x[t]) / depth
            y = cam.horizon + cam.f * CAMERA_HEIGHT / depth
        return x, y, depth

    def shade(self, a, b, depth, t):
        if self.rich:
            return self._shade_rich(a, b, depth, t)
        # Footprint of one pixel on the ground: across d/f, along the street d^2/(f * height).
        fp_x = depth / self.cam.f
        fp_z = depth * depth / (self.cam.f * CAMERA_HEIGHT)
        absx = np.abs(a)
        grain = 0.9 + 0.2 * _noise(a, b, 0.5, self.salt)
        rgb = np.empty(a.shape + (3,), np.float32)
        label = np.full(a.shape, _ID["road"], np.int64)
        road = absx < ROAD_HALF_WIDTH
        i = np.nonzero(road)[0]
        if i.size:  # lane marks: dashed centre line, solid edges (filtered: they fade with distance)
            centre = _pulse(a[i] + 0.08, 1e3, 0.16, fp_x[i]) * _pulse(b[i], self.dash * 2, self.dash, fp_z[i])
            edge = _pulse(absx[i] - ROAD_HALF_WIDTH + 0.35, 1e3, 0.15, fp_x[i])
            mark = np.minimum(centre + edge, 1)[:, None]
            base = self.road * grain[i][:, None]
            rgb[i] = base + (0.92 - base) * mark
        i = np.nonzero(~road)[0]
        if i.size:  # sidewalk tiles
            tiles = np.maximum(_pulse(a[i], 0.8, 0.06, fp_x[i]), _pulse(b[i], 0.8, 0.06, fp_z[i]))
            base = self.walk * grain[i][:, None]
            rgb[i] = base + (0.5 - base) * (0.5 * tiles)[:, None]
            label[i] = _ID["sidewalk"]
            # grass verge in front of hedges: the outer 1.6 m of the sidewalk
            j = i[absx[i] > FACADE_X - 1.6]
            if j.size:
                kinds = np.where(a[j] > 0, self.segments[1].kind_at(b[j]), self.segments[0].kind_at(b[j]))
                j = j[kinds == 3]
                if j.size:
                    g = _noise(a[j], b[j], 0.3, self.salt + 3)[:, None]
                    rgb[j] = _GRASS + g * np.array([0.1, 0.15, 0.05], np.float32)
                    label[j] = _ID["terrain"]
        return np.clip(rgb, 0, 1), label

    def _shade_rich(self, a, b, depth, t):
        """Rich ground: asphalt grain at every scale the pixel resolves, repair patches, seams,
        lane marks and zebra crossings; kerb stones; sidewalk tiles of varying tone; grass."""
        fp_x = depth / self.cam.f * _RICH_BLUR
        fp_z = depth * depth / (self.cam.f * CAMERA_HEIGHT) * _RICH_BLUR
        fp = np.maximum(fp_x, fp_z)  # isotropic textures use the longer axis: no aliasing
        absx = np.abs(a)
        rgb = np.empty(a.shape + (3,), np.float32)
        label = np.full(a.shape, _ID["road"], np.int64)
        road = absx < ROAD_HALF_WIDTH
        i = np.nonzero(road)[0]
        if i.size:
            ai, bi, fpi = a[i], b[i], fp[i]
            grain = 1 + 0.95 * _fbm(ai, bi, fpi, 1.6, 5, self.salt, gain=0.85)
            # Patches of newer (darker) and worn (lighter) asphalt with soft edges.
            patch = _noise(ai, bi, 3.0, self.salt + 11)
            tone = 1 - 0.3 * np.clip((patch - 0.62) * 8, 0, 1) + 0.2 * np.clip((0.3 - patch) * 8, 0, 1)
            base = self.road * (grain * tone)[:, None]
            seam = 0.5 * _pulse(bi, self.seam, 0.06, fp_z[i])
            base = base + (0.12 - base) * seam[:, None]
            centre = _pulse(ai + 0.08, 1e3, 0.16, fp_x[i]) * _pulse(bi, self.dash * 2, self.dash, fp_z[i])
            edge = _pulse(absx[i] - ROAD_HALF_WIDTH + 0.35, 1e3, 0.15, fp_x[i])
            zebra = _pulse(ai + 0.25, 1.0, 0.5, fp_x[i]) * np.maximum(
                _box(bi, float(self.zebra[0]), float(self.zebra[0]) + 4, fp_z[i]),
                _box(bi, float(self.zebra[1]), float(self.zebra[1]) + 4, fp_z[i]))
            worn = 0.85 + 0.3 * _fbm(ai, bi, fpi, 0.4, 2, self.salt + 3)
            mark = np.minimum(centre + edge + zebra, 1) * worn
            rgb[i] = base + (0.92 - base) * mark[:, None]
        i = np.nonzero(~road)[0]
        if i.size:
            ai, bi, fpi = a[i], b[i], fp[i]
            kerb = (np.abs(ai) < ROAD_HALF_WIDTH + 0.3)
            size = np.where(kerb, np.float32(1.0), np.float32(self.tile))
            tone = (1 + 0.4 * _cells(ai, bi, self.tile, fpi, self.salt + 17)
                    + 0.3 * _fbm(ai, bi, fpi, 0.6, 3, self.salt + 19))
            base = np.where(kerb[:, None], np.float32(0.72), self.walk) * tone[:, None]
            joints = np.maximum(_pulse(ai, self.tile, 0.04, fp_x[i]), _pulse(bi, size, 0.04, fp_z[i]))
            joints = np.maximum(joints, _pulse(np.abs(ai) - ROAD_HALF_WIDTH - 0.3, 1e3, 0.05, fp_x[i]))
            rgb[i] = base + (0.3 - base) * (0.7 * joints)[:, None]
            label[i] = _ID["sidewalk"]
            j = i[absx[i] > FACADE_X - 1.6]  # grass verge in front of hedges
            if j.size:
                kinds = np.where(a[j] > 0, self.segments[1].kind_at(b[j]), self.segments[0].kind_at(b[j]))
                j = j[kinds == 3]
                if j.size:
                    g = 0.5 + _fbm(a[j], b[j], fp[j], 0.6, 4, self.salt + 23)[:, None]
                    rgb[j] = _GRASS * 0.8 + g * np.array([0.2, 0.3, 0.1], np.float32)
                    label[j] = _ID["terrain"]
        return np.clip(rgb, 0, 1), label


# Billboard shapes: (u, v) in metres, u across (0 = centre), v up from the ground.


def _rect(u, v, u0, u1, v0, v1):
    return (u >= u0) & (u < u1) & (v >= v0) & (v < v1)


def _ellipse(u, v, cu, cv, ru, rv):
    return ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 < 1


def _pick(arr, index, shape):
    """Values of ``arr`` (broadcastable to ``shape``) at the integer ``index`` tuple into ``shape``."""
    arr = np.asarray(arr)
    if arr.ndim == 0:
        return np.broadcast_to(arr, index[0].shape)
    lead = len(shape) - arr.ndim
    return arr[tuple(i if n > 1 else 0 for i, n in zip(index[lead:], arr.shape, strict=True))]


class _Billboard:
    """An upright plane facing the camera, standing on the ground, moving at constant velocity.

    Subclasses define ``half_width``, ``top`` (metres) and ``paint(u, v, fp) -> (cover, rgb, label)``.
    """

    half_width = 1.0
    top = 2.0

    def __init__(self, cam: _Camera, x0: float, z0: float, vx: float = 0.0, vz: float = 0.0):
        self.cam = cam
        t = np.arange(len(cam.z), dtype=np.float32)
        self.x = (x0 + vx * t).astype(np.float32)  # (T+1,) centre X
        self.dist = (z0 + vz * t - cam.z).astype(np.float32)  # (T+1,) distance to the camera
        self._finish_init()

    def _finish_init(self) -> None:
        """Screen rectangle of the bounding box in every frame, padded by 0.01 px so the cheap
        rectangle test never rejects a point the exact test in surface coordinates accepts."""
        cam, d = self.cam, self.dist
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = cam.cx + cam.pan + cam.f * (self.x - cam.x) / d
            half = cam.f * self.half_width / d
            self.x_lo, self.x_hi = xc - half - 0.01, xc + half + 0.01
            self.y_lo = cam.horizon + cam.f * (CAMERA_HEIGHT - self.top) / d - 0.01
            self.y_hi = cam.horizon + cam.f * CAMERA_HEIGHT / d + 0.01
        self.visible = d > NEAR_CLIP
        for arr in (self.x_lo, self.x_hi, self.y_lo, self.y_hi):
            arr[~self.visible] = np.nan  # never inside

    def surface(self, t, x, y):
        cam, d = self.cam, self.dist[t]
        u = cam.x[t] + (x - cam.cx - cam.pan[t]) * d / cam.f - self.x[t]
        v = CAMERA_HEIGHT - (y - cam.horizon) * d / cam.f
        return u, v, d + 0 * u

    def depth(self, t, x, y):
        box = (x >= self.x_lo[t]) & (x <= self.x_hi[t]) & (y >= self.y_lo[t]) & (y <= self.y_hi[t])
        shape = np.broadcast_shapes(np.shape(t), np.shape(x), np.shape(y))
        out = np.full(shape, np.inf, np.float32)
        hits = np.nonzero(np.broadcast_to(box, shape))
        if hits[0].size == 0:
            return out
        # The exact shape, in surface coordinates, only where the rectangle hits (few points).
        tt, xx, yy = (_pick(arr, hits, shape) for arr in (np.asarray(t), x, y))
        u, v, d = self.surface(tt, xx, yy)
        cover = self.covers(u, v)
        out[tuple(h[cover] for h in hits)] = d[cover]
        return out

    def project(self, t, a, b):
        cam, d = self.cam, self.dist[t]
        with np.errstate(divide="ignore", invalid="ignore"):
            x = cam.cx + cam.pan[t] + cam.f * (a + self.x[t] - cam.x[t]) / d
            y = cam.horizon + cam.f * (CAMERA_HEIGHT - b) / d
        return x, y, d + 0 * a

    def covers(self, u, v):
        box = (np.abs(u) < self.half_width) & (v >= 0) & (v < self.top)
        return box & self.paint(u, v, None)[0]

    def shade(self, a, b, depth, t):
        fp = depth / self.cam.f
        if getattr(self, "rich", False):
            fp = fp * _RICH_BLUR
        _, rgb, label = self.paint(a, b, fp)
        return np.clip(rgb, 0, 1), label

    def on_screen(self, width: int, height: int) -> np.ndarray:
        """(T+1,) bool: whether the bounding box can touch the frame (to skip work)."""
        with np.errstate(invalid="ignore"):
            return (self.visible & (self.x_hi > -1) & (self.x_lo < width)
                    & (self.y_hi > -1) & (self.y_lo < height))


class _Car(_Billboard):
    """Car / truck / bus seen from behind (``side=False``) or from the side (crossing)."""

    def __init__(self, cam, rng, kind: str, side_view: bool, rich: bool = False, **motion):
        self.kind, self.side_view, self.rich = kind, side_view, rich
        dims = {"car": (1.8, 4.3, 1.5), "van": (2.0, 5.2, 2.2), "truck": (2.4, 7.0, 3.2),
                "bus": (2.5, 11.0, 3.1)}[kind]
        w_back, length, self.top = dims
        self.half_width = (length if side_view else w_back) / 2
        palette = np.array([[180, 30, 30], [30, 60, 160], [230, 230, 230], [40, 40, 45],
                            [150, 150, 160], [200, 170, 40], [40, 120, 70]], np.float32) / 255
        self.body = palette[rng.integers(len(palette))] * np.float32(rng.uniform(0.85, 1.1))
        if rich:
            self.salt = float(rng.uniform(0, 100))
            self.stripe = palette[rng.integers(len(palette))] * np.float32(0.8)
        super().__init__(cam, **motion)

    def paint(self, u, v, fp):
        hw, top = self.half_width, self.top
        au = np.abs(u)
        wheel_r = 0.33 if self.kind in ("car", "van") else 0.5
        if self.kind == "car":
            body = _rect(u, v, -hw, hw, wheel_r * 0.9, top * 0.6)
            cabin_hw = hw * (0.85 - 0.35 * np.clip((v - top * 0.6) / (top * 0.4), 0, 1))
            if self.side_view:
                cabin = (np.abs(u + 0.2) < cabin_hw * 0.62) & (v >= top * 0.6) & (v < top)
            else:
                cabin = (au < cabin_hw) & (v >= top * 0.6) & (v < top)
            shape = body | cabin
        else:
            shape = _rect(u, v, -hw, hw, wheel_r * 0.9, top)
            if self.kind == "truck" and self.side_view:  # lower cab in front
                shape &= ~_rect(u, v, hw - 2.0, hw, top * 0.65, top)
        if self.side_view:
            wheels = _ellipse(u, v, -hw * 0.7, wheel_r, wheel_r, wheel_r) | _ellipse(
                u, v, hw * 0.7, wheel_r, wheel_r, wheel_r)
        else:
            wheels = _rect(u, v, -hw + 0.05, -hw + 0.45, 0, wheel_r * 1.2) | _rect(
                u, v, hw - 0.45, hw - 0.05, 0, wheel_r * 1.2)
        cover = shape | wheels
        if fp is None:
            return cover, None, None
        fp = np.asarray(fp, np.float32)
        rgb = np.broadcast_to(self.body, u.shape + (3,)).copy()
        shine = np.clip(1.05 - 0.25 * (v / top), 0.7, 1.1)[:, None]
        rgb *= shine
        glass = np.array([0.15, 0.2, 0.28], np.float32)
        if self.kind == "car":
            win = (v > top * 0.64) & (v < top * 0.93) & (au < cabin_hw - 0.12)
        elif self.kind == "bus":
            win = (v > top * 0.5) & (v < top * 0.85) & (_pulse(u + hw, 1.4, 1.05, fp) > 0.5)
        elif self.kind == "van":
            across = (u > hw * 0.2) if self.side_view else (au < hw * 0.8)
            win = (v > top * 0.6) & (v < top * 0.9) & across
        else:
            win = (v > top * 0.72) & (v < top * 0.92) & (au < hw * 0.5) & (not self.side_view)
        rgb = np.where(win[:, None], glass, rgb)
        lights = (~np.asarray(self.side_view)) & (au > hw - 0.35) & (v > 0.7) & (v < 0.95)
        rgb = np.where(lights[:, None], np.array([0.85, 0.1, 0.08], np.float32), rgb)
        rgb = np.where(wheels[:, None] & ~win[:, None], np.array([0.08, 0.08, 0.09], np.float32), rgb)
        if self.rich:
            rgb = self._rich_details(u, v, fp, rgb, win, wheels)
        label = np.full(u.shape, _ID["car" if self.kind == "van" else self.kind], np.int64)
        return cover, rgb, label

    def _rich_details(self, u, v, fp, rgb, win, wheels):
        """Paint grain, a side stripe, door / panel seams, a number plate, hubcaps and glass
        reflections: every part of a vehicle shows its motion to a photometric loss."""
        hw, top = self.half_width, self.top
        body = ~win & ~wheels
        grain = 1 + 0.25 * _fbm(u, v, fp, 0.6, 3, self.salt)
        rgb = rgb * np.where(body, grain, 1)[:, None]
        stripe = _box(v, top * 0.38, top * 0.46, fp) * body
        rgb = rgb + (self.stripe - rgb) * stripe[:, None]
        if self.side_view:  # door seams and hubcaps
            seams = _pulse(u + hw, max(hw * 0.5, 0.8), 0.05, fp) * body * (v < top * 0.6)
            rgb = rgb * (1 - 0.6 * seams)[:, None]
            r = 0.33 if self.kind in ("car", "van") else 0.5
            hub = (_ellipse(u, v, -hw * 0.7, r, r * 0.45, r * 0.45)
                   | _ellipse(u, v, hw * 0.7, r, r * 0.45, r * 0.45))
            rgb = np.where(hub[:, None], np.array([0.7, 0.7, 0.72], np.float32), rgb)
        else:  # number plate and bumper
            plate = (np.abs(u) < 0.26) & (v > 0.45) & (v < 0.6)
            rgb = np.where(plate[:, None], np.array([0.92, 0.92, 0.85], np.float32), rgb)
            bumper = _box(v, 0.3, 0.42, fp) * body
            rgb = rgb + (0.15 - rgb) * bumper[:, None]
        shine = 0.5 + _fbm(u * 0.5 + v, v, fp, 0.8, 2, self.salt + 1)
        return np.where(win[:, None], rgb * (0.8 + 0.8 * shine)[:, None], rgb)


class _Person(_Billboard):
    """A pedestrian, or a cyclist (rider on a bicycle) seen from the side."""

    def __init__(self, cam, rng, cyclist: bool, rich: bool = False, **motion):
        self.cyclist, self.rich = cyclist, rich
        self.half_width = 0.9 if cyclist else 0.3
        self.top = 1.8 if cyclist else float(rng.uniform(1.55, 1.9))
        self.shirt = rng.uniform(0.1, 0.9, 3).astype(np.float32)
        self.pants = rng.uniform(0.05, 0.35, 3).astype(np.float32)
        self.skin = np.array([0.85, 0.65, 0.5], np.float32) * np.float32(rng.uniform(0.55, 1.05))
        if rich:
            self.stripes = rng.uniform(0.1, 0.9, 3).astype(np.float32)
            self.stripe_period = float(rng.uniform(0.08, 0.2))
        super().__init__(cam, **motion)

    def paint(self, u, v, fp):
        top = self.top
        if self.cyclist:
            base = 0.75  # the rider sits above the bicycle
            wheels = _ellipse(u, v, -0.55, 0.33, 0.33, 0.33) | _ellipse(u, v, 0.55, 0.33, 0.33, 0.33)
            frame = _rect(u, v, -0.55, 0.55, 0.55, 0.68) | _rect(u, v, -0.05, 0.05, 0.3, 0.8)
            bike = wheels | frame
        else:
            base = 0.0
            bike = np.zeros(u.shape, bool)
        head = _ellipse(u, v, 0.0, top - 0.12, 0.11, 0.12)
        torso = _rect(u, v, -0.21, 0.21, base + (top - base) * 0.48, top - 0.22)
        legs = _rect(u, v, -0.19, -0.03, base, base + (top - base) * 0.5) | _rect(
            u, v, 0.03, 0.19, base, base + (top - base) * 0.5)
        body = head | torso | legs
        cover = body | bike
        if fp is None:
            return cover, None, None
        rgb = np.broadcast_to(self.pants, u.shape + (3,)).copy()
        shirt = self.shirt
        if self.rich:  # striped shirts, hair
            stripes = _pulse(v, self.stripe_period * 2, self.stripe_period, fp)[:, None]
            shirt = self.shirt + (self.stripes - self.shirt) * stripes
        rgb = np.where(torso[:, None], shirt, rgb)
        rgb = np.where(head[:, None], self.skin, rgb)
        if self.rich:
            hair = head & (v > top - 0.1)
            rgb = np.where(hair[:, None], np.array([0.15, 0.1, 0.06], np.float32), rgb)
        rgb = np.where((bike & ~body)[:, None], np.array([0.15, 0.15, 0.18], np.float32), rgb)
        person = _ID["rider"] if self.cyclist else _ID["person"]
        label = np.where(bike & ~body, _ID["bicycle"], person).astype(np.int64)
        return cover, rgb, label


class _Pole(_Billboard):
    """A pole carrying a traffic sign or a traffic light."""

    half_width = 0.4
    top = 4.4

    def __init__(self, cam, rng, light: bool, **placement):
        self.light = light
        self.sign_color = np.array([[0.9, 0.85, 0.1], [0.85, 0.15, 0.1], [0.1, 0.3, 0.8]],
                                   np.float32)[rng.integers(3)]
        super().__init__(cam, **placement)

    def paint(self, u, v, fp):
        pole = _rect(u, v, -0.07, 0.07, 0, 3.6)
        head = _rect(u, v, -0.22, 0.22, 3.3, 4.4) if self.light else _ellipse(u, v, 0, 3.85, 0.38, 0.38)
        cover = pole | head
        if fp is None:
            return cover, None, None
        rgb = np.broadcast_to(np.array([0.45, 0.45, 0.48], np.float32), u.shape + (3,)).copy()
        if self.light:
            lamps = _ellipse(u, v, 0, 4.2, 0.12, 0.12) | _ellipse(u, v, 0, 3.85, 0.12, 0.12) | \
                _ellipse(u, v, 0, 3.5, 0.12, 0.12)
            rgb = np.where(head[:, None], np.array([0.12, 0.12, 0.12], np.float32), rgb)
            rgb = np.where(lamps[:, None], np.array([0.9, 0.75, 0.2], np.float32), rgb)
            name = "traffic light"
        else:
            ring = ~_ellipse(u, v, 0, 3.85, 0.28, 0.28)
            rgb = np.where(head[:, None], np.where(ring[:, None], 0.95, self.sign_color), rgb)
            name = "traffic sign"
        label = np.where(head, _ID[name], _ID["pole"]).astype(np.int64)
        return cover, rgb, label


class _Tree(_Billboard):
    half_width = 1.6
    top = 5.6

    def __init__(self, cam, rng, rich: bool = False, **placement):
        self.salt = float(rng.uniform(0, 100))
        self.rich = rich
        super().__init__(cam, **placement)

    def paint(self, u, v, fp):
        trunk = _rect(u, v, -0.14, 0.14, 0, 2.8)
        crown = _ellipse(u, v, 0, 4.0, 1.55, 1.6)
        cover = trunk | crown
        if fp is None:
            return cover, None, None
        if self.rich:  # leaves at every scale the pixel resolves
            n = np.clip(0.5 + 1.2 * _fbm(u, v, fp, 0.8, 4, self.salt), 0, 1)
        else:
            n = _noise(u, v, 0.35, self.salt)
        leaves = np.stack([0.18 + 0.15 * n, 0.35 + 0.25 * n, 0.1 + 0.08 * n], -1).astype(np.float32)
        rgb = np.where(crown[:, None], leaves, np.array([0.35, 0.25, 0.15], np.float32))
        return cover, rgb, np.full(u.shape, _ID["vegetation"], np.int64)


# ----------------------------------------------------------------------------- the scene


# Sub-pixel sample positions for edge anti-aliasing: a rotated 2x2 pattern ("RGSS"), which
# resolves near-horizontal and near-vertical edges better than the axis-aligned grid.
_AA_OFFSETS = np.array([[-0.125, -0.375], [0.375, -0.125], [-0.375, 0.125], [0.125, 0.375]], np.float32)


class _Draws:
    """The random draws of one scene, split into LAYOUT and MOTION.

    The layout (what stands where and how it looks: everything frame 0 shows) always comes from
    the clip's stream ``rng``. A motion draw (camera speed, drift, pan; object velocities) is
    also taken from that stream, so that the stream stays in step; for an alternative future
    (``future`` not None) the value used comes instead from a second stream seeded by
    (seed, future). The layout, hence frame 0, is then identical in every future.
    """

    def __init__(self, seed: int, future: int | None = None):
        self.rng = np.random.default_rng(seed)
        self.alt = None if future is None else np.random.default_rng([seed, 7919, future])

    def motion(self, draw):
        """``draw(rng)`` from the clip's stream, or from the future's stream when there is one."""
        value = draw(self.rng)
        return value if self.alt is None else draw(self.alt)


@dataclass(frozen=True)
class _PeopleStyle:
    """How a style places pedestrians and cyclists (world units: metres, metres per frame)."""

    p_cyclist: float
    p_crossing: float
    cross_x: tuple[float, float]
    cross_z: tuple[float, float]
    cross_speed: tuple[float, float]
    walk_z: tuple[float, float]
    walk_speed: tuple[float, float]
    rich: bool


_CLASSIC_PEOPLE = _PeopleStyle(0.25, 0.3, (-5, 5), (5, 25), (0.05, 0.25), (4, 30), (0.05, 0.15), False)
#: nearer and more often crossing: more occlusion of the background by people
_RICH_PEOPLE = _PeopleStyle(0.3, 0.5, (-6, 6), (3, 16), (0.06, 0.3), (3, 25), (0.05, 0.2), True)


def _people(cam, rng, mo, m: float, count: int, style: _PeopleStyle) -> list:
    """``count`` pedestrians and cyclists, crossing the street or along a sidewalk (cyclists ride at
    the road's edge). Draws from ``rng`` in a fixed order, so a style's clips never change."""
    people = []
    for _ in range(count):
        cyclist = rng.random() < style.p_cyclist
        if rng.random() < style.p_crossing:
            motion = dict(x0=rng.uniform(*style.cross_x), z0=rng.uniform(*style.cross_z),
                          vx=mo(lambda r: r.choice([-1, 1]) * r.uniform(*style.cross_speed))
                          * m * (1 + 2 * cyclist))
        else:
            side = rng.choice([-1, 1])
            x0 = side * (ROAD_HALF_WIDTH - 0.8 if cyclist else ROAD_HALF_WIDTH + rng.uniform(0.6, 2.4))
            motion = dict(x0=x0, z0=rng.uniform(*style.walk_z),
                          vz=mo(lambda r: r.choice([-1, 1]) * r.uniform(*style.walk_speed))
                          * m * (1 + 2 * cyclist))
        people.append(_Person(cam, rng, cyclist=cyclist, rich=style.rich, **motion))
    return people


def _groups(owner: np.ndarray):
    """(layer index, flat positions owned by it) for each layer present in ``owner`` (1-D), in
    increasing layer order, positions ascending."""
    order = np.argsort(owner, kind="stable")
    ids, starts = np.unique(owner[order], return_index=True)
    bounds = [*starts[1:], owner.size]
    return [(int(i), order[lo:hi]) for i, lo, hi in zip(ids, starts, bounds, strict=True)]


def _scenery(cam: _Camera, rng: np.random.Generator, c: SceneConfig, segs: tuple[_Segments, _Segments],
             back: tuple[_Segments, _Segments], rich: bool, poles: tuple[int, int],
             pole_z: tuple[float, float], trees: tuple[int, int], tree_z: tuple[float, float]) -> list:
    """The static layers of a street, in this draw order (both styles' datasets depend on it): sky,
    ground, the facades and backdrops (left then right), then per side (left, right) street
    poles on the kerb and trees in front of the facades. ``poles`` / ``trees``: the
    ``rng.integers`` range of their count per side; ``pole_z`` / ``tree_z``: the range of their
    distance (metres)."""
    layers: list = [_Sky(cam, rng, c.width, c.height, rich=rich), _Ground(cam, rng, segs, rich=rich)]
    for plane_x, pair in ((FACADE_X, segs), (BACKDROP_X, back)):
        for side, seg in zip((-1, 1), pair, strict=True):
            layers.append(_Facade(cam, rng, side, plane_x, seg, rich=rich))
    kerb = ROAD_HALF_WIDTH + 0.5
    for side in (-1, 1):
        for _ in range(rng.integers(*poles)):
            layers.append(_Pole(cam, rng, light=rng.random() < 0.4, x0=side * kerb, z0=rng.uniform(*pole_z)))
        for _ in range(rng.integers(*trees)):
            layers.append(_Tree(cam, rng, x0=side * (FACADE_X - 1.2), z0=rng.uniform(*tree_z), rich=rich))
    return layers


class _Scene:
    def __init__(self, config: SceneConfig, seed: int, future: int | None = None):
        self.config = config
        draws = _Draws(seed, future)
        if config.style == "rich":
            self.layers = self._rich_layers(config, draws)
        else:
            self.layers = self._classic_layers(config, draws)
        n = config.frames + 1
        # Per layer, the frames in which it can touch the picture (billboards leave the view).
        self.active = [
            layer.on_screen(config.width, config.height) if isinstance(layer, _Billboard)
            else np.ones(n, bool)
            for layer in self.layers
        ]
        # Surfaces (sky, ground, facades) come first in the layer list, billboards after: the
        # z-buffer tests the former on whole frames and the latter only near their screen boxes.
        self.n_planes = next(i for i, layer in enumerate(self.layers) if isinstance(layer, _Billboard))
        if any(not isinstance(layer, _Billboard) for layer in self.layers[self.n_planes:]):
            raise AssertionError("planes must precede billboards in the layer list")

    def _classic_layers(self, c: SceneConfig, draws: _Draws) -> list:
        # The draw order here IS the classic dataset: change nothing (shipped checkpoints, tests).
        rng, mo = draws.rng, draws.motion
        n = c.frames + 1
        t = np.arange(n, dtype=np.float32)
        m = c.motion
        moving = mo(lambda r: r.random() < 0.85)
        speed = mo(lambda r: r.uniform(0.15, 0.55)) * m * moving  # metres per frame
        drift = mo(lambda r: r.uniform(-0.04, 0.04)) * m
        pan = mo(lambda r: r.uniform(-0.004, 0.004)) * c.width * m  # pixels per frame
        f = c.focal * c.width
        self.cam = cam = _Camera(
            f=float(f), cx=(c.width - 1) / 2, horizon=c.horizon * c.height,
            z=(speed * t).astype(np.float32), x=(1.9 + drift * t).astype(np.float32),
            pan=(pan * t).astype(np.float32),
        )
        segs = (_Segments(rng), _Segments(rng))  # left (X < 0), right (X > 0)
        back = (_Segments(rng, backdrop=True), _Segments(rng, backdrop=True))
        layers = _scenery(cam, rng, c, segs, back, rich=False, poles=(1, 3), pole_z=(6, 45),
                          trees=(0, 3), tree_z=(5, 50))

        for _ in range(rng.integers(1, c.max_cars + 1)):
            kind = rng.choice(["car", "truck", "bus"], p=[0.76, 0.12, 0.12])
            role = rng.choice(["ahead", "oncoming", "parked", "crossing"], p=[0.35, 0.3, 0.2, 0.15])
            if role == "ahead":  # same lane, own speed: moves slowly relative to the camera
                motion = dict(x0=2.0, z0=rng.uniform(7, 40),
                              vz=speed + mo(lambda r: r.uniform(-0.3, 0.3)) * m)
            elif role == "oncoming":
                motion = dict(x0=-2.0, z0=rng.uniform(8, 45), vz=-mo(lambda r: r.uniform(0.2, 0.7)) * m)
            elif role == "parked":
                side = rng.choice([-1, 1])
                motion = dict(x0=side * (ROAD_HALF_WIDTH - 1.1), z0=rng.uniform(5, 40))
            else:
                motion = dict(x0=rng.uniform(-8, 8), z0=rng.uniform(10, 30),
                              vx=mo(lambda r: r.choice([-1, 1]) * r.uniform(0.2, 0.6)) * m)
            layers.append(_Car(cam, rng, kind, side_view=role == "crossing", **motion))

        layers += _people(cam, rng, mo, m, rng.integers(0, c.max_people + 1), _CLASSIC_PEOPLE)
        return layers  # layer 0 is the sky: behind everything, covering everything

    def _rich_layers(self, c: SceneConfig, draws: _Draws) -> list:
        """The rich street: textured surfaces, many near objects crossing each other's paths,
        and a camera whose motion varies per clip (stopped, slow to fast, braking or speeding
        up, drifting across lanes, turning). No layout draw may depend on a motion value
        (see :class:`_Draws`): frame 0 must not change between futures."""
        rng, mo = draws.rng, draws.motion
        T, n, m = c.frames, c.frames + 1, c.motion
        t = np.arange(n, dtype=np.float32)
        f = c.focal * c.width
        cam_x0 = rng.uniform(1.0, 3.0)  # lateral start: anywhere in the right lane
        # Camera motion. One clip in six stands still (objects still move); the others drive
        # at 0.05 .. 1.0 m/frame, with an acceleration that never reverses the car.
        stopped = mo(lambda r: r.random() < 0.16)
        v0 = mo(lambda r: r.uniform(0.05, 1.0)) * m * (not stopped)
        acc = mo(lambda r: r.uniform(-0.12, 0.12)) * m * (not stopped)
        acc = max(acc, -v0 / max(T, 1))
        drift = mo(lambda r: r.uniform(-0.12, 0.12)) * m * (not stopped)
        turning = mo(lambda r: r.random() < 0.35)
        pan_rate = mo(lambda r: r.uniform(-0.022, 0.022) if turning else r.uniform(-0.004, 0.004))
        pan_rate *= c.width * m * (not stopped)
        self.cam = cam = _Camera(
            f=float(f), cx=(c.width - 1) / 2, horizon=c.horizon * c.height,
            z=(v0 * t + 0.5 * acc * t * t).astype(np.float32),
            x=(cam_x0 + drift * t).astype(np.float32),
            pan=(pan_rate * t).astype(np.float32),
        )
        mean_speed = v0 + 0.5 * acc * T
        segs = (_Segments(rng, rich=True), _Segments(rng, rich=True))
        back = (_Segments(rng, backdrop=True, rich=True), _Segments(rng, backdrop=True, rich=True))
        layers = _scenery(cam, rng, c, segs, back, rich=True, poles=(1, 4), pole_z=(4, 40),
                          trees=(0, 4), tree_z=(4, 45))

        for _ in range(rng.integers(max(1, c.max_cars // 3), c.max_cars + 1)):
            kind = rng.choice(["car", "van", "truck", "bus"], p=[0.6, 0.16, 0.12, 0.12])
            role = rng.choice(["ahead", "oncoming", "parked", "crossing"], p=[0.22, 0.24, 0.28, 0.26])
            if role == "ahead":  # either lane, its own speed (slower or faster than the camera)
                motion = dict(x0=rng.choice([-2.0, 2.0]) + rng.uniform(-0.3, 0.3), z0=rng.uniform(5, 30),
                              vz=mean_speed + mo(lambda r: r.uniform(-0.6, 0.6)) * m)
            elif role == "oncoming":
                motion = dict(x0=-2.0 + rng.uniform(-0.4, 0.4), z0=rng.uniform(6, 40),
                              vz=-mo(lambda r: r.uniform(0.2, 1.2)) * m)
            elif role == "parked":
                side = rng.choice([-1, 1])
                motion = dict(x0=side * (ROAD_HALF_WIDTH - 1.1), z0=rng.uniform(3, 35))
            else:  # crossing the view, near: wide side views sweeping over the background
                motion = dict(x0=rng.uniform(-7, 7), z0=rng.uniform(5, 22),
                              vx=mo(lambda r: r.choice([-1, 1]) * r.uniform(0.25, 1.0)) * m)
            layers.append(_Car(cam, rng, kind, side_view=role == "crossing", rich=True, **motion))

        fewest = min(max(1, c.max_people // 3), c.max_people)  # max_people=0: none (was a crash)
        layers += _people(cam, rng, mo, m, rng.integers(fewest, c.max_people + 1), _RICH_PEOPLE)
        return layers

    def _front_planes(self, t, x, y):
        """Nearest plane layer (sky, ground, facades) at points (x, y) of frames t: (index (uint8),
        distance), broadcast like :meth:`_front`."""
        shape = np.broadcast_shapes(np.shape(t), np.shape(x), np.shape(y))
        best = np.full(shape, SKY_DEPTH, np.float32)
        index = np.zeros(shape, np.uint8)
        for i in range(1, self.n_planes):
            depth = self.layers[i].depth(t, x, y)
            closer = np.broadcast_to(depth < best, shape)
            best = np.minimum(best, depth)
            np.copyto(index, np.uint8(i), where=closer)
        return np.broadcast_to(index, shape).copy(), np.broadcast_to(best, shape).copy()

    def _front_billboard(self, i, tt, xx, yy, flat, best, index):
        """Z-buffer update of billboard ``i`` at candidate points (flat indices ``flat`` into the
        flattened ``best`` / ``index``, frames ``tt``, coordinates ``xx``, ``yy``): where its exact
        shape covers a point and is nearer than ``best``, it becomes the point's front layer."""
        layer = self.layers[i]
        box = ((xx >= layer.x_lo[tt]) & (xx <= layer.x_hi[tt])
               & (yy >= layer.y_lo[tt]) & (yy <= layer.y_hi[tt]))
        if not box.all():
            tt, xx, yy, flat = tt[box], xx[box], yy[box], flat[box]
        if flat.size == 0:
            return
        u, v, d = layer.surface(tt, xx, yy)
        cover = layer.covers(u, v)
        flat, d = flat[cover], d[cover]
        closer = d < best[flat]
        flat = flat[closer]
        best[flat] = d[closer]
        index[flat] = i

    def _front(self, t, x, y):
        """Index (uint8) of the nearest layer at points (x, y) of frames t, and its distance.

        t, x, y broadcast together: a grid pass uses t (N, 1, 1), x (1, 1, W), y (1, H, 1);
        a point pass uses arrays of one shape (or t a single frame index). Ties go to the lower
        layer index (a layer replaces the front only when strictly nearer).
        """
        shape = np.broadcast_shapes(np.shape(t), np.shape(x), np.shape(y))
        return self._front_at(t, x, y, np.ones(shape, bool))

    def _front_grid(self, n: int):
        """:meth:`_front` at every pixel centre of frames 0..n-1: (index, distance), (n, H, W).

        Billboards are tested only on the pixels of their screen rectangle (rows x columns,
        frame by frame), which is exactly the set the rectangle test accepts."""
        h, w = self.config.height, self.config.width
        xs = np.arange(w, dtype=np.float32)
        ys = np.arange(h, dtype=np.float32)
        index, best = self._front_planes(np.arange(n)[:, None, None], xs[None, None, :], ys[None, :, None])
        best_f, index_f = best.reshape(-1), index.reshape(-1)
        for i in range(self.n_planes, len(self.layers)):
            layer = self.layers[i]
            active = self.active[i][:n]
            if not active.any():
                continue
            with np.errstate(invalid="ignore"):
                cols = (xs[None] >= layer.x_lo[:n, None]) & (xs[None] <= layer.x_hi[:n, None])  # (n, W)
                rows = (ys[None] >= layer.y_lo[:n, None]) & (ys[None] <= layer.y_hi[:n, None])  # (n, H)
            parts = []
            for k in np.flatnonzero(active & cols.any(1) & rows.any(1)):
                pixel_rows = (k * h + np.flatnonzero(rows[k]))[:, None] * w
                parts.append((pixel_rows + np.flatnonzero(cols[k])[None]).ravel())
            if not parts:
                continue
            flat = np.concatenate(parts)
            pix = flat % (h * w)
            self._front_billboard(i, flat // (h * w), xs[pix % w], ys[pix // w], flat, best_f, index_f)
        return index, best

    def _front_at(self, t, x, y, valid):
        """:meth:`_front` at points, exact only where ``valid`` (elsewhere: the planes' front).

        ``valid`` points must lie within half a pixel of the frame (-0.5 <= x <= W - 0.5, same
        for y) -- the only points whose front layer the renderer uses. Billboards are tested
        only on the valid points in their screen rectangle's rows: the points are bucketed by
        (frame, row) once, and each billboard takes the buckets its rectangle spans.
        """
        shape = np.broadcast_shapes(np.shape(t), np.shape(x), np.shape(y))
        index, best = self._front_planes(t, x, y)
        best_f, index_f = best.reshape(-1), index.reshape(-1)
        h = self.config.height
        pts = np.flatnonzero(valid)
        tf = np.broadcast_to(np.asarray(t), shape).reshape(-1)[pts]
        xf = np.broadcast_to(x, shape).reshape(-1)[pts]
        yf = np.broadcast_to(y, shape).reshape(-1)[pts]
        # Bucket key (frame, row + 1): rows of valid points are -1..H-1.
        key = tf * (h + 1) + (np.floor(yf).astype(np.int64) + 1)
        if (len(self.cam.z) + 1) * (h + 1) < 2**15:
            key = key.astype(np.int16)  # NumPy radix-sorts 16-bit keys
        order = np.argsort(key, kind="stable")
        skey = key[order]
        frames_present = np.bincount(tf, minlength=len(self.cam.z)) > 0
        for i in range(self.n_planes, len(self.layers)):
            layer = self.layers[i]
            frames = np.flatnonzero(self.active[i] & frames_present)
            if frames.size == 0:
                continue
            # The rows a point of the rectangle can be in: floor(y_lo) .. floor(y_hi).
            lo = np.clip(np.floor(layer.y_lo[frames]) + 1, 0, h).astype(np.int64) + frames * (h + 1)
            hi = np.clip(np.floor(layer.y_hi[frames]) + 1, -1, h).astype(np.int64) + frames * (h + 1)
            starts = np.searchsorted(skey, lo, "left")
            ends = np.searchsorted(skey, hi, "right")
            keep = ends > starts
            if not keep.any():
                continue
            sel = np.concatenate([order[a:b] for a, b in zip(starts[keep], ends[keep], strict=True)])
            self._front_billboard(i, tf[sel], xf[sel], yf[sel], pts[sel], best_f, index_f)
        return index, best

    def _shade(self, owner, t, x, y):
        """Colour, label and surface coords of 1-D points (t, x, y) owned by layers ``owner``."""
        rgb = np.zeros(x.shape + (3,), np.float32)
        labels = np.zeros(x.shape, np.int64)
        a_all = np.zeros(x.shape, np.float32)
        b_all = np.zeros(x.shape, np.float32)
        # Group points by owner once (a stable sort) instead of one boolean mask per layer.
        for i, sel in _groups(owner):
            tt = t[sel]
            a, b, depth = self.layers[i].surface(tt, x[sel], y[sel])
            rgb[sel], labels[sel] = self.layers[i].shade(a, b, depth, tt)
            a_all[sel], b_all[sel] = a, b
        return rgb, labels, a_all, b_all

    def render(self):
        c = self.config
        n, h, w, T = c.frames + 1, c.height, c.width, c.frames
        xs = np.arange(w, dtype=np.float32)[None, None, :]
        ys = np.arange(h, dtype=np.float32)[None, :, None]
        owner, _ = self._front_grid(n)  # (n, h, w)
        X = np.broadcast_to(xs, (n, h, w))
        Y = np.broadcast_to(ys, (n, h, w))
        t_flat = np.repeat(np.arange(n), h * w)
        rgb, labels, a_all, b_all = self._shade(owner.ravel(), t_flat, X.ravel(), Y.ravel())
        rgb, labels = rgb.reshape(n, h, w, 3), labels.reshape(n, h, w)
        a_all, b_all = a_all.reshape(n, h, w), b_all.reshape(n, h, w)
        if c.antialias:
            self._antialias_edges(owner, rgb)

        # Exact correspondences, layer by layer: pixel of frame t -> its point in frame 0 (fwd),
        # pixel of frame 0 -> its point in frame t (bwd).
        q = np.zeros((2, T, h, w), np.float32)  # frame-0 position of frame-t pixels
        r = np.zeros((2, T, h, w), np.float32)  # frame-t position of frame-0 pixels
        q_ok = np.zeros((T, h, w), bool)
        r_ok = np.zeros((T, h, w), bool)
        t_future = np.arange(1, T + 1)[:, None]
        # Pixels grouped by owner with one stable sort (uint8 keys: a radix sort) instead of a
        # boolean mask per layer; flat views of the outputs take the per-layer results.
        a_t, b_t = a_all[1:].reshape(-1), b_all[1:].reshape(-1)
        qx, qy, qok = q[0].reshape(-1), q[1].reshape(-1), q_ok.reshape(-1)
        for i, sel in _groups(owner[1:].reshape(-1)):
            x0, y0, d0 = self.layers[i].project(0, a_t[sel], b_t[sel])
            qx[sel], qy[sel], qok[sel] = x0, y0, d0 > NEAR_CLIP
        a_0, b_0 = a_all[0].reshape(-1), b_all[0].reshape(-1)
        rx, ry, rok = r[0].reshape(T, -1), r[1].reshape(T, -1), r_ok.reshape(T, -1)
        for i, sel in _groups(owner[0].reshape(-1)):
            xt, yt, dt = self.layers[i].project(t_future, a_0[sel][None], b_0[sel][None])
            rx[:, sel], ry[:, sel], rok[:, sel] = xt, yt, dt > NEAR_CLIP

        # Visible = still in front of the camera, inside the frame, and the nearest surface
        # there is the same layer (evaluated at the continuous position, no rounding).
        # (The front layer matters only where the point is defined and inside the frame.)
        ok_q = q_ok & self._inside(q)
        vis_fwd = ok_q & (self._front_at(0, q[0], q[1], ok_q)[0] == owner[1:])
        ok_r = r_ok & self._inside(r)
        vis_bwd = ok_r & (self._front_at(t_future[:, :, None], r[0], r[1], ok_r)[0] == owner[0][None])
        # Where the correspondence is undefined (behind the camera) the flow is set to 0.
        grid = np.stack([X[1:], Y[1:]])
        flow_fwd = np.where(q_ok[None], grid - q, 0).astype(np.float32)
        flow_bwd = np.where(r_ok[None], grid - r, 0).astype(np.float32)
        return {
            "frames": np.ascontiguousarray(rgb.transpose(0, 3, 1, 2)),
            "labels": labels,
            "flow_fwd": np.ascontiguousarray(flow_fwd.transpose(1, 0, 2, 3)),
            "flow_bwd": np.ascontiguousarray(flow_bwd.transpose(1, 0, 2, 3)),
            "visible_fwd": vis_fwd[:, None].astype(np.float32),
            "visible_bwd": vis_bwd[:, None].astype(np.float32),
        }

    def _antialias_edges(self, owner, rgb):
        """Soften surface boundaries: blend each boundary pixel with its neighbours' colours by
        the share of 4 sub-samples that another surface covers.

        Hard silhouettes make bilinear warping wrong by a fraction of the edge contrast wherever
        an edge moves by a non-integer amount; partially covered pixels form ramps, which
        bilinear interpolation follows. Only colours change: labels, flow and visibility stay
        those of the exact pixel centre, as in real annotations. The colour of "the other side"
        is the mean of the differently-owned 4-neighbours, to avoid shading every sub-sample.
        """
        n, h, w = owner.shape
        pad = np.pad(owner, ((0, 0), (1, 1), (1, 1)), mode="edge")
        neighbours = (pad[:, :-2, 1:-1], pad[:, 2:, 1:-1], pad[:, 1:-1, :-2], pad[:, 1:-1, 2:])
        other = [nb != owner for nb in neighbours]
        edge = other[0] | other[1] | other[2] | other[3]
        tn, yn, xn = np.nonzero(edge)
        if tn.size == 0:
            return
        k = len(_AA_OFFSETS)
        ts = np.repeat(tn, k)
        xs = (xn[:, None] + _AA_OFFSETS[None, :, 0]).ravel()
        ys = (yn[:, None] + _AA_OFFSETS[None, :, 1]).ravel()
        sub_owner, _ = self._front_at(ts, xs, ys, np.ones(ts.shape, bool))
        own_share = (sub_owner.reshape(-1, k) == owner[tn, yn, xn][:, None]).mean(1, dtype=np.float32)
        rgb_pad = np.pad(rgb, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        shifts = ((0, 1), (2, 1), (1, 0), (1, 2))  # up, down, left, right in the padded array
        total = np.zeros((tn.size, 3), np.float32)
        count = np.zeros(tn.size, np.float32)
        for (dy, dx), mask in zip(shifts, other, strict=True):
            m = mask[tn, yn, xn]
            total += rgb_pad[tn, yn + dy, xn + dx] * m[:, None]
            count += m
        other_rgb = total / np.maximum(count, 1)[:, None]
        mine = rgb[tn, yn, xn]
        rgb[tn, yn, xn] = other_rgb + (mine - other_rgb) * own_share[:, None]

    def _inside(self, p):
        h, w = self.config.height, self.config.width
        with np.errstate(invalid="ignore"):
            return (p[0] >= -0.5) & (p[0] <= w - 0.5) & (p[1] >= -0.5) & (p[1] <= h - 0.5)


def render_clip(config: SceneConfig | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """Render one synthetic street clip with exact labels, flow and visibility.

    Args:
        config: scene settings (default: 64x64, 1 + 8 frames).
        seed: any integer; the same seed and config always give the identical clip.
    Returns:
        dict of tensors, see the module docstring: ``frames`` (T+1, 3, H, W) float32 in [0, 1],
        ``labels`` (T+1, H, W) int64, ``flow_fwd``/``flow_bwd`` (T, 2, H, W) float32 pixels,
        ``visible_fwd``/``visible_bwd`` (T, 1, H, W) float32 in {0, 1}.
    """
    config = config or SceneConfig()
    arrays = _Scene(config, seed).render()
    return {k: torch.from_numpy(v) for k, v in arrays.items()}


def render_futures(config: SceneConfig | None = None, seed: int = 0, k: int = 8,
                   first: int = 0) -> dict[str, torch.Tensor]:
    """Render ONE first frame with ``k`` different exact futures (multi-future ground truth).

    Every future shares the scene's layout -- the same frame-0 pixels and label map -- and
    draws its own motion: camera speed, acceleration, drift and turn, and the velocity of every
    moving object. Future 0 is ``render_clip(config, seed)`` itself; future j >= 1 re-draws the
    motion from a stream seeded by (seed, j). Each future is exact like any clip.

    Args:
        config: scene settings (either style).
        seed: the scene.
        k: number of futures (>= 1).
        first: the index of the first future rendered: futures ``first .. first + k - 1``
            (e.g. futures no evaluation uses as truths, for a perfect sampler).
    Returns:
        dict of tensors with a leading K axis: ``frames`` (K, T+1, 3, H, W), ``labels``
        (K, T+1, H, W), ``flow_fwd``/``flow_bwd`` (K, T, 2, H, W) pixels,
        ``visible_fwd``/``visible_bwd`` (K, T, 1, H, W); plus ``label_map`` (H, W) int64, the
        shared first label map.
    """
    config = config or SceneConfig()
    if k < 1:
        raise ValueError(f"k (the number of futures) must be >= 1, got {k}")
    if first < 0:
        raise ValueError(f"first (the first future's index) must be >= 0, got {first}")
    futures = [_Scene(config, seed, future=None if j == 0 else j).render() for j in range(first, first + k)]
    out = {key: torch.from_numpy(np.stack([f[key] for f in futures])) for key in futures[0]}
    out["label_map"] = out["labels"][0, 0].clone()
    return out


class SyntheticStreets(Dataset):
    """A map-style dataset of synthetic street clips, generated on the fly: THE synthetic dataset
    (what :func:`seg2vid.data.build_dataset` builds for ``kind="synthetic"``, what the trainers and
    the evaluation render).

    Clip ``i`` is ``render_clip(config, seed=(seed, i))`` in effect: it depends only on ``seed``
    and ``i``, never on global random state, so it is identical across epochs, processes and
    DataLoader workers (no worker seeding needed).

    Items hold every key of :func:`render_clip` (``frames`` (T+1, 3, H, W), ``labels``
    (T+1, H, W), flows, visibility masks) and the keys every dataset of
    :mod:`seg2vid.data.build` has: ``label_map`` = ``labels[0]`` (H, W) int64 and ``name`` =
    ``"synthetic:seed={seed}:{index}"``. Like the real datasets it has the attributes ``table``,
    ``height``, ``width``, ``frames`` (T) and ``report`` (always empty).

    Args:
        num_clips: length of the dataset.
        config: scene settings.
        seed: selects the dataset; use different seeds for train / validation / test splits
            (:func:`seg2vid.data.splits.split_seed`).
    """

    #: The label set of every synthetic clip.
    table = CITYSCAPES

    def __init__(self, num_clips: int = 1000, config: SceneConfig | None = None, seed: int = 0):
        if num_clips < 1:
            raise ValueError(f"num_clips must be >= 1, got {num_clips}")
        self.num_clips = num_clips
        self.config = config or SceneConfig()
        self.seed = seed
        self.height, self.width, self.frames = self.config.height, self.config.width, self.config.frames
        self.report: list[str] = []

    def __len__(self) -> int:
        return self.num_clips

    def clip_seed(self, index: int) -> int:
        """The integer seed of clip ``index`` (a mix of the dataset seed and the index)."""
        return int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0])

    def __getitem__(self, index: int) -> dict:
        if not -self.num_clips <= index < self.num_clips:
            raise IndexError(f"clip index {index} out of range for {self.num_clips} clips")
        index %= self.num_clips
        item: dict = dict(render_clip(self.config, self.clip_seed(index)))
        item["label_map"] = item["labels"][0]
        item["name"] = f"synthetic:seed={self.seed}:{index}"
        return item


class SyntheticFutures(Dataset):
    """Scenes with K exact futures each: item ``i`` is ``render_futures(config, seed_i, k)``.

    Scene ``i`` is the scene of ``SyntheticStreets(num_scenes, config, seed)[i]`` (the same clip
    seed), whose clip is future 0. Items hold the keys of :func:`render_futures` (a leading K
    axis) and ``name`` = ``"synthetic-futures:seed={seed}:{i}"``.

    Args:
        num_scenes: length of the dataset.
        config: scene settings (use ``style="rich"`` for futures that differ in occlusion too).
        seed: selects the dataset.
        k: futures per scene (default 8).
    """

    def __init__(self, num_scenes: int = 64, config: SceneConfig | None = None, seed: int = 0, k: int = 8):
        if k < 1:
            raise ValueError(f"k (the number of futures) must be >= 1, got {k}")
        self.streets = SyntheticStreets(num_scenes, config, seed)
        self.config, self.seed, self.k = self.streets.config, seed, k

    def __len__(self) -> int:
        return len(self.streets)

    def __getitem__(self, index: int) -> dict:
        n = len(self.streets)
        if not -n <= index < n:
            raise IndexError(f"scene index {index} out of range for {n} scenes")
        item: dict = dict(render_futures(self.config, self.streets.clip_seed(index % n), self.k))
        item["name"] = f"synthetic-futures:seed={self.seed}:{index % n}"
        return item
