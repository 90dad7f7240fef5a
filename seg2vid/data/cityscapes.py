"""Cityscapes video snippets (``leftImg8bit_sequence``) as clips with a label map of the first frame.

On-disk layout, as distributed (``leftImg8bit_sequence_trainvaltest.zip`` unpacked in ROOT)::

    ROOT/
      leftImg8bit_sequence/
        train/{city}/{city}_{seq:06d}_{frame:06d}_leftImg8bit.png
        val/{city}/...
        test/{city}/...

Each annotated frame of Cityscapes comes with a snippet of 30 consecutive frames (frame numbers
consecutive inside a snippet, 2048x1024, 17 fps). One sequence number can hold several snippets,
far apart in frame numbers. Clips of T + 1 frames (frame step ``stride``) start at every valid
position inside a snippet (every ``clip_step``-th one) and are ordered by (city, sequence,
start frame). Train on "train" and test on "val" (the test split's annotations are not public;
note that the authors' released code trained on "val" by mistake, so their numbers are not on a
held-out split).

Label maps: Seg2Vid needs the train ids (0..18, 255 = void) of each clip's START frame; the
sequence frames have no ground truth, so they come from a segmentation network, either

* precomputed, as 8-bit train-id PNGs: by default next to each frame, ``_leftImg8bit.png``
  replaced by ``_ssmask.png``
  (``ROOT/leftImg8bit_sequence/train/aachen/aachen_000000_000019_ssmask.png``), or in a parallel
  tree ``LABEL_DIR/{split}/{city}/{city}_{seq}_{frame}{label_suffix}``;
  :func:`cache_label_maps` (and ``scripts/segment_split.py``) writes them with a model of yours;
* or computed on the fly by a ``segmenter`` callable passed to :class:`CityscapesSequences`.

Missing frames (a gap inside a snippet) and missing label maps are never skipped silently: the
clips that need them are left out, every missing file is listed in ``dataset.report``, and one
warning gives the count. Frames missing at the very start or end of a snippet cannot be told
from the snippet's real boundary and are not reported.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from seg2vid.checkpoints import atomic_write
from seg2vid.data.labels import CITYSCAPES, LabelTable
from seg2vid.data.video import (
    clip_starts,
    read_frame,
    read_label_map,
    resize_frames,
    resize_labels,
    warn_left_out,
)
from seg2vid.utils import progress

__all__ = [
    "LABEL_SUFFIX",
    "SNIPPET_FRAMES",
    "CityscapesSequences",
    "cache_label_maps",
    "cityscapes_frames",
    "label_map_path",
    "segmentation_to_ids",
]

SEQUENCE_DIR = "leftImg8bit_sequence"
FRAME_SUFFIX = "_leftImg8bit.png"
#: Default suffix of the precomputed label maps (replaces ``_leftImg8bit.png``).
LABEL_SUFFIX = "_ssmask.png"
#: Frames per snippet. Frame-number runs of one sequence that fit in this span together are one
#: snippet with a gap (missing frames); runs further apart are different snippets.
SNIPPET_FRAMES = 30

_NAME = re.compile(r"^(.+)_(\d+)_(\d+)" + re.escape(FRAME_SUFFIX) + "$")

#: A segmentation model: (1, 3, H, W) float RGB in [0, 1] -> (1, H, W) int train ids or
#: (1, C, H, W) logits (C = number of classes; the argmax is taken).
Segmenter = Callable[[torch.Tensor], torch.Tensor]


def split_dir(root: str | Path, split: str) -> Path:
    """``ROOT/leftImg8bit_sequence/{split}``, checked to exist (the error names the expected path)."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"Cityscapes split must be 'train', 'val' or 'test', got {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Cityscapes root {root} does not exist")
    folder = root / SEQUENCE_DIR / split
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Cityscapes sequences not found: expected the folder {folder} holding "
            f"{{city}}/{{city}}_{{seq:06d}}_{{frame:06d}}{FRAME_SUFFIX} "
            "(from leftImg8bit_sequence_trainvaltest.zip)"
        )
    return folder


def cityscapes_frames(root: str | Path, split: str) -> list[Path]:
    """Every ``*_leftImg8bit.png`` frame of a split, ordered by (city, sequence, frame number)."""
    folder = split_dir(root, split)
    found = []
    for city in sorted(p for p in folder.iterdir() if p.is_dir()):
        for name in os.listdir(city):
            m = _NAME.match(name)
            if m:
                found.append(((m.group(1), int(m.group(2)), int(m.group(3))), city / name))
    found.sort()
    return [p for _, p in found]


def label_map_path(
    frame: str | Path, split: str, label_dir: str | Path | None = None, label_suffix: str = LABEL_SUFFIX
) -> Path:
    """Label-map file of a frame: next to it (``label_dir`` None) or in ``label_dir/{split}/{city}/``,
    named after the frame with ``_leftImg8bit.png`` replaced by ``label_suffix``."""
    frame = Path(frame)
    if not frame.name.endswith(FRAME_SUFFIX):
        raise ValueError(f"{frame} is not a Cityscapes frame (*{FRAME_SUFFIX})")
    stem = frame.name[: -len(FRAME_SUFFIX)]
    folder = frame.parent if label_dir is None else Path(label_dir) / split / frame.parent.name
    return folder / f"{stem}{label_suffix}"


def segmentation_to_ids(
    output: torch.Tensor, table: LabelTable, height: int, width: int, source: str = "segmenter"
) -> torch.Tensor:
    """Turn a segmenter's output for ONE image into int64 train ids (height, width).

    Args:
        output: (1, H', W') integer train ids, or (1, C, H', W') logits / scores (argmax over C).
        table: the label table the ids must belong to.
        height, width: output size (nearest-neighbour resize when H', W' differ).
        source: names the segmenter in error messages.
    """
    output = torch.as_tensor(output).detach().cpu()
    if output.ndim == 4 and output.shape[0] == 1:
        ids = output[0].argmax(0)
    elif output.ndim == 3 and output.shape[0] == 1:
        if output.is_floating_point():
            raise TypeError(
                f"{source} returned float (1, H, W): return integer train ids (1, H, W) "
                "or logits (1, C, H, W)"
            )
        ids = output[0].long()
    else:
        raise ValueError(
            f"{source} returned shape {tuple(output.shape)}: expected ids (1, H, W) or logits (1, C, H, W)"
        )
    try:
        table.check(ids)
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None
    return resize_labels(ids, height, width)


@dataclass(frozen=True)
class _Clip:
    city: str
    seq: int
    start: int  # frame number of the first frame
    folder: Path


class CityscapesSequences(Dataset):
    """Clips of T + 1 consecutive Cityscapes frames with the label map of their first frame.

    Item ``i`` is a dict: ``frames`` float32 (T+1, 3, H, W) RGB in [0, 1] (antialiased resize to
    (height, width)), ``label_map`` int64 (H, W) train ids of the start frame (nearest resize;
    255 = void), ``name`` the start frame, e.g. ``"aachen_000001_000010"``.

    Args:
        root: the folder holding ``leftImg8bit_sequence/`` (see the module docstring).
        split: "train", "val" or "test".
        height, width: output size (default 128x256, the frames' 1:2 aspect ratio).
        frames: T, the number of FUTURE frames.
        stride: frame step between clip frames.
        clip_step: step between the start positions used (1 = every valid start).
        label_dir: root of a parallel tree ``{split}/{city}/`` of label maps; None = next to the frames.
        label_suffix: label-map file name suffix that replaces ``_leftImg8bit.png``.
        segmenter: compute the label maps on the fly instead (see :data:`Segmenter`); it gets the
            start frame at (height, width). Label files are then not needed.
        table: the label table (default Cityscapes' 19 classes).

    Raises:
        FileNotFoundError: the split folder is missing or no clip has all its files (the message
            names what was expected where).
        ValueError: clips longer than every snippet. A label map holding an id outside the table
            raises ``ValueError`` naming the file when the item is read.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        height: int = 128,
        width: int = 256,
        frames: int = 8,
        stride: int = 1,
        clip_step: int = 1,
        label_dir: str | Path | None = None,
        label_suffix: str = LABEL_SUFFIX,
        segmenter: Segmenter | None = None,
        table: LabelTable = CITYSCAPES,
    ):
        clip_starts(0, frames, stride, clip_step)  # validates the numbers
        self.root, self.split = Path(root), split
        self.height, self.width = height, width
        self.frames, self.stride, self.clip_step = frames, stride, clip_step
        self.label_dir = None if label_dir is None else Path(label_dir)
        self.label_suffix = label_suffix
        self.segmenter = segmenter
        self.table = table
        self.report: list[str] = []

        folder = split_dir(root, split)
        snippets: dict[tuple[str, int], list[int]] = {}
        folders: dict[str, Path] = {}
        for path in cityscapes_frames(root, split):
            city, seq, frame = _NAME.match(path.name).groups()
            snippets.setdefault((city, int(seq)), []).append(int(frame))
            folders[city] = path.parent
        if not snippets:
            raise FileNotFoundError(
                f"no Cityscapes frame in {folder}: expected "
                f"{{city}}/{{city}}_{{seq:06d}}_{{frame:06d}}{FRAME_SUFFIX}"
            )
        label_names: dict[Path, set[str]] = {}
        self.clips: list[_Clip] = []
        left_out, longest, reported = 0, 0, set()
        for (city, seq), numbers in sorted(snippets.items()):
            present = set(numbers)
            for first, last in _snippet_spans(sorted(numbers)):
                longest = max(longest, last - first + 1)
                for k in range(first, last + 1):
                    if k not in present:
                        missing = self._frame_path(folders[city], city, seq, k)
                        self.report.append(f"missing frame: {missing}")
                for offset in clip_starts(last - first + 1, frames, stride, clip_step):
                    start = first + offset
                    ok = all(start + stride * j in present for j in range(frames + 1))
                    if segmenter is None:
                        lpath = label_map_path(self._frame_path(folders[city], city, seq, start), split,
                                               self.label_dir, label_suffix)
                        if lpath.parent not in label_names:
                            names = os.listdir(lpath.parent) if lpath.parent.is_dir() else []
                            label_names[lpath.parent] = set(names)
                        if lpath.name not in label_names[lpath.parent]:
                            ok = False
                            if lpath not in reported:
                                reported.add(lpath)
                                self.report.append(f"missing label map: {lpath}")
                    if ok:
                        self.clips.append(_Clip(city, seq, start, folders[city]))
                    else:
                        left_out += 1
        description = f"Cityscapes {split}"
        warn_left_out(description, f"{left_out} clips left out", self.report, problem="missing")
        if not self.clips:
            if left_out == 0:
                raise ValueError(
                    f"{description}: no clip fits: the longest snippet has {longest} frames, a clip needs "
                    f"stride * frames + 1 = {stride * frames + 1}"
                )
            where = "next to the frames" if self.label_dir is None else f"under {self.label_dir / split}"
            raise FileNotFoundError(
                f"{description}: no clip has all its files ({len(self.report)} missing, e.g. "
                f"{'; '.join(self.report[:3])}); expected frames {folder}/{{city}}/*{FRAME_SUFFIX} and, "
                f"without a segmenter, label maps *{label_suffix} {where}"
            )

    @staticmethod
    def _frame_path(folder: Path, city: str, seq: int, frame: int) -> Path:
        return folder / f"{city}_{seq:06d}_{frame:06d}{FRAME_SUFFIX}"

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        n = len(self.clips)
        if not -n <= index < n:
            raise IndexError(f"clip index {index} out of range for {n} clips")
        clip = self.clips[index]
        paths = [
            self._frame_path(clip.folder, clip.city, clip.seq, clip.start + self.stride * j)
            for j in range(self.frames + 1)
        ]
        frames = torch.stack([read_frame(p, self.height, self.width) for p in paths])
        if self.segmenter is not None:
            with torch.no_grad():
                out = self.segmenter(frames[:1])
            labels = segmentation_to_ids(out, self.table, self.height, self.width)
        else:
            lpath = label_map_path(paths[0], self.split, self.label_dir, self.label_suffix)
            labels = read_label_map(lpath, self.table, self.height, self.width)
        return {
            "frames": frames,
            "label_map": labels,
            "name": f"{clip.city}_{clip.seq:06d}_{clip.start:06d}",
        }


def _snippet_spans(numbers: list[int]) -> list[tuple[int, int]]:
    """(first, last) frame numbers of the snippets in sorted frame numbers of one sequence: runs
    of consecutive numbers, merged across a gap while the merged span fits in a snippet."""
    spans: list[list[int]] = []
    for k in numbers:
        if spans and (k == spans[-1][1] + 1 or k - spans[-1][0] + 1 <= SNIPPET_FRAMES):
            spans[-1][1] = k
        else:
            spans.append([k, k])
    return [(a, b) for a, b in spans]


def cache_label_maps(
    root: str | Path,
    split: str,
    segment_fn: Segmenter,
    *,
    label_dir: str | Path | None = None,
    label_suffix: str = LABEL_SUFFIX,
    overwrite: bool = False,
    input_size: tuple[int, int] | None = None,
    device: str | torch.device | None = None,
    table: LabelTable = CITYSCAPES,
    show_progress: bool = True,
) -> dict[str, int]:
    """Segment every frame of a Cityscapes split and save the label maps as train-id PNGs.

    Each frame ``.../{city}_{seq}_{frame}_leftImg8bit.png`` gets
    :func:`label_map_path` (default ``..._ssmask.png`` next to it): an 8-bit grey PNG of train
    ids at the frame's full size (255 = void), written atomically. Existing files are kept unless
    ``overwrite``, so an interrupted run resumes where it stopped.

    Args:
        root, split: the dataset (see the module docstring).
        segment_fn: (1, 3, H, W) float RGB in [0, 1] -> (1, H, W) int train ids or (1, C, H, W)
            logits. It runs under ``torch.no_grad()``; nothing is ever downloaded.
        label_dir, label_suffix: where the maps go (see :func:`label_map_path`).
        overwrite: segment again frames whose map exists.
        input_size: (height, width) the frame is resized to before ``segment_fn`` (None = full
            size); the ids are resized back (nearest) to the frame's size.
        device: moves the input there (the model must already be on it).
        table: the ids must belong to it.
        show_progress: a tqdm bar (also off when ``SEG2VID_PROGRESS=0``).
    Returns:
        ``{"written": n, "skipped": m}``.
    """
    from PIL import Image

    frames = cityscapes_frames(root, split)
    if not frames:
        raise FileNotFoundError(f"no *{FRAME_SUFFIX} frame under {split_dir(root, split)}/{{city}}/")
    written = skipped = 0
    iterator = progress(frames, desc=f"segmenting {split}", unit="frame") if show_progress else frames
    for path in iterator:
        target = label_map_path(path, split, label_dir, label_suffix)
        if target.exists() and not overwrite:
            skipped += 1
            continue
        image = read_frame(path)[None]
        height, width = image.shape[-2:]
        if input_size is not None:
            image = resize_frames(image, *input_size)
        if device is not None:
            image = image.to(device)
        with torch.no_grad():
            out = segment_fn(image)
        ids = segmentation_to_ids(out, table, height, width, source=f"segment_fn on {path}")
        array = ids.numpy().astype(np.uint8)
        atomic_write(target, lambda fh, a=array: Image.fromarray(a).save(fh, format="PNG"))
        written += 1
    return {"written": written, "skipped": skipped}
