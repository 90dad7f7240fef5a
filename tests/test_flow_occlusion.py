"""Occlusion from the forward-backward check, against analytic cases and the exact synthetic masks."""

import pytest
import torch

from seg2vid.data.synthetic import SceneConfig, render_clip
from seg2vid.flow import forward_backward_occlusion, in_frame_mask
from seg2vid.metrics import mask_scores

# Measured on the 8 clips below (64x64, 1 + 4 frames, seeds 0..7), occluded pixels as positives:
# forward (frame t's pixels hidden in frame 0): precision 0.657, recall 0.633, IoU 0.476;
# backward (frame 0's pixels hidden in frame t, mostly leaving the frame): 0.984, 0.977, 0.962.
# The bounds leave room for float noise across platforms, not for a broken check.
FORWARD_OCCLUDED_MIN = {"precision": 0.60, "recall": 0.57, "iou": 0.42}
BACKWARD_OCCLUDED_MIN = {"precision": 0.95, "recall": 0.94, "iou": 0.92}


def constant_flow(h, w, dx, dy, lead=(1,)):
    flow = torch.zeros(*lead, 2, h, w)
    flow[..., 0, :, :], flow[..., 1, :, :] = dx, dy
    return flow


@pytest.fixture(scope="module")
def clips():
    return [render_clip(SceneConfig(height=64, width=64, frames=4, style="classic"), seed=seed)
            for seed in range(8)]


def test_in_frame_mask_of_a_shift_drops_the_columns_that_read_outside():
    # Pixel x reads x - 2.6: inside [-0.5, W - 0.5] from x = 2.1 on, i.e. columns 0..2 are out.
    mask = in_frame_mask(constant_flow(5, 8, 2.6, 0.0))
    assert mask.shape == (1, 1, 5, 8) and mask.dtype == torch.float32
    assert mask[..., :3].sum() == 0 and mask[..., 3:].min() == 1
    # Reading exactly the outer edge still counts as inside (a half-pixel shift at the border).
    assert in_frame_mask(constant_flow(4, 4, 0.5, -0.5)).min() == 1


@pytest.mark.parametrize(
    "dx,dy", [(0.5, 0.0), (-0.5, 0.0), (0.0, 0.5), (0.0, -0.5), (0.5, 0.5), (-0.5, -0.5)]
)
def test_in_frame_mask_keeps_every_outer_edge_and_drops_just_beyond(dx, dy):
    # A half-pixel shift makes the last (or first) row / column read EXACTLY the image's outer
    # edge (x - dx = -0.5 or W - 0.5): inside, at every one of the four edges. A hair more drops
    # exactly that row / column.
    h, w = 5, 7
    assert in_frame_mask(constant_flow(h, w, dx, dy)).min() == 1
    beyond = in_frame_mask(constant_flow(h, w, dx * 1.002, dy * 1.002))[0, 0]
    out = torch.zeros(h, w, dtype=torch.bool)
    if dx > 0:
        out[:, 0] = True
    if dx < 0:
        out[:, -1] = True
    if dy > 0:
        out[0, :] = True
    if dy < 0:
        out[-1, :] = True
    assert torch.equal(beyond == 0, out)


def test_consistent_shift_is_visible_except_where_it_reads_outside():
    fwd, bwd = constant_flow(6, 9, 2.0, -1.0), constant_flow(6, 9, -2.0, 1.0)
    visible = forward_backward_occlusion(fwd, bwd)
    assert visible.shape == (1, 1, 6, 9)
    torch.testing.assert_close(visible, in_frame_mask(fwd))
    assert visible.sum() == (6 - 1) * (9 - 2)


def test_inconsistent_flow_is_occluded_and_the_tolerance_grows_with_speed():
    fwd = constant_flow(8, 8, 0.0, 0.0)
    bwd = fwd.clone()
    bwd[..., 0, 2:4, 2:4] = 3.0  # frame 0's pixels there claim to go elsewhere
    visible = forward_backward_occlusion(fwd, bwd)
    assert visible[..., 2:4, 2:4].sum() == 0 and visible.sum() == 64 - 4
    # A 1 px disagreement fails the check for slow motion (1 > 0.01 * 2 + 0.5)...
    slow = forward_backward_occlusion(constant_flow(8, 8, 1.0, 0.0), constant_flow(8, 8, 0.0, 0.0))
    assert slow[..., 2:, 2:].sum() == 0
    # ...but passes at 20 px, where 1 < 0.01 * (20^2 + 19^2) + 0.5 (interior pixels only).
    fast = forward_backward_occlusion(constant_flow(48, 48, 20.0, 0.0), constant_flow(48, 48, -19.0, 0.0))
    assert fast[..., :, 21:].min() == 1


def test_leading_dims_and_shape_errors():
    fwd = torch.randn(2, 3, 2, 5, 7)
    assert forward_backward_occlusion(fwd, -fwd).shape == (2, 3, 1, 5, 7)
    with pytest.raises(ValueError, match="differ in shape"):
        forward_backward_occlusion(fwd, fwd[:1])
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, H, W\)"):
        forward_backward_occlusion(fwd[:, :, :1], fwd[:, :, :1])


def test_forward_check_agrees_with_the_exact_visibility(clips):
    predicted = torch.stack([forward_backward_occlusion(c["flow_fwd"], c["flow_bwd"]) for c in clips])
    exact = torch.stack([c["visible_fwd"] for c in clips])
    scores = mask_scores(1 - predicted, 1 - exact)
    print(f"forward occlusion check vs exact, occluded pixels: {scores}")
    for key, low in FORWARD_OCCLUDED_MIN.items():
        assert scores[key] > low, f"{key} = {scores[key]:.3f} <= {low}"
    assert mask_scores(predicted, exact)["iou"] > 0.98  # visible pixels: almost all of them


def test_swapped_arguments_give_the_backward_visibility(clips):
    predicted = torch.stack([forward_backward_occlusion(c["flow_bwd"], c["flow_fwd"]) for c in clips])
    exact = torch.stack([c["visible_bwd"] for c in clips])
    scores = mask_scores(1 - predicted, 1 - exact)
    print(f"backward occlusion check vs exact, occluded pixels: {scores}")
    for key, low in BACKWARD_OCCLUDED_MIN.items():
        assert scores[key] > low, f"{key} = {scores[key]:.3f} <= {low}"
