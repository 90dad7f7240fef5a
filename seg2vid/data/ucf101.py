"""UCF-101 (Soomro et al., 2012) as clips for Seg2Vid.

On-disk layout, as distributed (``UCF101.rar`` and ``UCF101TrainTestSplits-RecognitionTask.zip``
unpacked side by side)::

    ROOT/
      UCF-101/
        ApplyEyeMakeup/  v_ApplyEyeMakeup_g01_c01.avi ... v_ApplyEyeMakeup_g25_c07.avi
        ...              v_{ClassName}_g{GG}_c{CC}.avi   (GG = group 01..25, CC = clip in the group)
      ucfTrainTestlist/            (optional)
        trainlist01.txt  lines "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1" (path, class number)
        testlist01.txt   lines "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"   (path only)
        trainlist02.txt, testlist02.txt, trainlist03.txt, testlist03.txt

Colour 320x240 videos at 25 fps; 101 classes (the folder names). Frames are centre-cropped to a
square (240x240) and resized (antialiased) to (height, width). No label maps: ``label_map`` is all
zeros, table :data:`~seg2vid.data.labels.SCENE`.

Split: the official split files, split number 1, 2 or 3 (default 1). Without the
``ucfTrainTestlist`` folder the split follows the official rule instead (split n tests on the
groups 7(n-1)+1 .. 7n, e.g. groups 1-7 for split 1, and trains on the other groups) and a
warning says so. A few file names spell the class differently from their folder (e.g.
``HandstandPushups/v_HandStandPushups_g01_c01.avi``); files are taken from the folder as they are.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path

from seg2vid.data.video import VideoCache, VideoClips

__all__ = ["UCF101", "ucf101_classes"]

_NAME = re.compile(r"^v_(.+)_g(\d{2})_c(\d{2})\.avi$")
VIDEO_DIR = "UCF-101"
SPLIT_DIR = "ucfTrainTestlist"


def ucf101_classes(root: str | Path) -> tuple[str, ...]:
    """Class names (the folders of ``ROOT/UCF-101``), sorted."""
    folder = Path(root) / VIDEO_DIR
    if not folder.is_dir():
        raise FileNotFoundError(
            f"UCF-101 videos not found: expected the folder {folder} holding "
            "{ClassName}/v_{ClassName}_g{GG}_c{CC}.avi"
        )
    return tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")))


def _split_list(root: Path, split: str, number: int) -> list[str] | None:
    """Relative video paths ("Class/v_..._gGG_cCC.avi") of the split file, or None when absent."""
    path = root / SPLIT_DIR / f"{'train' if split == 'train' else 'test'}list{number:02d}.txt"
    if not path.is_file():
        return None
    lines = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    return [line.replace("\\", "/") for line in lines]


class UCF101(VideoClips):
    """Clips of T + 1 frames from the UCF-101 videos of one split and some classes.

    Clips come from every ``clip_step``-th valid start of every selected video, ordered by (class
    name, file name, start). Item ``i`` is a dict: ``frames`` float32 (T+1, 3, H, W) in [0, 1],
    ``label_map`` int64 (H, W) zeros, ``name`` e.g. ``"v_ApplyEyeMakeup_g08_c01:start=0"``.

    Args:
        root: the folder holding ``UCF-101/`` (and optionally ``ucfTrainTestlist/``).
        split: "train" or "test" (alias "val").
        classes: class names (folder names) to use; empty = all 101.
        split_number: which official split (1, 2 or 3).
        height, width: output frame size.
        frames: T, the number of FUTURE frames.
        stride: frame step between clip frames.
        clip_step: step between the start positions used (1 = every valid start).
        cache_dir: frame cache (default ``ROOT/.seg2vid_cache``); the first build decodes every
            selected video once.

    A video named by the split file but absent from disk is left out and listed in ``report``
    (with one warning), like a video that cannot be decoded.

    Raises:
        FileNotFoundError: ``ROOT/UCF-101`` is missing, or the selection holds no video.
        ValueError: an unknown class name (the message lists the known ones), split or split number.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        classes: Sequence[str] = (),
        split_number: int = 1,
        height: int = 128,
        width: int = 128,
        frames: int = 8,
        stride: int = 1,
        clip_step: int = 1,
        cache_dir: str | Path | None = None,
    ):
        root = Path(root)
        if split not in ("train", "test", "val"):
            raise ValueError(f"UCF-101 split must be 'train' or 'test' (alias 'val'), got {split!r}")
        if split_number not in (1, 2, 3):
            raise ValueError(f"UCF-101 has the official splits 1, 2 and 3, got split_number={split_number}")
        known = ucf101_classes(root)
        unknown = [c for c in classes if c not in known]
        if unknown:
            raise ValueError(f"unknown UCF-101 class(es) {unknown}; known: {', '.join(known)}")
        self.classes = tuple(sorted(set(classes))) if classes else known
        self.split, self.split_number = split, split_number
        videos_dir = root / VIDEO_DIR
        report: list[str] = []
        listed = _split_list(root, split, split_number)
        selected: list[Path] = []
        if listed is not None:
            wanted = set(self.classes)
            for rel in listed:
                cls = rel.split("/", 1)[0]
                if cls in wanted:
                    path = videos_dir / rel
                    if path.is_file():
                        selected.append(path)
                    else:
                        report.append(f"missing video: {path} (listed in {SPLIT_DIR}/)")
        else:
            lo, hi = 7 * (split_number - 1) + 1, 7 * split_number
            warnings.warn(
                f"UCF-101: {root / SPLIT_DIR}/{'train' if split == 'train' else 'test'}list{split_number:02d}"
                f".txt not found; using the official rule of split {split_number} instead (groups {lo}-{hi} "
                "test, the other groups train)",
                stacklevel=2,
            )
            for cls in self.classes:
                for path in (videos_dir / cls).glob("v_*.avi"):
                    m = _NAME.match(path.name)
                    if m and ((lo <= int(m.group(2)) <= hi) == (split != "train")):
                        selected.append(path)
        selected.sort(key=lambda p: (p.parent.name, p.name))
        if not selected and not report:
            raise FileNotFoundError(
                f"no UCF-101 video of split {split!r} for the classes {', '.join(self.classes)} under "
                f"{videos_dir}: expected {{ClassName}}/v_{{ClassName}}_g{{GG}}_c{{CC}}.avi"
            )
        videos = [(p.stem, p) for p in selected]
        cache = VideoCache(root, height, width, grey=False, square=True, cache_dir=cache_dir)
        super().__init__(
            videos, cache, frames, stride, clip_step, description=f"UCF-101 {split}", report=report
        )
