"""Per-object motion (seg2vid.models.objects, Seg2VidConfig.object_motion="rigid"): analytic cases."""

from __future__ import annotations

import pytest
import torch

from seg2vid.models import Seg2Vid, Seg2VidConfig
from seg2vid.models.objects import compose_object_motion, label_segments, rigid_fit

H = W = 32


def boxes(*specs: tuple[int, int, int, int, int], classes: int = 3) -> torch.Tensor:
    """(1, classes, H, W) one-hot foreground channels with boxes (channel, y0, y1, x0, x1)."""
    fg = torch.zeros(1, classes, H, W)
    for c, y0, y1, x0, x1 in specs:
        fg[0, :, y0:y1, x0:x1] = 0
        fg[0, c, y0:y1, x0:x1] = 1
    return fg


def car_clip(down: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A 32x32 clip of 1 + 2 frames: a textured 10x8 car (label map: road elsewhere) moving 3 px
    right and ``down`` px down per frame over a faint random background. Draws from torch's RNG.
    Returns (labels (1, L, 32, 32) one-hot, frames (1, 3, 3, 32, 32))."""
    labels = torch.zeros(1, Seg2VidConfig().label_channels, 32, 32)
    labels[:, 0] = 1
    car = Seg2VidConfig().foreground_channels[2]
    labels[:, 0, 10:20, 8:16], labels[:, car, 10:20, 8:16] = 0, 1
    frames = torch.rand(1, 3, 3, 32, 32) * 0.2
    texture = torch.rand(3, 10, 8)
    for t in range(3):
        frames[0, t, :, 10 + down * t:20 + down * t, 8 + 3 * t:16 + 3 * t] = texture
    return labels, frames


def test_segments_split_by_connectivity_and_class_largest_first():
    # two cars apart, a person touching the first car, a 2-pixel speck
    fg = boxes((0, 2, 10, 2, 12), (0, 20, 24, 20, 30), (1, 4, 10, 12, 15), (2, 30, 31, 0, 2))
    masks = label_segments(fg, max_objects=8, min_pixels=4)
    assert masks.shape == (1, 3, H, W)
    areas = masks.sum((2, 3))[0].tolist()
    assert areas == [80.0, 40.0, 18.0]  # largest first; the speck is left out
    assert float(masks.sum(1).max()) == 1.0  # disjoint
    assert torch.equal(masks[0, 0, 2:10, 2:12], torch.ones(8, 10))  # the first car, whole
    assert label_segments(fg, max_objects=2).shape[1] == 2


def test_segments_of_an_empty_map_is_one_empty_slot():
    masks = label_segments(torch.zeros(2, 3, H, W))
    assert masks.shape == (2, 1, H, W) and masks.sum() == 0


def test_rigid_fit_recovers_a_known_displacement_and_scale():
    masks = label_segments(boxes((0, 8, 20, 6, 22)))
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32),
                            indexing="ij")
    c = torch.tensor([13.5, 13.5])  # the box's centroid (x, y)
    d, s = torch.tensor([2.5, -1.0]), 0.1
    u = torch.stack([d[0] + s * (xs - c[0]), d[1] + s * (ys - c[1])])  # displacement of frame-0 pixels
    flow_bwd = -u.view(1, 1, 2, H, W)
    d_fit, s_fit, c_fit = rigid_fit(masks, flow_bwd, damping=0.0)
    assert torch.allclose(c_fit[0, 0], c)
    assert torch.allclose(d_fit[0, 0, 0], d, atol=1e-5)
    assert float(s_fit[0, 0, 0]) == pytest.approx(s, abs=1e-5)


def test_a_moved_object_carries_its_flow_and_reveals_what_it_covered():
    fg = boxes((0, 10, 20, 8, 16))
    masks = label_segments(fg)
    flow_bwd = torch.zeros(1, 1, 2, H, W)
    flow_bwd[0, 0, 0, 10:20, 8:16] = -4.0  # the object moves 4 px right, the background stays
    flow_fwd = torch.zeros(1, 1, 2, H, W)
    ones = torch.ones(1, 1, 1, H, W)
    fg_any = fg.sum(1, keepdim=True)
    f_fwd, f_bwd, vis, shift, _ = compose_object_motion(masks, flow_fwd, flow_bwd, ones, fg_any)
    assert torch.allclose(f_bwd, flow_bwd)  # a translation is fitted exactly
    assert torch.allclose(shift[0, 0, 0], torch.tensor([4.0, 0.0]))
    assert torch.allclose(f_fwd[0, 0, 0, 10:20, 12:20], torch.full((10, 8), 4.0))  # where it lands
    assert float(f_fwd[0, 0, :, :, :11].abs().max()) == 0.0  # the background keeps its flow
    occluded = vis[0, 0, 0] < 0.5
    expected = torch.zeros(H, W, dtype=torch.bool)
    expected[10:20, 8:12] = True  # the strip it uncovered: background now, under the car in frame 0
    assert torch.equal(occluded, expected)
    # the geometric visibility itself: the factor a mask is multiplied by
    half = torch.full_like(ones, 0.5)
    _, _, halved, _, geometric = compose_object_motion(masks, flow_fwd, flow_bwd, half, fg_any)
    torch.testing.assert_close(geometric, vis)
    torch.testing.assert_close(halved, 0.5 * vis)


def test_sources_outside_the_frame_are_occluded():
    fg = torch.zeros(1, 1, H, W)
    flow_fwd = torch.zeros(1, 1, 2, H, W)
    flow_fwd[:, :, 0] = 3.0  # every pixel shows frame 0 three pixels to its left
    _, _, vis, _, _ = compose_object_motion(label_segments(fg), flow_fwd, torch.zeros_like(flow_fwd),
                                      torch.ones(1, 1, 1, H, W), fg)
    assert torch.equal(vis[0, 0, 0, :, :3] < 0.5, torch.ones(H, 3, dtype=torch.bool))
    assert bool((vis[0, 0, 0, :, 3:] == 1).all())


def test_the_rigid_model_trains_and_samples_without_new_weights():
    torch.manual_seed(0)
    config = Seg2VidConfig(height=32, width=32, frames=2, object_motion="rigid")
    model = Seg2Vid(config)
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in Seg2Vid(config.replace(object_motion="none")).parameters())
    frames = torch.rand(2, 3, 3, 32, 32)
    labels = torch.zeros(2, config.label_channels, 32, 32)
    labels[:, 0] = 1
    car = config.foreground_channels[2]
    labels[:, 0, 10:20, 8:16], labels[:, car, 10:20, 8:16] = 0, 1
    out = model(frames, labels)
    # the output carries the geometric visibility: the decoder's mask (in (0, 1)) times it
    assert out.object_visibility.shape == out.mask_fwd.shape and not out.object_visibility.requires_grad
    assert bool((out.mask_fwd <= out.object_visibility + 1e-6).all())
    (out.frames.mean() + out.flow_fwd.abs().mean() + out.flow_bwd.abs().mean()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    sample = model.sample(frames[:, 0], labels, n_samples=2)
    assert sample.flow_fwd.shape == (4, 2, 2, 32, 32) and torch.isfinite(sample.frames).all()
    with pytest.raises(ValueError, match="object_motion"):
        Seg2VidConfig(object_motion="affine")


def test_block_matching_finds_a_known_object_shift_and_distrusts_a_flat_one():
    from seg2vid.motion_losses import match_objects, object_match_loss

    torch.manual_seed(0)
    h = w = 48
    background = torch.rand(3, h, w) * 0.2
    texture = torch.rand(3, 10, 12)
    frames = background.repeat(3, 1, 1, 1)  # (T+1 = 3, 3, H, W)
    frames[0, :, 10:20, 8:20] = texture
    frames[1, :, 11:21, 13:25] = texture  # frame 1: (+5, +1)
    frames[2, :, 12:22, 18:30] = texture  # frame 2: (+10, +2)
    flat = torch.zeros(1, 2, h, w)
    flat[0, 0, 10:20, 8:20] = 1
    flat[0, 1, 30:40, 30:44] = 1  # a flat region: the same error for every horizontal shift
    frames[:, :, 30:40, 20:48] = 0.5
    shift, valid = match_objects(frames[None], flat)
    assert valid[0, :, 0].all() and not valid[0, :, 1].any()
    torch.testing.assert_close(shift[0, :, 0], torch.tensor([[5.0, 1.0], [10.0, 2.0]]), atol=0.05, rtol=0)
    assert float(object_match_loss(shift, shift, valid)) == 0.0
    assert float(object_match_loss(torch.zeros_like(shift), shift, valid)) > 1.0


def test_the_object_match_term_trains_a_rigid_model():
    from seg2vid.training.objective import LossConfig, seg2vid_loss

    torch.manual_seed(0)
    config = Seg2VidConfig(height=32, width=32, frames=2, object_motion="rigid")
    model = Seg2Vid(config)
    frames = torch.rand(2, 3, 3, 32, 32)
    labels = torch.zeros(2, config.label_channels, 32, 32)
    labels[:, 0] = 1
    car = config.foreground_channels[2]
    labels[:, 0, 10:20, 8:16], labels[:, car, 10:20, 8:16] = 0, 1
    total, terms = seg2vid_loss(model(frames, labels), frames, LossConfig(object_match=1.0, perceptual=0))
    assert "object_match" in terms and torch.isfinite(total)
    with pytest.raises(ValueError, match="object_motion"):
        seg2vid_loss(Seg2Vid(config.replace(object_motion="none"))(frames, labels), frames,
                     LossConfig(object_match=1.0, perceptual=0))


def test_the_object_head_starts_at_no_correction_and_learns_a_shift():
    torch.manual_seed(0)
    config = Seg2VidConfig(height=32, width=32, frames=2, object_motion="rigid", object_head=True)
    model = Seg2Vid(config)
    plain = Seg2Vid(config.replace(object_head=False))
    plain.load_state_dict(model.state_dict(), strict=False)
    frames = torch.rand(1, 3, 3, 32, 32)
    labels = torch.zeros(1, config.label_channels, 32, 32)
    labels[:, 0] = 1
    car = config.foreground_channels[2]
    labels[:, 0, 10:20, 8:16], labels[:, car, 10:20, 8:16] = 0, 1
    torch.manual_seed(1)
    a = model(frames, labels)
    torch.manual_seed(1)
    b = plain(frames, labels)
    torch.testing.assert_close(a.object_shift, b.object_shift)  # zero-initialised: no correction
    optimizer = torch.optim.Adam(model.object_head.parameters(), 1e-2)
    target = torch.tensor([3.0, -1.0])
    for _ in range(150):
        out = model(frames, labels)
        loss = (out.object_shift[0, :, 0] - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.3
    with pytest.raises(ValueError, match="object_head"):
        Seg2VidConfig(object_head=True)


def test_object_latents_autoencode_a_matched_motion_and_sample_from_the_prior():
    from seg2vid.training.objective import LossConfig, seg2vid_loss

    torch.manual_seed(0)
    config = Seg2VidConfig(height=32, width=32, frames=2, object_motion="rigid", object_head=True,
                           object_latent=2)
    model = Seg2Vid(config)
    labels, frames = car_clip()  # the car moves 3 px right per frame
    out = model(frames, labels)
    assert out.object_mu.shape == (1, 1, 2) and out.object_shift.shape == (1, 2, 1, 2)
    from seg2vid.models.objects import match_objects

    matched, trusted = match_objects(frames, out.objects)  # what the posterior read, kept for the loss
    assert torch.equal(out.object_matched, matched) and torch.equal(out.object_trusted, trusted)
    torch.testing.assert_close(matched[0, :, 0], torch.tensor([[3.0, 0.0], [6.0, 0.0]]), atol=0.05, rtol=0)
    loss = LossConfig(object_match=1.0, perceptual=0)
    _, terms = seg2vid_loss(out, frames, loss)
    assert terms["kl"] > 0 and terms["object_match"] > 1.0
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(80):
        total, terms = seg2vid_loss(model(frames, labels), frames, LossConfig(
            object_match=1.0, perceptual=0, recon=0, recon_before=0, recon_back=0, ssim=0,
            consistency=0, smoothness=0, mask=0))
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert float(terms["object_match"]) < 0.5
    gen = torch.Generator().manual_seed(0)
    samples = model.sample(frames[:, 0], labels, n_samples=3, generator=gen)
    assert samples.object_shift.shape == (3, 2, 1, 2) and torch.isfinite(samples.frames).all()


def test_the_objects_latent_prior_is_fitted_with_the_global_one():
    config = Seg2VidConfig(height=32, width=32, frames=2, object_motion="rigid", object_head=True,
                           object_latent=2, latent_prior="fitted")
    model = Seg2Vid(config)
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(50, model.latent_size, generator=g), torch.zeros(50, model.latent_size)
    object_mu = torch.tensor([1.0, -1.0]) + 0.1 * torch.randn(200, 2, generator=g)
    object_logvar = torch.full((200, 2), -6.0)
    with pytest.raises(ValueError, match="object_mu"):
        model.fit_latent_prior(mu, logvar)
    model.fit_latent_prior(mu, logvar, object_mu, object_logvar)
    torch.testing.assert_close(model.object_latent_from_noise(torch.zeros(1, 3, 2)),
                               object_mu.mean(0).expand(1, 3, 2), atol=1e-6, rtol=0)
    spread = model.object_latent_from_noise(torch.randn(4000, 2, generator=g)).std(0)
    assert bool(((spread - 0.1).abs() < 0.02).all())  # the objects' spread, not N(0, I)'s


def test_match_confidence_is_high_for_a_unique_match_and_zero_for_a_flat_one():
    from seg2vid.models.objects import match_objects

    torch.manual_seed(0)
    frames = torch.rand(1, 3, 3, 48, 48) * 0.2
    texture = torch.rand(3, 10, 12)
    for t in range(3):
        frames[0, t, :, 10:20, 8 + 4 * t:20 + 4 * t] = texture
    frames[0, :, :, 30:40, 20:48] = 0.5  # flat: every horizontal shift matches equally
    objects = torch.zeros(1, 2, 48, 48)
    objects[0, 0, 10:20, 8:20] = 1
    objects[0, 1, 30:40, 30:44] = 1
    shift, valid, confidence = match_objects(frames, objects, with_confidence=True)
    plain_shift, plain_valid = match_objects(frames, objects)  # the confidence changes nothing else
    assert torch.equal(shift, plain_shift) and torch.equal(valid, plain_valid)
    assert confidence.shape == (1, 2, 2) and bool(((confidence >= 0) & (confidence <= 1)).all())
    assert bool((confidence[0, :, 0] > 0.9).all()) and bool((confidence[0, :, 1] < 0.05).all())


def test_the_full_object_posterior_starts_as_the_trusted_one_and_reads_more():
    from seg2vid.models.objects import ObjectPosterior, pool_over_objects

    torch.manual_seed(0)
    trusted_only = ObjectPosterior(frames=2, latent=2, scale=4.0)
    full = ObjectPosterior(frames=2, latent=2, scale=4.0, features=5)
    full.net.load_state_dict(trusted_only.net.state_dict())
    masks = torch.zeros(1, 2, 16, 16)
    masks[0, 0, :8, :8] = 1
    masks[0, 1, 8:, 4:] = 1
    shift, valid = torch.randn(1, 2, 2, 2), torch.tensor([[[True, False], [False, False]]])
    confidence, features = torch.rand(1, 2, 2), torch.randn(1, 5, 4, 4, requires_grad=True)
    reference = trusted_only(shift, valid, masks)
    same = full(shift, valid, masks, confidence, features)
    torch.testing.assert_close(same, reference)  # the extra layer starts at zero
    with pytest.raises(ValueError, match="confidence and features"):
        full(shift, valid, masks)
    sum(x.sum() for x in same).backward()
    assert full.extra.weight.grad.abs().sum() > 0  # and it can learn
    # the pooled features are each object's mean: object 0 covers the top-left 2x2 cells
    pooled = pool_over_objects(features.detach(), masks)
    torch.testing.assert_close(pooled[0, 0], features.detach()[0, :, :2, :2].mean((1, 2)))


def test_a_model_with_the_full_object_posterior_trains_and_warm_starts_unchanged():
    with pytest.raises(ValueError, match="object_posterior"):
        Seg2VidConfig(object_posterior="all")
    with pytest.raises(ValueError, match="object_latent"):
        Seg2VidConfig(object_posterior="full")
    base = dict(height=32, width=32, frames=2, object_motion="rigid", object_head=True, object_latent=2)
    torch.manual_seed(0)
    old = Seg2Vid(Seg2VidConfig(**base)).eval()
    new = Seg2Vid(Seg2VidConfig(**base, object_posterior="full")).eval()
    missing = new.load_state_dict(old.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["object_posterior.extra.bias", "object_posterior.extra.weight"]
    labels = torch.zeros(1, old.config.label_channels, 32, 32)
    labels[:, 0] = 1
    car = old.config.foreground_channels[2]
    labels[:, 0, 10:20, 8:16], labels[:, car, 10:20, 8:16] = 0, 1
    frames = torch.rand(1, 3, 3, 32, 32)
    a = old.reconstruct(frames, labels, generator=torch.Generator().manual_seed(0))
    b = new.reconstruct(frames, labels, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(b.frames, a.frames)
    new.train()
    out = new(frames, labels)
    (out.object_mu.sum() + out.frames.mean()).backward()
    assert new.object_posterior.extra.weight.grad is not None


def test_the_objects_kl_weight_scales_only_their_part():
    from seg2vid.training.objective import LossConfig, seg2vid_loss

    with pytest.raises(ValueError, match="object_kl"):
        LossConfig(object_kl=-1.0)
    torch.manual_seed(0)
    model = Seg2Vid(Seg2VidConfig(height=32, width=32, frames=2, object_motion="rigid", object_head=True,
                                  object_latent=2))
    labels = torch.zeros(1, model.config.label_channels, 32, 32)
    labels[:, 0] = 1
    car = model.config.foreground_channels[2]
    labels[:, 0, 10:20, 8:16], labels[:, car, 10:20, 8:16] = 0, 1
    frames = torch.rand(1, 3, 3, 32, 32)
    out = model(frames, labels)
    kl = {w: float(seg2vid_loss(out, frames, LossConfig(object_kl=w, perceptual=0))[1]["kl"])
          for w in (0.0, 1.0, 2.0)}
    assert kl[0.0] > 0 and kl[1.0] > kl[0.0]  # the global z's KL stays; the objects' part scales linearly
    assert kl[2.0] - kl[1.0] == pytest.approx(kl[1.0] - kl[0.0], rel=1e-5)


def test_the_posterior_trusts_matches_by_the_configured_uniqueness_ratio():
    from seg2vid.models.objects import match_objects

    torch.manual_seed(0)
    labels, frames = car_clip()  # the car moves 3 px right per frame, under noise: its match is not perfect
    frames = (frames + 0.15 * torch.randn_like(frames)).clamp(0, 1)
    objects = torch.zeros(1, 1, 32, 32)
    objects[0, 0, 10:20, 8:16] = 1
    _, _, confidence = match_objects(frames, objects, with_confidence=True)
    ratio = 1 - float(confidence[0, 0, 0])  # ~ best error / runner-up of frame 1
    assert 0.05 < ratio < 0.9
    trusted = {}
    for distinct in (ratio - 0.04, min(ratio + 0.04, 1.0)):
        config = Seg2VidConfig(height=32, width=32, frames=2, object_motion="rigid", object_head=True,
                               object_latent=2, object_match_distinct=distinct)
        trusted[distinct] = bool(Seg2Vid(config)(frames, labels).object_trusted[0, 0, 0])
    assert list(trusted.values()) == [False, True]
    with pytest.raises(ValueError, match="object_match_distinct"):
        Seg2VidConfig(object_match_distinct=0.0)


def test_pinning_keeps_trusted_matches_and_fills_the_rest_at_their_constant_velocity():
    from seg2vid.models.objects import pin_to_matches

    shift = torch.tensor([[[[2.0, -1.0], [9.0, 9.0]],
                           [[4.0, -2.0], [8.0, 7.0]],
                           [[50.0, 50.0], [7.0, 5.0]]]])  # (B=1, T=3, K=2, 2)
    trusted = torch.tensor([[[True, False], [True, False], [False, False]]])
    target = pin_to_matches(shift, trusted)
    # object 0: trusted at t = 1, 2 on a constant velocity (2, -1) per frame; frame 3 follows it
    torch.testing.assert_close(target[0, :, 0], torch.tensor([[2.0, -1.0], [4.0, -2.0], [6.0, -3.0]]))
    torch.testing.assert_close(target[0, :, 1], shift[0, :, 1])  # never trusted: its own matches
    with pytest.raises(ValueError, match="trusted"):
        pin_to_matches(shift, trusted[:, :2])


def test_a_pinned_displacement_replaces_the_fitted_one_and_moves_the_revealed_strip():
    fg = boxes((0, 10, 20, 8, 16))
    masks = label_segments(fg)
    flow_bwd = torch.zeros(1, 1, 2, H, W)
    flow_bwd[0, 0, 0, 10:20, 8:16] = -4.0  # the dense flow says 4 px right
    ones = torch.ones(1, 1, 1, H, W)
    pinned = torch.tensor([[[[6.0, 0.0]]]])  # the match says 6
    _, f_bwd, vis, shift, _ = compose_object_motion(masks, torch.zeros_like(flow_bwd), flow_bwd, ones,
                                                    fg.sum(1, keepdim=True), pinned=pinned)
    assert torch.allclose(shift[0, 0, 0], torch.tensor([6.0, 0.0]))
    assert torch.allclose(f_bwd[0, 0, 0, 10:20, 8:16], torch.full((10, 8), -6.0))
    expected = torch.zeros(H, W, dtype=torch.bool)
    expected[10:20, 8:14] = True  # 6 columns uncovered now, not 4
    assert torch.equal(vis[0, 0, 0] < 0.5, expected)
    *_, kept, _ = compose_object_motion(masks, torch.zeros_like(flow_bwd), flow_bwd, ones,
                                        fg.sum(1, keepdim=True))
    assert torch.allclose(kept[0, 0, 0], torch.tensor([4.0, 0.0]))  # without the pin: the fit


def test_a_pinned_posterior_reconstruction_puts_an_untrained_models_object_at_its_true_shift():
    torch.manual_seed(0)
    labels, frames = car_clip(down=1)  # the car moves 3 px right and 1 px down per frame
    base = dict(height=32, width=32, frames=2, object_motion="rigid", object_head=True, object_latent=2)
    model = Seg2Vid(Seg2VidConfig(**base)).eval()
    pinned = Seg2Vid(Seg2VidConfig(**base, object_pin=0.9)).eval()
    pinned.load_state_dict(model.state_dict())
    with torch.no_grad():
        free, pin = model.reconstruct(frames, labels), pinned.reconstruct(frames, labels)
    truth = torch.tensor([[3.0, 1.0], [6.0, 2.0]])
    torch.testing.assert_close(pin.object_shift[0, :, 0], truth, atol=0.05, rtol=0)
    assert float((free.object_shift[0, :, 0] - truth).norm(dim=-1).min()) > 1.0  # untrained: far off
    # sampling does not read the clip, so the pin cannot change it
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    torch.testing.assert_close(model.sample(frames[:, 0], labels, generator=gen()).frames,
                               pinned.sample(frames[:, 0], labels, generator=gen()).frames)
    with pytest.raises(ValueError, match="object_pin"):
        Seg2VidConfig(object_pin=0.9)  # no object latents
    with pytest.raises(ValueError, match="object_pin"):
        Seg2VidConfig(**base, object_pin=1.5)


def test_the_geometry_forward_mask_reports_the_objects_visibility_at_inference_only():
    torch.manual_seed(0)
    labels, frames = car_clip()  # the car moves 3 px right per frame
    base = dict(height=32, width=32, frames=2, object_motion="rigid", object_head=True, object_latent=2,
                object_pin=0.9)
    model = Seg2Vid(Seg2VidConfig(**base)).eval()
    geometry = Seg2Vid(Seg2VidConfig(**base, forward_mask="geometry")).eval()
    geometry.load_state_dict(model.state_dict())
    with torch.no_grad():
        gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731  (the same fill noise)
        learned, geo = model.reconstruct(frames, labels, gen()), geometry.reconstruct(frames, labels, gen())
        torch.manual_seed(1)
        trained = model(frames, labels)
        torch.manual_seed(1)
        trained_geo = geometry(frames, labels)
    # the same motion and frames (the refiner composites with the learned mask either way); the
    # reported mask is the visibility alone, where "learned" multiplies the decoder's in
    torch.testing.assert_close(geo.flow_fwd, learned.flow_fwd)
    torch.testing.assert_close(geo.frames, learned.frames)
    torch.testing.assert_close(geo.mask_fwd, geo.object_visibility)
    assert float((learned.mask_fwd - geo.mask_fwd).abs().max()) > 0.01  # an untrained decoder's mask is < 1
    # the strip the pinned car uncovers (3 px, then 6 px behind it) is what the geometry marks
    occluded = geo.mask_fwd[0, :, 0] < 0.5  # (T, H, W)
    for t, step in ((0, 3), (1, 6)):
        assert bool(occluded[t, 10:20, 8:8 + step].all()) and int(occluded[t].sum()) == 10 * step
    # the training pass keeps the learned mask, so the option never changes a training step
    torch.testing.assert_close(trained_geo.mask_fwd, trained.mask_fwd)
    assert float((trained_geo.mask_fwd - trained_geo.object_visibility).abs().max()) > 0.01
    with pytest.raises(ValueError, match="forward_mask"):
        Seg2VidConfig(forward_mask="geometry")  # no rigid objects
    with pytest.raises(ValueError, match="forward_mask"):
        Seg2VidConfig(**base, forward_mask="both")
    with pytest.raises(ValueError, match="forward_mask"):
        Seg2Vid(Seg2VidConfig(height=32, width=32, frames=2)).decode(
            frames[:, 0], labels, torch.zeros(1, 16), forward_mask="geometry")
