"""A folder of your own videos, stored as frame images, with optional label maps.

On-disk layout::

    ROOT/
      {video_name}/
        frames/   000000.png, 000001.png, ...   (.png, .jpg or .jpeg; sorted by file name)
        labels/   000000.png, ...               (optional: train-id PNGs named like the frames)

Frames are taken in file-name order, so number them with leading zeros. When any video has a
``labels/`` folder, a clip starting at frame ``k`` needs ``labels/<stem of frame k>.png`` (an
8-bit grey PNG of train ids, void = the table's ``ignore_id``, or an RGB PNG in the table's
colours), and the table is Cityscapes unless you pass another one. When no video has a
``labels/`` folder, label maps are all zeros with the one-class
:data:`~seg2vid.data.labels.SCENE` table. Missing label maps, and video folders without
``frames/``, are listed in ``dataset.report`` with one warning; their clips are left out.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from seg2vid.data.labels import CITYSCAPES, SCENE, LabelTable
from seg2vid.data.video import clip_starts, read_frame, read_label_map, warn_left_out

__all__ = ["FRAME_EXTENSIONS", "VideoFolder"]

#: File name endings of frame images (any case).
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg")


class VideoFolder(Dataset):
    """Clips of T + 1 frames from the frame folders of ``ROOT/{video_name}/frames/``.

    Clips start at every ``clip_step``-th valid frame of every video; videos in name order. Item
    ``i`` is a dict: ``frames`` float32 (T+1, 3, H, W) RGB in [0, 1] (grey images as 3 identical
    channels; antialiased resize to (height, width)), ``label_map`` int64 (H, W) train ids of the
    start frame (nearest resize) or zeros without labels, ``name`` ``"{video_name}:start={k}"``.

    Args:
        root: the folder of video folders (see the module docstring).
        height, width: output size.
        frames: T, the number of FUTURE frames.
        stride: frame step between clip frames.
        clip_step: step between the start positions used (1 = every valid start).
        table: label table of the label maps (default: Cityscapes when labels exist, else SCENE).

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
    ):
        clip_starts(0, frames, stride, clip_step)  # validates the numbers
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"video folder root {root} does not exist")
        self.root = root
        self.height, self.width = height, width
        self.frames, self.stride, self.clip_step = frames, stride, clip_step
        self.report: list[str] = []
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        self.has_labels = any((p / "labels").is_dir() for p in folders)
        self.table = table if table is not None else (CITYSCAPES if self.has_labels else SCENE)
        #: (video name, frame paths) of each video with frames.
        self.videos: list[tuple[str, list[Path]]] = []
        self.clips: list[tuple[int, int]] = []  # (video number, start frame index)
        left_out, longest = 0, 0
        for folder in folders:
            frame_dir = folder / "frames"
            paths = (
                sorted(p for p in frame_dir.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS)
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
        frames = torch.stack([read_frame(p, self.height, self.width) for p in clip])
        if self.has_labels:
            lpath = clip[0].parent.parent / "labels" / f"{clip[0].stem}.png"
            labels = read_label_map(lpath, self.table, self.height, self.width)
        else:
            labels = torch.zeros(self.height, self.width, dtype=torch.int64)
        return {"frames": frames, "label_map": labels, "name": f"{name}:start={start}"}
