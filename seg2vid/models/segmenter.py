"""The small segmentation network that scores semantic fidelity, and its loader.

:class:`Segmenter` is a compact U-Net with GroupNorm (about half a million parameters), trained
by ``scripts/train_segmenter.py`` on frames of the synthetic streets and shipped as
``data/checkpoints/segmenter_tiny_64.pt`` (:func:`load_segmenter`); :func:`segment` labels
frames with it. The scores built on it (mIoU, confusion matrices, semantic fidelity against the
label map carried by the true flow) are in :mod:`seg2vid.evaluation.segmentation`.

Conventions: frames are float RGB in [0, 1], ``(..., 3, H, W)``; label maps integer train ids
``(..., H, W)`` with ``ignore_id`` (255) for void. The segmenter predicts the ``num_classes`` (19)
Cityscapes classes only: void is never predicted, it only marks pixels that are not scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from seg2vid.checkpoints import SEGMENTER_FORMAT, find_checkpoint, read_checkpoint
from seg2vid.config_base import FrozenConfig
from seg2vid.models.blocks import NORMS, Norm, conv2d_block

__all__ = ["SHIPPED_SEGMENTER", "Segmenter", "SegmenterConfig", "load_segmenter", "segment"]

#: Repository path of the shipped segmenter (found with :func:`seg2vid.checkpoints.find_checkpoint`).
SHIPPED_SEGMENTER = "data/checkpoints/segmenter_tiny_64.pt"


@dataclass(frozen=True)
class SegmenterConfig(FrozenConfig):
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
    ckpt = read_checkpoint(path, (SEGMENTER_FORMAT,), "segmenter checkpoint")
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
