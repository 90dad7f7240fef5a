"""Semantic fidelity: does a generated video still show the classes its label map asked for?

The paper's video has to match ONE label map, but a per-pixel check needs a label map for every
frame. This module provides both halves of that check:

* a small segmentation network, :class:`Segmenter` (a compact U-Net with GroupNorm, about half a
  million parameters), trained by ``scripts/train_segmenter.py`` on frames of the synthetic
  streets and shipped as ``data/checkpoints/segmenter_tiny_64.pt`` (:func:`load_segmenter`);
* the expected label map of every frame: the given map of frame 0 carried forward with the
  TRUE forward flow (:func:`seg2vid.flow.warp_labels`, nearest neighbour, the convention of
  :func:`seg2vid.flow.warp`).

:func:`semantic_fidelity` segments each generated frame and scores it against the carried map
with the mean intersection-over-union (:func:`mean_iou`). The same score on the TRUE frames is
the ceiling: what the segmenter itself gets right (the shipped checkpoint's JSON records it on
held-out clips). A generated video scoring near that ceiling has kept its semantics; one far
below it has smeared objects away or moved them where the true flow did not.

Compare frame by frame, with the TRUE video scored the same way as the reference curve: carrying
a map by nearest neighbour is itself lossy (the label of frame t at ``p`` belongs to the
continuous point ``p - flow``, the map only holds frame 0's pixel centres, and thin objects one
or two pixels wide suffer most). On 8 held-out clips at 64x64 the carried map agrees with frame
t's exact labels on 98.5% of the visible pixels at t = 1 and 96.9% at t = 4, and the true video's
mean per-frame fidelity falls from 0.61 (t = 0) to 0.51 (t = 4) for that reason alone.

Conventions: frames are float RGB in [0, 1], ``(..., 3, H, W)``; label maps integer train ids
``(..., H, W)`` with ``ignore_id`` (255) for void. The segmenter predicts the ``num_classes`` (19)
Cityscapes classes only: void is never predicted, it only marks pixels that are not scored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from seg2vid.flow import warp_labels
from seg2vid.models.blocks import NORMS, Norm, conv2d_block

__all__ = [
    "SEGMENTER_FORMAT",
    "SHIPPED_SEGMENTER",
    "Segmenter",
    "SegmenterConfig",
    "carry_labels",
    "confusion_matrix",
    "iou_from_confusion",
    "load_segmenter",
    "mean_iou",
    "segment",
    "semantic_fidelity",
]

#: Tag and version stored in every segmenter checkpoint (a file without them is refused).
SEGMENTER_FORMAT = ("seg2vid-segmenter", 1)

#: Repository path of the shipped segmenter (found with :func:`seg2vid.train.find_checkpoint`).
SHIPPED_SEGMENTER = "data/checkpoints/segmenter_tiny_64.pt"


@dataclass(frozen=True)
class SegmenterConfig:
    """Everything that defines a segmenter; plain values, so it is stored in the checkpoint.

    Args:
        height, width: the frame size it is trained at; :func:`segment` resizes other sizes to
            it. Multiples of ``2 ** (len(widths) - 1)``.
        num_classes: classes predicted (Cityscapes train ids 0..18; no void output).
        widths: channels of the U-Net's levels, full resolution first; each next level halves H, W.
        norm: normalisation of every conv block ("group" by default, independent of batch size).
        ignore_id: the void id of the label maps it is trained and scored on.
    """

    height: int = 64
    width: int = 64
    num_classes: int = 19
    widths: tuple[int, ...] = (16, 32, 64, 128)
    norm: Norm = "group"
    ignore_id: int = 255

    def __post_init__(self) -> None:
        if len(self.widths) < 2:
            raise ValueError(f"widths needs at least 2 levels, got {self.widths}")
        step = 2 ** (len(self.widths) - 1)
        if self.height % step or self.width % step or min(self.height, self.width) < step:
            raise ValueError(f"height and width must be multiples of {step} for {len(self.widths)} levels, "
                             f"got {self.height}x{self.width}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if 0 <= self.ignore_id < self.num_classes:
            raise ValueError(
                f"ignore_id {self.ignore_id} collides with a class id (0..{self.num_classes - 1})"
            )
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; choose one of {NORMS}")

    def to_dict(self) -> dict:
        """Plain dict of the fields (tuples as lists), for checkpoints and JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> SegmenterConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown SegmenterConfig field(s): {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


class Segmenter(nn.Module):
    """A compact U-Net: RGB frame -> per-pixel class logits.

    Each level is two 3x3 conv blocks (conv -> norm -> LeakyReLU); a stride-2 block opens every
    level below the first. The decoder upsamples bilinearly, concatenates the skip of the same
    level and applies two blocks; a 1x1 convolution gives the logits. With the default widths
    (16, 32, 64, 128) it has 0.47 M parameters, and the deepest features see 8x8 pixels of
    context at 64x64 -- enough to tell a grey facade (building) from a grey road by where it is.

    Forward:
        frames (B, 3, H, W) in [0, 1] -> logits (B, num_classes, H, W) (H, W multiples of
        ``2 ** (levels - 1)``; any such size runs, but :func:`segment` resizes to the trained size).
    """

    def __init__(self, config: SegmenterConfig | None = None):
        super().__init__()
        self.config = config = config or SegmenterConfig()
        w, norm = config.widths, config.norm
        self.stem = nn.Sequential(conv2d_block(3, w[0], norm=norm), conv2d_block(w[0], w[0], norm=norm))
        self.down = nn.ModuleList(
            nn.Sequential(conv2d_block(a, b, stride=2, norm=norm), conv2d_block(b, b, norm=norm))
            for a, b in zip(w[:-1], w[1:], strict=True)
        )
        self.up = nn.ModuleList(
            nn.Sequential(conv2d_block(b + a, a, norm=norm), conv2d_block(a, a, norm=norm))
            for a, b in zip(w[:-1], w[1:], strict=True)
        )
        self.head = nn.Conv2d(w[0], config.num_classes, 1)

    def forward(self, frames: Tensor) -> Tensor:
        if frames.dim() != 4 or frames.shape[1] != 3:
            raise ValueError(f"frames must be (B, 3, H, W), got {tuple(frames.shape)}")
        x = self.stem(frames * 2 - 1)  # centre [0, 1] RGB around 0
        skips = []
        for block in self.down:
            skips.append(x)
            x = block(x)
        for block, skip in zip(reversed(self.up), reversed(skips), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


def load_segmenter(path: str | Path | None = None, device: str | torch.device = "cpu") -> Segmenter:
    """A trained :class:`Segmenter` in eval mode, read with ``torch.load(weights_only=True)``.

    Args:
        path: a file written by ``scripts/train_segmenter.py``; ``None`` = the shipped
            ``data/checkpoints/segmenter_tiny_64.pt``, found from wherever the code runs.
        device: where to put the model.
    Raises:
        FileNotFoundError: no file there (for ``None``: the shipped file is missing, with the
            command that trains it); ValueError: the file is not a segmenter checkpoint.
    """
    from seg2vid.train import find_checkpoint  # train imports the whole training stack: only now

    if path is None:
        found = find_checkpoint(SHIPPED_SEGMENTER)
        if found is None:
            raise FileNotFoundError(
                f"the shipped segmenter {SHIPPED_SEGMENTER} is not here; train it with "
                "`python scripts/train_segmenter.py` from the repository root (about 7 minutes on one core)"
            )
        path = found
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no segmenter checkpoint at {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    found_format = (ckpt.get("format"), ckpt.get("format_version")) if isinstance(ckpt, dict) else None
    if found_format != SEGMENTER_FORMAT:
        raise ValueError(
            f"{path} is not a segmenter checkpoint (format {found_format}, expected {SEGMENTER_FORMAT})"
        )
    model = Segmenter(SegmenterConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval()


@torch.no_grad()
def segment(model: Segmenter, frames: Tensor, batch_size: int = 256) -> Tensor:
    """Class ids of frames with any leading dimensions: (..., 3, H, W) in [0, 1] -> (..., H, W) int64.

    Frames whose size differs from the model's training size (``model.config.height/width``)
    are resized to it (bilinear, antialiased when shrinking), segmented, and the LOGITS are
    resized back (bilinear) before the argmax, so the ids come back on the input's own grid.
    The network sees objects at the scale it was trained on; boundaries at other sizes are only as
    sharp as the training size allows. Runs in eval mode without gradients, ``batch_size`` frames
    at a time, on the model's device; the ids are returned on the frames' device.
    """
    if frames.dim() < 3 or frames.shape[-3] != 3:
        raise ValueError(f"frames must be (..., 3, H, W), got {tuple(frames.shape)}")
    lead, (h, w) = frames.shape[:-3], frames.shape[-2:]
    flat = frames.reshape(-1, 3, h, w)
    size = (model.config.height, model.config.width)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for chunk in flat.split(batch_size):
        x = chunk.to(device=device, dtype=torch.float32)
        if (h, w) != size:
            shrink = h > size[0] or w > size[1]
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)
        logits = model(x)
        if (h, w) != size:
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        out.append(logits.argmax(1).to(frames.device))
    model.train(was_training)
    return torch.cat(out).reshape(*lead, h, w)


# ----------------------------------------------------------------------------- scores


def confusion_matrix(
    pred_ids: Tensor, true_ids: Tensor, num_classes: int = 19, ignore_id: int = 255
) -> Tensor:
    """Pixel counts (num_classes, num_classes) int64: row = true class, column = predicted class.

    A pixel counts only where BOTH maps hold a class id: void (``ignore_id``) in either map means
    "no opinion" (a carried label map is void where its source left the frame). Any other id
    outside ``0 .. num_classes - 1`` is a ``ValueError``. Sum the matrices of several batches and
    call :func:`iou_from_confusion` to pool pixels over a data set.
    """
    if pred_ids.shape != true_ids.shape:
        raise ValueError(
            f"pred_ids {tuple(pred_ids.shape)} and true_ids {tuple(true_ids.shape)} differ in shape"
        )
    pred, true = pred_ids.reshape(-1).long(), true_ids.reshape(-1).long()
    keep = (pred != ignore_id) & (true != ignore_id)
    pred, true = pred[keep], true[keep]
    for name, ids in (("pred_ids", pred), ("true_ids", true)):
        if ids.numel() and (ids.min() < 0 or ids.max() >= num_classes):
            bad = ids[(ids < 0) | (ids >= num_classes)].unique()[:10].tolist()
            raise ValueError(f"{name} holds id(s) {bad}: expected 0..{num_classes - 1} or {ignore_id} (void)")
    counts = torch.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).cpu()


def iou_from_confusion(confusion: Tensor) -> tuple[float, Tensor]:
    """(mean IoU, per-class IoU) of a confusion matrix from :func:`confusion_matrix`.

    IoU of class c = TP / (TP + FP + FN) = ``C[c, c] / (row c + column c - C[c, c])``. A class
    absent from BOTH maps (union 0) has no IoU: NaN in ``per_class``, and left out of the mean
    (a class nobody drew or predicted says nothing about the prediction). The mean of an all-NaN
    row is NaN.

    Returns:
        ``(miou, per_class)``: a float and a float64 tensor (num_classes,).
    """
    c = confusion.double()
    tp = c.diagonal()
    union = c.sum(0) + c.sum(1) - tp
    per_class = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    return float(per_class.nanmean()), per_class


def mean_iou(
    pred_ids: Tensor, true_ids: Tensor, num_classes: int = 19, ignore_id: int = 255
) -> tuple[float, Tensor]:
    """Mean intersection-over-union of two label maps, pooled over every pixel given.

    See :func:`confusion_matrix` (which pixels count) and :func:`iou_from_confusion` (classes
    absent from both maps are NaN and ignored in the mean).

    Returns:
        ``(miou, per_class)``: a float and a float64 tensor (num_classes,).
    """
    return iou_from_confusion(confusion_matrix(pred_ids, true_ids, num_classes, ignore_id))


def carry_labels(label_map: Tensor, flow_fwd: Tensor, ignore_id: int = 255,
                 visible: Tensor | None = None) -> Tensor:
    """The label map of frame 0 carried to every frame: (B, H, W) + (B, T, 2, H, W) -> (B, T+1, H, W).

    Frame 0 keeps ``label_map``; frame t is ``warp_labels(label_map, flow_fwd[:, t-1])`` (source
    outside the frame: ``ignore_id``). With ``visible`` (B, T, 1, H, W) -- the synthetic clips'
    ``visible_fwd`` -- pixels of frame t that were hidden in frame 0 become ``ignore_id`` too:
    the flow there points at the occluder, whose class is not what frame t shows.
    """
    if label_map.dim() != 3 or flow_fwd.dim() != 5 or flow_fwd.shape[0] != label_map.shape[0]:
        raise ValueError(f"need label_map (B, H, W) and flow_fwd (B, T, 2, H, W), got "
                         f"{tuple(label_map.shape)} and {tuple(flow_fwd.shape)}")
    carried = warp_labels(label_map.unsqueeze(1), flow_fwd, ignore_id=ignore_id)
    if visible is not None:
        carried = torch.where(visible[:, :, 0] > 0.5, carried, torch.full_like(carried, ignore_id))
    return torch.cat([label_map.unsqueeze(1), carried], dim=1)


def semantic_fidelity(video: Tensor, label_map: Tensor, flow_fwd: Tensor, segmenter: Segmenter,
                      visible: Tensor | None = None) -> Tensor:
    """Per-frame mIoU between the segmented video and the label map carried by the true flow.

    Args:
        video: (B, T+1, 3, H, W) in [0, 1]; frame 0 is the given first frame (generated or true).
        label_map: (B, H, W) integer train ids of frame 0 (the map the video was made from).
        flow_fwd: (B, T, 2, H, W) the TRUE forward flow in pixels (frame 0 -> t, on frame t's
            grid), e.g. a synthetic clip's ``flow_fwd``. Passing the model's OWN predicted flow
            instead asks a different question: did the refinement keep what the flow promised?
        segmenter: a :class:`Segmenter`, e.g. ``load_segmenter()``.
        visible: optional (B, T, 1, H, W) visibility of frame t's pixels in frame 0; hidden pixels
            are not scored (see :func:`carry_labels`).
    Returns:
        (B, T+1) float64: the mIoU of every frame of every video (classes absent from both maps
        of that frame are left out, see :func:`mean_iou`). Column 0 scores the first frame
        against the map itself: for a video whose first frame is given, that is the segmenter's
        own accuracy there, the level the later columns can reach at best. Take ``[:, 1:]`` for
        the T predicted frames only.
    """
    if video.dim() != 5 or video.shape[:2] != (flow_fwd.shape[0], flow_fwd.shape[1] + 1):
        raise ValueError(f"video must be (B, T+1, 3, H, W) to match flow_fwd (B, T, 2, H, W); got "
                         f"{tuple(video.shape)} and {tuple(flow_fwd.shape)}")
    c = segmenter.config
    expected = carry_labels(label_map.to(flow_fwd.device), flow_fwd, c.ignore_id, visible)
    predicted = segment(segmenter, video).to(expected.device)
    scores = torch.empty(expected.shape[:2], dtype=torch.float64)
    for b in range(expected.shape[0]):
        for t in range(expected.shape[1]):
            scores[b, t] = mean_iou(predicted[b, t], expected[b, t], c.num_classes, c.ignore_id)[0]
    return scores
