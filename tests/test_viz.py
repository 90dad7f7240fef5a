"""Tests of seg2vid.viz: conversions, composition, GIF/MP4/PNG round trips, clip panels, plots."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import av  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image, ImageSequence  # noqa: E402

from seg2vid import viz  # noqa: E402
from seg2vid.data.labels import CITYSCAPES  # noqa: E402

H, W, T = 8, 10, 3  # T future frames -> T + 1 frames per clip


def fake_clip(batch: int | None = None) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    clip = {
        "frames": torch.rand(T + 1, 3, H, W, generator=g),
        "labels": torch.randint(0, 19, (T + 1, H, W), generator=g),
        "flow_fwd": torch.ones(T, 2, H, W) * torch.tensor([2.0, 0.0]).view(1, 2, 1, 1),
        "flow_bwd": -torch.ones(T, 2, H, W),
        "visible_fwd": torch.ones(T, 1, H, W),
        "visible_bwd": torch.ones(T, 1, H, W),
    }
    clip["labels"][:, 0, 0] = 255  # a void pixel
    clip["visible_fwd"][:, :, :, -1] = 0  # last column occluded
    if batch is not None:
        clip = {k: v.unsqueeze(0).repeat(batch, *([1] * v.dim())) for k, v in clip.items()}
    return clip


def red_video(n: int, h: int, w: int) -> np.ndarray:
    """Solid red frames, each with one white pixel at a different place so no two are equal."""
    v = np.zeros((n, h, w, 3), np.uint8)
    v[..., 0] = 255
    for i in range(n):
        v[i, 0, i] = 255
    return v


# ----------------------------------------------------------------------------- conversions


def test_to_uint8_video_float_range_and_clamp():
    x = torch.zeros(2, 3, 4, 5)
    x[1] = 1.0
    x[0, 0, 0, 0] = -3.0
    x[0, 1, 0, 0] = 7.0
    x[0, 2, 0, 0] = 0.5
    out = viz.to_uint8_video(x)
    assert out.dtype == np.uint8 and out.shape == (2, 4, 5, 3)
    assert (out[1] == 255).all()
    assert out[0, 0, 0].tolist() == [0, 255, 128]
    assert (out[0, 1:] == 0).all()


def test_to_uint8_video_grey_and_uint8_passthrough():
    grey = np.linspace(0, 1, 2 * 3 * 4, dtype=np.float32).reshape(2, 1, 3, 4)
    out = viz.to_uint8_video(grey)
    assert out.shape == (2, 3, 4, 3)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert out[0, 0, 0, 0] == 0 and out[-1, -1, -1, 0] == 255
    u8 = np.random.default_rng(0).integers(0, 256, (2, 3, 4, 3), dtype=np.uint8)
    np.testing.assert_array_equal(viz.to_uint8_video(torch.from_numpy(u8)), u8)


@pytest.mark.parametrize(
    "bad",
    [
        torch.rand(3, 4, 5),  # no time axis
        torch.rand(2, 2, 4, 5),  # two channels
        torch.rand(2, 4, 5, 3),  # float but channels-last
        np.zeros((2, 3, 4, 5), np.uint8),  # uint8 but channels-first
        np.zeros((2, 3, 4, 5), np.int64),  # integer, not uint8
    ],
)
def test_to_uint8_video_rejects_bad_shapes(bad):
    with pytest.raises(ValueError, match=re.escape(str(tuple(bad.shape)))):
        viz.to_uint8_video(bad)


def test_label_flow_mask_videos():
    labels = torch.tensor([[[0, 255]], [[13, 11]]])  # (T=2, H=1, W=2)
    rgb = viz.label_video_rgb(labels)
    assert rgb.shape == (2, 1, 2, 3)
    assert rgb[0, 0, 0].tolist() == list(CITYSCAPES.colors[0])
    assert rgb[0, 0, 1].tolist() == list(CITYSCAPES.ignore_color)
    assert rgb[1, 0, 0].tolist() == list(CITYSCAPES.colors[13])

    # Shared normalisation: a 1 px and a 4 px rightward flow differ in saturation.
    flow = torch.zeros(2, 2, 3, 3)
    flow[0, 0] = 1.0
    flow[1, 0] = 4.0
    col = viz.flow_video_rgb(flow)
    assert col.shape == (2, 3, 3, 3)
    assert col[1, 0, 0, 0] == 255 and col[1, 0, 0, 1] < 20  # full red
    assert col[0, 0, 0, 1] > 150  # pale red: a quarter of the maximum speed
    with pytest.raises(ValueError, match="2, H, W"):
        viz.flow_video_rgb(torch.zeros(2, 3, 3, 3))

    mask = torch.tensor([[[[0.0, 1.0]]]])
    m = viz.mask_video_rgb(mask)
    assert m.shape == (1, 1, 2, 3) and m[0, 0, 0].tolist() == [0, 0, 0]
    assert m[0, 0, 1].tolist() == [255, 255, 255]


# ----------------------------------------------------------------------------- composition


def test_upscale_repeats_pixels_exactly():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    up = viz.upscale(img, 3)
    assert up.shape == (6, 9, 3)
    for r in range(6):
        for c in range(9):
            assert (up[r, c] == img[r // 3, c // 3]).all()
    video = np.stack([img, img + 1])
    np.testing.assert_array_equal(viz.upscale(video, 2)[1], viz.upscale(img + 1, 2))
    with pytest.raises(ValueError):
        viz.upscale(img, 0)
    with pytest.raises(ValueError):
        viz.upscale(img, 1.5)


def test_hstack_pads_time_and_height():
    a = np.full((3, 4, 5, 3), 10, np.uint8)
    a[2] = 20
    b = np.full((1, 2, 3, 3), 99, np.uint8)
    out = viz.hstack_videos([a, b], gap=2)
    assert out.shape == (3, 4, 5 + 2 + 3, 3)
    assert (out[2, :, :5] == 20).all()
    assert (out[:, :, 5:7] == 255).all()  # the gap
    assert (out[:, :2, 7:] == 99).all()  # b holds its only frame for all 3 steps
    assert (out[:, 2:, 7:] == 255).all()  # b is shorter: background below


def test_grid_image_layout():
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    grey = torch.full((1, 2, 6), 0.5)  # float channels-first grey image
    out = viz.grid_image([[red, red], [grey]], gap=1, background=0)
    assert out.shape == (4 + 1 + 2, 4 + 1 + 4, 3)
    assert out[0, 0].tolist() == [255, 0, 0] and out[0, 5].tolist() == [255, 0, 0]
    assert out[0, 4].tolist() == [0, 0, 0]  # gap
    assert out[5, 0].tolist() == [128, 128, 128]
    with pytest.raises(ValueError):
        viz.grid_image(red)


# ----------------------------------------------------------------------------- files


def test_gif_round_trip(tmp_path):
    video = red_video(4, 6, 7)
    path = viz.save_gif(tmp_path / "sub" / "red.gif", video, fps=5, scale=2)
    assert path.exists() and path.parent.name == "sub"
    with Image.open(path) as im:
        assert im.n_frames == 4
        assert im.size == (7 * 2, 6 * 2)
        assert im.info["duration"] == 200
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    for f in frames:
        assert f.shape == (12, 14, 3)
        np.testing.assert_allclose(f[-1, -1], [255, 0, 0], atol=8)
    assert (frames[1][0:2, 2:4] > 240).all()  # frame 1's white pixel, upscaled


def test_mp4_round_trip_pads_to_even(tmp_path):
    video = torch.zeros(5, 3, 9, 11)
    video[:, 0] = 1.0  # red
    video[np.arange(5), :, 0, np.arange(5)] = 1.0  # a moving white dot
    path = viz.save_mp4(tmp_path / "deep" / "dir" / "red.mp4", video, fps=4)
    assert path.exists()
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 5
    assert frames[0].shape == (10, 12, 3)
    np.testing.assert_allclose(frames[2][5, 6], [255, 0, 0], atol=40)

    path2 = viz.save_mp4(tmp_path / "scaled.mp4", video, fps=4, scale=3)
    with av.open(str(path2)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.height, stream.codec_context.width) == (28, 34)



def test_mp4_mpeg4_fallback(tmp_path, monkeypatch):
    monkeypatch.setattr(viz, "_video_encoder", lambda: "mpeg4")  # an FFmpeg without libx264
    path = viz.save_mp4(tmp_path / "fallback.mp4", red_video(3, 7, 8), fps=2)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 3 and frames[0].shape == (8, 8, 3)


def test_save_png_round_trip(tmp_path):
    img = np.random.default_rng(1).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    path = viz.save_png(tmp_path / "a" / "img.png", img)
    np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), img)


# ----------------------------------------------------------------------------- clips


def test_clip_panel_layout_and_first_frame():
    clip = fake_clip()
    panel = viz.clip_panel(clip, scale=2, gap=2)
    assert panel.dtype == np.uint8
    assert panel.shape == (T + 1, H * 2, 4 * W * 2 + 3 * 2, 3)
    pw = W * 2 + 2  # panel width plus gap
    flow0 = panel[0, :, 2 * pw : 2 * pw + W * 2]
    assert (flow0 == 255).all()  # zero flow at frame 0 is white
    flow1 = panel[1, :, 2 * pw : 2 * pw + W * 2]
    assert (flow1[..., 0] == 255).all() and (flow1[..., 1] < 20).all()  # rightward = red
    vis0 = panel[0, :, 3 * pw :]
    assert (vis0 == 255).all()  # frame 0 fully visible
    vis1 = panel[1, :, 3 * pw :]
    assert (vis1[:, -2:] == 0).all() and (vis1[:, :-2] == 255).all()
    frames = viz.to_uint8_video(clip["frames"])
    np.testing.assert_array_equal(panel[3, ::2, : W * 2 : 2], frames[3])


def test_clip_panel_partial_and_batched():
    clip = fake_clip()
    only_frames = viz.clip_panel({"frames": clip["frames"]})
    np.testing.assert_array_equal(only_frames, viz.to_uint8_video(clip["frames"]))
    batched = fake_clip(batch=2)
    np.testing.assert_array_equal(viz.clip_panel(batched, index=1), viz.clip_panel(clip))
    with pytest.raises(ValueError):
        viz.clip_panel({"something": torch.zeros(1)})


def test_clip_strip_shape():
    strip = viz.clip_strip(fake_clip(), scale=1, gap=2)
    assert strip.shape == (4 * H + 3 * 2, (T + 1) * W + T * 2, 3)
    assert (strip[2 * (H + 2) : 2 * (H + 2) + H, :W] == 255).all()  # flow row, frame 0


def test_show_video_and_show_clip_embed_gif():
    html = viz.show_video(red_video(3, 4, 4), fps=4, scale=2)
    assert "data:image/gif;base64," in html.data
    assert "data:image/gif;base64," in viz.show_clip(fake_clip(), scale=1).data


# ----------------------------------------------------------------------------- figures


def test_plot_images_axes_and_titles():
    images = [np.zeros((4, 4, 3), np.uint8), torch.rand(3, 4, 4), np.ones((4, 4))] * 2 + [
        np.zeros((4, 4, 3), np.float32)
    ]
    fig = viz.plot_images(images, titles=[f"t{i}" for i in range(7)], ncols=3)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 7
    assert [ax.get_title() for ax in fig.axes] == [f"t{i}" for i in range(7)]
    assert not any(ax.axison for ax in fig.axes)
    with pytest.raises(ValueError):
        viz.plot_images(images, titles=["one"])


def test_colorwheel():
    wheel = viz.colorwheel_image(64, max_magnitude=2.0)
    assert wheel.shape == (64, 64, 3)
    assert (wheel[0, 0] == 255).all()  # corner is outside the disc
    right, down = wheel[32, 62], wheel[62, 32]
    assert right[0] > 240 and right[1] < 60 and right[2] < 60  # right = red
    assert down[0] > 200 and down[1] > 150 and down[2] < 60  # down = yellow-orange
    fig = viz.plot_colorwheel(size=32)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert {"right", "down", "left", "up"} <= {t.get_text() for t in fig.axes[0].texts}


def test_rows_video_stacks_rows_with_grey_gaps():
    a = np.zeros((3, 4, 5, 3), np.uint8)
    b = np.full((3, 2, 5, 3), 200, np.uint8)
    out = viz.rows_video([a, b], gap=2)
    assert out.shape == (3, 4 + 2 + 2, 5, 3) and out.dtype == np.uint8
    assert (out[:, :4] == 0).all() and (out[:, 6:] == 200).all()
    assert (out[:, 4:6] == viz.PANEL_GAP_GREY).all()


def test_add_border_frames_white_panels_in_grey():
    from seg2vid.viz import PANEL_GAP_GREY, add_border, clip_panel

    clip = {"flow_fwd": torch.zeros(2, 2, 4, 5), "visible_fwd": torch.ones(2, 1, 4, 5)}
    panel = clip_panel(clip)  # frame 0: zero flow and all visible, both white
    assert (panel[0] == 255).all(axis=-1).sum() == 2 * 4 * 5
    framed = add_border(panel, width=2)
    assert framed.shape == (3, 4 + 4, panel.shape[2] + 4, 3)
    np.testing.assert_array_equal(framed[:, 2:-2, 2:-2], panel)
    for edge in (framed[:, :2], framed[:, -2:], framed[:, :, :2], framed[:, :, -2:]):
        assert (edge == PANEL_GAP_GREY).all()
    with pytest.raises(ValueError, match="width"):
        add_border(panel, width=-1)
