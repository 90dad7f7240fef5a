"""Frame and video input shared by the real-dataset loaders: decoding, a frame cache, resizing,
label-map files, clip indexing and the report of missing files.

Videos (KTH, UCF-101) are decoded with PyAV once, cropped and resized to the dataset's size, and
cached as one uint8 ``.npy`` array per video file; later builds and every ``__getitem__`` read
the cache through a memory map, so a video is never decoded twice. The cache key holds the
video's path relative to the dataset root, its size in bytes and its modification time, so a
changed video is decoded again (the stale entry is removed).

Clips. A clip of T future frames with frame step ``stride`` starting at frame k holds frames
``k, k + stride, ..., k + stride * T`` (T + 1 frames). In a sequence of N frames the valid starts
are ``0 .. N - 1 - stride * T``: ``N - stride * T`` of them, every ``clip_step``-th one is used.

Missing or unreadable files are never skipped silently: each dataset lists them in its
``report`` (a list of strings, each naming a file) and emits one warning saying how many clips
were left out (see :func:`warn_left_out`).
"""

from __future__ import annotations

import glob
import hashlib
import os
import warnings
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from seg2vid.checkpoints import atomic_write
from seg2vid.data.labels import SCENE, LabelTable
from seg2vid.utils import progress

__all__ = [
    "VideoCache",
    "VideoClips",
    "VideoDecodeError",
    "clip_starts",
    "decode_video",
    "read_frame",
    "read_label_map",
    "resize_frames",
]

#: Default cache folder, inside the dataset root.
CACHE_DIRNAME = ".seg2vid_cache"

#: Number of report entries the warning quotes before "...".
_QUOTED = 3


class VideoDecodeError(RuntimeError):
    """A video file could not be decoded (the message names the file and PyAV's error)."""


# ----------------------------------------------------------------------------- small helpers


def clip_starts(num_frames: int, frames: int, stride: int = 1, clip_step: int = 1) -> range:
    """Start indices of the clips of ``frames`` (T) future frames, frame step ``stride``, in a
    sequence of ``num_frames`` frames, taking every ``clip_step``-th valid start.

    Every valid start is ``0 .. num_frames - 1 - stride * frames``; with ``clip_step = 1`` that is
    ``num_frames - stride * frames`` starts (none when the sequence is too short).
    """
    if frames < 1 or stride < 1 or clip_step < 1:
        raise ValueError(f"frames, stride and clip_step must be >= 1, got {frames}, {stride}, {clip_step}")
    return range(0, max(num_frames - stride * frames, 0), clip_step)


def warn_left_out(
    dataset: str, left_out: str, report: Sequence[str], problem: str = "missing or unreadable"
) -> None:
    """Emit the one warning of a dataset build that left files out.

    Args:
        dataset: what was built, e.g. ``"Cityscapes train"``.
        left_out: what was left out, e.g. ``"12 clips left out"``.
        report: the dataset's report, one entry per missing or unreadable file.
        problem: what is wrong with the files, in the message.
    """
    if not report:
        return
    shown = "; ".join(report[:_QUOTED]) + (" ..." if len(report) > _QUOTED else "")
    warnings.warn(
        f"{dataset}: {left_out}; {len(report)} files {problem}: {shown} (see dataset.report)",
        stacklevel=3,
    )


# ----------------------------------------------------------------------------- images and label maps


def resize_frames(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize float frames (N, C, h, w) to (N, C, height, width): antialiased bilinear (an area
    average when shrinking, so fine textures do not alias); a no-op at the same size."""
    if frames.shape[-2:] == (height, width):
        return frames
    out = F.interpolate(frames, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return out.clamp_(0.0, 1.0)


def center_square(image: np.ndarray) -> np.ndarray:
    """The largest centred square of an image array (h, w, ...)."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top : top + side, left : left + side]


def read_frame(path: str | Path, height: int | None = None, width: int | None = None) -> torch.Tensor:
    """Read an image file as float32 RGB (3, H, W) in [0, 1], resized (antialiased bilinear) to
    (height, width) when given. Grey images come back as 3 identical channels."""
    from PIL import Image

    with Image.open(path) as im:
        rgb = np.array(im.convert("RGB"))
    frame = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)
    if height is not None and width is not None:
        frame = resize_frames(frame[None], height, width)[0]
    return frame


def resize_labels(labels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Nearest-neighbour resize of int64 label maps (..., h, w) -> (..., height, width): every
    output pixel copies one input pixel (pixel-centre aligned), so no new id can appear."""
    if labels.shape[-2:] == (height, width):
        return labels
    lead = labels.shape[:-2]
    flat = labels.reshape(-1, 1, *labels.shape[-2:]).float()
    out = F.interpolate(flat, size=(height, width), mode="nearest-exact")
    return out.round().long().reshape(*lead, height, width)


def read_label_map(
    path: str | Path, table: LabelTable, height: int | None = None, width: int | None = None
) -> torch.Tensor:
    """Read a label-map file: int64 train ids (H, W) of ``table``, nearest-resized to
    (height, width) when given.

    Decoded by :func:`seg2vid.data.label_io.decode_label_file`: a single-channel image (or an RGB
    one with three equal channels) holds train ids (``table.ignore_id`` = void; Cityscapes
    labelIds are converted); colour and palette images are read by ``table``'s colours.

    Raises:
        FileNotFoundError: no such file.
        ValueError: (:class:`~seg2vid.data.label_io.LabelMapError`) an id or colour that is not in
            ``table``, an empty / truncated / non-image / JPEG file; the message names the file.
    """
    from seg2vid.data.label_io import decode_label_file

    ids = decode_label_file(path, table)
    labels = torch.from_numpy(np.ascontiguousarray(ids))
    if height is not None and width is not None:
        labels = resize_labels(labels, height, width)
    return labels


# ----------------------------------------------------------------------------- videos


def decode_video(path: str | Path, grey: bool = False) -> np.ndarray:
    """Decode every frame of a video file with PyAV.

    Returns:
        uint8 array (N, H, W, 3) RGB, or (N, H, W, 1) luma when ``grey``.
    Raises:
        VideoDecodeError: PyAV cannot open or decode the file, or it holds no video frame.
    """
    import av

    fmt = "gray" if grey else "rgb24"
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path}: no video stream")
            frames = [f.to_ndarray(format=fmt) for f in container.decode(video=0)]
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise VideoDecodeError(f"{path}: cannot decode ({type(err).__name__}: {err})") from None
    if not frames:
        raise VideoDecodeError(f"{path}: holds no video frame")
    out = np.stack(frames)
    return out[..., None] if grey else out


def _prepare(frames: np.ndarray, height: int, width: int, square: bool, chunk: int = 64) -> np.ndarray:
    """Centre-crop (optional) and resize uint8 frames (N, h, w, C) -> uint8 (N, height, width, C)."""
    if square:
        frames = np.stack([center_square(f) for f in frames])
    if frames.shape[1:3] == (height, width):
        return np.ascontiguousarray(frames)
    out = np.empty((len(frames), height, width, frames.shape[-1]), np.uint8)
    for i in range(0, len(frames), chunk):  # bounded memory for long videos
        x = torch.from_numpy(np.ascontiguousarray(frames[i : i + chunk])).permute(0, 3, 1, 2).float() / 255
        y = resize_frames(x, height, width).mul_(255).round_().to(torch.uint8)
        out[i : i + chunk] = y.permute(0, 2, 3, 1).numpy()
    return out


@dataclass(frozen=True)
class VideoCache:
    """Decoded, cropped and resized frames of the videos under ``root``, one ``.npy`` per video.

    A video ``ROOT/a/b.avi`` is cached as
    ``CACHE/{height}x{width}-{rgb|grey}[-square]/a/b.avi.{size}-{mtime_ns}.npy`` (uint8
    (N, height, width, C), C = 3, or 1 for grey): the size and modification time in the name make
    a changed video miss the cache; the older entry is then deleted. Writes are atomic.

    Args:
        root: the dataset root (cache keys are paths relative to it).
        height, width: frame size stored in the cache.
        grey: decode luma only (C = 1); KTH is grey.
        square: centre-crop the largest square before resizing (keeps the aspect ratio).
        cache_dir: cache folder (default ``ROOT/.seg2vid_cache``; pick another one when the dataset
            folder is read-only).
    """

    root: Path
    height: int
    width: int
    grey: bool = False
    square: bool = True
    cache_dir: Path | None = None

    @property
    def folder(self) -> Path:
        """The folder of this cache's settings."""
        base = Path(self.cache_dir) if self.cache_dir is not None else Path(self.root) / CACHE_DIRNAME
        tag = f"{self.height}x{self.width}-{'grey' if self.grey else 'rgb'}{'-square' if self.square else ''}"
        return base / tag

    def path_of(self, video: str | Path) -> Path:
        """Cache file of ``video`` in its current version (size and modification time)."""
        video = Path(video)
        st = video.stat()
        rel = Path(os.path.relpath(os.path.abspath(video), os.path.abspath(self.root)))
        if ".." in rel.parts:  # a video outside the root: key it by its absolute path
            digest = hashlib.sha1(os.path.abspath(video).encode()).hexdigest()[:16]
            rel = Path("_outside_root") / digest / video.name
        return self.folder / rel.parent / f"{rel.name}.{st.st_size}-{st.st_mtime_ns}.npy"

    def load(self, video: str | Path) -> np.ndarray:
        """Frames of ``video``: uint8 (N, height, width, C), memory-mapped from the cache; decoded
        (and cached) first when the cache has no entry for this version of the file.

        Raises:
            VideoDecodeError: the video cannot be decoded.
        """
        target = self.path_of(video)
        if target.is_file():
            try:
                return np.load(target, mmap_mode="r")
            except (OSError, ValueError):
                target.unlink(missing_ok=True)  # a damaged entry: decode again
        frames = _prepare(decode_video(video, grey=self.grey), self.height, self.width, self.square)
        try:
            atomic_write(target, lambda fh: np.save(fh, frames))
        except PermissionError as err:
            raise PermissionError(
                f"cannot write the frame cache {target} ({err}); pass cache_dir= a writable folder"
            ) from None
        for stale in target.parent.glob(f"{glob.escape(Path(video).name)}.*.npy"):
            if stale != target:
                stale.unlink(missing_ok=True)
        return np.load(target, mmap_mode="r")


# ----------------------------------------------------------------------------- datasets of videos


class VideoClips(Dataset):
    """Clips of T + 1 frames from a list of video files, through a :class:`VideoCache`.

    Every video is decoded once when the dataset is built (to count its frames; later builds read
    the count from the cache). A video that cannot be decoded is left out and listed in
    :attr:`report`, with one warning for the whole build.

    Item ``i`` is a dict: ``frames`` float32 (T+1, 3, H, W) in [0, 1] (grey videos repeated to 3
    identical channels), ``label_map`` int64 (H, W) all zeros (:data:`~seg2vid.data.labels.SCENE`
    table: these datasets have no label maps), ``name`` ``"{video stem}:start={k}"``.

    Args:
        videos: (name, path) of each video, in dataset order.
        cache: where the frames are decoded to.
        frames: T, the number of FUTURE frames.
        stride: frame step between consecutive clip frames.
        clip_step: step between the start positions used (1 = every valid start).
        description: names the dataset in the warning, e.g. ``"KTH train"``.
        report: entries about videos the caller already left out (e.g. listed in a split file but
            absent), one per video; the build adds one per unreadable video.
    """

    table: LabelTable = SCENE

    def __init__(
        self,
        videos: Sequence[tuple[str, Path]],
        cache: VideoCache,
        frames: int,
        stride: int = 1,
        clip_step: int = 1,
        description: str = "videos",
        report: list[str] | None = None,
    ):
        clip_starts(0, frames, stride, clip_step)  # validates the three numbers
        self.cache = cache
        self.height, self.width = cache.height, cache.width
        self.frames, self.stride, self.clip_step = frames, stride, clip_step
        self.report: list[str] = list(report or [])
        self.videos: list[tuple[str, Path]] = []
        self.num_frames: list[int] = []
        counts: list[int] = []
        for name, path in progress(videos, desc=f"indexing {description}", leave=False):
            try:
                n = len(cache.load(path))
            except VideoDecodeError as err:
                self.report.append(f"unreadable video: {err}")
                continue
            self.videos.append((name, Path(path)))
            self.num_frames.append(n)
            counts.append(len(clip_starts(n, frames, stride, clip_step)))
        self._offsets = np.cumsum([0, *counts]).tolist()
        warn_left_out(description, f"{len(self.report)} videos left out", self.report)
        if not self.videos:
            raise FileNotFoundError(
                f"{description}: no readable video; {len(self.report)} missing or unreadable: "
                + "; ".join(self.report[:_QUOTED])
            )
        if len(self) == 0:
            raise ValueError(
                f"{description}: no clip fits: the longest video has {max(self.num_frames)} frames, a clip "
                f"needs stride * frames + 1 = {stride * frames + 1}"
            )

    def __len__(self) -> int:
        return self._offsets[-1]

    def locate(self, index: int) -> tuple[int, int]:
        """(video number, start frame) of clip ``index``."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"clip index {index} out of range for {n} clips")
        index %= n
        v = bisect_right(self._offsets, index) - 1
        return v, (index - self._offsets[v]) * self.clip_step

    def __getitem__(self, index: int) -> dict:
        v, start = self.locate(index)
        name, path = self.videos[v]
        video = self.cache.load(path)
        idx = start + self.stride * np.arange(self.frames + 1)
        clip = torch.from_numpy(np.ascontiguousarray(video[idx])).permute(0, 3, 1, 2).float().div_(255.0)
        if clip.shape[1] == 1:
            clip = clip.expand(-1, 3, -1, -1).contiguous()
        return {
            "frames": clip,
            "label_map": torch.zeros(self.height, self.width, dtype=torch.int64),
            "name": f"{name}:start={start}",
        }
