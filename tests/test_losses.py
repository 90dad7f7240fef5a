"""Unsupervised flow losses: analytic zeros, masks, reductions, and flow recovered by descent."""

import math
import time

import pytest
import torch
import torch.nn.functional as F

from seg2vid.data.synthetic import SceneConfig, render_clip
from seg2vid.flow import in_frame_mask, warp
from seg2vid.losses import (
    forward_backward_consistency_loss,
    masked_mean,
    photometric_l1,
    smoothness_loss,
    ssim_3x3,
    ssim_photometric,
)
from seg2vid.metrics import end_point_error


def constant_flow(h, w, dx, dy, lead=(1,)):
    flow = torch.zeros(*lead, 2, h, w)
    flow[..., 0, :, :], flow[..., 1, :, :] = dx, dy
    return flow


def textured_image(h, w, seed=0):
    """Smooth colour noise in [0, 1]: bicubic upsampling of 4x4-pixel random cells."""
    g = torch.Generator().manual_seed(seed)
    cells = torch.rand(1, 3, h // 4, w // 4, generator=g)
    return F.interpolate(cells, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


# ----------------------------------------------------------------------------- masked mean


def test_masked_mean_weights_and_empty_mask():
    values = torch.arange(8.0).view(1, 2, 2, 2)  # two channels
    mask = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).view(1, 1, 2, 2)
    assert masked_mean(values, mask).item() == (0.0 + 4.0) / 2
    assert masked_mean(values).item() == values.mean().item()
    empty = masked_mean(values.requires_grad_(), torch.zeros(1, 1, 2, 2))
    assert empty.item() == 0.0
    empty.backward()
    assert torch.equal(values.grad, torch.zeros_like(values))


# ----------------------------------------------------------------------------- photometric


def test_photometric_l1_is_zero_for_identical_images():
    image = torch.rand(2, 3, 8, 8)
    assert photometric_l1(image, image).item() == 0.0
    assert ssim_photometric(image, image).item() == 0.0


def test_masked_pixels_do_not_count():
    target = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    pred = target.clone()
    pred[..., :, :3] += 0.5  # wrong on the left half only
    mask = torch.zeros(1, 1, 6, 6)
    mask[..., 3:] = 1.0
    assert photometric_l1(pred, target, mask).item() == 0.0
    # SSIM looks at 3x3 windows: a column next to the wrong half still sees it; one further does not.
    away = torch.zeros(1, 1, 6, 6)
    away[..., 4:] = 1.0
    assert ssim_photometric(pred, target, away).item() == pytest.approx(0.0, abs=1e-6)
    assert ssim_photometric(pred, target, mask).item() > 0
    # Unmasked: half the pixels are off by 0.5 in every channel.
    assert photometric_l1(pred, target).item() == pytest.approx(0.25, abs=1e-6)
    assert photometric_l1(pred, target, 1 - mask).item() == pytest.approx(0.5, abs=1e-6)


def test_empty_mask_gives_zero_and_a_usable_gradient():
    pred = torch.rand(1, 3, 5, 5, requires_grad=True)
    for loss_fn in (photometric_l1, ssim_photometric):
        loss = loss_fn(pred, torch.rand(1, 3, 5, 5), torch.zeros(1, 1, 5, 5))
        assert loss.item() == 0.0
        (grad,) = torch.autograd.grad(loss, pred)
        assert torch.equal(grad, torch.zeros_like(grad))


def test_reductions():
    pred, target = torch.rand(2, 4, 3, 5, 5), torch.rand(2, 4, 3, 5, 5)
    mask = (torch.rand(2, 4, 1, 5, 5) > 0.5).float()
    gated = photometric_l1(pred, target, mask, reduction="none")
    assert gated.shape == (2, 4, 1, 5, 5)
    torch.testing.assert_close(photometric_l1(pred, target, mask, reduction="sum"), gated.sum())
    torch.testing.assert_close(photometric_l1(pred, target, mask), gated.sum() / mask.sum())
    assert ssim_photometric(pred, target, mask, reduction="none").shape == (2, 4, 1, 5, 5)
    with pytest.raises(ValueError, match="reduction"):
        photometric_l1(pred, target, reduction="max")


def test_ssim_of_an_image_with_itself_is_one():
    image = torch.rand(2, 3, 9, 7)
    torch.testing.assert_close(ssim_3x3(image, image), torch.ones(2, 3, 9, 7))
    other = torch.rand(2, 3, 9, 7)
    value = ssim_3x3(image, other)
    assert value.shape == (2, 3, 9, 7) and value.max() < 1 and value.min() >= -1
    torch.testing.assert_close(value, ssim_3x3(other, image))
    # SSIM ignores a tiny brightness offset that L1 sees in full.
    assert (1 - ssim_3x3(image, image + 0.01)).abs().max() < 0.01


@pytest.mark.parametrize("alpha", [0.0, 0.85, 1.0])
def test_ssim_photometric_mixes_ssim_and_l1_by_alpha(alpha):
    # Flat images 0.3 and 0.5: SSIM is the luminance term alone, the L1 is 0.2 everywhere.
    pred, target = torch.full((1, 3, 5, 5), 0.3), torch.full((1, 3, 5, 5), 0.5)
    c1 = 0.01**2
    similarity = (2 * 0.3 * 0.5 + c1) / (0.3**2 + 0.5**2 + c1)
    expected = alpha * (1 - similarity) / 2 + (1 - alpha) * 0.2
    torch.testing.assert_close(ssim_photometric(pred, target, alpha=alpha), torch.tensor(expected))


# ----------------------------------------------------------------------------- smoothness


def test_constant_flow_has_zero_smoothness_loss():
    image = torch.rand(2, 3, 8, 10)
    flow = constant_flow(8, 10, 1.7, -3.2, lead=(2,))
    assert smoothness_loss(flow, image).item() == 0.0
    assert smoothness_loss(flow, image, reduction="none").abs().max().item() == 0.0


def test_smoothness_on_a_sequence_broadcasts_the_image():
    flow = torch.randn(2, 4, 2, 6, 6)  # (B, T, 2, H, W)
    first_frame = torch.rand(2, 1, 3, 6, 6)
    loss = smoothness_loss(flow, first_frame)
    per_frame = torch.stack([smoothness_loss(flow[:, t], first_frame[:, 0]) for t in range(4)])
    torch.testing.assert_close(loss, per_frame.mean())
    assert smoothness_loss(flow, first_frame, reduction="none").shape == (2, 4, 1, 6, 6)


def test_smoothness_is_cheaper_across_image_edges():
    flow = constant_flow(8, 8, 0.0, 0.0)
    flow[..., 0, :, 4:] = 2.0  # a motion boundary between columns 3 and 4
    flat = torch.full((1, 3, 8, 8), 0.5)
    edged = flat.clone()
    edged[..., 4:] = 1.0  # an image edge in the same place
    plain = smoothness_loss(flow, flat)
    # 8 rows x 1 jump x 2 px, averaged over 2 channels and the 8x7 x-differences, halved (x and y).
    assert plain.item() == pytest.approx(0.5 * 8 * 2 / (2 * 8 * 7))
    edge_weight = math.exp(-10.0 * 0.5)  # default edge_scale 10, an intensity step of 0.5
    assert smoothness_loss(flow, edged).item() == pytest.approx(plain.item() * edge_weight)
    assert smoothness_loss(flow, edged, edge_scale=0.0).item() == pytest.approx(plain.item())


def test_smoothness_across_image_edges_in_y_too():
    # The transposed case: a motion boundary between rows 3 and 4 of the VERTICAL flow, with
    # and without an image edge between the same rows; x-differences are all zero.
    flow = constant_flow(8, 8, 0.0, 0.0)
    flow[..., 1, 4:, :] = 2.0
    flat = torch.full((1, 3, 8, 8), 0.5)
    edged = flat.clone()
    edged[..., 4:, :] = 1.0
    plain = smoothness_loss(flow, flat)
    assert plain.item() == pytest.approx(0.5 * 8 * 2 / (2 * 8 * 7))
    assert smoothness_loss(flow, edged).item() == pytest.approx(plain.item() * math.exp(-10.0 * 0.5))
    # the per-pixel map puts each y-difference on its top pixel: row 3 only
    weighted = smoothness_loss(flow, edged, reduction="none")
    torch.testing.assert_close(weighted[..., 3, :], torch.full((1, 1, 8), math.exp(-5.0)))
    assert weighted[..., :3, :].abs().max() == 0 and weighted[..., 4:, :].abs().max() == 0
    # an image edge across the OTHER direction does not excuse a y-jump
    vertical_edge = flat.clone()
    vertical_edge[..., :, 4:] = 1.0
    assert smoothness_loss(flow, vertical_edge).item() == pytest.approx(plain.item())


def test_ssim_constants_on_flat_and_textured_windows():
    # Flat windows: no variance, SSIM is the luminance term (2 mx my + C1) / (mx^2 + my^2 + C1),
    # where C1 = 0.01^2 matters for dark images (C2 in its place would give 0.789, not 0.636).
    dark, darker = torch.full((1, 1, 6, 6), 0.03), torch.full((1, 1, 6, 6), 0.01)
    c1, c2 = 0.01**2, 0.03**2
    luminance = (2 * 0.01 * 0.03 + c1) / (0.01**2 + 0.03**2 + c1)
    torch.testing.assert_close(ssim_3x3(darker, dark), torch.full((1, 1, 6, 6), luminance), rtol=1e-5, atol=0)
    # Textured against flat with the same mean: sigma_xy = sigma_y = 0, so the structure term is
    # C2 / (sigma_x^2 + C2). A checkerboard 0.5 +- a has, in every 3x3 window (reflection keeps
    # the pattern), 5 cells of one sign and 4 of the other: mean 0.5 +- a/9, variance a^2 * 80/81.
    a = 0.03
    sign = (torch.arange(6).view(6, 1) + torch.arange(6).view(1, 6)) % 2 * 2 - 1.0  # -1 / +1
    board = (0.5 + a * sign).view(1, 1, 6, 6)
    grey = torch.full((1, 1, 6, 6), 0.5)
    mu_x = 0.5 + a / 9 * sign  # the centre cell's sign is the majority
    var_x = a**2 * 80 / 81
    expected = (2 * mu_x * 0.5 + c1) * c2 / ((mu_x**2 + 0.25 + c1) * (var_x + c2))
    torch.testing.assert_close(ssim_3x3(board, grey), expected.view(1, 1, 6, 6), rtol=1e-4, atol=0)
    # ~0.53 with the right constants; swapped (C2 = 1e-4) it would be ~0.11
    assert 0.45 < ssim_3x3(board, grey).mean().item() < 0.6


# ----------------------------------------------------------------------------- consistency


def test_consistency_of_exact_flows_is_zero_away_from_occlusions():
    for seed in range(3):
        clip = render_clip(SceneConfig(height=32, width=32, frames=2), seed=seed)
        fwd, bwd, visible = clip["flow_fwd"], clip["flow_bwd"], clip["visible_fwd"]
        residual = forward_backward_consistency_loss(fwd, bwd, visible, reduction="none")
        # Bilinear sampling of b across object edges leaves a few blurred pixels; most are ~0.
        assert residual[visible > 0.5].median() < 0.01
        assert forward_backward_consistency_loss(fwd, bwd, visible) < 0.05
        assert forward_backward_consistency_loss(fwd, torch.zeros_like(bwd), visible) > 0.3


def test_consistency_of_a_constant_pair_and_its_gradient():
    fwd = constant_flow(6, 6, 1.5, -2.0).requires_grad_()
    bwd = constant_flow(6, 6, -1.5, 2.0).requires_grad_()
    assert forward_backward_consistency_loss(fwd, bwd).item() == 0.0
    loss = forward_backward_consistency_loss(fwd, bwd + 1.0)  # off by (1, 1) px: |1| + |1|
    assert loss.item() == pytest.approx(2.0)
    loss.backward()
    assert fwd.grad.abs().sum() > 0 and bwd.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- flow by descent


def test_gradient_descent_on_the_losses_recovers_a_known_translation():
    start = time.perf_counter()
    torch.manual_seed(0)
    h = w = 32
    image = textured_image(h, w)
    true = constant_flow(h, w, 1.3, -0.8)
    target = warp(image, true)
    flow = torch.zeros(1, 2, h, w, requires_grad=True)
    optimiser = torch.optim.Adam([flow], lr=0.05)
    for _ in range(300):
        valid = in_frame_mask(flow.detach())
        loss = photometric_l1(warp(image, flow), target, valid) + 0.1 * smoothness_loss(flow, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    # Away from the border, where the target only repeats edge pixels.
    interior = torch.zeros(1, 1, h, w)
    interior[..., 3:-3, 3:-3] = 1.0
    epe = end_point_error(flow.detach(), true, interior).item()
    baseline = end_point_error(torch.zeros_like(true), true, interior).item()
    print(f"EPE {epe:.3f} px (zero flow: {baseline:.3f} px) in {time.perf_counter() - start:.1f} s")
    assert baseline == pytest.approx((1.3**2 + 0.8**2) ** 0.5, abs=1e-5)
    assert epe < 0.1  # measured 0.029 px (zero flow: 1.526 px)


def _ssim_with_avg_pool(x, y, c1=0.01**2, c2=0.03**2):
    # the pre-issue-15 formulation: five reflection-padded F.avg_pool2d(3, stride=1) calls
    def local_mean(z):
        return F.avg_pool2d(F.pad(z, (1, 1, 1, 1), mode="reflect"), kernel_size=3, stride=1)

    mu_x, mu_y = local_mean(x), local_mean(y)
    sigma_x = local_mean(x * x) - mu_x * mu_x
    sigma_y = local_mean(y * y) - mu_y * mu_y
    sigma_xy = local_mean(x * y) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)
            / ((mu_x * mu_x + mu_y * mu_y + c1) * (sigma_x + sigma_y + c2)))


def test_ssim_box_mean_is_bit_identical_to_avg_pool_and_its_gradient_matches():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(4, 3, 20, 28, generator=g, requires_grad=True)
    y = torch.rand(4, 3, 20, 28, generator=g)
    fast, ref = ssim_3x3(x, y), _ssim_with_avg_pool(x, y)
    assert torch.equal(fast, ref)  # the same sums in the same order
    (g_fast,) = torch.autograd.grad(fast.sum(), x)
    (g_ref,) = torch.autograd.grad(ref.sum(), x)
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-5, atol=1e-6 * g_ref.abs().max().item())
    # the hand-written backward is the exact adjoint (float64 gradcheck)
    from seg2vid.losses import _BoxMean3x3

    z = torch.rand(2, 2, 7, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_BoxMean3x3.apply, (z,))
