"""Issue 11, item 7 ("Show it"): the speed histogram and video grid of seg2vid.viz, and the speeds
of one scene's samples and true futures (seg2vid.evaluation.multifuture.scene_speeds)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from seg2vid import viz  # noqa: E402
from seg2vid.data.labels import CITYSCAPES  # noqa: E402
from seg2vid.evaluation.evaluate import Prediction  # noqa: E402
from seg2vid.evaluation.motion_eval import speed  # noqa: E402
from seg2vid.evaluation.multifuture import scene_speeds  # noqa: E402
from seg2vid.models import Seg2Vid, Seg2VidConfig  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- plot_speed_histogram


def test_speed_histogram_bars_are_the_counts_in_shared_bins():
    samples = np.array([1.0, 1.1, 1.2, 1.15])
    truth = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    fig = viz.plot_speed_histogram(torch.tensor(samples), truth, bins=4)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    sample_bars, true_bars = ax.containers
    # bins of width 1 over [1, 5]: the samples all fall into the first, the truth into 1, 1, 1, 2
    # (the last bin is closed)
    assert [b.get_height() for b in sample_bars] == [4, 0, 0, 0]
    assert [b.get_height() for b in true_bars] == [1, 1, 1, 2]
    # the same bins for both: the samples' bar left, the truth's right, each inside its bin
    for k, (s, t) in enumerate(zip(sample_bars, true_bars, strict=True)):
        lo, hi = 1.0 + k, 2.0 + k
        assert lo <= s.get_x() < s.get_x() + s.get_width() <= t.get_x() < t.get_x() + t.get_width() <= hi
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend[0].startswith("model samples (n = 4") and legend[1].startswith("true futures (n = 5")
    assert f"std {truth.std():.2f} px" in legend[1]


def test_speed_histogram_takes_edges_and_equal_speeds():
    fig = viz.plot_speed_histogram([2.0, 2.0], [2.0, 2.0, 2.0], title="one speed")
    sample_bars, true_bars = fig.axes[0].containers
    assert sum(b.get_height() for b in sample_bars) == 2 and sum(b.get_height() for b in true_bars) == 3
    assert fig.axes[0].get_title() == "one speed"
    fig = viz.plot_speed_histogram([0.5, 2.5], [1.5], bins=[0.0, 1.0, 2.0, 3.0])
    assert [b.get_height() for b in fig.axes[0].containers[0]] == [1, 0, 1]
    assert [b.get_height() for b in fig.axes[0].containers[1]] == [0, 1, 0]


@pytest.mark.parametrize("bad", [np.array([]), np.ones((2, 2)), np.array([1.0, np.nan])])
def test_speed_histogram_rejects_bad_speeds_by_name(bad):
    with pytest.raises(ValueError, match="sample_speeds"):
        viz.plot_speed_histogram(bad, [1.0, 2.0])
    with pytest.raises(ValueError, match="true_speeds"):
        viz.plot_speed_histogram([1.0, 2.0], bad)


# ----------------------------------------------------------------------------- video_grid


def test_video_grid_places_every_video_in_its_cell():
    rng = np.random.default_rng(0)
    a, b, c = (rng.integers(0, 256, (3, 4, 5, 3), dtype=np.uint8) for _ in range(3))
    short = torch.rand(2, 3, 4, 5)  # a float video, one frame shorter: holds its last frame
    grid = viz.video_grid([[a, b], [c, short]], scale=2, gap=1, background=7)
    assert grid.shape == (3, 2 * 8 + 1, 2 * 10 + 1, 3) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[:, :8, :10], viz.upscale(a, 2))
    np.testing.assert_array_equal(grid[:, :8, 11:], viz.upscale(b, 2))
    np.testing.assert_array_equal(grid[:, 9:, :10], viz.upscale(c, 2))
    s = viz.upscale(viz.to_uint8_video(short), 2)
    np.testing.assert_array_equal(grid[:2, 9:, 11:], s)
    np.testing.assert_array_equal(grid[2, 9:, 11:], s[-1])
    assert (grid[:, 8] == 7).all() and (grid[:, :, 10] == 7).all()  # the gaps


def test_video_grid_rejects_empty_rows():
    with pytest.raises(ValueError, match="non-empty"):
        viz.video_grid([])
    with pytest.raises(ValueError, match="non-empty"):
        viz.video_grid([[np.zeros((1, 2, 2, 3), np.uint8)], []])


def test_futures_grid_sorts_each_row_by_speed_on_one_flow_scale():
    h = w = 4
    frames = torch.rand(3, 3, 3, h, w)  # 3 videos of 1 + 2 frames
    flows = torch.zeros(3, 2, 2, h, w)
    flows[:, :, 0] = torch.tensor([2.0, 0.5, 1.0])[:, None, None, None]  # uniform x-flows
    speeds = torch.tensor([2.0, 0.5, 1.0])
    grid, top = viz.futures_grid(frames, flows, speeds, frames[:2], flows[:2] * 3, speeds[:2])
    assert top == 6.0  # the fastest sample (2 px x 3) sets the ONE scale of both flow rows
    assert grid.shape[0] == 3 and grid.shape[1] == 4 * h + 3 * 2  # 4 rows, 3 frames each

    def cell(row, col, t):  # frame t of the video in row `row`, column `col` (gaps of 2 px)
        return grid[t, row * (h + 2): row * (h + 2) + h, col * (w + 2): col * (w + 2) + w]

    for col, clip in enumerate([1, 2, 0]):  # true futures, slowest first
        np.testing.assert_array_equal(cell(0, col, 2), viz.to_uint8_video(frames[clip])[2])
        np.testing.assert_array_equal(cell(1, col, 2), viz.flow_video_rgb(flows[clip], max_magnitude=6.0)[1])
        assert (cell(1, col, 0) == 255).all()  # frame 0 of a flow video: no motion, white
    np.testing.assert_array_equal(cell(2, 0, 1), viz.to_uint8_video(frames[1])[1])  # samples: 1.5 < 6 px
    assert cell(3, 1, 2).mean() < cell(1, 2, 2).mean()  # the 6 px sample flow is the most saturated


# ----------------------------------------------------------------------------- scene_speeds


def uniform_flows(speeds, t=3, h=6, w=7):
    """(len(speeds), t, 2, h, w): clip i moves every pixel by ``speeds[i] * (j + 1)`` px at frame j + 1
    in a direction of its own, so its speed (mean magnitude over frames) is ``speeds[i] * (t + 1) / 2``."""
    out = torch.zeros(len(speeds), t, 2, h, w)
    for i, s in enumerate(speeds):
        angle = torch.tensor(0.7 * i)
        for j in range(t):
            out[i, j, 0], out[i, j, 1] = s * (j + 1) * torch.cos(angle), s * (j + 1) * torch.sin(angle)
    return out


def a_scene(true_speeds, t=3, h=6, w=7):
    k = len(true_speeds)
    frames = torch.rand(1, 1, 3, h, w).expand(k, t + 1, -1, -1, -1)
    return {"frames": frames, "label_map": torch.zeros(h, w, dtype=torch.long),
            "flow_fwd": uniform_flows(true_speeds, t, h, w)}


class UniformSampler:
    """A prior whose n-th sample moves every pixel uniformly at a speed drawn from the generator."""

    def __call__(self, first, onehot, n, generator):
        self.seen = (first.shape, onehot.shape, n)
        speeds = 1 + 3 * torch.rand(n, generator=generator, device=first.device)
        self.speeds = speeds
        flows = uniform_flows(speeds.tolist(), 3, *first.shape[-2:])
        return Prediction(first[:, None].expand(n, 4, -1, -1, -1), flows)


def test_scene_speeds_are_the_analytic_speeds_and_seeded():
    truth = [0.5, 1.0, 2.0, 4.0]
    scene = a_scene(truth)
    sampler = UniformSampler()
    samples, true, pred = scene_speeds(sampler, scene, n_samples=5, seed=3)
    assert sampler.seen == ((1, 3, 6, 7), (1, 20, 6, 7), 5)  # ONE first frame, Cityscapes one-hot, N
    torch.testing.assert_close(true, torch.tensor(truth, dtype=torch.float64) * 2)  # (t + 1) / 2 = 2
    torch.testing.assert_close(samples, sampler.speeds.double() * 2)
    assert samples.shape == (5,) and pred.flow_fwd.shape == (5, 3, 2, 6, 7)
    again = scene_speeds(UniformSampler(), scene, n_samples=5, seed=3)
    torch.testing.assert_close(again.sample_speeds, samples)  # the same seed, the same samples
    other = scene_speeds(UniformSampler(), scene, n_samples=5, seed=4)
    assert not torch.equal(other.sample_speeds, samples)


def test_scene_speeds_of_a_model_are_those_of_its_prior_samples():
    config = Seg2VidConfig(height=32, width=32, frames=2, widths=(8, 8, 16, 16), motion_widths=(8, 8, 16, 16),
                           refine_widths=(8, 8), latent_dim=4)
    torch.manual_seed(0)
    model = Seg2Vid(config)
    scene = a_scene([1.0, 2.0], t=2, h=32, w=32)
    result = scene_speeds(model, scene, n_samples=3, seed=1)
    with torch.no_grad():
        onehot = CITYSCAPES.one_hot(scene["label_map"][None])
        generator = torch.Generator().manual_seed(1)
        direct = model.sample(scene["frames"][:1, 0], onehot, n_samples=3, generator=generator)
    torch.testing.assert_close(result.sample_speeds, speed(direct.flow_fwd))
    assert result.samples.video.shape == (3, 3, 3, 32, 32)


def test_scene_speeds_rejects_a_scene_without_flows_and_a_flowless_predictor():
    scene = a_scene([1.0, 2.0])
    with pytest.raises(ValueError, match="flow_fwd"):
        scene_speeds(UniformSampler(), {k: v for k, v in scene.items() if k != "flow_fwd"})

    def no_flow(first, onehot, n, generator):
        return Prediction(first[:, None].expand(n, 4, -1, -1, -1))

    with pytest.raises(ValueError, match="no flow"):
        scene_speeds(no_flow, scene)
