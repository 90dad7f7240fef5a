"""The stage-2 Seg2Vid network: shapes, the latent, sampling, and input errors."""

import pytest
import torch

from seg2vid.data.labels import CITYSCAPES, LabelTable
from seg2vid.flow import warp
from seg2vid.models import PRESETS, VARIANTS, Seg2Vid, Seg2VidConfig

SMALL = dict(widths=(8, 8, 16, 16), motion_widths=(8, 8, 16, 16), refine_widths=(8, 8), latent_dim=4)


def batch(config: Seg2VidConfig, b: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(b, config.frames + 1, 3, config.height, config.width, generator=g)
    labels = CITYSCAPES.one_hot(torch.randint(0, 19, (b, config.height, config.width), generator=g))
    return frames, labels


@pytest.mark.parametrize("h,w,t", [(32, 32, 1), (32, 64, 3), (48, 32, 2)])
def test_output_shapes_and_ranges(h, w, t):
    config = Seg2VidConfig(height=h, width=w, frames=t, **SMALL)
    model = Seg2Vid(config)
    frames, labels = batch(config)
    out = model(frames, labels)
    assert out.frames.shape == out.warped.shape == (2, t, 3, h, w)
    assert out.flow_fwd.shape == out.flow_bwd.shape == (2, t, 2, h, w)
    assert out.mask_fwd.shape == out.mask_bwd.shape == (2, t, 1, h, w)
    assert out.video.shape == (2, t + 1, 3, h, w)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (2, 2 * config.latent_dim)
    assert 0 <= out.frames.min() and out.frames.max() <= 1
    assert 0 < out.mask_fwd.min() and out.mask_fwd.max() < 1


def test_latent_size_does_not_depend_on_resolution():
    sizes = {Seg2Vid(Seg2VidConfig(height=h, width=w, **SMALL)).latent_size for h, w in [(32, 32), (64, 128)]}
    assert sizes == {8}
    # ...and the same weights run at another resolution (nothing in the model is tied to H, W)
    small, large = (Seg2Vid(Seg2VidConfig(height=h, width=w, **SMALL)) for h, w in [(32, 32), (64, 64)])
    assert [p.shape for p in small.parameters()] == [p.shape for p in large.parameters()]


def test_frames_are_the_first_frame_warped_then_refined():
    config = Seg2VidConfig(height=32, width=32, frames=2, **SMALL)
    model = Seg2Vid(config)
    frames, labels = batch(config)
    out = model(frames, labels)
    rebuilt = warp(frames[:, :1], out.flow_fwd)
    torch.testing.assert_close(out.warped, rebuilt)
    # an untrained refiner passes its input through: visible pixels stay the warped ones
    visible = out.mask_fwd > 0.94
    assert (out.frames - out.warped).abs()[visible.expand_as(out.frames)].max() < 0.07


def test_sampling_needs_no_future_frames_and_seeds_matter():
    config = Seg2VidConfig(height=32, width=32, frames=2, **SMALL)
    model = Seg2Vid(config).eval()
    frames, labels = batch(config, b=1)
    # give the decoder a reason to use z: random head weights instead of the near-zero init
    torch.nn.init.normal_(model.decoder.head.weight, std=0.05)
    a = model.sample(frames[:, 0], labels, n_samples=3, generator=torch.Generator().manual_seed(1))
    b = model.sample(frames[:, 0], labels, n_samples=3, generator=torch.Generator().manual_seed(1))
    c = model.sample(frames[:, 0], labels, n_samples=3, generator=torch.Generator().manual_seed(2))
    assert a.frames.shape == (3, 2, 3, 32, 32) and a.mu is None
    assert torch.equal(a.frames, b.frames)
    assert not torch.allclose(a.frames, c.frames)
    assert not torch.allclose(a.flow_fwd[0], a.flow_fwd[1])  # different samples, different motion


def test_learned_prior_option():
    config = Seg2VidConfig(height=32, width=32, frames=1, learned_prior=True, **SMALL)
    model = Seg2Vid(config)
    frames, labels = batch(config)
    out = model(frames, labels)
    assert out.prior_mu.shape == (2, 8) and out.prior_logvar.shape == (2, 8)
    assert model.sample(frames[:, 0], labels).frames.shape == (2, 1, 3, 32, 32)


def test_bad_inputs_are_named():
    config = Seg2VidConfig(height=32, width=32, frames=2, **SMALL)
    model = Seg2Vid(config)
    frames, labels = batch(config)
    with pytest.raises(ValueError, match="configured for 32x32"):
        model(torch.rand(2, 3, 3, 64, 64), CITYSCAPES.one_hot(torch.zeros(2, 64, 64, dtype=torch.long)))
    with pytest.raises(ValueError, match="not the integer map"):
        model(frames, torch.zeros(2, 32, 32, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, T\+1, 3, H, W\)"):
        model(frames[:, :2], labels)
    with pytest.raises(ValueError, match="z must be"):
        model.decode(frames[:, 0], labels, torch.zeros(2, 3))


@pytest.mark.parametrize(
    "kwargs,message",
    [({"height": 40}, "multiples of 16"), ({"norm": "layer"}, "unknown norm"),
     ({"widths": (8, 8)}, "exactly 4"), ({"frames": 0}, "frames")],
)
def test_bad_configs_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Seg2VidConfig(**kwargs)


def test_config_roundtrip_and_presets():
    for config in PRESETS.values():
        assert Seg2VidConfig.from_dict(config.to_dict()) == config
    paper = PRESETS["paper"]
    assert (paper.height, paper.width, paper.frames, paper.widths) == (128, 256, 4, (32, 64, 128, 256))
    with pytest.raises(ValueError, match="unknown Seg2VidConfig field"):
        Seg2VidConfig.from_dict({"hieght": 64})


def test_groups_come_from_the_label_table():
    table = LabelTable(
        names=("ground", "wall", "ball"), colors=((0, 0, 0),) * 3, foreground=(False, False, True)
    )
    config = Seg2VidConfig.for_table(table, height=32, width=32, frames=1, **SMALL)
    assert config.label_channels == 4
    assert config.background_channels == (0, 1, 3) and config.foreground_channels == (2,)
    model = Seg2Vid(config)
    out = model(torch.rand(1, 2, 3, 32, 32), table.one_hot(torch.randint(0, 3, (1, 32, 32))))
    assert out.frames.shape == (1, 1, 3, 32, 32)


# ----------------------------------------------------------------------------- ablation variants


@pytest.mark.filterwarnings("ignore::seg2vid.training.objective.PerceptualOffWarning")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_trains_and_samples(variant, one_thread):
    from seg2vid.training.objective import LossConfig, seg2vid_loss

    torch.manual_seed(0)
    config = Seg2VidConfig(height=32, width=32, frames=2, variant=variant)
    model = Seg2Vid(config)
    frames = torch.rand(2, 3, 3, 32, 32)
    labels = CITYSCAPES.one_hot(torch.randint(0, 19, (2, 32, 32)))
    out = model(frames, labels)
    total, _ = seg2vid_loss(out, frames, LossConfig.for_pixel_flows(32), 0, None)
    total.backward()
    assert torch.isfinite(total)
    sample = model.sample(frames[:, 0], labels, n_samples=2, generator=torch.Generator().manual_seed(1))
    assert sample.video.shape == (4, 3, 3, 32, 32)
    assert torch.isfinite(sample.video).all() and sample.video.min() >= 0 and sample.video.max() <= 1
    if variant in ("zero_flow", "direct_pixels"):
        assert sample.flow_fwd.abs().max() == 0 and sample.flow_bwd.abs().max() == 0
    if variant in ("no_masks", "direct_pixels"):
        assert (sample.mask_fwd == 1).all() and (sample.mask_bwd == 1).all()
    if variant == "no_refine":
        assert torch.equal(sample.video[:, 1:], sample.warped)
    if variant == "deterministic":
        assert (out.mu == 0).all() and (out.logvar == 0).all() and (sample.z == 0).all()
    if variant == "no_labels":  # the label map changes nothing
        other = CITYSCAPES.one_hot(torch.randint(0, 19, (2, 32, 32)))
        g = torch.Generator()
        a = model.sample(frames[:, 0], labels, generator=g.manual_seed(3)).video
        b = model.sample(frames[:, 0], other, generator=g.manual_seed(3)).video
        assert torch.equal(a, b)


def test_unknown_variant_is_named():
    with pytest.raises(ValueError, match="no_flow.*choose one of"):
        Seg2VidConfig(variant="no_flow")


@pytest.mark.parametrize("mask_head, flow_head", [("half", "half"), ("full", "half"), ("full", "full")])
def test_sampling_fast_paths_equal_the_training_graph(mask_head, flow_head):
    # sample() encodes each input once for its n samples and joins the decoder's skips without
    # intermediates (inference only): the videos must be those of decode() on repeated inputs
    # with autograd on (the training path)
    config = Seg2VidConfig(height=32, width=48, frames=3, mask_head=mask_head, flow_head=flow_head, **SMALL)
    model = Seg2Vid(config).eval()
    torch.nn.init.normal_(model.decoder.head.weight, std=0.05)
    if model.decoder.flow_full is not None:
        torch.nn.init.normal_(model.decoder.flow_full[2].weight, std=0.05)
    torch.nn.init.normal_(model.refiner.out.weight, std=0.05)
    frames, labels = batch(config, b=2)
    out = model.sample(frames[:, 0], labels, n_samples=3, generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    z = torch.randn(6, model.latent_size, generator=g)
    ref = model.decode(frames[:, 0].repeat_interleave(3, 0), labels.repeat_interleave(3, 0), z, generator=g)
    for name in ("frames", "warped", "flow_fwd", "flow_bwd", "mask_fwd", "mask_bwd"):
        torch.testing.assert_close(getattr(out, name), getattr(ref, name).detach(), rtol=1e-6, atol=1e-6)
