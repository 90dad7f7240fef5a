"""The stage-2 objective (seg2vid.training.objective) and the VGG-19 perceptual loss
(seg2vid.training.perceptual)."""

import math
import warnings

import pytest
import torch
import torchvision
from torch import nn

from seg2vid.data.labels import CITYSCAPES
from seg2vid.data.synthetic import SceneConfig, render_clip
from seg2vid.models import Seg2Vid, Seg2VidConfig, Seg2VidOutput
from seg2vid.training.objective import TERMS, LossConfig, PerceptualOffWarning, seg2vid_loss
from seg2vid.training.perceptual import (
    DEFAULT_LAYERS,
    VGG19_LAYERS,
    VGGPerceptual,
    bf16_supported,
    load_perceptual,
)

SMALL = dict(widths=(8, 8, 16, 16), motion_widths=(8, 8, 16, 16), refine_widths=(8, 8), latent_dim=4)
NO_VGG = LossConfig(perceptual=0)


pytestmark = pytest.mark.usefixtures("one_thread")


def translating_clip(t_frames: int = 2, h: int = 16, w: int = 24, seed: int = 0):
    """A clip whose frame t is frame 0 shifted right by t whole pixels, with its exact answer.

    Returns (frames (1, T+1, 3, H, W), output (Seg2VidOutput) that predicts it perfectly).
    """
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(3, h, w + t_frames, generator=g)  # columns 0..T-1 enter from the left
    frames = torch.stack([base[:, :, t_frames - t: t_frames - t + w] for t in range(t_frames + 1)])[None]
    shift = torch.arange(1, t_frames + 1, dtype=torch.float32).view(1, t_frames, 1, 1, 1)
    flow_fwd = torch.zeros(1, t_frames, 2, h, w)
    flow_fwd[:, :, 0] = shift[:, :, 0]
    flow_bwd = -flow_fwd
    cols = torch.arange(w).view(1, 1, 1, 1, w)
    mask_fwd = (cols >= shift).float().expand(1, t_frames, 1, h, w)  # came from inside frame 0
    mask_bwd = (cols <= w - 1 - shift).float().expand(1, t_frames, 1, h, w)  # stays inside frame t
    future = frames[:, 1:]
    output = Seg2VidOutput(
        first_frame=frames[:, 0], frames=future.clone(), warped=future.clone(), flow_fwd=flow_fwd,
        flow_bwd=flow_bwd, mask_fwd=mask_fwd, mask_bwd=mask_bwd, z=torch.zeros(1, 8),
        mu=torch.zeros(1, 8), logvar=torch.zeros(1, 8),
    )
    return frames, output


def street_batch(config: Seg2VidConfig, b: int = 2):
    """``b`` synthetic street clips at the config's size: frames and one-hot first label maps."""
    scene = SceneConfig(height=config.height, width=config.width, frames=config.frames)
    clips = [render_clip(scene, seed) for seed in range(b)]
    labels = torch.stack([c["labels"][0] for c in clips])
    return torch.stack([c["frames"] for c in clips]), CITYSCAPES.one_hot(labels)


def random_vgg_file(path, last_layer: str = "relu4_4"):
    """A VGG-19 state dict (torchvision key names, random weights) up to ``last_layer``."""
    with torch.device("meta"):
        features = torchvision.models.vgg19(weights=None).features[: VGG19_LAYERS[last_layer] + 1]
    features = features.to_empty(device="cpu")
    g = torch.Generator().manual_seed(0)
    shapes = {k: v.shape for k, v in features.state_dict().items()}
    state = {f"features.{k}": 0.05 * torch.randn(shape, generator=g) for k, shape in shapes.items()}
    torch.save(state, path)
    return path


# ----------------------------------------------------------------------------- analytic cases


def test_perfect_prediction_gives_zero_photometric_flow_and_kl_terms():
    frames, output = translating_clip()
    total, terms = seg2vid_loss(output, frames, NO_VGG)
    assert set(terms) == set(TERMS) - {"perceptual"}
    for name in ("recon", "ssim", "kl", "smoothness", "consistency"):
        assert terms[name].item() == 0, name
    # warping with whole-pixel flows goes through grid_sample's normalised coordinates: ~1e-7
    for name in ("recon_before", "recon_back"):
        assert terms[name].item() < 1e-6, name
    # the mask term is all that is left: the share of pixels that entered / left the frame
    w = frames.shape[-1]
    expected_mask = 2 * sum(t / w for t in (1, 2)) / 2
    torch.testing.assert_close(terms["mask"], torch.tensor(expected_mask))
    torch.testing.assert_close(total, torch.tensor(0.1 * expected_mask), atol=1e-6, rtol=0)


def test_constant_flow_is_smooth_and_a_shifted_flow_is_not():
    frames, output = translating_clip()
    output.flow_fwd = torch.full_like(output.flow_fwd, 3.7)
    assert seg2vid_loss(output, frames, NO_VGG)[1]["smoothness"].item() == 0
    output.flow_bwd = output.flow_bwd.clone()
    output.flow_bwd[..., 5:] += 1.0  # a step in EVERY frame's backward flow: all frames count
    per_frame = seg2vid_loss(output, frames, NO_VGG)[1]["smoothness"]
    output.flow_bwd[:, 1:, ..., 5:] -= 1.0  # ...now only in frame 1
    assert seg2vid_loss(output, frames, NO_VGG)[1]["smoothness"] < per_frame


def test_kl_is_zero_for_the_prior_and_positive_otherwise():
    frames, output = translating_clip()
    assert seg2vid_loss(output, frames, NO_VGG)[1]["kl"].item() == 0
    output.mu = torch.full((1, 8), 0.5)
    kl = seg2vid_loss(output, frames, NO_VGG)[1]["kl"]
    torch.testing.assert_close(kl, torch.tensor(8 * 0.5 * 0.25))  # sum_j mu_j^2 / 2, nats per clip
    # a learned prior equal to the posterior: zero again
    output.prior_mu, output.prior_logvar = output.mu.clone(), output.logvar.clone()
    assert seg2vid_loss(output, frames, NO_VGG)[1]["kl"].item() == 0


def test_wrong_warp_costs_and_masks_gate_it():
    frames, output = translating_clip()
    output.warped = output.warped.flip(-1)
    _, terms = seg2vid_loss(output, frames, NO_VGG)
    assert terms["recon_before"] > 0.05
    output.mask_fwd = torch.zeros_like(output.mask_fwd)  # "all occluded": nothing left to explain
    _, terms = seg2vid_loss(output, frames, NO_VGG)
    assert terms["recon_before"].item() == 0


def test_consistency_gates_each_direction_by_its_own_mask():
    # Inconsistent flows with regionally different masks: the forward flow moves the left
    # columns 1 px right, the backward flow is zero, so both residuals are |1| + |0| = 1 on those
    # columns only (f + warp(0, f) = f; 0 + warp(f, 0) = f). mask_fwd counts them, mask_bwd does
    # not: the forward half of the term is their share, the backward half 0.
    frames, output = translating_clip()
    b, t, _, h, w = output.flow_fwd.shape
    left = torch.zeros(b, t, 1, h, w)
    left[..., :5] = 1.0
    output.flow_fwd = torch.cat([left, torch.zeros_like(left)], dim=2)
    output.flow_bwd = torch.zeros_like(output.flow_fwd)
    output.mask_fwd, output.mask_bwd = left.clone(), 1 - left
    consistency = seg2vid_loss(output, frames, NO_VGG)[1]["consistency"]
    torch.testing.assert_close(consistency, torch.tensor(5 / w))
    output.mask_fwd, output.mask_bwd = 1 - left, left.clone()  # now the backward half counts
    consistency = seg2vid_loss(output, frames, NO_VGG)[1]["consistency"]
    torch.testing.assert_close(consistency, torch.tensor(5 / w))
    output.mask_bwd = 1 - left  # both masks away from the inconsistent columns
    assert seg2vid_loss(output, frames, NO_VGG)[1]["consistency"].item() == 0


def test_recon_back_is_gated_by_mask_bwd_and_recon_before_by_mask_fwd():
    # Wrong flows (all zero) make both warp terms err everywhere; the two masks cover different
    # halves, so each term must equal ITS mask's share of the error.
    frames, output = translating_clip()
    first, future = frames[:, :1], frames[:, 1:]
    w = frames.shape[-1]
    left = torch.zeros_like(output.mask_fwd)
    left[..., : w // 2] = 1.0
    output.flow_bwd = torch.zeros_like(output.flow_bwd)
    output.warped = first.expand_as(future).clone()  # what a zero forward flow warps to
    output.mask_fwd, output.mask_bwd = 1 - left, left
    error = (future - first).abs().mean(2, keepdim=True)  # (B, T, 1, H, W) per-pixel L1
    _, terms = seg2vid_loss(output, frames, NO_VGG)
    torch.testing.assert_close(terms["recon_back"], (error * left).mean())
    torch.testing.assert_close(terms["recon_before"], (error * (1 - left)).mean())
    assert (error * left).mean() > 0.1 and (error * (1 - left)).mean() > 0.1


def _edged_clip(t_frames=2, h=12, w=16):
    """A flat frame 0 and future frames with a vertical edge at column 4 + 4t (frame t), and
    flows that jump by 2 px exactly at each frame's edge: forward ones at frame t's edge,
    backward ones at frame 0's (none)."""
    frames, output = translating_clip(t_frames, h, w)
    frames = torch.full_like(frames, 0.5)
    flow_fwd = torch.zeros_like(output.flow_fwd)
    for t in range(1, t_frames + 1):
        frames[:, t, :, :, 4 + 4 * t:] = 1.0
        flow_fwd[:, t - 1, 0, :, 4 + 4 * t:] = 2.0
    output.flow_fwd, output.flow_bwd = flow_fwd, torch.zeros_like(flow_fwd)
    return frames, output


def test_smoothness_takes_each_flows_edges_from_the_frame_it_lives_on():
    frames, output = _edged_clip()
    _, t_frames, _, h, w = output.flow_fwd.shape
    # per frame: h rows x one 2 px jump, over 2 channels and h x (w-1) x-differences, halved;
    # weighted by exp(-10 * 0.5) where frame t's own edge lies under the jump
    jump = 0.5 * h * 2 / (2 * h * (w - 1))
    smooth = seg2vid_loss(output, frames, NO_VGG)[1]["smoothness"]
    torch.testing.assert_close(smooth, torch.tensor(jump * math.exp(-5.0)))
    # the backward flows live on frame 0's grid (flat here): a jump in them is paid in full
    output.flow_bwd, output.flow_fwd = output.flow_fwd, torch.zeros_like(output.flow_fwd)
    smooth = seg2vid_loss(output, frames, NO_VGG)[1]["smoothness"]
    torch.testing.assert_close(smooth, torch.tensor(jump))


# ----------------------------------------------------------------------------- weights


def test_total_is_the_weighted_sum_and_zero_weights_switch_terms_off():
    frames, output = translating_clip()
    output.frames = output.frames.flip(-1)
    output.mu = torch.ones(1, 8)
    config = LossConfig(perceptual=0, recon_back=0, smoothness=0.5)
    total, terms = seg2vid_loss(output, frames, config)
    assert "recon_back" not in terms and "perceptual" not in terms
    torch.testing.assert_close(total, sum(getattr(config, k) * v for k, v in terms.items()))
    assert all(not v.requires_grad for v in terms.values())


def test_kl_warmup_is_linear_then_flat():
    config = LossConfig(kl=0.01, kl_warmup_steps=4)
    weights = [config.weight("kl", s) for s in range(6)]
    assert weights == pytest.approx([0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01])
    assert LossConfig(kl=0.01).weight("kl", 0) == 0.01
    assert config.weight("recon", 0) == 2.0
    frames, output = translating_clip()
    output.mu = torch.ones(1, 8)
    early = seg2vid_loss(output, frames, LossConfig(perceptual=0, kl_warmup_steps=4), step=0)[0]
    late = seg2vid_loss(output, frames, LossConfig(perceptual=0, kl_warmup_steps=4), step=10)[0]
    torch.testing.assert_close(late - early, torch.tensor(0.75 * 8e-4 * 4.0))


def test_default_weights_are_the_authors():
    c = LossConfig()
    assert (c.recon, c.recon_before, c.recon_back, c.ssim, c.perceptual, c.consistency) == (2, 1, 1, 1, 1, 1)
    assert (c.smoothness, c.mask, c.ssim_alpha) == (0.01, 0.1, 0.85)
    assert c.kl == pytest.approx(0.1 * 8 / 1000)
    assert LossConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("kwargs,message", [({"recon": -1}, "recon"), ({"kl_warmup_steps": -2}, "kl_warmup"),
                                             ({"ssim_alpha": 2}, "ssim_alpha")])
def test_bad_loss_configs_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LossConfig(**kwargs)


def test_bad_inputs_are_named():
    frames, output = translating_clip()
    with pytest.raises(ValueError, match=r"\(B, T\+1, 3, H, W\)"):
        seg2vid_loss(output, frames[:, 1:], NO_VGG)
    output.mu = None
    with pytest.raises(ValueError, match="no posterior"):
        seg2vid_loss(output, frames, NO_VGG)


# ----------------------------------------------------------------------------- with the model


def test_a_few_steps_on_a_fixed_batch_lower_the_loss():
    config = Seg2VidConfig(height=32, width=32, frames=2, **SMALL)
    torch.manual_seed(0)
    model = Seg2Vid(config)
    frames, labels = street_batch(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        torch.manual_seed(1)  # the same z and fill noise for the before/after comparison
        return seg2vid_loss(model(frames, labels), frames, NO_VGG)[0]

    before = loss().item()
    for _ in range(20):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    assert loss().item() < 0.95 * before


def test_gradients_reach_flows_masks_and_encoders():
    config = Seg2VidConfig(height=32, width=32, frames=2, **SMALL)
    model = Seg2Vid(config)
    frames, labels = street_batch(config)
    seg2vid_loss(model(frames, labels), frames, NO_VGG)[0].backward()
    for name in ("decoder.head.weight", "refiner.out.weight", "background_encoder.head.linear.weight",
                 "foreground_encoder.head.linear.weight", "image_encoder.stages.0.0.0.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


# ----------------------------------------------------------------------------- perceptual


def test_vgg_layer_table_matches_torchvision():
    with torch.device("meta"):
        features = torchvision.models.vgg19(weights=None).features
    for name, index in VGG19_LAYERS.items():
        assert isinstance(features[index], nn.ReLU), name
        assert isinstance(features[index - 1], nn.Conv2d), name
    assert DEFAULT_LAYERS[0] == "relu1_1" and DEFAULT_LAYERS[-1] == "relu4_4" and len(DEFAULT_LAYERS) == 12


def test_perceptual_loads_a_local_file_and_is_frozen(tmp_path):
    path = random_vgg_file(tmp_path / "vgg19.pth")
    vgg = VGGPerceptual.from_file(path)
    assert all(not p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training  # stays in eval mode
    x = torch.rand(2, 3, 32, 32)
    assert vgg(x, x).item() == 0
    pred = torch.rand(2, 3, 32, 32, requires_grad=True)
    loss = vgg(pred, x)
    loss.backward()
    assert loss > 0 and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())
    assert len(vgg.extract(x)) == 12
    assert load_perceptual(None) is None


def test_perceptual_accepts_features_only_files_and_subsets(tmp_path):
    path = random_vgg_file(tmp_path / "vgg.pth", last_layer="relu2_1")
    state = torch.load(path, weights_only=True)
    torch.save({k.removeprefix("features."): v for k, v in state.items()}, tmp_path / "features.pth")
    layers = ("relu1_2", "relu2_1")
    a = VGGPerceptual.from_file(path, layers)
    b = VGGPerceptual.from_file(tmp_path / "features.pth", layers)
    x, y = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    assert len(a.features) == VGG19_LAYERS["relu2_1"] + 1
    torch.testing.assert_close(a(x, y), b(x, y))
    with pytest.raises(ValueError, match="missing"):
        VGGPerceptual.from_file(path)  # relu4_4 is not in this file
    with pytest.raises(FileNotFoundError, match="no VGG-19 weights"):
        VGGPerceptual.from_file(tmp_path / "nothing.pth")
    with pytest.raises(ValueError, match="unknown VGG-19 layer"):
        VGGPerceptual.from_file(path, ("relu9_9",))


def test_perceptual_term_in_the_objective_and_the_warning_when_off(tmp_path):
    vgg = VGGPerceptual.from_file(random_vgg_file(tmp_path / "vgg.pth", "relu2_1"), ("relu1_1", "relu2_1"))
    frames, output = translating_clip()
    output.warped = output.warped.flip(-1)
    _, terms = seg2vid_loss(output, frames, LossConfig(), perceptual=vgg)
    assert terms["perceptual"] > 0
    with pytest.warns(PerceptualOffWarning, match="perceptual loss is OFF"):
        _, terms = seg2vid_loss(output, frames, LossConfig())
    assert "perceptual" not in terms
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        seg2vid_loss(output, frames, LossConfig(perceptual=0))  # weight 0: nothing to say


def test_pixel_flow_weights_are_the_paper_weights_in_grid_units():
    # a flow of (W - 1) / 2 pixels is 1 grid unit: the converted weights price it like the paper's
    paper, ours = LossConfig(), LossConfig.for_pixel_flows(64, kl_warmup_steps=7)
    assert ours.consistency * (64 - 1) / 2 == pytest.approx(paper.consistency)
    assert ours.smoothness * (64 - 1) / 2 == pytest.approx(paper.smoothness)
    assert ours.recon == paper.recon and ours.kl == paper.kl and ours.kl_warmup_steps == 7
    with pytest.raises(ValueError, match="width"):
        LossConfig.for_pixel_flows(1)


# ----------------------------------------------------------------------------- perceptual speed switches


def _extract_first_loss(vgg, pred, target):
    # the pre-issue-15 forward: all target features first, then autograd's |p - t|.mean()
    with torch.no_grad():
        target_features = vgg.extract(target)
    return sum((p - t).abs().mean() for p, t in zip(vgg.extract(pred), target_features, strict=True))


def test_perceptual_lockstep_forward_is_bit_identical_to_extracting_first(tmp_path):
    vgg = VGGPerceptual.from_file(random_vgg_file(tmp_path / "vgg.pth", "relu3_1"),
                                  ("relu1_1", "relu1_2", "relu2_2", "relu3_1"))
    g = torch.Generator().manual_seed(0)
    pred0, target = torch.rand(2, 3, 24, 32, generator=g), torch.rand(2, 3, 24, 32, generator=g)
    results = []
    for loss_fn in (_extract_first_loss, lambda v, p, t: v(p, t)):
        pred = pred0.clone().requires_grad_()
        loss = loss_fn(vgg, pred, target)
        loss.backward()
        results.append((loss.detach(), pred.grad))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_perceptual_switches_bf16_channels_last_and_downsample(tmp_path):
    path = random_vgg_file(tmp_path / "vgg.pth", "relu2_2")
    layers = ("relu1_2", "relu2_2")
    vgg = VGGPerceptual.from_file(path, layers)
    g = torch.Generator().manual_seed(1)
    pred, target = torch.rand(2, 3, 16, 24, generator=g), torch.rand(2, 3, 16, 24, generator=g)
    ref = vgg(pred, target)
    assert vgg.extract(pred)[0].dtype == torch.float32
    # channels-last: the same numbers up to float rounding, and the module keeps working in NCHW
    torch.testing.assert_close(vgg(pred, target, channels_last=True), ref, rtol=1e-5, atol=0)
    torch.testing.assert_close(vgg(pred, target), ref, rtol=1e-5, atol=0)
    # bf16: features in bfloat16, the loss in fp32 and close to the fp32 one
    bf16 = VGGPerceptual.from_file(path, layers, precision="bf16")
    assert bf16.extract(pred)[0].dtype == torch.bfloat16
    loss = bf16(pred, target)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, ref, rtol=2e-2, atol=0)
    assert VGGPerceptual.from_file(path, layers, precision="auto").uses_bf16() == bf16_supported("cpu")
    # downsample=k: exactly the full-resolution term of the k x k average-pooled images
    pooled = vgg(torch.nn.functional.avg_pool2d(pred, 2), torch.nn.functional.avg_pool2d(target, 2))
    assert torch.equal(vgg(pred, target, downsample=2), pooled)
    with pytest.raises(ValueError, match="not divisible"):
        vgg(pred, target, downsample=5)
    with pytest.raises(ValueError, match="precision"):
        VGGPerceptual.from_file(path, layers, precision="fp8")
    with pytest.raises(ValueError, match="downsample"):
        vgg(pred, target, downsample=0)


def test_loss_config_perceptual_switches_reach_the_network(tmp_path):
    vgg = VGGPerceptual.from_file(random_vgg_file(tmp_path / "vgg.pth", "relu2_1"), ("relu1_1", "relu2_1"))
    frames, output = translating_clip(h=16, w=24)
    output.warped = output.warped.flip(-1)
    _, full = seg2vid_loss(output, frames, LossConfig(), perceptual=vgg)
    _, half = seg2vid_loss(output, frames, LossConfig(perceptual_downsample=2), perceptual=vgg)
    warped, future = output.warped.flatten(0, 1), frames[:, 1:].flatten(0, 1)
    assert torch.equal(half["perceptual"], vgg(warped, future, downsample=2))
    assert not torch.equal(half["perceptual"], full["perceptual"])
    fast_config = LossConfig(perceptual_precision="bf16", perceptual_channels_last=True)
    _, fast = seg2vid_loss(output, frames, fast_config, perceptual=vgg)
    torch.testing.assert_close(fast["perceptual"], full["perceptual"], rtol=2e-2, atol=0)
    with pytest.raises(ValueError, match="perceptual_precision"):
        LossConfig(perceptual_precision="half")
    with pytest.raises(ValueError, match="perceptual_downsample"):
        LossConfig(perceptual_downsample=0)
