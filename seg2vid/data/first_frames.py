"""First frames and their label maps: what stage 1 (label map -> first frame) learns from and is
shown on.

:func:`render_first_frames` renders them from the synthetic streets of one dataset seed (the fixed
maps of the stage-1 evaluation, :data:`seg2vid.data.splits.FIRST_FRAME_SEED`, and the trainer's
held-out sample pictures); :func:`dataset_first_frames` takes them from the clips of any dataset
(a real dataset's training pool or its held-out split). Frames are stored as 8 bits, like real
images, so both are exactly reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from seg2vid.data.build import frames_and_label_map
from seg2vid.data.splits import FIRST_FRAME_SEED
from seg2vid.data.synthetic import SceneConfig, SyntheticStreets

__all__ = ["dataset_first_frames", "render_first_frames", "spread_indices"]


def render_first_frames(
    num_images: int, height: int, width: int, seed: int = FIRST_FRAME_SEED
) -> tuple[Tensor, Tensor]:
    """First frames and label maps of ``num_images`` synthetic clips of dataset ``seed``.

    Returns:
        images (N, 3, H, W) float in [0, 1] (multiples of 1/255) and labels (N, H, W) int64
        train ids of the Cityscapes table.
    """
    dataset = SyntheticStreets(num_images, SceneConfig(height=height, width=width, frames=1), seed=seed)
    clips = [dataset[i] for i in range(num_images)]
    images = torch.stack([(c["frames"][0] * 255).round() / 255 for c in clips])
    return images, torch.stack([c["labels"][0] for c in clips])


def spread_indices(count: int, length: int) -> list[int]:
    """``min(count, length)`` distinct indices spread evenly over ``range(length)`` (0 first)."""
    k = min(count, length)
    return [i * length // k for i in range(k)]


def dataset_first_frames(
    dataset: Any, indices: Iterable[int], height: int, width: int
) -> tuple[Tensor, Tensor]:
    """The first frames and first-frame label maps of clips ``indices`` of ``dataset``.

    Args:
        dataset: items with ``"frames"`` (T+1, 3, H, W) in [0, 1] and ``"label_map"`` (H, W)
            train ids (any :func:`seg2vid.data.build_dataset` dataset), or a bare
            :class:`~seg2vid.data.synthetic.SyntheticStreets`.
        indices: which clips (iterated once: a progress bar may wrap it).
        height, width: the size the frames must have (a clear error otherwise).
    Returns:
        images (N, 3, H, W) uint8 and labels (N, H, W) uint8 (void = 255).
    """
    images, labels = [], []
    for i in indices:
        frames, label_map = frames_and_label_map(dataset[i])
        frame = frames[0]
        if frame.shape[-2:] != (height, width):
            raise ValueError(f"dataset frames are {tuple(frame.shape[-2:])}, stage 1 trains at "
                             f"{height}x{width}: build the dataset at that size")
        images.append((frame * 255).round().to(torch.uint8))
        labels.append(label_map.to(torch.uint8))
    if not images:
        raise ValueError("no clips to take first frames from")
    return torch.stack(images), torch.stack(labels)
