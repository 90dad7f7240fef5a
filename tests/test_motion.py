"""Issue 11: the motion/occlusion options of the model and objective, the oracle, the baselines and
the multi-future scores (seg2vid.motion_losses, seg2vid.evaluation.baselines, seg2vid.evaluation.multifuture,
seg2vid.evaluation.motion_eval) -- analytic cases wherever there is one."""

import math

import pytest
import torch

from seg2vid.data.labels import CITYSCAPES
from seg2vid.data.synthetic import SceneConfig, SyntheticStreets, render_clip
from seg2vid.evaluation.baselines import ExactFlowWarp, MeanFlowWarp, evaluate_baselines, training_mean_flow
from seg2vid.evaluation.evaluate import CopyFirstFrame, Prediction, evaluate
from seg2vid.evaluation.motion_eval import speed_correlation, textured
from seg2vid.evaluation.multifuture import (
    future_coverage,
    future_precision,
    multi_future_scenes,
    multi_future_scores,
)
from seg2vid.flow import warp
from seg2vid.models import Seg2Vid, Seg2VidConfig
from seg2vid.motion_losses import (
    census_loss,
    flow_supervision,
    multiscale_warp_error,
    second_order_smoothness,
    visibility_supervision,
)
from seg2vid.training.objective import LossConfig, loss_preset, seg2vid_loss

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(widths=(8, 8, 16, 16), motion_widths=(8, 8, 16, 16), refine_widths=(8, 8), latent_dim=4)
NO_VGG = LossConfig(perceptual=0)


def street_batch(config: Seg2VidConfig, b: int = 2):
    scene = SceneConfig(height=config.height, width=config.width, frames=config.frames)
    clips = [render_clip(scene, seed) for seed in range(b)]
    labels = torch.stack([c["labels"][0] for c in clips])
    truth = {k: torch.stack([c[k] for c in clips])
             for k in ("flow_fwd", "flow_bwd", "visible_fwd", "visible_bwd")}
    return torch.stack([c["frames"] for c in clips]), CITYSCAPES.one_hot(labels), truth


# ----------------------------------------------------------------------------- loss terms


def test_census_of_a_shifted_image_is_zero_at_the_true_shift_only():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 24, 30, generator=g)
    target = torch.roll(image, shifts=(2, 3), dims=(-2, -1))  # target(p) = image(p - (3, 2))
    flow = torch.zeros(1, 2, 24, 30)
    flow[:, 0], flow[:, 1] = 3.0, 2.0
    inner = (slice(None), slice(None), slice(2 + 3 + 1, -4), slice(3 + 3 + 1, -4))  # away from borders/wrap
    at_truth = census_loss(warp(image, flow), target)[inner]
    assert at_truth.abs().max().item() < 1e-4
    wrong = census_loss(warp(image, flow + 1.0), target)[inner]
    assert wrong.mean().item() > 0.1


def test_census_ignores_a_brightness_offset_much_more_than_l1():
    g = torch.Generator().manual_seed(1)
    image = 0.3 + 0.4 * torch.rand(1, 3, 16, 16, generator=g)
    brighter = image + 0.2
    assert census_loss(image, brighter).abs().max().item() < 1e-6  # differences within the window are equal
    assert (image - brighter).abs().mean().item() == pytest.approx(0.2, abs=1e-6)


def test_second_order_smoothness_of_an_affine_flow_is_zero():
    h, w = 12, 16
    y, x = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    flow = torch.stack([0.3 * x - 0.2 * y + 1.5, 0.1 * x + 0.05 * y - 2.0])[None, None]  # (1, 1, 2, H, W)
    image = torch.rand(1, 1, 3, h, w, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert second_order_smoothness(flow, image).item() < 1e-12
    curved = flow.clone()
    curved[..., 0, :, :] += 0.05 * x**2
    # |d2/dx2 (0.05 x^2)| = 0.1 on channel 0, 0 elsewhere: mean over channels 0.05, over x and y 0.025
    assert second_order_smoothness(curved, image, edge_scale=0).item() == pytest.approx(0.025)
    assert 0 < second_order_smoothness(curved, image).item() < 0.025  # edges weigh it down


def test_multiscale_warp_error_with_one_scale_is_the_authors_gated_l1():
    g = torch.Generator().manual_seed(2)
    src, tgt = torch.rand(2, 1, 3, 16, 16, generator=g), torch.rand(2, 3, 3, 16, 16, generator=g)
    flow = torch.randn(2, 3, 2, 16, 16, generator=g)
    mask = torch.rand(2, 3, 1, 16, 16, generator=g)
    expected = ((warp(src, flow) - tgt).abs().mean(-3, keepdim=True) * mask).mean()
    torch.testing.assert_close(multiscale_warp_error(src, flow, tgt, mask, scales=1), expected)
    assert multiscale_warp_error(src, flow, tgt, mask, scales=3, kind="l1+census").item() > 0


def test_balanced_visibility_cross_entropy_weights_the_rare_class_as_much_as_the_common_one():
    visible = torch.ones(1, 1, 10, 10)
    visible[..., :1, :5] = 0  # 5% occluded
    all_visible = torch.full_like(visible, 0.99)  # the mask that calls every pixel visible
    plain = visibility_supervision(all_visible, visible)
    balanced = visibility_supervision(all_visible, visible, balanced=True)
    hidden_ce, seen_ce = -math.log(0.01), -math.log(0.99)
    assert plain.item() == pytest.approx(0.05 * hidden_ce + 0.95 * seen_ce, rel=1e-5)
    assert balanced.item() == pytest.approx(0.5 * (hidden_ce + seen_ce), rel=1e-5)  # 10x the plain mean
    exact = visible.clamp(0.01, 0.99)
    assert visibility_supervision(exact, visible, True).item() == pytest.approx(seen_ce, rel=1e-5)
    none_hidden = torch.ones_like(visible)  # a class without pixels counts 0
    no_class = visibility_supervision(all_visible, none_hidden, True)
    assert no_class.item() == pytest.approx(0.5 * seen_ce, rel=1e-5)


def test_oracle_loss_is_zero_for_the_exact_flow_and_needs_the_truth():
    config = Seg2VidConfig(height=32, width=32, frames=2, **SMALL)
    model = Seg2Vid(config)
    frames, onehot, truth = street_batch(config)
    out = model(frames, onehot)
    assert flow_supervision(truth["flow_fwd"], truth["flow_fwd"]).item() == 0
    out.flow_fwd, out.flow_bwd = truth["flow_fwd"].clone(), truth["flow_bwd"].clone()
    _, terms = seg2vid_loss(
        out, frames, loss_preset("oracle", 32, perceptual=0, oracle_visibility=0), truth=truth)
    assert terms["oracle_flow"].item() == 0
    with pytest.raises(ValueError, match="truth"):
        seg2vid_loss(out, frames, loss_preset("oracle", 32, perceptual=0))
    # the exact visibility as masks gives a near-zero cross-entropy (the masks are clamped at 1e-6)
    out.mask_fwd, out.mask_bwd = truth["visible_fwd"].clone(), truth["visible_bwd"].clone()
    _, terms = seg2vid_loss(out, frames, loss_preset("oracle", 32, perceptual=0), truth=truth)
    assert terms["oracle_visibility"].item() < 1e-5


def test_default_options_are_the_authors_and_presets_are_named():
    assert LossConfig() == loss_preset("authors")
    assert loss_preset("pixel_flows", 64) == LossConfig.for_pixel_flows(64)
    assert not LossConfig().needs_truth and loss_preset("oracle").needs_truth
    with pytest.raises(ValueError, match="photometric"):
        LossConfig(photometric="l2")
    with pytest.raises(ValueError, match="mask_head"):
        Seg2VidConfig(mask_head="quarter")


# ----------------------------------------------------------------------------- mask options


def _mask_grad(model_config: Seg2VidConfig, loss: LossConfig, step: int = 0) -> tuple[float, float]:
    model = Seg2Vid(model_config)
    frames, onehot, _ = street_batch(model_config)
    out = model(frames, onehot)
    out.mask_fwd.retain_grad()
    out.mask_bwd.retain_grad()
    total, _ = seg2vid_loss(out, frames, loss, step=step)
    total.backward()
    def size(grad):  # None: no path from the loss to the mask at all
        return 0.0 if grad is None else grad.abs().sum().item()

    return size(out.mask_fwd.grad), size(out.mask_bwd.grad)


def test_the_gradient_stop_keeps_the_refined_frame_losses_off_the_masks():
    only_refined = LossConfig(recon=1, recon_before=0, recon_back=0, ssim=1, perceptual=0, consistency=0,
                              smoothness=0, kl=0, mask=0)
    base = Seg2VidConfig(height=32, width=32, frames=2, **SMALL)
    assert _mask_grad(base, only_refined)[0] > 0  # the authors' graph: the refiner decides the masks
    assert _mask_grad(base.replace(refiner_mask_grad=False), only_refined)[0] == 0


def test_the_mask_schedule_holds_the_masks_until_it_frees_them():
    schedule = LossConfig(perceptual=0, recon=0, ssim=0, mask_free_after=10)
    config = Seg2VidConfig(height=32, width=32, frames=2, **SMALL)
    assert _mask_grad(config, schedule, step=9) == (0.0, 0.0)
    fwd, bwd = _mask_grad(config, schedule, step=10)
    assert fwd > 0 and bwd > 0


def test_relative_mask_price_and_fb_mask_term_are_computed():
    config = Seg2VidConfig(height=32, width=32, frames=2, **SMALL)
    fwd, bwd = _mask_grad(config, LossConfig(perceptual=0, mask_price="relative", mask_fb=0.5))
    assert fwd > 0 and bwd > 0


def test_full_resolution_mask_head_predicts_per_pixel_masks():
    config = Seg2VidConfig(height=32, width=32, frames=3, mask_head="full", **SMALL)
    model = Seg2Vid(config)
    frames, onehot, _ = street_batch(config)
    out = model(frames, onehot)
    assert out.mask_fwd.shape == out.mask_bwd.shape == (2, 3, 1, 32, 32)
    # starts at the same "visible" logit as the half-resolution head
    torch.testing.assert_close(
        out.mask_fwd, torch.full_like(out.mask_fwd, torch.sigmoid(torch.tensor(3.0)).item()))
    # one training step later the masks vary from pixel to pixel, not in 2x2 bilinear blocks
    seg2vid_loss(out, frames, LossConfig(perceptual=0, mask=1.0))[0].backward()
    assert model.decoder.mask_full[2].weight.grad.abs().sum() > 0


def test_full_resolution_flow_head_starts_as_the_half_one_and_then_moves_single_pixels():
    """flow_head="full": the same weights give the same flows as the half-resolution model at
    first (the correction starts at zero); a step later the correction is trained, and it can move
    one pixel without its neighbours, which a bilinearly upsampled half-resolution flow cannot."""
    config = Seg2VidConfig(height=32, width=32, frames=2, **SMALL)
    torch.manual_seed(0)
    half = Seg2Vid(config)
    full = Seg2Vid(config.replace(flow_head="full"))
    loaded = full.load_state_dict(half.state_dict(), strict=False)
    assert loaded.missing_keys and all(k.startswith("decoder.flow_full") for k in loaded.missing_keys)
    frames, onehot, _ = street_batch(config)
    z = torch.zeros(frames.shape[0], half.latent_size)
    torch.testing.assert_close(full.decode(frames[:, 0], onehot, z).flow_fwd,
                               half.decode(frames[:, 0], onehot, z).flow_fwd)
    out = full(frames, onehot)
    seg2vid_loss(out, frames, LossConfig(perceptual=0))[0].backward()
    assert full.decoder.flow_full[2].weight.grad.abs().sum() > 0
    with torch.no_grad():  # a correction on one pixel only: bias 0, a centre-tap kernel on the image
        last = full.decoder.flow_full
        for layer in (last[0], last[2]):
            layer.weight.zero_()
            layer.bias.zero_()
        c_img = last[0].in_channels - 3
        last[0].weight[0, c_img, 1, 1] = 1.0  # hidden unit 0 = the red channel of the first frame
        last[2].weight[0, 0, 1, 1] = 1.0      # flow_fwd x += hidden unit 0
        image = torch.zeros_like(frames[:, 0])
        image[:, 0, 10, 20] = 1.0
        flows = full.decode(image, onehot, z).flow_fwd - half.decode(image, onehot, z).flow_fwd
    moved = flows[0, 0, 0].abs() > 1e-6
    assert moved.sum() == 1 and moved[10, 20]
    with pytest.raises(ValueError, match="flow_head"):
        Seg2VidConfig(flow_head="quarter")


def test_a_fitted_latent_prior_recovers_the_mixture_moments_and_moves_the_samples():
    """latent_prior="fitted": N(0, I) until fitted (the same videos as the standard model); the fit
    is the mixture's exact mean and covariance; samples are m + S eps with the same eps."""
    config = Seg2VidConfig(height=32, width=32, frames=2, **SMALL)
    torch.manual_seed(0)
    standard = Seg2Vid(config).eval()
    fitted = Seg2Vid(config.replace(latent_prior="fitted")).eval()
    loaded = fitted.load_state_dict(standard.state_dict(), strict=False)
    assert set(loaded.missing_keys) == {"fitted_mean", "fitted_scale"}
    frames, onehot, _ = street_batch(config)
    with torch.no_grad():
        a = standard.sample(frames[:, 0], onehot, 3, generator=torch.Generator().manual_seed(1))
        b = fitted.sample(frames[:, 0], onehot, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a.video, b.video, rtol=0, atol=0)
    # two posteriors, D = latent_size: the mixture of N(mu_i, diag var_i) has mean (mu_1 + mu_2) / 2
    # and covariance cov(mu) + diag(mean var)
    d = fitted.latent_size
    mu = torch.stack([torch.full((d,), 1.0), torch.full((d,), 3.0)])
    var = torch.stack([torch.full((d,), 0.5), torch.full((d,), 1.5)])
    fitted.fit_latent_prior(mu, var.log())
    torch.testing.assert_close(fitted.fitted_mean, torch.full((d,), 2.0))
    expected = torch.ones(d, d) + torch.eye(d)  # cov of the means: 1 everywhere; + mean variance 1
    torch.testing.assert_close(fitted.fitted_scale @ fitted.fitted_scale.T, expected)
    g = torch.Generator().manual_seed(1)
    eps = torch.randn(6, d, generator=g)
    with torch.no_grad():
        out = fitted.sample(frames[:, 0], onehot, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out.z, fitted.fitted_mean + eps @ fitted.fitted_scale.T)
    with pytest.raises(ValueError, match="latent_prior='fitted'"):
        standard.fit_latent_prior(mu, var.log())
    with pytest.raises(ValueError, match="N >= 2"):
        fitted.fit_latent_prior(mu[:1], var[:1].log())
    with pytest.raises(ValueError, match="latent_prior"):
        Seg2VidConfig(latent_prior="uniform")
    with pytest.raises(ValueError, match="learned_prior"):
        Seg2VidConfig(latent_prior="fitted", learned_prior=True)


def test_cumulative_flow_time_sums_the_per_frame_increments():
    """With the flow heads' output fixed at one increment per frame, absolute flows stay at that
    increment on every frame, cumulative ones grow as t times it (for both directions)."""
    outs = {}
    for flow_time in ("absolute", "cumulative"):
        config = Seg2VidConfig(height=32, width=32, frames=3, flow_time=flow_time, **SMALL)
        torch.manual_seed(0)
        model = Seg2Vid(config)
        with torch.no_grad():
            model.decoder.head.weight.zero_()
            model.decoder.head.bias[0:4] = torch.tensor([0.25, -0.5, -0.25, 0.5])
        frames, onehot, _ = street_batch(config)
        outs[flow_time] = model(frames, onehot)
    unit = torch.tensor([0.25, -0.5, -0.25, 0.5]) * Seg2VidConfig(height=32, width=32).pixels_per_unit
    for t in range(3):
        absolute = torch.cat([outs["absolute"].flow_fwd[:, t], outs["absolute"].flow_bwd[:, t]], 1)
        cumulative = torch.cat([outs["cumulative"].flow_fwd[:, t], outs["cumulative"].flow_bwd[:, t]], 1)
        torch.testing.assert_close(absolute, unit.view(1, 4, 1, 1).expand_as(absolute))
        torch.testing.assert_close(cumulative, (t + 1) * unit.view(1, 4, 1, 1).expand_as(cumulative))
    with pytest.raises(ValueError, match="flow_time"):
        Seg2VidConfig(flow_time="relative")


def test_extrapolated_flow_time_trains_each_frame_only_through_its_own_correction():
    """f[t] = sg(2 f[t-1] - f[t-2]) + c[t]: with one constant correction c the flows are c, 3c, 6c,
    and a loss on the last frame alone sends gradient to the last frame's correction only."""
    from seg2vid.models.seg2vid import _extrapolate

    c = torch.full((1, 3, 2, 4, 4), 0.5, requires_grad=True)
    flows = _extrapolate(c)
    torch.testing.assert_close(flows[0, :, 0, 0, 0], torch.tensor([0.5, 1.5, 3.0]))
    flows[:, 2].sum().backward()
    assert c.grad[:, :2].abs().sum() == 0 and (c.grad[:, 2] == 1).all()
    config = Seg2VidConfig(height=32, width=32, frames=3, flow_time="extrapolated", **SMALL)
    frames, onehot, _ = street_batch(config)
    assert Seg2Vid(config)(frames, onehot).flow_fwd.shape == (2, 3, 2, 32, 32)


def test_a_checkpoint_config_without_the_new_fields_loads_with_the_old_behaviour():
    old = {k: v for k, v in Seg2VidConfig().to_dict().items()
           if k not in ("mask_head", "refiner_mask_grad", "mask_init_logit", "flow_time", "flow_head",
                         "latent_prior")}
    config = Seg2VidConfig.from_dict(old)
    assert (config.mask_head, config.refiner_mask_grad, config.mask_init_logit) == ("half", True, 3.0)
    assert config.flow_time == "absolute" and config.flow_head == "half" and config.latent_prior == "standard"
    new_heads = ("decoder.mask_full", "decoder.flow_full")
    assert not any(k.startswith(new_heads) for k in Seg2Vid(config).state_dict())


# ----------------------------------------------------------------------------- multi-future scores


def _speed_futures(speeds, t=2, h=8, w=8):
    """Futures whose flow is a uniform rightward motion of ``speed * t`` pixels at frame t."""
    out = torch.zeros(len(speeds), t, 2, h, w)
    for i, s in enumerate(speeds):
        for j in range(t):
            out[i, j, 0] = s * (j + 1)
    return out


def test_predicting_the_true_futures_covers_all_of_them_precisely():
    futures = _speed_futures([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0])
    assert future_coverage(futures, futures) == 1.0
    assert future_precision(futures, futures) == 1.0
    assert future_coverage(futures.flip(0), futures) == 1.0  # order does not matter


def test_a_constant_prediction_covers_at_most_a_third():
    # 8 futures that differ in speed AND direction (a ring of uniform motions, as camera speed and turn)
    t, h, w = 2, 8, 8
    futures = torch.zeros(8, t, 2, h, w)
    for i in range(8):
        angle = torch.tensor(2 * torch.pi * i / 8)
        for j in range(t):
            futures[i, j, 0] = 2.0 * (j + 1) * torch.cos(angle)
            futures[i, j, 1] = 2.0 * (j + 1) * torch.sin(angle)
    for constant in (futures.mean(0), futures[3], torch.zeros_like(futures[0])):
        samples = constant.expand(8, *constant.shape)
        assert future_coverage(samples, futures) <= 1 / 3
    # ...while the futures themselves, in any order, cover everything
    assert future_coverage(futures.flip(0), futures) == 1.0


def test_multi_future_scenes_share_frame_zero_and_score_through_a_predictor():
    scene = SceneConfig(height=32, width=32, frames=2)
    scenes = multi_future_scenes(scene, num_scenes=2, k=4)
    assert scenes[0]["frames"].shape == (4, 3, 3, 32, 32)
    torch.testing.assert_close(scenes[0]["frames"][:, 0], scenes[0]["frames"][:1, 0].expand(4, -1, -1, -1))

    class TrueFutures:  # an oracle that returns the scene's futures as its samples
        def __init__(self):
            self.i = 0

        def __call__(self, first, onehot, n, generator):
            flows = scenes[self.i]["flow_fwd"]
            self.i += 1
            return Prediction(scenes[0]["frames"][:, :], flows)

    scores = multi_future_scores(TrueFutures(), scenes, CITYSCAPES, n_samples=4)
    assert scores["future_coverage"]["mean"] == 1.0 and scores["future_precision"]["mean"] == 1.0


# ----------------------------------------------------------------------------- evaluation


def test_baselines_have_the_metric_keys_and_the_truth_has_speed_correlation_one():
    scene = SceneConfig(height=32, width=32, frames=2)
    data = SyntheticStreets(3, scene, seed=123)
    model = Seg2Vid(Seg2VidConfig(height=32, width=32, frames=2, **SMALL))
    futures = multi_future_scenes(scene, num_scenes=1, k=3)
    kwargs = dict(n_samples=2, batch_size=2, multi_future=futures, future_samples=3)
    result = evaluate(model, data, **kwargs)["metrics"]
    mean = training_mean_flow(scene, num_clips=4)
    baselines = evaluate_baselines(data, scene, 2, mean_flow=mean, **kwargs)
    assert set(baselines) == {"copy_first_frame", "mean_flow", "exact_flow_warp", "true_futures"}
    for name, values in baselines.items():
        assert set(values) == set(result), name
    perfect = baselines["true_futures"]  # other exact futures: spread out, its posterior exact
    assert perfect["epe_posterior"]["mean"] == 0 and perfect["diversity"]["mean"] > 0
    assert perfect["epe"]["mean"] > 0 and perfect["future_precision"]["mean"] > 0
    for key in ("speed_correlation", "epe_textured", "occlusion_iou_fwd", "occlusion_iou_bwd",
                "future_coverage", "future_precision", "epe_posterior", "occlusion_iou_fwd_fbcheck"):
        assert key in result
    exact = baselines["exact_flow_warp"]
    assert exact["speed_correlation"]["mean"] == pytest.approx(1.0)
    assert exact["epe"]["mean"] == 0 and exact["occlusion_iou_fwd"]["mean"] == 1.0
    assert baselines["mean_flow"]["future_precision"]["mean"] <= 1.0


def test_the_perfect_sampler_draws_exact_futures_of_the_same_first_frame():
    from seg2vid.data.synthetic import render_futures
    from seg2vid.evaluation import baselines as bl

    scene = SceneConfig(height=32, width=32, frames=2)
    data = SyntheticStreets(2, scene, seed=5)
    first = torch.stack([data[i]["frames"][0] for i in range(2)])
    onehot = CITYSCAPES.one_hot(torch.stack([data[i]["labels"][0] for i in range(2)]))
    seeds = torch.tensor([data.clip_seed(i) for i in range(2)])
    sampler = bl.TrueFutures(scene)
    pred = sampler(first, onehot, 3, torch.Generator(), truth={"seed": seeds})
    assert pred.video.shape == (6, 3, 3, 32, 32)
    assert torch.equal(pred.video[:, 0], first.repeat_interleave(3, dim=0))  # the same frame 0
    future = render_futures(scene, data.clip_seed(1), k=1, first=bl.SAMPLE_FUTURES_FROM + 2)
    assert torch.equal(pred.video[5], future["frames"][0])
    assert torch.equal(pred.flow_fwd[5], future["flow_fwd"][0])
    assert not torch.equal(pred.flow_fwd[3], pred.flow_fwd[4])  # independent motions
    assert not torch.equal(pred.video[3], data[1]["frames"])  # never the clip's own future
    with pytest.raises(ValueError, match="seed"):
        sampler(first, onehot, 3, torch.Generator())
    with pytest.raises(ValueError, match="do not render these first frames"):
        sampler(first, onehot, 1, torch.Generator(), truth={"seed": seeds + 1})


def test_speed_correlation_and_texture_definitions():
    speeds = torch.tensor([1.0, 2.0, 4.0, 3.0])
    assert speed_correlation(speeds, speeds) == pytest.approx(1.0)
    assert speed_correlation(2 * speeds + 1, speeds) == pytest.approx(1.0)
    assert speed_correlation(torch.ones(4), speeds) != speed_correlation(torch.ones(4), speeds)  # NaN
    ramp = torch.linspace(0, 1, 16).view(1, 1, 16).expand(3, 16, 16)  # gradient 1/15 per pixel
    assert textured(ramp).all() and not textured(torch.full((3, 16, 16), 0.5)).any()


def test_mean_flow_and_exact_warp_baselines_by_hand():
    scene = SceneConfig(height=32, width=32, frames=2)
    clip = render_clip(scene, 5)
    first = clip["frames"][None, 0]
    onehot = CITYSCAPES.one_hot(clip["labels"][None, 0])
    g = torch.Generator()
    truth = {k: clip[k][None] for k in ("flow_fwd", "flow_bwd", "visible_fwd", "visible_bwd")}
    exact = ExactFlowWarp()(first, onehot, 2, g, truth=truth)
    torch.testing.assert_close(exact.video[0, 1:], warp(first, clip["flow_fwd"]))
    mean = MeanFlowWarp(clip["flow_fwd"], clip["flow_bwd"])(first, onehot, 3, g)
    assert mean.video.shape == (3, 3, 3, 32, 32) and torch.equal(mean.flow_fwd[0], clip["flow_fwd"])
    copy = CopyFirstFrame(2)(first, onehot, 1, g)
    assert copy.flow_bwd.abs().sum() == 0
