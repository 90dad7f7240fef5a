"""One entry point for every dataset: :class:`DatasetConfig` (plain values, storable in a
checkpoint) and :func:`build_dataset`.

Every dataset it builds returns items with at least

* ``frames``: float32 (T+1, 3, H, W) RGB in [0, 1] (grey videos repeated to 3 channels),
* ``label_map``: int64 (H, W), train ids of the START frame (``table.ignore_id`` = void),
* ``name``: str naming the clip,

and has the attributes ``table`` (the :class:`~seg2vid.data.labels.LabelTable`), ``height``,
``width``, ``frames`` (T, the number of FUTURE frames) and ``report`` (the missing or unreadable
files that were left out; empty for a complete dataset).

    >>> from seg2vid.data import DatasetConfig, build_dataset
    >>> ds = build_dataset(DatasetConfig(kind="kth", root="~/data/kth", classes=("boxing",), frames=8))
    >>> item = ds[0]; item["frames"].shape                     # (9, 3, 128, 128)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.utils.data import Dataset

from seg2vid.data.cityscapes import LABEL_SUFFIX, CityscapesSequences, Segmenter
from seg2vid.data.folder import VideoFolder
from seg2vid.data.kth import KTH, check_actions
from seg2vid.data.labels import CITYSCAPES, LabelTable
from seg2vid.data.synthetic import DEFAULT_STYLE, STYLES, SceneConfig, SyntheticStreets
from seg2vid.data.ucf101 import UCF101

__all__ = ["DATASET_KINDS", "DatasetConfig", "SyntheticClips", "build_dataset", "frames_and_label_map"]

#: The dataset kinds and their default frame size (height, width).
DATASET_KINDS: dict[str, tuple[int, int]] = {
    "synthetic": (64, 64),
    "cityscapes": (128, 256),
    "kth": (128, 128),
    "ucf101": (128, 128),
    "folder": (64, 64),
}

_SPLITS = {
    "synthetic": ("train", "val", "test"),
    "cityscapes": ("train", "val", "test"),
    "kth": ("train", "test", "val"),
    "ucf101": ("train", "test", "val"),
    "folder": ("train", "val", "test"),
}

#: Synthetic splits are different dataset seeds: ``seed + offset``. (The trainers' held-out
#: sample clips use ``seed + 1_000_000``; these stay clear of it.)
SYNTHETIC_SPLIT_OFFSET = {"train": 0, "val": 2_000_000, "test": 3_000_000}


def frames_and_label_map(item: dict) -> tuple[Tensor, Tensor]:
    """(frames (T+1, 3, H, W) in [0, 1], first-frame label map (H, W) int64) of a dataset item:
    its ``"label_map"`` (every kind here) or ``"labels"[0]`` (a bare :class:`SyntheticStreets`)."""
    if "label_map" in item:
        labels = item["label_map"]
    elif "labels" in item:
        labels = item["labels"][0]
    else:
        raise ValueError(f"a clip needs 'frames' and 'label_map'; got keys {sorted(item)}")
    return item["frames"], labels.long()


@dataclass(frozen=True)
class DatasetConfig:
    """Which dataset, where, and how clips are cut from it. Plain values only, so that it can be
    stored in a checkpoint (:meth:`to_dict`) and rebuilt (:meth:`from_dict`).

    Args:
        kind: "synthetic" (default, generated on the fly), "cityscapes", "kth", "ucf101" or
            "folder" (your own frame folders).
        root: dataset folder (required for every kind but "synthetic"); see each loader's module
            for the expected layout.
        split: "train", or the held-out split: "val" for Cityscapes (its test split has no public
            annotations), "test" for KTH and UCF-101 ("val" is accepted as its alias). Folders
            have no split (the whole folder is used); synthetic splits use different seeds.
        height, width: frame size; None = the kind's default (:data:`DATASET_KINDS`).
        frames: T, the number of FUTURE frames (clips hold T + 1).
        stride: frame step between clip frames (real datasets).
        clip_step: step between the clip start positions used (1 = every valid start).
        classes: KTH action names or UCF-101 class names to use; empty = all.
        split_number: UCF-101 official split (1, 2 or 3).
        label_dir: Cityscapes: root of a parallel ``{split}/{city}/`` tree of label maps (None =
            next to the frames).
        label_suffix: Cityscapes label-map suffix replacing ``_leftImg8bit.png``.
        cache_dir: KTH/UCF-101 decoded-frame cache (None = ``ROOT/.seg2vid_cache``).
        num_clips: synthetic: number of clips.
        seed: synthetic: dataset seed.
        style: synthetic: the scene style, one of :data:`seg2vid.data.synthetic.STYLES`
            ("classic" or "rich"; default :data:`~seg2vid.data.synthetic.DEFAULT_STYLE`).
    """

    kind: str = "synthetic"
    root: str | None = None
    split: str = "train"
    height: int | None = None
    width: int | None = None
    frames: int = 8
    stride: int = 1
    clip_step: int = 1
    classes: tuple[str, ...] = ()
    split_number: int = 1
    label_dir: str | None = None
    label_suffix: str = LABEL_SUFFIX
    cache_dir: str | None = None
    num_clips: int = 1000
    seed: int = 0
    style: str = DEFAULT_STYLE

    def __post_init__(self) -> None:
        if self.kind not in DATASET_KINDS:
            raise ValueError(f"unknown dataset kind {self.kind!r}; known: {', '.join(DATASET_KINDS)}")
        # Accept a list (e.g. from JSON) or a single string for classes, store a tuple.
        classes = (self.classes,) if isinstance(self.classes, str) else tuple(self.classes)
        object.__setattr__(self, "classes", classes)
        for name in ("root", "label_dir", "cache_dir"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, str(value))
        if self.kind == "synthetic" and self.root is not None:
            raise ValueError("the synthetic dataset is generated on the fly and takes no root")
        if self.kind != "synthetic" and not self.root:
            raise ValueError(f"dataset kind {self.kind!r} needs root= the dataset folder")
        if self.split not in _SPLITS[self.kind]:
            raise ValueError(
                f"split {self.split!r} is not one of {self.kind}'s splits: {', '.join(_SPLITS[self.kind])}"
            )
        if (self.height is None) != (self.width is None):
            raise ValueError("give both height and width, or neither (the kind's default size)")
        if self.height is not None and (self.height < 8 or self.width < 8):
            raise ValueError(f"frames must be at least 8x8 pixels, got {self.height}x{self.width}")
        for name in ("frames", "stride", "clip_step", "num_clips"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.style not in STYLES:
            raise ValueError(f"unknown synthetic style {self.style!r}; known: {', '.join(STYLES)}")
        if self.kind != "synthetic" and self.style != DEFAULT_STYLE:
            raise ValueError("style (the synthetic scene style) applies to the synthetic dataset only")
        if self.kind == "synthetic" and (self.stride != 1 or self.clip_step != 1):
            raise ValueError("stride / clip_step apply to real datasets; synthetic clips are generated")
        if classes and self.kind not in ("kth", "ucf101"):
            raise ValueError(f"classes= selects KTH actions or UCF-101 classes; {self.kind!r} has none")
        if self.kind == "kth":
            check_actions(classes)
        if self.split_number not in (1, 2, 3):
            raise ValueError(f"split_number must be 1, 2 or 3 (UCF-101's splits), got {self.split_number}")
        if self.kind != "cityscapes" and (self.label_dir is not None or self.label_suffix != LABEL_SUFFIX):
            raise ValueError("label_dir / label_suffix apply to Cityscapes only")
        if self.cache_dir is not None and self.kind not in ("kth", "ucf101"):
            raise ValueError("cache_dir (decoded video frames) applies to KTH and UCF-101 only")

    @property
    def size(self) -> tuple[int, int]:
        """(height, width): the given size or the kind's default."""
        if self.height is None:
            return DATASET_KINDS[self.kind]
        return self.height, self.width

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (str, int, None, list of str) for a checkpoint or JSON."""
        out = dataclasses.asdict(self)
        out["classes"] = list(self.classes)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused (naming them and the known ones)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown DatasetConfig field(s) {unknown}; known: {', '.join(sorted(known))}")
        return cls(**data)


class SyntheticClips(Dataset):
    """:class:`~seg2vid.data.synthetic.SyntheticStreets` with the common item keys.

    Items keep every key of the synthetic generator (``frames`` (T+1, 3, H, W), ``labels``
    (T+1, H, W), flows, visibility masks) and add ``label_map`` = ``labels[0]`` (H, W) and
    ``name`` = ``"synthetic:seed={seed}:{index}"``.
    """

    table: LabelTable = CITYSCAPES

    def __init__(self, num_clips: int, scene: SceneConfig, seed: int):
        self.streets = SyntheticStreets(num_clips, scene, seed=seed)
        self.height, self.width, self.frames = scene.height, scene.width, scene.frames
        self.seed = seed
        self.report: list[str] = []

    def __len__(self) -> int:
        return len(self.streets)

    def __getitem__(self, index: int) -> dict:
        item: dict[str, Any] = dict(self.streets[index])
        item["label_map"] = item["labels"][0]
        item["name"] = f"synthetic:seed={self.seed}:{index % len(self)}"
        return item


def build_dataset(
    config: DatasetConfig | None = None,
    *,
    segmenter: Segmenter | None = None,
    table: LabelTable | None = None,
) -> Dataset:
    """Build the dataset a :class:`DatasetConfig` describes.

    Args:
        config: which dataset (default: the synthetic streets at 64x64, 1 + 8 frames).
        segmenter: Cityscapes only: compute label maps on the fly with this callable
            ((1, 3, H, W) float in [0, 1] -> (1, H, W) ids or (1, C, H, W) logits) instead of
            reading precomputed ``_ssmask.png`` files.
        table: "folder" and "cityscapes" only: the label table of the label maps.
    Returns:
        A map-style dataset with the common items and attributes (see the module docstring).
    Raises:
        FileNotFoundError: the root or its expected subfolders are missing (the message names
            the expected path), or no clip has all its files.
        ValueError: an unknown class/action name (listing the known ones), or an option that does
            not apply to the kind.
    """
    config = config or DatasetConfig()
    height, width = config.size
    if segmenter is not None and config.kind != "cityscapes":
        raise ValueError(f"segmenter= applies to Cityscapes only, not {config.kind!r}")
    if table is not None and config.kind not in ("cityscapes", "folder"):
        raise ValueError(f"table= applies to 'cityscapes' and 'folder' only, not {config.kind!r}")
    root = None if config.root is None else Path(config.root).expanduser()
    clips = {"frames": config.frames, "stride": config.stride, "clip_step": config.clip_step}
    if config.kind == "synthetic":
        scene = SceneConfig(height=height, width=width, frames=config.frames, style=config.style)
        return SyntheticClips(config.num_clips, scene, config.seed + SYNTHETIC_SPLIT_OFFSET[config.split])
    if config.kind == "cityscapes":
        return CityscapesSequences(
            root, config.split, height, width, **clips,
            label_dir=None if config.label_dir is None else Path(config.label_dir).expanduser(),
            label_suffix=config.label_suffix, segmenter=segmenter, table=table or CITYSCAPES,
        )  # fmt: skip
    cache_dir = None if config.cache_dir is None else Path(config.cache_dir).expanduser()
    if config.kind == "kth":
        return KTH(root, config.split, config.classes, height, width, **clips, cache_dir=cache_dir)
    if config.kind == "ucf101":
        return UCF101(
            root, config.split, config.classes, config.split_number, height, width, **clips,
            cache_dir=cache_dir,
        )  # fmt: skip
    return VideoFolder(root, height, width, **clips, table=table)
