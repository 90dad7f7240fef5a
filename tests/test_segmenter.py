"""Semantic fidelity (seg2vid.models.segmenter, seg2vid.evaluation.segmentation, seg2vid.flow.warp_labels)
and the shipped segmenter checkpoint."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from seg2vid.data.synthetic import SceneConfig, SyntheticStreets
from seg2vid.evaluation.segmentation import carry_labels, confusion_matrix, mean_iou, semantic_fidelity
from seg2vid.flow import warp, warp_labels
from seg2vid.models.segmenter import Segmenter, SegmenterConfig, load_segmenter, segment

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "data" / "checkpoints" / "segmenter_tiny_64.pt"

pytestmark = pytest.mark.usefixtures("one_thread")


def _script():
    """scripts/train_segmenter.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("train_segmenter", ROOT / "scripts" / "train_segmenter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def shipped():
    return load_segmenter()  # the shipped file, found from the repository path


# ----------------------------------------------------------------------------- warp_labels


def test_warp_labels_zero_flow_is_the_identity():
    labels = torch.randint(0, 19, (2, 9, 7), generator=torch.Generator().manual_seed(0))
    assert torch.equal(warp_labels(labels, torch.zeros(2, 2, 9, 7)), labels)
    many = warp_labels(labels.unsqueeze(1), torch.zeros(2, 3, 2, 9, 7))  # one map, three flows
    assert many.shape == (2, 3, 9, 7) and torch.equal(many, labels.unsqueeze(1).expand(2, 3, 9, 7))
    assert warp_labels(labels.to(torch.uint8), torch.zeros(2, 9, 7)).dtype == torch.uint8


def test_warp_labels_integer_shift_is_exact_and_marks_out_of_frame():
    labels = torch.arange(6 * 8).view(6, 8)
    flow = torch.zeros(2, 6, 8)
    flow[0], flow[1] = 2, -1  # content moved 2 px right and 1 px up: out(y, x) = in(y + 1, x - 2)
    out = warp_labels(labels, flow)
    assert torch.equal(out[:5, 2:], labels[1:, :6])
    assert (out[:, :2] == 255).all() and (out[5] == 255).all(), "read from outside the frame: void"
    assert (warp_labels(labels, flow, ignore_id=99)[:, :2] == 99).all()
    border = warp_labels(labels, flow, padding_mode="border")
    assert torch.equal(border[:5, 0], labels[1:, 0]) and torch.equal(border[5, 2:], labels[5, :6])
    # same convention as the image warp: a nearest-neighbour warp of the ids as floats agrees
    by_image = warp(labels[None, None].float(), flow[None], mode="nearest", padding_mode="zeros")[0, 0]
    assert torch.equal(by_image[:5, 2:].long(), out[:5, 2:])


def test_warp_labels_rounds_to_the_nearest_pixel_and_refuses_floats():
    labels = torch.arange(5).view(1, 5)
    flow = torch.zeros(2, 1, 5)
    flow[0] = 0.4
    assert torch.equal(warp_labels(labels, flow), labels), "0.4 px rounds back to the same pixel"
    flow[0] = 0.6
    assert torch.equal(warp_labels(labels, flow), torch.tensor([[255, 0, 1, 2, 3]]))
    with pytest.raises(ValueError, match="integer"):
        warp_labels(labels.float(), flow)


def test_carry_labels_keeps_frame_0_and_drops_hidden_pixels():
    labels = torch.randint(0, 19, (1, 8, 8), generator=torch.Generator().manual_seed(1))
    flow = torch.zeros(1, 2, 2, 8, 8)
    flow[:, 1, 0] = 1
    visible = torch.ones(1, 2, 1, 8, 8)
    visible[0, 0, 0, 3, 3] = 0
    carried = carry_labels(labels, flow, visible=visible)
    assert carried.shape == (1, 3, 8, 8) and torch.equal(carried[:, 0], labels)
    assert carried[0, 1, 3, 3] == 255 and torch.equal(carried[0, 1].flatten()[:27], labels[0].flatten()[:27])
    assert (carried[0, 2, :, 0] == 255).all() and torch.equal(carried[0, 2, :, 1:], labels[0, :, :-1])


# ----------------------------------------------------------------------------- mIoU


def test_mean_iou_of_identical_maps_is_one():
    labels = torch.randint(0, 19, (3, 16, 16), generator=torch.Generator().manual_seed(0))
    labels[0, :4] = 255
    miou, per_class = mean_iou(labels, labels)
    assert miou == 1.0 and per_class.shape == (19,)
    present = torch.zeros(19, dtype=torch.bool)
    present[labels[labels != 255].unique()] = True
    assert (per_class[present] == 1).all() and per_class[~present].isnan().all()


def test_mean_iou_by_hand_with_two_classes():
    true = torch.tensor([[0, 0, 1, 1, 255]])
    pred = torch.tensor([[0, 1, 1, 1, 0]])  # the void pixel is not scored
    # class 0: TP 1, FP 0, FN 1 -> 1/2; class 1: TP 2, FP 1, FN 0 -> 2/3; class 2: absent -> NaN
    cm = confusion_matrix(pred, true, num_classes=3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    miou, per_class = mean_iou(pred, true, num_classes=3)
    assert per_class[0] == 0.5 and math.isclose(per_class[1], 2 / 3) and per_class[2].isnan()
    assert math.isclose(miou, (1 / 2 + 2 / 3) / 2)
    with pytest.raises(ValueError, match="pred_ids holds id"):
        mean_iou(torch.tensor([[7]]), torch.tensor([[0]]), num_classes=3)


# ----------------------------------------------------------------------------- the network


def test_segmenter_shapes_config_and_resizing():
    config = SegmenterConfig(height=32, width=32, widths=(8, 16, 32))
    assert SegmenterConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="multiples of 4"):
        SegmenterConfig(height=30, widths=(8, 16, 32))
    with pytest.raises(ValueError, match="collides"):
        SegmenterConfig(ignore_id=3)
    model = Segmenter(config)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 19, 32, 32)
    frames = torch.rand(2, 3, 3, 48, 40)  # any leading dims, any size: resized to 32x32 and back
    ids = segment(model, frames)
    assert ids.shape == (2, 3, 48, 40) and ids.dtype == torch.int64 and 0 <= ids.min() and ids.max() < 19
    assert model.training, "segment() restores the mode it found"


def test_load_segmenter_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_segmenter(tmp_path / "missing.pt")
    torch.save({"format": "seg2vid-stage2", "format_version": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a segmenter checkpoint"):
        load_segmenter(tmp_path / "other.pt")


# ----------------------------------------------------------------------------- shipped checkpoint


def test_shipped_segmenter_loads_with_weights_only_and_is_documented():
    ckpt = torch.load(SHIPPED, map_location="cpu", weights_only=True)
    assert (ckpt["format"], ckpt["format_version"]) == ("seg2vid-segmenter", 1)
    model = Segmenter(SegmenterConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])  # strict
    assert SHIPPED.stat().st_size < 4 * 2**20
    report = json.loads(SHIPPED.with_suffix(".json").read_text())
    assert report["sha256"] == hashlib.sha256(SHIPPED.read_bytes()).hexdigest(), (
        "the checkpoint changed since its evaluation: run `python scripts/train_segmenter.py`"
    )
    assert report["parameters"] == sum(p.numel() for p in model.parameters())
    assert report["seconds"]["total_cpu"] <= 8 * 60, "the recipe must train in 8 minutes on one core"
    assert SHIPPED.with_suffix(".log.csv").is_file()
    assert SHIPPED.name in (SHIPPED.parent / "README.md").read_text()


def test_shipped_segmenter_reproduces_its_held_out_scores(shipped):
    report = json.loads(SHIPPED.with_suffix(".json").read_text())["eval"]
    scores = _script().evaluate(shipped)
    assert scores["settings"] == report["settings"] and scores["class_pixels"] == report["class_pixels"]
    assert math.isclose(scores["miou"], report["miou"], abs_tol=2e-3)
    assert math.isclose(scores["pixel_accuracy"], report["pixel_accuracy"], abs_tol=1e-3)
    assert report["miou"] > 0.5 and report["pixel_accuracy"] > 0.9, "it learned the streets"


def test_semantic_fidelity_true_video_beats_a_grey_one(shipped):
    clips = SyntheticStreets(4, SceneConfig(64, 64, frames=4), seed=123)
    items = [clips[i] for i in range(4)]
    video = torch.stack([c["frames"] for c in items])
    labels = torch.stack([c["labels"][0] for c in items])
    flow = torch.stack([c["flow_fwd"] for c in items])
    true_scores = semantic_fidelity(video, labels, flow, shipped)
    grey_scores = semantic_fidelity(torch.full_like(video, 0.5), labels, flow, shipped)
    assert true_scores.shape == (4, 5) == grey_scores.shape
    assert true_scores.mean() > 0.5 and grey_scores.mean() < 0.2
    assert true_scores.mean() > grey_scores.mean() + 0.4
    first_only = mean_iou(segment(shipped, video[0, 0]), labels[0])[0]
    assert math.isclose(true_scores[0, 0], first_only), "column 0 scores frame 0 against the map itself"
    visible = torch.stack([c["visible_fwd"] for c in items])
    masked = semantic_fidelity(video, labels, flow, shipped, visible=visible)
    assert masked[:, 1:].mean() >= true_scores[:, 1:].mean() - 0.02, "hidden pixels are not scored"
