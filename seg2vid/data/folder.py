"""A folder of your own videos, stored as frame images, with optional label maps.

On-disk layout::

    ROOT/
      {video_name}/
        frames/   0.png, 1.png, ..., 10.png ... (.png, .jpg or .jpeg; in natural order)
        labels/   0.png, ...                    (optional: label maps named like the frames)

Frames are taken in NATURAL file-name order: runs of digits compare as numbers, so ``2.png``
comes before ``10.png`` with or without leading zeros (:func:`natural_key`). Frames (and label
maps) are centre-cropped to the output's aspect ratio, then resized (antialiased; labels nearest),
as KTH and UCF-101 frames are, so nothing is squeezed. When any video has a
``labels/`` folder, a clip starting at frame ``k`` needs ``labels/<stem of frame k>.png`` (an
8-bit grey PNG of train ids, void = the table's ``ignore_id``, or an RGB PNG in the table's
colours), and the table is Cityscapes unless you pass another one. When no video has a
``labels/`` folder, label maps are all zeros with the one-class
:data:`~seg2vid.data.labels.SCENE` table. Missing label maps, and video folders without
``frames/``, are listed in ``dataset.report`` with one warning; their clips are left out.

Splits hold out WHOLE videos (clips of one video are near-duplicates, so a clip-level split would
score the model on its training data). :func:`folder_splits` assigns each video by a stable hash
of its folder name (SHA-256; the same name is in the same split on every machine and when videos
are added): 10 % test, 10 % val, 80 % train. Small folders are then evened out, still
deterministically: if no video hashed into test (then val) and train has at least 2 videos, the
train video with the smallest hash moves there; if train is empty, the held-out video with the
largest hash moves back. With fewer than 3 videos a held-out split can still be empty: it then
uses the training videos and warns that it overlaps training (``dataset.overlaps_training``).
"""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from seg2vid.data.label_io import aspect_crop_box, crop_to_aspect
from seg2vid.data.labels import CITYSCAPES, SCENE, LabelTable
from seg2vid.data.video import clip_starts, read_label_map, resize_frames, resize_labels, warn_left_out

__all__ = ["FOLDER_SPLITS", "FRAME_EXTENSIONS", "VideoFolder", "folder_splits", "natural_key"]

#: File name endings of frame images (any case).
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg")

#: The splits of a folder of videos.
FOLDER_SPLITS = ("train", "val", "test")

#: Share of the hash range per held-out split (the rest is train).
_HELD_OUT_SHARE = {"test": 0.1, "val": 0.1}


def natural_key(name: str) -> tuple:
    """Sort key of a file name in natural order: ``"2.png" < "10.png"``, ``"a9" < "a10"``
    (digit runs compare as numbers, the rest case-insensitively)."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts if p) + (name,)


def _name_hash(name: str) -> float:
    """A stable number in [0, 1) for a video name (SHA-256, not Python's salted ``hash``)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") / 2**64


def folder_splits(names: list[str]) -> dict[str, str]:
    """The split ("train", "val" or "test") of each video name; the rule is in the module docstring.

    Args:
        names: the video folder names.
    Returns:
        name -> split. A split no video was assigned to is absent from the values (possible with
        fewer than 3 videos).
    """
    keys = {n: _name_hash(n) for n in names}
    split = {}
    for n, h in keys.items():
        split[n] = "test" if h < _HELD_OUT_SHARE["test"] else (
            "val" if h < _HELD_OUT_SHARE["test"] + _HELD_OUT_SHARE["val"] else "train")

    def members(s: str) -> list[str]:
        return sorted((n for n in names if split[n] == s), key=lambda n: (keys[n], n))

    if names and not members("train"):
        split[sorted(names, key=lambda n: (keys[n], n))[-1]] = "train"
    for held_out in ("test", "val"):
        train = members("train")
        if not members(held_out) and len(train) >= 2:
            split[train[0]] = held_out
    return split


class VideoFolder(Dataset):
    """Clips of T + 1 frames from the frame folders of ``ROOT/{video_name}/frames/``.

    Clips start at every ``clip_step``-th valid frame of every video of the split; videos in name
    order. Item ``i`` is a dict: ``frames`` float32 (T+1, 3, H, W) RGB in [0, 1] (grey images as 3
    identical channels; centre-cropped to the aspect ratio height : width, then antialiased resize
    to (height, width)), ``label_map`` int64 (H, W) train ids of the start frame (the same centre
    crop, nearest resize) or zeros without labels, ``name`` ``"{video_name}:start={k}"``.

    Args:
        root: the folder of video folders (see the module docstring).
        height, width: output size.
        frames: T, the number of FUTURE frames.
        stride: frame step between clip frames.
        clip_step: step between the start positions used (1 = every valid start).
        table: label table of the label maps (default: Cityscapes when labels exist, else SCENE).
        split: "train", "val" or "test": whole videos, by :func:`folder_splits`; None = every
            video (no split).

    Raises:
        FileNotFoundError: ``root`` is missing, has no ``{video_name}/frames/`` with images, or no
            clip has its label map.
        ValueError: the clips are longer than every video.
    """

    def __init__(
        self,
        root: str | Path,
        height: int = 64,
        width: int = 64,
        frames: int = 8,
        stride: int = 1,
        clip_step: int = 1,
        table: LabelTable | None = None,
        split: str | None = None,
    ):
        clip_starts(0, frames, stride, clip_step)  # validates the numbers
        if split is not None and split not in FOLDER_SPLITS:
            raise ValueError(f"split must be one of {', '.join(FOLDER_SPLITS)} (or None), got {split!r}")
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"video folder root {root} does not exist")
        self.root = root
        self.height, self.width = height, width
        self.frames, self.stride, self.clip_step = frames, stride, clip_step
        self.report: list[str] = []
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        self.has_labels = any((p / "labels").is_dir() for p in folders)
        self.split = split
        #: True when this held-out split had no video of its own and uses the training videos.
        self.overlaps_training = False
        if split is not None:
            with_frames = [p for p in folders if (p / "frames").is_dir()]
            assigned = folder_splits([p.name for p in with_frames])
            chosen = [p for p in with_frames if assigned[p.name] == split]
            if not chosen and split != "train" and with_frames:
                chosen = [p for p in with_frames if assigned[p.name] == "train"]
                self.overlaps_training = True
                warnings.warn(
                    f"video folder {root}: split {split!r} OVERLAPS TRAINING: {len(with_frames)} video(s) "
                    f"are too few to hold one out for {split}, so it uses the training videos and its "
                    "scores are not held-out scores (add videos: whole videos are held out)",
                    stacklevel=2,
                )
            folders = chosen
        self.table = table if table is not None else (CITYSCAPES if self.has_labels else SCENE)
        #: (video name, frame paths) of each video with frames.
        self.videos: list[tuple[str, list[Path]]] = []
        self.clips: list[tuple[int, int]] = []  # (video number, start frame index)
        left_out, longest = 0, 0
        for folder in folders:
            frame_dir = folder / "frames"
            paths = (
                sorted((p for p in frame_dir.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS),
                       key=lambda p: natural_key(p.name))
                if frame_dir.is_dir()
                else []
            )
            if not paths:
                self.report.append(f"no frame images: {frame_dir}/*.png")
                continue
            v = len(self.videos)
            self.videos.append((folder.name, paths))
            longest = max(longest, len(paths))
            label_dir = folder / "labels"
            names = {p.name for p in label_dir.iterdir()} if label_dir.is_dir() else set()
            if self.has_labels and not label_dir.is_dir():
                self.report.append(f"missing labels folder: {label_dir}/ (other videos have one)")
            for start in clip_starts(len(paths), frames, stride, clip_step):
                if self.has_labels and f"{paths[start].stem}.png" not in names:
                    left_out += 1
                    if label_dir.is_dir():
                        self.report.append(f"missing label map: {label_dir / (paths[start].stem + '.png')}")
                    continue
                self.clips.append((v, start))
        warn_left_out(f"video folder {root}", f"{left_out} clips left out", self.report, problem="missing")
        if not self.videos:
            raise FileNotFoundError(
                f"no video in {root}: expected {root}/{{video_name}}/frames/*.png (or .jpg) frame images"
            )
        if not self.clips:
            if left_out == 0:
                raise ValueError(
                    f"video folder {root}: no clip fits: the longest video has {longest} frames, a clip "
                    f"needs stride * frames + 1 = {stride * frames + 1}"
                )
            raise FileNotFoundError(
                f"video folder {root}: every clip lacks its label map: expected "
                f"{root}/{{video_name}}/labels/<frame stem>.png for each clip's first frame"
            )

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        n = len(self.clips)
        if not -n <= index < n:
            raise IndexError(f"clip index {index} out of range for {n} clips")
        v, start = self.clips[index]
        name, paths = self.videos[v]
        clip = [paths[start + self.stride * j] for j in range(self.frames + 1)]
        frames = torch.stack([self._read_frame(p) for p in clip])
        if self.has_labels:
            lpath = clip[0].parent.parent / "labels" / f"{clip[0].stem}.png"
            labels = crop_to_aspect(read_label_map(lpath, self.table), self.height, self.width)
            labels = resize_labels(labels, self.height, self.width)
        else:
            labels = torch.zeros(self.height, self.width, dtype=torch.int64)
        return {"frames": frames, "label_map": labels, "name": f"{name}:start={start}"}

    def _read_frame(self, path: Path) -> torch.Tensor:
        """float32 (3, H, W) in [0, 1]: the centred crop of the output's aspect ratio, resized."""
        from PIL import Image

        with Image.open(path) as im:
            rgb = np.array(im.convert("RGB"))
        top, left, h, w = aspect_crop_box(rgb.shape[0], rgb.shape[1], self.height, self.width)
        rgb = np.ascontiguousarray(rgb[top : top + h, left : left + w])
        frame = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)
        return resize_frames(frame[None], self.height, self.width)[0]
