"""The stage-1 interface: anything that turns label maps into first frames.

Stage 2 only needs a first frame for a label map, so stage 1 is a plug: :class:`FirstFrameGenerator`
is the one method it must have. :class:`~seg2vid.models.spade.SpadeGenerator` (the project's own
small generator) implements it; :class:`ImageFirstFrame` wraps a given image (a real photo, or
the output of a stronger generator) so it can stand in for a trained stage 1.

Also here: :func:`split_label_groups`, the background / foreground split of a one-hot map that
the two motion encoders of stage 2 read (void counts as background).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from seg2vid.data.labels import LabelTable

__all__ = ["FirstFrameGenerator", "ImageFirstFrame", "split_label_groups"]


@runtime_checkable
class FirstFrameGenerator(Protocol):
    """Stage 1 of Seg2Vid: label maps -> first frames.

    Any object with this method will do (``isinstance(obj, FirstFrameGenerator)`` checks that it
    has it); :class:`~seg2vid.models.spade.SpadeGenerator` and :class:`ImageFirstFrame` are two.
    """

    def generate(self, labels_onehot: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """First frames for a batch of label maps.

        Args:
            labels_onehot: (B, L, H, W) one-hot label maps (L = ``table.num_channels``).
            generator: seeds any randomness of the generator (same seed, same frames).
        Returns:
            (B, 3, H, W) float images in [0, 1], on the labels' device.
        """
        ...


class ImageFirstFrame:
    """A fixed image (a real photo, another generator's output) used as stage 1's result.

    Args:
        image: float (3, H, W) or (B, 3, H, W) in [0, 1], or uint8 (H, W, 3) / (B, H, W, 3)
            (torch tensor or NumPy array, as ``PIL``/``imageio`` give them).
        resize: when the label maps have another size than the image, resize the image to
            theirs (bilinear, antialiased) instead of raising an error.

    ``generate(labels_onehot)`` returns the image for every label map of the batch: a single
    image is repeated B times; a batch of images must have B images. The label maps only fix
    the batch size, the size and the device: the image is NOT checked against them, so pair a
    photo with ITS label map.
    """

    def __init__(self, image: Tensor | np.ndarray, resize: bool = False):
        image = torch.as_tensor(np.ascontiguousarray(image) if isinstance(image, np.ndarray) else image)
        if image.dtype == torch.uint8:
            if image.dim() not in (3, 4) or image.shape[-1] != 3:
                raise ValueError(f"a uint8 image must be (H, W, 3) or (B, H, W, 3), got {tuple(image.shape)}")
            image = image.movedim(-1, -3).float() / 255
        if not image.is_floating_point():
            raise ValueError(f"the image must be float in [0, 1] or uint8, got dtype {image.dtype}")
        if image.dim() == 3:
            image = image[None]
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"a float image must be (3, H, W) or (B, 3, H, W), got {tuple(image.shape)}")
        low, high = float(image.min()), float(image.max())
        if low < 0 or high > 1:
            raise ValueError(f"a float image must lie in [0, 1], got values in [{low:.3g}, {high:.3g}]")
        self.image = image  # (B0, 3, H, W), B0 = 1 or the batch it was given
        self.resize = resize

    def generate(self, labels_onehot: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The wrapped image for each label map: (B, 3, H, W) in [0, 1] (``generator`` is unused)."""
        if labels_onehot.dim() != 4:
            raise ValueError(f"labels must be one-hot (B, L, H, W), got {tuple(labels_onehot.shape)}")
        b, size = labels_onehot.shape[0], tuple(labels_onehot.shape[-2:])
        image = self.image.to(labels_onehot.device)
        if tuple(image.shape[-2:]) != size:
            if not self.resize:
                raise ValueError(
                    f"the image is {image.shape[-2]}x{image.shape[-1]} but the label maps are "
                    f"{size[0]}x{size[1]}; resize one of them, or pass resize=True"
                )
            image = F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)
            image = image.clamp(0, 1)
        if image.shape[0] == 1:
            return image.expand(b, -1, -1, -1).clone()
        if image.shape[0] != b:
            raise ValueError(f"{image.shape[0]} images for a batch of {b} label maps")
        return image.clone()


def split_label_groups(labels_onehot: Tensor, table: LabelTable) -> tuple[Tensor, Tensor]:
    """Split a one-hot map into its background and foreground channels (Seg2Vid's two groups).

    Args:
        labels_onehot: (..., L, H, W) with L = ``table.num_channels`` (classes + void).
        table: says which classes are foreground (:attr:`LabelTable.foreground_ids`).
    Returns:
        ``(background, foreground)``: (..., len(background_ids) + 1, H, W), the background
        classes in id order and then void (void pixels are not a moving object), and
        (..., len(foreground_ids), H, W). Together they hold every channel exactly once.
    """
    if labels_onehot.dim() < 3 or labels_onehot.shape[-3] != table.num_channels:
        raise ValueError(
            f"labels must be one-hot (..., {table.num_channels}, H, W) for this table, "
            f"got {tuple(labels_onehot.shape)}"
        )
    void = table.num_channels - 1
    background = labels_onehot[..., [*table.background_ids, void], :, :]
    foreground = labels_onehot[..., list(table.foreground_ids), :, :]
    return background, foreground
