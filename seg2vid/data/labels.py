"""Semantic label tables: the Cityscapes classes, one-hot maps, colours and class groups.

Label maps in seg2vid are integer tensors of TRAIN ids (``0 .. num_classes-1``) with one extra
value, ``ignore_id`` (255 for Cityscapes), for void pixels. One-hot maps have
``num_classes + 1`` channels: one per class and a last one for void, which is the 20-channel
input of the Seg2Vid model (19 Cityscapes classes + void).

Everything that depends on the label set (number of channels, colours, which classes are
"background" and which "foreground" for the two motion encoders) is read from a
:class:`LabelTable`, so a custom label set works by building another table, not by editing code.

The Cityscapes rows below are facts from the Cityscapes dataset definition (name, id, trainId,
category, colour); ``tests/test_labels.py`` checks them against ``cityscapesscripts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class LabelClass:
    """One row of the full Cityscapes label definition (``id`` is the annotation id)."""

    name: str
    id: int
    train_id: int
    category: str
    category_id: int
    has_instances: bool
    ignore_in_eval: bool
    color: RGB


# fmt: off
CITYSCAPES_CLASSES: tuple[LabelClass, ...] = (
    LabelClass("unlabeled",             0, 255, "void",         0, False, True,  (0, 0, 0)),
    LabelClass("ego vehicle",           1, 255, "void",         0, False, True,  (0, 0, 0)),
    LabelClass("rectification border",  2, 255, "void",         0, False, True,  (0, 0, 0)),
    LabelClass("out of roi",            3, 255, "void",         0, False, True,  (0, 0, 0)),
    LabelClass("static",                4, 255, "void",         0, False, True,  (0, 0, 0)),
    LabelClass("dynamic",               5, 255, "void",         0, False, True,  (111, 74, 0)),
    LabelClass("ground",                6, 255, "void",         0, False, True,  (81, 0, 81)),
    LabelClass("road",                  7,   0, "flat",         1, False, False, (128, 64, 128)),
    LabelClass("sidewalk",              8,   1, "flat",         1, False, False, (244, 35, 232)),
    LabelClass("parking",               9, 255, "flat",         1, False, True,  (250, 170, 160)),
    LabelClass("rail track",           10, 255, "flat",         1, False, True,  (230, 150, 140)),
    LabelClass("building",             11,   2, "construction", 2, False, False, (70, 70, 70)),
    LabelClass("wall",                 12,   3, "construction", 2, False, False, (102, 102, 156)),
    LabelClass("fence",                13,   4, "construction", 2, False, False, (190, 153, 153)),
    LabelClass("guard rail",           14, 255, "construction", 2, False, True,  (180, 165, 180)),
    LabelClass("bridge",               15, 255, "construction", 2, False, True,  (150, 100, 100)),
    LabelClass("tunnel",               16, 255, "construction", 2, False, True,  (150, 120, 90)),
    LabelClass("pole",                 17,   5, "object",       3, False, False, (153, 153, 153)),
    LabelClass("polegroup",            18, 255, "object",       3, False, True,  (153, 153, 153)),
    LabelClass("traffic light",        19,   6, "object",       3, False, False, (250, 170, 30)),
    LabelClass("traffic sign",         20,   7, "object",       3, False, False, (220, 220, 0)),
    LabelClass("vegetation",           21,   8, "nature",       4, False, False, (107, 142, 35)),
    LabelClass("terrain",              22,   9, "nature",       4, False, False, (152, 251, 152)),
    LabelClass("sky",                  23,  10, "sky",          5, False, False, (70, 130, 180)),
    LabelClass("person",               24,  11, "human",        6, True,  False, (220, 20, 60)),
    LabelClass("rider",                25,  12, "human",        6, True,  False, (255, 0, 0)),
    LabelClass("car",                  26,  13, "vehicle",      7, True,  False, (0, 0, 142)),
    LabelClass("truck",                27,  14, "vehicle",      7, True,  False, (0, 0, 70)),
    LabelClass("bus",                  28,  15, "vehicle",      7, True,  False, (0, 60, 100)),
    LabelClass("caravan",              29, 255, "vehicle",      7, True,  True,  (0, 0, 90)),
    LabelClass("trailer",              30, 255, "vehicle",      7, True,  True,  (0, 0, 110)),
    LabelClass("train",                31,  16, "vehicle",      7, True,  False, (0, 80, 100)),
    LabelClass("motorcycle",           32,  17, "vehicle",      7, True,  False, (0, 0, 230)),
    LabelClass("bicycle",              33,  18, "vehicle",      7, True,  False, (119, 11, 32)),
    LabelClass("license plate",        -1,  -1, "vehicle",      7, False, True,  (0, 0, 142)),
)
# fmt: on


@dataclass(frozen=True)
class LabelTable:
    """The training classes of a label set.

    Args:
        names: class names; the position of a name is its train id.
        colors: one RGB colour (0-255) per class, used by :meth:`colorize`.
        foreground: one flag per class: True for the "foreground" (independently moving objects,
            e.g. person, car) group, False for "background" (road, building, sky, ...). Seg2Vid
            gives each group its own motion encoder.
        ignore_id: the value of void/unlabelled pixels in a label map.
        ignore_color: the colour of void pixels.
        void_colors: more colours that :meth:`from_colors` reads as ``ignore_id`` (Cityscapes: the
            colours of the classes that are void for training -- ground, dynamic, parking, rail
            track, guard rail, bridge, tunnel, caravan, trailer, ... -- so that the official
            ``*_color.png`` maps are read whole). A colour of a real class wins over a void one.
    """

    names: tuple[str, ...]
    colors: tuple[RGB, ...]
    foreground: tuple[bool, ...]
    ignore_id: int = 255
    ignore_color: RGB = (0, 0, 0)
    void_colors: tuple[RGB, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.names)
        if len(self.colors) != n or len(self.foreground) != n:
            raise ValueError(
                f"LabelTable needs one colour and one group flag per class: got {n} names, "
                f"{len(self.colors)} colours, {len(self.foreground)} group flags"
            )
        if 0 <= self.ignore_id < n:
            raise ValueError(f"ignore_id {self.ignore_id} collides with a class id (0..{n - 1})")

    @property
    def num_classes(self) -> int:
        """Number of real classes (Cityscapes: 19)."""
        return len(self.names)

    @property
    def num_channels(self) -> int:
        """Channels of a one-hot map: one per class plus one for void (Cityscapes: 20)."""
        return len(self.names) + 1

    @property
    def background_ids(self) -> tuple[int, ...]:
        """Train ids of the background group (Cityscapes: 0..10, road .. sky)."""
        return tuple(i for i, fg in enumerate(self.foreground) if not fg)

    @property
    def foreground_ids(self) -> tuple[int, ...]:
        """Train ids of the foreground group (Cityscapes: 11..18, person .. bicycle)."""
        return tuple(i for i, fg in enumerate(self.foreground) if fg)

    def id_of(self, name: str) -> int:
        """Train id of the class called ``name`` (a clear KeyError lists the known names)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown class name {name!r}; known: {', '.join(self.names)}") from None

    @cached_property
    def palette(self) -> np.ndarray:
        """uint8 array (256, 3): colour of every possible label value (unknown values: black)."""
        pal = np.zeros((256, 3), dtype=np.uint8)
        pal[: self.num_classes] = np.asarray(self.colors, dtype=np.uint8)
        if 0 <= self.ignore_id < 256:
            pal[self.ignore_id] = self.ignore_color
        return pal

    def check(self, labels: torch.Tensor | np.ndarray) -> None:
        """Raise ``ValueError`` naming the offending values if ``labels`` holds an id that is
        neither a train id of this table nor ``ignore_id``, or is not an integer array."""
        arr = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"label maps must hold integer train ids, got dtype {arr.dtype}")
        values = np.unique(arr)
        bad = values[((values < 0) | (values >= self.num_classes)) & (values != self.ignore_id)]
        if bad.size:
            raise ValueError(
                f"label map holds unknown class id(s) {bad.tolist()[:10]}: valid train ids are "
                f"0..{self.num_classes - 1} and {self.ignore_id} (void)"
            )

    def one_hot(self, labels: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """One-hot encode a label map.

        Args:
            labels: integer train ids, shape (..., H, W).
        Returns:
            Tensor (..., num_channels, H, W) of 0/1 in ``dtype``; void pixels set the last channel.
        """
        labels = torch.as_tensor(labels)
        self.check(labels)
        idx = torch.where(labels == self.ignore_id, torch.full_like(labels, self.num_classes), labels)
        out = torch.nn.functional.one_hot(idx.long(), self.num_channels)  # (..., H, W, C)
        return out.movedim(-1, -3).to(dtype)

    def group_mask(self, labels: torch.Tensor, group: str) -> torch.Tensor:
        """Bool mask (..., H, W): pixels whose class is in ``group`` ("foreground"/"background")."""
        ids = {"foreground": self.foreground_ids, "background": self.background_ids}.get(group)
        if ids is None:
            raise ValueError(f"group must be 'foreground' or 'background', got {group!r}")
        labels = torch.as_tensor(labels)
        return torch.isin(labels, torch.tensor(ids, dtype=labels.dtype, device=labels.device))

    def colorize(self, labels: torch.Tensor | np.ndarray) -> np.ndarray:
        """RGB picture of a label map: uint8 array (..., H, W, 3) in this table's palette."""
        arr = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
        self.check(arr)
        return self.palette[arr.astype(np.int64) & 255]

    def from_colors(self, rgb: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`colorize`: uint8 RGB (..., H, W, 3) -> int64 train ids (..., H, W).

        ``ignore_color`` and every colour of ``void_colors`` become ``ignore_id``; a colour shared
        by a class and a void colour is the class (Cityscapes' license plate has the colour of car).
        Raises ``ValueError`` listing colours that belong to no class (nor to void).
        """
        rgb = np.asarray(rgb)
        if rgb.shape[-1] != 3:
            raise ValueError(f"expected an RGB array (..., H, W, 3), got shape {rgb.shape}")
        key = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
        table = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(self.colors)}
        r, g, b = self.ignore_color
        table.setdefault((r << 16) | (g << 8) | b, self.ignore_id)
        for r, g, b in self.void_colors:
            table.setdefault((r << 16) | (g << 8) | b, self.ignore_id)
        uniq, inverse = np.unique(key, return_inverse=True)
        unknown = [int(k) for k in uniq if int(k) not in table]
        if unknown:
            shown = [((k >> 16) & 255, (k >> 8) & 255, k & 255) for k in unknown[:10]]
            raise ValueError(f"colour(s) {shown} belong to no class of this label table")
        ids = np.array([table[int(k)] for k in uniq], dtype=np.int64)
        return ids[inverse].reshape(rgb.shape[:-1])


def _cityscapes_table() -> LabelTable:
    rows = sorted((c for c in CITYSCAPES_CLASSES if 0 <= c.train_id < 255), key=lambda c: c.train_id)
    return LabelTable(
        names=tuple(c.name for c in rows),
        colors=tuple(c.color for c in rows),
        # The method's groups: background = road .. sky (0..10), foreground = person .. bicycle.
        foreground=tuple(c.category in ("human", "vehicle") for c in rows),
        # Every other row of the table is void for training (train id 255 or -1): its colour -> 255.
        void_colors=tuple(dict.fromkeys(c.color for c in CITYSCAPES_CLASSES if not 0 <= c.train_id < 255)),
    )


#: The 19 Cityscapes training classes (+ void = 255), the default label set of the course.
CITYSCAPES = _cityscapes_table()

_ID_TO_TRAIN_ID = np.full(256, 255, dtype=np.int64)
for _c in CITYSCAPES_CLASSES:
    if _c.id >= 0:
        _ID_TO_TRAIN_ID[_c.id] = _c.train_id if _c.train_id >= 0 else 255


#: The largest Cityscapes annotation id stored in ``*_labelIds.png`` files (bicycle).
CITYSCAPES_MAX_LABEL_ID = 33


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map Cityscapes annotation ids (``*_labelIds.png``, 0..33) to train ids (0..18, void 255)."""
    arr = np.asarray(label_ids)
    if arr.size and (arr.min() < 0 or arr.max() > 33):
        raise ValueError(f"Cityscapes label ids are 0..33, got values in [{arr.min()}, {arr.max()}]")
    return _ID_TO_TRAIN_ID[arr.astype(np.int64)]


#: One class, "scene", for datasets without label maps (KTH, UCF-101, folders of videos without a
#: ``labels/`` subfolder): every label map is all zeros, so the model is conditioned on the first
#: frame alone. Its one class is background (there is no foreground group to encode separately).
SCENE = LabelTable(names=("scene",), colors=((128, 128, 128),), foreground=(False,))
