"""Warping against analytic truths, flow colours, and .flo files."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seg2vid.flow import (
    ALIGN_CORNERS,
    flow_to_color,
    flow_to_grid,
    grid_to_flow,
    make_colorwheel,
    pixel_grid,
    read_flo,
    resize_flow,
    warp,
    write_flo,
)


def constant_flow(n, h, w, dx, dy):
    flow = torch.zeros(n, 2, h, w)
    flow[:, 0], flow[:, 1] = dx, dy
    return flow


def test_zero_flow_is_identity():
    img = torch.rand(2, 3, 9, 13)
    out = warp(img, torch.zeros(2, 2, 9, 13))
    torch.testing.assert_close(out, img, atol=1e-6, rtol=0)


def test_zero_flow_grid_is_identity_grid():
    grid = flow_to_grid(torch.zeros(1, 2, 5, 7))
    eye = F.affine_grid(torch.eye(2, 3)[None], (1, 1, 5, 7), align_corners=ALIGN_CORNERS)
    torch.testing.assert_close(grid, eye)


@pytest.mark.parametrize("dx,dy", [(2, 0), (0, -3), (1, 2), (-4, -1)])
def test_integer_shift_is_recovered(dx, dy):
    img = torch.rand(1, 3, 12, 16)
    out = warp(img, constant_flow(1, 12, 16, dx, dy))
    # warp convention: content moved by (dx, dy), so out[y, x] = img[y - dy, x - dx]
    ys, xs = slice(max(dy, 0), 12 + min(dy, 0)), slice(max(dx, 0), 16 + min(dx, 0))
    ys0, xs0 = slice(max(-dy, 0), 12 + min(-dy, 0)), slice(max(-dx, 0), 16 + min(-dx, 0))
    torch.testing.assert_close(out[..., ys, xs], img[..., ys0, xs0], atol=1e-6, rtol=0)


def test_subpixel_shift_of_a_ramp_is_exact():
    # Bilinear interpolation reproduces a linear image exactly: out(x) = ramp(x - 0.25).
    ramp = pixel_grid(6, 10)[0][None, None]
    out = warp(ramp, constant_flow(1, 6, 10, 0.25, 0.0))
    torch.testing.assert_close(out[..., 1:], ramp[..., 1:] - 0.25, atol=1e-5, rtol=0)


def test_gradients_reach_image_and_flow():
    img = torch.rand(1, 3, 8, 8, requires_grad=True)
    flow = constant_flow(1, 8, 8, 0.3, -0.6).requires_grad_()
    warp(img, flow).square().sum().backward()
    assert img.grad is not None and img.grad.abs().sum() > 0
    assert flow.grad is not None and flow.grad.abs().sum() > 0


def test_one_image_warped_with_many_flows_broadcasts():
    img = torch.rand(2, 3, 8, 8)
    flows = torch.stack([constant_flow(2, 8, 8, t, 0) for t in range(4)], 1)  # (2, 4, 2, 8, 8)
    out = warp(img.unsqueeze(1), flows)
    assert out.shape == (2, 4, 3, 8, 8)
    torch.testing.assert_close(out[:, 2], warp(img, flows[:, 2]))


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, H, W\)"):
        warp(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="differ in"):
        warp(torch.rand(1, 3, 8, 8), torch.rand(1, 2, 4, 4))


def test_grid_flow_roundtrip():
    flow = torch.randn(2, 2, 7, 9) * 3
    torch.testing.assert_close(grid_to_flow(flow_to_grid(flow)), flow, atol=1e-5, rtol=0)


def test_resize_flow_scales_values():
    flow = constant_flow(1, 8, 8, 1.5, -2.0)
    big = resize_flow(flow, (16, 32))
    assert big.shape == (1, 2, 16, 32)
    torch.testing.assert_close(big[:, 0], torch.full((1, 16, 32), 6.0))
    torch.testing.assert_close(big[:, 1], torch.full((1, 16, 32), -4.0))


# ----------------------------------------------------------------------------- colours


def colour_of(dx, dy, max_magnitude=1.0):
    flow = np.array([dx, dy], np.float32).reshape(2, 1, 1)
    return tuple(int(c) for c in flow_to_color(flow, max_magnitude)[0, 0])


def test_known_vectors_get_the_wheel_colours():
    assert colour_of(1, 0) == (255, 0, 0)  # right: red
    assert colour_of(0, 0) == (255, 255, 255)  # still: white
    assert colour_of(0.5, 0) == (255, 127, 127)  # half speed: half saturated
    left = colour_of(-1, 0)
    assert left[0] == 0 and left[2] == 255 and 200 < left[1] < 215  # left: cyan-blue
    down = colour_of(0, 1)
    assert down[0] == 255 and 200 < down[1] < 240 and down[2] == 0  # down: yellow-orange
    assert colour_of(2, 0) == (191, 0, 0)  # beyond max_magnitude: darker


def test_colours_match_flow_vis_for_one_image():
    flow_vis = pytest.importorskip("flow_vis")
    flow = np.random.default_rng(0).normal(size=(2, 20, 30)).astype(np.float32) * 3
    rad_max = np.sqrt((flow**2).sum(0)).max()
    ours = flow_to_color(flow, max_magnitude=rad_max + 1e-5)  # flow_vis adds 1e-5 too
    assert np.array_equal(ours, flow_vis.flow_to_color(flow.transpose(1, 2, 0)))


def test_sequence_shares_one_normalisation():
    seq = np.stack([np.full((2, 4, 4), v, np.float32) * np.array([1, 0]).reshape(2, 1, 1) for v in (1, 2)])
    colours = flow_to_color(seq)  # (2, 4, 4, 3)
    assert tuple(colours[1, 0, 0]) == (255, 0, 0)
    assert tuple(colours[0, 0, 0]) == (255, 127, 127)  # half of the sequence's max: paler


def test_colorwheel_has_55_hues():
    wheel = make_colorwheel()
    assert wheel.shape == (55, 3) and wheel.min() == 0 and wheel.max() == 255
    assert tuple(wheel[0]) == (255, 0, 0)


# ----------------------------------------------------------------------------- .flo


def test_flo_roundtrip_is_bit_exact(tmp_path):
    flow = torch.from_numpy(np.random.default_rng(1).normal(size=(2, 5, 7)).astype(np.float32) * 50)
    flow[0, 0, 0] = -0.0
    write_flo(tmp_path / "a.flo", flow)
    back = read_flo(tmp_path / "a.flo")
    assert back.dtype == torch.float32 and back.shape == (2, 5, 7)
    assert back.numpy().tobytes() == flow.numpy().tobytes()
    raw = (tmp_path / "a.flo").read_bytes()
    assert raw[:4] == b"PIEH" and len(raw) == 12 + 5 * 7 * 8


def test_flo_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .flo file"):
        read_flo(tmp_path / "missing.flo")
    (tmp_path / "bad.flo").write_bytes(b"NOPE" + bytes(20))
    with pytest.raises(ValueError, match="not a .flo file"):
        read_flo(tmp_path / "bad.flo")
    write_flo(tmp_path / "cut.flo", torch.zeros(2, 3, 3))
    (tmp_path / "cut.flo").write_bytes((tmp_path / "cut.flo").read_bytes()[:-4])
    with pytest.raises(ValueError, match="header says 3x3"):
        read_flo(tmp_path / "cut.flo")
    with pytest.raises(ValueError, match=r"\(2, H, W\)"):
        write_flo(tmp_path / "x.flo", torch.zeros(3, 3))
