"""Stage 1 on its own: how close are the first frames it paints to the true ones?

:func:`evaluate_first_frames` scores a generator on fixed held-out synthetic label maps (dataset
:data:`seg2vid.data.splits.FIRST_FRAME_SEED`): L1, PSNR and, per class, the distance between the
mean generated and the mean true colour (:func:`class_mean_colors`).
:func:`seg2vid.data.first_frames.render_first_frames` gives those maps and frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from seg2vid.data.first_frames import render_first_frames
from seg2vid.data.labels import CITYSCAPES, LabelTable
from seg2vid.data.splits import FIRST_FRAME_SEED
from seg2vid.metrics import psnr
from seg2vid.models.stage1 import FirstFrameGenerator
from seg2vid.utils import pick_device

__all__ = ["class_mean_colors", "evaluate_first_frames", "segmenter_agreement"]


def class_mean_colors(
    images: Tensor, labels: Tensor, table: LabelTable = CITYSCAPES
) -> dict[str, tuple[Tensor, int]]:
    """The mean colour of every class present in a batch, over all its pixels.

    Args:
        images: (B, 3, H, W) in [0, 1].
        labels: (B, H, W) integer train ids of ``table`` (void pixels are skipped).
        table: the label set (names, ids).
    Returns:
        ``{class name: (mean RGB (3,) float in [0, 1], number of pixels)}`` for the classes that
        occur, in id order.
    """
    if images.dim() != 4 or images.shape[1] != 3 or labels.shape != (images.shape[0], *images.shape[-2:]):
        raise ValueError(
            f"need images (B, 3, H, W) and labels (B, H, W) of the same B, H, W; got "
            f"{tuple(images.shape)} and {tuple(labels.shape)}"
        )
    table.check(labels)
    pixels = images.detach().permute(0, 2, 3, 1).reshape(-1, 3).double()
    ids = labels.reshape(-1).to(pixels.device)
    out = {}
    for class_id, name in enumerate(table.names):
        mask = ids == class_id
        count = int(mask.sum())
        if count:
            out[name] = (pixels[mask].mean(0).float().cpu(), count)
    return out


@torch.no_grad()
def evaluate_first_frames(
    model: FirstFrameGenerator,
    height: int = 64,
    width: int = 64,
    num_images: int = 16,
    seed: int = FIRST_FRAME_SEED,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """Score a stage-1 generator on fixed held-out synthetic label maps (deterministic).

    The generator gets the one-hot maps (Cityscapes table) of the first frames of
    ``num_images`` clips of dataset ``seed`` and a generator seeded with 0; its images are
    compared with the true first frames.

    Returns:
        dict with ``l1`` (mean |generated - true|, [0, 1] units), ``psnr_db`` (mean per-image
        PSNR), ``class_color_error`` (per class: Euclidean distance between the mean generated
        and the mean true colour of its pixels, in 8-bit levels 0..255, with the pixel count and
        both colours), ``mean_class_color_error`` (unweighted mean over the classes present) and
        the evaluation settings.
    """
    device = pick_device(str(device) if device is not None else None)
    images, labels = render_first_frames(num_images, height, width, seed)
    onehot = CITYSCAPES.one_hot(labels).to(device)
    generated = model.generate(onehot, generator=torch.Generator(device=device).manual_seed(0)).float().cpu()
    if generated.shape != images.shape:
        raise ValueError(f"the generator returned {tuple(generated.shape)}, expected {tuple(images.shape)}")
    true_colors = class_mean_colors(images, labels)
    fake_colors = class_mean_colors(generated, labels)
    per_class = {
        name: {
            "pixels": count,
            "error_8bit": round(float((fake_colors[name][0] - rgb).norm() * 255), 3),
            "true_rgb_8bit": [round(float(v) * 255, 1) for v in rgb],
            "generated_rgb_8bit": [round(float(v) * 255, 1) for v in fake_colors[name][0]],
        }
        for name, (rgb, count) in true_colors.items()
    }
    return {
        "l1": round(float((generated - images).abs().mean()), 6),
        "psnr_db": round(float(psnr(generated, images).mean()), 4),  # per image, then averaged
        "mean_class_color_error": round(float(np.mean([v["error_8bit"] for v in per_class.values()])), 3),
        "class_color_error": per_class,
        "settings": {"num_images": num_images, "height": height, "width": width, "dataset_seed": seed,
                     "noise_seed": 0, "table": "cityscapes"},
    }


@torch.no_grad()
def segmenter_agreement(images: Tensor, label_maps: Tensor, segmenter: Any) -> dict[str, Any]:
    """Does a picture show the map it was painted from? The segmenter's reading vs the map.

    Args:
        images: (B, 3, H, W) in [0, 1]: generated first frames (or true ones: the ceiling).
        label_maps: (B, H, W) int64 Cityscapes train ids the images were made from.
        segmenter: a :class:`~seg2vid.models.segmenter.Segmenter` (e.g. ``load_segmenter()``).
    Returns:
        ``{"miou", "pixel_accuracy", "per_class_iou": {name: IoU}}``: pooled over every pixel,
        classes absent from both the map and the reading left out.
    """
    from seg2vid.evaluation.segmentation import mean_iou
    from seg2vid.models.segmenter import segment

    if images.dim() != 4 or label_maps.shape != (images.shape[0], *images.shape[-2:]):
        raise ValueError(f"images (B, 3, H, W) and label maps (B, H, W) expected, got "
                         f"{tuple(images.shape)} and {tuple(label_maps.shape)}")
    read = segment(segmenter, images.float().cpu())
    miou, per_class = mean_iou(read, label_maps.cpu())
    names = CITYSCAPES.names
    return {
        "miou": round(miou, 4),
        "pixel_accuracy": round(float((read == label_maps.cpu()).float().mean()), 4),
        "per_class_iou": {names[i]: round(float(v), 4) for i, v in enumerate(per_class)
                          if not torch.isnan(v)},
    }
