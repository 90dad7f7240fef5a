"""Reading label-map files as people really have them, and fitting a map to a model's size.

:func:`decode_label_file` turns an image file into int64 TRAIN ids (H, W) of a
:class:`~seg2vid.data.labels.LabelTable`. What it accepts, and how it decides:

- **Grey images** (modes ``L``, ``I``, ``I;16``; or RGB with three equal channels) hold ids.
  Train ids of the table (``ignore_id`` = void) are taken as they are. With the Cityscapes table,
  a file whose name contains ``labelIds`` (the official ``*_gtFine_labelIds.png``) holding values
  0..33 is read as Cityscapes annotation ids and converted to train ids
  (:func:`~seg2vid.data.labels.label_ids_to_train_ids`, with a warning). Any other file is read
  as train ids; if it holds ids 19..33 that no train-id map can hold, the error says that it
  looks like a labelIds map and how to convert it. (The contents alone cannot decide: a labelIds
  map of road (7), building (11) and car (26) and a train-id map of 7, 11 and 26 ... differ only
  in the last value, so the file name decides, and a guess is never made silently.)
- **Colour images** (RGB, RGBA with the alpha channel dropped) are read by the table's colours.
  With the Cityscapes table every row of the official table is accepted, so the official
  ``*_color.png`` maps read whole: the classes that are void for training (ground, dynamic,
  parking, rail track, ...) become 255 (see ``LabelTable.void_colors``).
- **Palette images** (PNG mode ``P``, e.g. after ``optipng``, and GIF) are decoded through their
  palette, i.e. by their COLOURS (then as above: grey palettes are ids, colours are classes).
  The palette index is never taken as the id: optimisers reorder palettes freely.
- **JPEG** (and other lossy formats) is refused: lossy compression changes the colours at every
  class border, so the classes cannot be read back.
- A missing file raises ``FileNotFoundError``; an empty, truncated, or not-an-image file raises
  :class:`LabelMapError` (a ``ValueError``) naming the file and the cause.

:func:`fit_label_map` decides what happens to a map whose shape differs from the model's.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from seg2vid.data.labels import CITYSCAPES, CITYSCAPES_MAX_LABEL_ID, LabelTable, label_ids_to_train_ids

__all__ = [
    "LOSSY_FORMATS",
    "LabelMapError",
    "aspect_crop_box",
    "crop_to_aspect",
    "decode_label_file",
    "fit_label_map",
]

#: Pillow format names of lossy codecs: their colours are not the colours that were saved.
LOSSY_FORMATS = ("JPEG", "MPO", "JPEG2000")


class LabelMapError(ValueError):
    """A label-map file that cannot be read as a label map. The message names the file and the
    cause (empty, truncated, not an image, lossy JPEG, unknown ids or colours). A ``ValueError``,
    so callers that catch ``ValueError`` (the CLI: one line, exit status 2) catch it too."""


def _is_cityscapes(table: LabelTable) -> bool:
    return table.names == CITYSCAPES.names and table.ignore_id == CITYSCAPES.ignore_id


def _in_label_id_range(values: np.ndarray) -> bool:
    return values.size > 0 and values.min() >= 0 and values.max() <= CITYSCAPES_MAX_LABEL_ID


def _grey_ids(grey: np.ndarray, table: LabelTable, path: Path) -> np.ndarray:
    """int64 ids from a grey image: train ids as they are; a Cityscapes ``*labelIds*`` file converted."""
    if _is_cityscapes(table) and "labelids" in path.name.lower() and _in_label_id_range(np.unique(grey)):
        warnings.warn(
            f"label map {path}: read as Cityscapes labelIds (annotation ids 0..33, by its name) and "
            "converted to train ids (0..18, void 255)",
            stacklevel=3,
        )
        return label_ids_to_train_ids(grey)
    return grey.astype(np.int64)


def decode_label_file(path: str | Path, table: LabelTable = CITYSCAPES) -> np.ndarray:
    """Read a label-map image file (see the module docstring for what is accepted).

    Args:
        path: the image file.
        table: the label set (default: Cityscapes' 19 classes + void 255).
    Returns:
        int64 (H, W) train ids of ``table`` (``table.ignore_id`` = void), checked with
        ``table.check``.
    Raises:
        FileNotFoundError: the file does not exist.
        LabelMapError: empty, truncated or not an image; a JPEG; an id or colour that belongs to
            no class of ``table``; not a 2-D image. The message starts with ``label map <path>``.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label map {path} does not exist")
    if path.stat().st_size == 0:
        raise LabelMapError(f"label map {path} is empty (0 bytes)")
    try:
        im = Image.open(path)
    except UnidentifiedImageError:
        raise LabelMapError(
            f"label map {path} is not an image (Pillow cannot identify it); expected a PNG"
        ) from None
    with im:
        if im.format in LOSSY_FORMATS:
            raise LabelMapError(
                f"label map {path} is a {im.format}: lossy compression changed the colours of the "
                "classes (at every border), so they cannot be read back; save label maps as PNG"
            )
        try:
            im.load()
        except (OSError, SyntaxError, ValueError) as err:  # Pillow's truncated / corrupt data
            raise LabelMapError(f"label map {path} is truncated or corrupt ({err})") from None
        if im.mode in ("L", "I", "I;16", "I;16B", "I;16L"):
            ids = _grey_ids(np.asarray(im), table, path)
        else:
            # P (palette PNG, GIF): the palette gives each pixel its colour; the index means
            # nothing. RGBA, LA, 1, ...: alpha dropped.
            rgb = np.asarray(im.convert("RGB"))
            if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
                grey = rgb[..., 0].astype(np.int64)
                values = np.unique(grey)
                ok = (values < table.num_classes) | (values == table.ignore_id)
                if _is_cityscapes(table):
                    ok = ok | (values <= CITYSCAPES_MAX_LABEL_ID)
                ids = _grey_ids(grey, table, path) if ok.all() else None
            else:
                ids = None
            if ids is None:
                try:
                    ids = table.from_colors(rgb)
                except ValueError as err:
                    raise LabelMapError(f"label map {path}: {err}") from None
    if ids.ndim != 2:
        raise LabelMapError(f"label map {path} must be a 2-D image, got shape {ids.shape}")
    try:
        table.check(ids)
    except ValueError as err:
        hint = ""
        if _is_cityscapes(table) and _in_label_id_range(np.unique(ids)):
            hint = (
                "; ids up to 33 look like a Cityscapes labelIds map: name the file *_labelIds.png to "
                "have it converted, or convert it with seg2vid.data.labels.label_ids_to_train_ids"
            )
        raise LabelMapError(f"label map {path}: {err}{hint}") from None
    return ids


def aspect_crop_box(h: int, w: int, height: int, width: int) -> tuple[int, int, int, int]:
    """``(top, left, crop_h, crop_w)`` of the largest centred crop of an ``h x w`` image whose aspect
    ratio is ``height : width`` (as close as whole pixels allow; the whole image if it has it)."""
    if h * width == w * height:
        return 0, 0, h, w
    if h * width > w * height:  # too tall: crop rows
        new_h, new_w = max(1, round(w * height / width)), w
    else:  # too wide: crop columns
        new_h, new_w = h, max(1, round(h * width / height))
    return (h - new_h) // 2, (w - new_w) // 2, new_h, new_w


def crop_to_aspect(label_map: torch.Tensor | np.ndarray, height: int, width: int) -> torch.Tensor:
    """The largest centred crop of ``label_map`` with the aspect ratio ``height : width``.

    Args:
        label_map: int (..., H, W) train ids.
        height, width: the target shape whose aspect ratio is kept (any scale).
    Returns:
        int64 (..., h, w) with ``h / w`` as close to ``height / width`` as whole pixels allow;
        the map itself (as int64) when it already has that aspect ratio.
    """
    labels = torch.as_tensor(np.ascontiguousarray(label_map) if isinstance(label_map, np.ndarray)
                             else label_map).long()
    top, left, new_h, new_w = aspect_crop_box(*labels.shape[-2:], height, width)
    return labels[..., top : top + new_h, left : left + new_w]


def fit_label_map(
    label_map: torch.Tensor | np.ndarray, short_side: int, multiple: int = 16, max_ratio: float = 4.0
) -> torch.Tensor:
    """Resize a label map to a model's scale AT ITS OWN ASPECT RATIO (the decision for non-square maps).

    The networks are convolutional: what they need is a short side near the one they were trained
    at and sides divisible by their total stride (Seg2Vid: 16, four stride-2 stages). So a 128x256
    map fitted to ``short_side=64`` becomes 64x128, not a squashed 64x64 (cars would become blobs).
    Each side is ``round(side * short_side / min(H, W))`` rounded to the nearest multiple of
    ``multiple`` (at least ``multiple``); the map is resized with nearest neighbour, so no new id
    appears. Maps more elongated than ``max_ratio`` are first centre-cropped to that ratio, since
    a model trained on (near-)square frames sees nothing like them.

    A model whose configuration fixes its frame size (today's :class:`~seg2vid.models.seg2vid.Seg2Vid`
    checks it) cannot take such a map; :class:`~seg2vid.generation.pipeline.Pipeline` then
    centre-crops the map to the model's aspect ratio with :func:`crop_to_aspect` (saying so on
    stderr) before resizing.

    Args:
        label_map: int (H, W) train ids.
        short_side: the short side of the output before rounding (the model's training size).
        multiple: every output side is a multiple of this (the networks' total stride).
        max_ratio: the most elongated aspect ratio kept (long / short side).
    Returns:
        int64 (H', W') train ids, ``H' % multiple == W' % multiple == 0``.
    """
    if short_side < 1 or multiple < 1 or max_ratio < 1:
        raise ValueError(
            "short_side and multiple must be >= 1 and max_ratio >= 1, got "
            f"{short_side}, {multiple}, {max_ratio}"
        )
    labels = torch.as_tensor(np.ascontiguousarray(label_map) if isinstance(label_map, np.ndarray)
                             else label_map).long()
    if labels.dim() != 2:
        raise ValueError(f"label_map must be (H, W), got shape {tuple(labels.shape)}")
    h, w = labels.shape
    if max(h, w) > max_ratio * min(h, w):
        if h > w:
            labels = crop_to_aspect(labels, round(max_ratio * w), w)
        else:
            labels = crop_to_aspect(labels, h, round(max_ratio * h))
        h, w = labels.shape
    scale = short_side / min(h, w)

    def side(n: int) -> int:
        return max(multiple, int(round(n * scale / multiple)) * multiple)

    size = (side(h), side(w))
    if size == (h, w):
        return labels
    out = F.interpolate(labels[None, None].float(), size=size, mode="nearest-exact")
    return out[0, 0].round().long()
