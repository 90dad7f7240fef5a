"""Long videos by chaining chunks (seg2vid.generation.long_video): shapes, continuity, carried maps,
latents, drift."""

from __future__ import annotations

import math

import pytest
import torch

from seg2vid.checkpoints import find_checkpoint
from seg2vid.data.labels import CITYSCAPES
from seg2vid.data.synthetic import SceneConfig, render_clip
from seg2vid.generation.long_video import LongVideo, drift_curve, generate_long
from seg2vid.models.loading import load_model
from seg2vid.models.seg2vid import Seg2Vid, Seg2VidConfig, Seg2VidOutput

pytestmark = pytest.mark.usefixtures("one_thread")


class StubModel:
    """Seg2Vid's interface with a fixed flow: every frame is the start frame darkened a little
    (so chunks differ) and warped by nothing; the flows are ``shift`` pixels per frame index."""

    def __init__(self, frames: int = 4, size: int = 16, shift: float = 0.0, latent: int = 3):
        self.config = Seg2VidConfig(height=size, width=size, frames=frames)
        self.latent_size, self.shift = latent, shift
        self.calls: list[dict[str, torch.Tensor]] = []

    def prior_params(self, first_frame, labels):
        return None

    def latent_from_noise(self, eps, first_frame, labels):  # the standard prior: z = eps
        return eps

    def decode(self, first_frame, labels, z, generator=None):
        b, t, (h, w) = first_frame.shape[0], self.config.frames, first_frame.shape[-2:]
        flow = torch.zeros(b, t, 2, h, w)
        flow[:, :, 0] = self.shift * torch.arange(1, t + 1).view(1, t, 1, 1)
        frames = (first_frame.unsqueeze(1) * 0.97 + 0.01 * torch.arange(1, t + 1).view(1, t, 1, 1, 1))
        self.calls.append({"first_frame": first_frame.clone(), "labels": labels.clone(), "z": z.clone(),
                           "frames": frames})
        mask = torch.ones(b, t, 1, h, w)
        return Seg2VidOutput(first_frame, frames, frames, flow, -flow, mask, mask, z)


def _inputs(batch: int = 2, size: int = 16):
    g = torch.Generator().manual_seed(0)
    frame = torch.rand(batch, 3, size, size, generator=g)
    labels = torch.randint(0, CITYSCAPES.num_classes, (batch, size, size), generator=g)
    return frame, labels


@pytest.fixture(scope="module")
def shipped():
    path = find_checkpoint("data/checkpoints/seg2vid_tiny_64.pt")
    assert path is not None, "the shipped stage-2 checkpoint is missing"
    return load_model(path, device="cpu")


@pytest.fixture(scope="module")
def clip():
    return render_clip(SceneConfig(64, 64, frames=24), seed=7)


def test_shapes_frame_count_and_first_frame_with_the_shipped_model(shipped, clip):
    first, labels = clip["frames"][:1], clip["labels"][:1]
    long = generate_long(shipped, first, labels, num_frames=24, n_samples=2,
                         generator=torch.Generator().manual_seed(0))
    assert isinstance(long, LongVideo)
    t, latent = shipped.config.frames, shipped.latent_size
    assert t == 4 and long.num_chunks == 6 and long.chunk_starts == (0, 4, 8, 12, 16, 20)
    assert long.video.shape == (1, 2, 25, 3, 64, 64) and long.num_frames == 24
    assert long.label_maps.shape == (1, 2, 6, 64, 64) and long.label_maps.dtype == torch.int64
    assert long.z.shape == (1, 2, 6, latent) and long.flow_fwd.shape == (1, 2, 6, t, 2, 64, 64)
    assert torch.equal(long.video[:, 0, 0], first) and torch.equal(long.video[:, 1, 0], first)
    assert torch.equal(long.label_maps[:, :, 0], labels.unsqueeze(1).expand(1, 2, 64, 64))
    assert torch.isfinite(long.video).all() and 0 <= long.video.min() and long.video.max() <= 1
    assert not torch.equal(long.video[:, 0], long.video[:, 1]), "two samples, two futures"
    for k in range(1, long.num_chunks):  # chunk k starts where chunk k-1 ended, exactly
        assert torch.equal(long.chunk(k)[:, :, 0], long.chunk(k - 1)[:, :, -1])
    again = generate_long(shipped, first, labels, num_frames=24, n_samples=2,
                          generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.video, long.video), "the same generator seed gives the same videos"
    curve = drift_curve(long, clip["frames"][None])
    assert curve.shape == (25,) and curve[0] == 100.0, "frame 0 is exact: capped PSNR"
    # measured (seeds as here, the rich streets' clip 7): 17.3 dB at frame 1, then 14.8-16.3 dB to
    # frame 24 (the last chunk averages 15.8): a sampled future leaves the true one from the first
    # chunk on, so frame 1, the nearest to the given frame 0, is the best one
    assert torch.isfinite(curve).all() and (curve[1:] > 10).all() and (curve[1:] < 35).all()
    assert curve[1] == curve[1:].max() and curve[1] > curve[-4:].mean() + 1.0


def test_frame_count_that_is_not_a_multiple_of_t_is_trimmed():
    model = StubModel(frames=4)
    frame, labels = _inputs()
    long = generate_long(model, frame, labels, num_frames=10, n_samples=3)
    assert len(model.calls) == 3 == long.num_chunks, "ceil(10 / 4) chunks"
    assert long.video.shape == (2, 3, 11, 3, 16, 16)
    assert long.chunk(2).shape[2] == 3, "the last chunk: its start frame + 2 of its 4 frames"
    assert torch.equal(long.video[:, :, -1].flatten(0, 1), model.calls[2]["frames"][:, 1])
    with pytest.raises(ValueError, match="num_frames >= 1"):
        generate_long(model, frame, labels, num_frames=0)


def test_each_chunk_starts_from_the_last_generated_frame():
    model = StubModel(frames=3)
    frame, labels = _inputs()
    long = generate_long(model, frame, labels, num_frames=9, n_samples=2)
    assert torch.equal(model.calls[0]["first_frame"], frame.repeat_interleave(2, dim=0))
    for k in range(1, 3):
        fed = model.calls[k]["first_frame"]
        assert torch.equal(fed, model.calls[k - 1]["frames"][:, -1])
        assert torch.equal(long.video[:, :, long.chunk_starts[k]], fed.view(2, 2, 3, 16, 16))


def test_zero_flow_keeps_the_label_map_and_a_shift_carries_it():
    frame, labels = _inputs()
    still = generate_long(StubModel(frames=2), frame, labels, num_frames=8)
    assert torch.equal(still.label_maps, labels[:, None, None].expand(2, 1, 4, 16, 16))

    # 1 px per frame, T = 2: each chunk's last frame moved 2 px right, so chunk k's map is shifted 2k
    moving = StubModel(frames=2, shift=1.0)
    shifted = generate_long(moving, frame, labels, num_frames=6, label_padding="ignore")
    for k in range(3):
        expected = torch.full_like(labels, 255)
        expected[:, :, 2 * k:] = labels[:, :, : 16 - 2 * k]
        assert torch.equal(shifted.label_maps[:, 0, k], expected)
        assert torch.equal(moving.calls[k]["labels"], CITYSCAPES.one_hot(expected))  # void -> channel 19
    border = generate_long(StubModel(frames=2, shift=1.0), frame, labels, num_frames=6)
    assert torch.equal(border.label_maps[:, 0, 2, :, :4], labels[:, :, :1].expand(2, 16, 4))


def test_keep_reuses_the_latent_and_resample_draws_new_ones(shipped, clip):
    first, labels = clip["frames"][:1], clip["labels"][:1]
    keep = generate_long(shipped, first, labels, num_frames=12, n_samples=2, z_mode="keep",
                         generator=torch.Generator().manual_seed(1))
    assert torch.equal(keep.z, keep.z[:, :, :1].expand_as(keep.z))
    assert not torch.equal(keep.z[:, 0], keep.z[:, 1]), "samples still differ from each other"
    fresh = generate_long(shipped, first, labels, num_frames=12, n_samples=2, z_mode="resample",
                          generator=torch.Generator().manual_seed(1))
    assert torch.equal(fresh.z[:, :, 0], keep.z[:, :, 0]), "the same first draw"
    assert not torch.equal(fresh.z[:, :, 1], fresh.z[:, :, 0])
    with pytest.raises(ValueError, match="z_mode"):
        generate_long(shipped, first, labels, z_mode="sometimes")


def test_a_learned_prior_is_conditioned_on_each_chunk_start():
    torch.manual_seed(0)
    config = Seg2VidConfig(height=32, width=32, frames=2, widths=(8, 8, 16, 16), motion_widths=(8, 8, 16, 16),
                           refine_widths=(8, 8), latent_dim=3, learned_prior=True)
    model = Seg2Vid(config).eval()
    frame, labels = _inputs(batch=1, size=32)
    long = generate_long(model, frame, labels, num_frames=6, z_mode="keep",
                         generator=torch.Generator().manual_seed(0))
    eps = []
    for k, start in enumerate(long.chunk_starts):
        mu, logvar = model.prior_params(long.video[:, 0, start], CITYSCAPES.one_hot(long.label_maps[:, 0, k]))
        eps.append((long.z[:, 0, k] - mu) / torch.exp(0.5 * logvar))
    assert not torch.allclose(long.z[:, 0, 1], long.z[:, 0, 0]), "each chunk has its own prior"
    for k in range(1, len(eps)):
        torch.testing.assert_close(eps[k], eps[0], atol=1e-4, rtol=1e-4)  # "keep": the same noise


def test_drift_curve_metrics_shapes_and_errors():
    g = torch.Generator().manual_seed(0)
    video = torch.rand(2, 3, 5, 3, 16, 16, generator=g)
    truth = video[:, 0].clone()
    per = drift_curve(video, truth, reduction="none")
    assert per.shape == (2, 3, 5) and (per[:, 0] == 100.0).all() and (per[:, 1:] < 30).all()
    assert drift_curve(video[:, 0], truth, metric="l1").abs().max() == 0
    l1 = drift_curve(video, truth, metric="l1")
    expected = (video[:, 1:, 0] - truth[:, None, 0]).abs().mean() * 2 / 3  # sample 0 is exact
    assert l1.shape == (5,) and math.isclose(float(l1[0]), float(expected), rel_tol=1e-5)
    noisy = (truth + 0.1 * torch.randn(truth.shape, generator=g)).clamp(0, 1)
    assert drift_curve(noisy, truth, metric="ssim").shape == (5,)
    with pytest.raises(ValueError, match="metric"):
        drift_curve(video, truth, metric="fid")
    with pytest.raises(ValueError, match="same B, F"):
        drift_curve(video, truth[:, :4])
