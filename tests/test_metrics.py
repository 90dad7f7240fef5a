"""End-point error and mask scores against hand-computed numbers."""

import math

import pytest
import torch

from seg2vid.metrics import (
    end_point_error,
    mask_confusion,
    mask_iou,
    mask_precision,
    mask_recall,
    mask_scores,
)


def test_epe_of_a_known_shift():
    true = torch.randn(2, 2, 6, 7)
    pred = true.clone()
    pred[:, 0] += 3.0
    pred[:, 1] -= 4.0
    epe = end_point_error(pred, true)
    assert epe.dim() == 0
    torch.testing.assert_close(epe, torch.tensor(5.0))
    assert end_point_error(true, true) == 0


def test_epe_mask_selects_pixels_and_broadcasts():
    true = torch.zeros(1, 3, 2, 4, 4)  # a (B, T, 2, H, W) sequence
    pred = true.clone()
    pred[..., 0, :, :2] = 1.0  # 1 px off on the left half
    mask = torch.zeros(1, 1, 1, 4, 4)
    mask[..., :2] = 1.0  # one mask for every frame
    assert end_point_error(pred, true, mask).item() == 1.0
    assert end_point_error(pred, true, 1 - mask).item() == 0.0
    assert end_point_error(pred, true).item() == 0.5
    assert math.isnan(end_point_error(pred, true, torch.zeros(1, 1, 1, 4, 4)).item())


def test_epe_rejects_bad_shapes():
    with pytest.raises(ValueError):
        end_point_error(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 4))
    with pytest.raises(ValueError):
        end_point_error(torch.zeros(1, 3, 3, 3), torch.zeros(1, 3, 3, 3))


def test_mask_scores_count_pixels():
    pred = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]).view(1, 1, 2, 3)
    true = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 3)
    assert mask_confusion(pred, true) == {"tp": 2, "fp": 1, "fn": 1, "tn": 2}
    assert mask_precision(pred, true) == pytest.approx(2 / 3)
    assert mask_recall(pred, true) == pytest.approx(2 / 3)
    assert mask_iou(pred, true) == pytest.approx(2 / 4)
    assert mask_scores(pred, true) == {
        "precision": pytest.approx(2 / 3),
        "recall": pytest.approx(2 / 3),
        "iou": pytest.approx(0.5),
    }
    # Soft masks are read as binary at 0.5.
    assert mask_confusion(pred * 0.9, true * 0.6) == mask_confusion(pred, true)


def test_mask_scores_are_nan_when_undefined():
    empty = torch.zeros(1, 1, 3, 3)
    assert math.isnan(mask_precision(empty, torch.ones_like(empty)))
    assert mask_recall(empty, torch.ones_like(empty)) == 0.0
    assert math.isnan(mask_recall(torch.ones_like(empty), empty))
    assert math.isnan(mask_iou(empty, empty))
    with pytest.raises(ValueError):
        mask_confusion(empty, torch.zeros(1, 1, 3, 4))
