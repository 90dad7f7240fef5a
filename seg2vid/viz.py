"""Pictures and videos of clips: colour panels, grids, inline animations, GIF/MP4/PNG files.

Conventions: every function returns NumPy ``uint8`` RGB arrays, ``(H, W, 3)`` for an image and
``(T, H, W, 3)`` for a video, so outputs compose freely (``hstack_videos``, ``grid_image``) and
go straight into the writers (``save_gif``, ``save_mp4``, ``save_png``) or ``show_video``.

Inputs follow the rest of seg2vid: frames are float ``(T, 3, H, W)`` in [0, 1], label maps int
train ids ``(T, H, W)`` (255 = void), flow ``(T, 2, H, W)`` in pixels, masks ``(T, 1, H, W)``.
A *clip* is a dict with some of ``frames``, ``labels``, ``flow_fwd``, ``flow_bwd``,
``visible_fwd`` and ``visible_bwd`` (see :mod:`seg2vid.data`); batched clips carry a leading B.

The plotting functions build a bare :class:`matplotlib.figure.Figure` (not a pyplot figure): it
needs no GUI backend, is not kept alive by pyplot, and shows once when it is a notebook cell's
last expression (a pyplot figure returned by a function would show twice).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from seg2vid.data.labels import CITYSCAPES, LabelTable
from seg2vid.flow import flow_to_color

if TYPE_CHECKING:
    from IPython.display import HTML
    from matplotlib.figure import Figure

ArrayLike = torch.Tensor | np.ndarray
Color = int | tuple[int, int, int]

#: Grey level of the gaps in :func:`clip_panel` / :func:`clip_strip`: dark, so that white panels
#: (zero flow, everything visible) still show their edges.
PANEL_GAP_GREY = 48

#: Keys of a clip that :func:`clip_panel` and :func:`clip_strip` draw, in display order.
CLIP_PANEL_KEYS = ("frames", "labels", "flow_fwd", "visible_fwd")

# A clip key and the number of dims of its UNBATCHED tensor, used to detect a leading batch dim.
_UNBATCHED_NDIM = {
    "frames": 4, "labels": 3, "flow_fwd": 4, "flow_bwd": 4, "visible_fwd": 4, "visible_bwd": 4,
}


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        # NumPy has no bfloat16/half arithmetic worth trusting: go through float32.
        if x.is_floating_point():
            x = x.float()
        return x.numpy()
    return np.asarray(x)


# ----------------------------------------------------------------------------- conversions


def to_uint8_video(frames: ArrayLike) -> np.ndarray:
    """Convert a video to the display format: NumPy uint8 ``(T, H, W, 3)``.

    Args:
        frames: torch tensor or NumPy array, one of
            * float ``(T, 3, H, W)`` in [0, 1] (values outside are clamped, NaN becomes 0);
            * float ``(T, 1, H, W)`` in [0, 1], grey: copied into the three RGB channels;
            * uint8 ``(T, H, W, 3)``: returned as is (as a NumPy array).
    Returns:
        uint8 array ``(T, H, W, 3)``; float 0 maps to 0 and 1 to 255 (rounded).
    Raises:
        ValueError: for any other shape or dtype, naming the shape received.
    """
    arr = _to_numpy(frames)
    if arr.dtype == np.uint8:
        if arr.ndim == 4 and arr.shape[-1] == 3:
            return np.ascontiguousarray(arr)
        raise ValueError(
            f"uint8 video frames must have shape (T, H, W, 3), got {arr.shape}"
        )
    if arr.dtype == np.bool_:
        arr = arr.astype(np.float32)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(
            f"video frames must be float in [0, 1] or uint8, got dtype {arr.dtype} "
            f"with shape {arr.shape}"
        )
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise ValueError(
            f"float video frames must have shape (T, 3, H, W) or (T, 1, H, W), got {arr.shape}"
        )
    arr = np.nan_to_num(arr, nan=0.0)
    out = np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8).transpose(0, 2, 3, 1)
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    return np.ascontiguousarray(out)


def label_video_rgb(labels: ArrayLike, table: LabelTable = CITYSCAPES) -> np.ndarray:
    """Colour a sequence of label maps with the table's palette.

    Args:
        labels: integer train ids ``(T, H, W)``; ``table.ignore_id`` (255) is void.
        table: the label set whose colours are used (default: Cityscapes).
    Returns:
        uint8 array ``(T, H, W, 3)``.
    Raises:
        ValueError: for a shape other than ``(T, H, W)`` or for ids the table does not know.
    """
    arr = _to_numpy(labels)
    if arr.ndim != 3:
        raise ValueError(f"label video must have shape (T, H, W), got {arr.shape}")
    return table.colorize(arr)


def flow_video_rgb(flow: ArrayLike, max_magnitude: float | None = None) -> np.ndarray:
    """Colour a flow sequence with the Middlebury wheel, ONE normalisation for all frames.

    Sharing the scale keeps colours comparable over time (faster motion = more saturated);
    see :func:`seg2vid.flow.flow_to_color` and :func:`plot_colorwheel` for the legend.

    Args:
        flow: float ``(T, 2, H, W)`` in pixels (x right, y down).
        max_magnitude: pixels drawn at full saturation; default: the largest in the sequence.
    Returns:
        uint8 array ``(T, H, W, 3)``; zero flow is white.
    """
    arr = _to_numpy(flow)
    if arr.ndim != 4 or arr.shape[1] != 2:
        raise ValueError(f"flow video must have shape (T, 2, H, W), got {arr.shape}")
    return flow_to_color(arr, max_magnitude=max_magnitude)


def mask_video_rgb(mask: ArrayLike) -> np.ndarray:
    """Show a sequence of masks (e.g. visibility) in grey: 1 = white, 0 = black.

    Args:
        mask: float or bool ``(T, 1, H, W)`` (or ``(T, H, W)``) with values in [0, 1].
    Returns:
        uint8 array ``(T, H, W, 3)`` with equal R, G and B.
    """
    arr = _to_numpy(mask)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1] != 1:
        raise ValueError(f"mask video must have shape (T, 1, H, W) or (T, H, W), got {arr.shape}")
    return to_uint8_video(arr.astype(np.float32))


# ----------------------------------------------------------------------------- composition


def upscale(video_uint8: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour integer upscaling, so that small (e.g. 64x64) clips stay crisp.

    Args:
        video_uint8: array ``(..., H, W, C)``: an image ``(H, W, 3)`` or a video ``(T, H, W, 3)``.
        scale: integer factor >= 1; every pixel becomes a ``scale x scale`` block.
    Returns:
        array ``(..., H * scale, W * scale, C)`` of the same dtype.
    """
    arr = np.asarray(video_uint8)
    if isinstance(scale, bool) or not isinstance(scale, int | np.integer) or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
    if arr.ndim < 3:
        raise ValueError(f"expected an image (H, W, C) or a video (T, H, W, C), got {arr.shape}")
    if scale == 1:
        return arr
    return np.repeat(np.repeat(arr, scale, axis=-3), scale, axis=-2)


def _as_video(v: ArrayLike) -> np.ndarray:
    # A single uint8 image (H, W, 3) counts as a one-frame video.
    if isinstance(v, np.ndarray) and v.dtype == np.uint8 and v.ndim == 3 and v.shape[-1] == 3:
        return v[None]
    return to_uint8_video(v)


def _as_image(im: ArrayLike) -> np.ndarray:
    arr = _to_numpy(im)
    if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[-1] == 3:
        return arr
    if arr.ndim == 3 and arr.shape[0] in (1, 3):
        return to_uint8_video(arr[None])[0]
    raise ValueError(
        f"an image must be uint8 (H, W, 3) or float (3, H, W)/(1, H, W), got {arr.shape} "
        f"{arr.dtype}"
    )


def _pad_time(video: np.ndarray, length: int) -> np.ndarray:
    if video.shape[0] >= length:
        return video
    # Holding the last frame reads as "this video has ended" and keeps panels aligned.
    tail = np.repeat(video[-1:], length - video.shape[0], axis=0)
    return np.concatenate([video, tail])


def _concat(videos: Sequence[np.ndarray], axis: int, gap: int, background: Color) -> np.ndarray:
    """Concatenate (T, H, W, 3) videos along H (axis=1) or W (axis=2), top/left aligned."""
    if not videos:
        raise ValueError("nothing to compose: got an empty list")
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    other = 2 if axis == 1 else 1
    t = max(v.shape[0] for v in videos)
    length = sum(v.shape[axis] for v in videos) + gap * (len(videos) - 1)
    across = max(v.shape[other] for v in videos)
    shape = [t, 0, 0, 3]
    shape[axis], shape[other] = length, across
    out = np.empty(shape, dtype=np.uint8)
    out[...] = np.asarray(background, dtype=np.uint8)
    pos = 0
    for v in videos:
        v = _pad_time(v, t)
        if axis == 2:
            out[:, : v.shape[1], pos : pos + v.shape[2]] = v
        else:
            out[:, pos : pos + v.shape[1], : v.shape[2]] = v
        pos += v.shape[axis] + gap
    return out


def hstack_videos(
    videos: Sequence[ArrayLike], gap: int = 2, background: Color = 255
) -> np.ndarray:
    """Put videos side by side (left to right) in one video.

    Args:
        videos: videos accepted by :func:`to_uint8_video` (e.g. uint8 ``(T_i, H_i, W_i, 3)`` or
            float ``(T_i, 3, H_i, W_i)``); a uint8 image ``(H, W, 3)`` counts as one frame.
            Shorter videos hold their last frame; lower ones are top-aligned.
        gap: pixels of ``background`` between neighbours.
        background: grey level 0..255 or an RGB triple for gaps and padding.
    Returns:
        uint8 ``(max T_i, max H_i, sum W_i + gap * (n - 1), 3)``.
    """
    return _concat([_as_video(v) for v in videos], axis=2, gap=gap, background=background)


def rows_video(rows: Sequence[np.ndarray], gap: int = 2) -> np.ndarray:
    """Stack videos of equal width and length vertically, with a dark-grey gap between them.

    Args:
        rows: uint8 videos ``(T, h_i, w, 3)`` (e.g. rows made with :func:`hstack_videos`).
        gap: pixels of :data:`PANEL_GAP_GREY` between neighbours.
    Returns:
        uint8 ``(T, sum h_i + gap * (n - 1), w, 3)``.
    """
    line = np.full((rows[0].shape[0], gap, rows[0].shape[2], 3), PANEL_GAP_GREY, np.uint8)
    return np.concatenate([part for row in rows for part in (row, line)][:-1], axis=1)


def video_grid(
    rows: Sequence[Sequence[ArrayLike]], scale: int = 1, gap: int = 2, background: Color = PANEL_GAP_GREY
) -> np.ndarray:
    """Arrange videos in a grid that plays them together: ``rows[i][j]`` goes to row i, column j.

    For example the K true futures of one first frame in one row and N samples of a model in the
    next, to see at a glance how much they differ.

    Args:
        rows: a list of rows, each a list of videos accepted by :func:`to_uint8_video` (float
            ``(T, 3, H, W)`` in [0, 1], uint8 ``(T, H, W, 3)``, ...). Sizes and lengths may differ:
            cells are top-left aligned, shorter videos hold their last frame.
        scale: integer nearest-neighbour upscaling of every video (gaps stay ``gap`` pixels).
        gap: pixels of ``background`` between cells (horizontally and vertically).
        background: grey level 0..255 or an RGB triple (default: the dark grey of :func:`clip_panel`,
            so that white frames, e.g. zero flow, keep their edges).
    Returns:
        uint8 video ``(max T, sum of the rows' heights + gaps, widest row, 3)``.
    """
    if isinstance(rows, np.ndarray | torch.Tensor) or not rows or not all(
        isinstance(r, Sequence) and len(r) > 0 for r in rows
    ):
        raise ValueError("rows must be a non-empty list of rows, each a non-empty list of videos")
    lines = [hstack_videos([upscale(_as_video(v), scale) for v in row], gap=gap, background=background)
             for row in rows]
    return _concat(lines, axis=1, gap=gap, background=background)


def futures_grid(
    true_frames: torch.Tensor, true_flows: torch.Tensor, true_speeds: torch.Tensor,
    sample_frames: torch.Tensor, sample_flows: torch.Tensor, sample_speeds: torch.Tensor,
    scale: int = 1,
) -> tuple[np.ndarray, float]:
    """The K true futures of one first frame above N samples of a model, each row slow to fast.

    Four rows: the true futures' frames, their flows, the samples' frames, their flows; in each
    row the videos are sorted by speed. All flows share ONE colour scale (saturation = speed, the
    wheel of :func:`flow_video_rgb`), and each flow video starts with a white frame (frame 0 has
    no motion) so that it plays in step with the frames.

    Args:
        true_frames, sample_frames: (K or N, T+1, 3, H, W) in [0, 1].
        true_flows, sample_flows: (K or N, T, 2, H, W) pixels.
        true_speeds, sample_speeds: (K,) and (N,): the order (e.g. from
            :func:`seg2vid.evaluation.multifuture.scene_speeds`).
        scale: integer upscaling (see :func:`video_grid`).
    Returns:
        ``(video, max_magnitude)``: the uint8 grid video and the flow in pixels drawn at full saturation.
    """
    true_order = torch.as_tensor(true_speeds).argsort()
    sample_order = torch.as_tensor(sample_speeds).argsort()
    true_flows, sample_flows = true_flows[true_order].float(), sample_flows[sample_order].float()
    max_magnitude = float(torch.cat([true_flows, sample_flows]).norm(dim=2).max())

    def flow_rgb(flow: torch.Tensor) -> np.ndarray:
        return flow_video_rgb(torch.cat([torch.zeros_like(flow[:1]), flow]), max_magnitude=max_magnitude)

    rows = [list(true_frames[true_order]), [flow_rgb(f) for f in true_flows],
            list(sample_frames[sample_order]), [flow_rgb(f) for f in sample_flows]]
    return video_grid(rows, scale=scale), max_magnitude


def grid_image(
    rows: Sequence[Sequence[ArrayLike]], gap: int = 2, background: Color = 255
) -> np.ndarray:
    """Arrange images in a grid: ``rows[i][j]`` goes to row i, column j.

    Args:
        rows: a list of rows, each a list of images: uint8 ``(H, W, 3)`` or float
            ``(3, H, W)``/``(1, H, W)`` in [0, 1]. Sizes may differ: cells are top-left aligned,
            short rows are padded on the right.
        gap: pixels of ``background`` between cells (horizontally and vertically).
        background: grey level 0..255 or an RGB triple.
    Returns:
        uint8 image ``(H', W', 3)``.
    """
    if isinstance(rows, np.ndarray | torch.Tensor) or not all(
        isinstance(r, Sequence) for r in rows
    ):
        raise ValueError("rows must be a list of rows, each a list of images")
    lines = [
        _concat([_as_image(im)[None] for im in row], axis=2, gap=gap, background=background)
        for row in rows
    ]
    return _concat(lines, axis=1, gap=gap, background=background)[0]


# ----------------------------------------------------------------------------- files


def _prepare(video: ArrayLike, scale: int) -> np.ndarray:
    out = upscale(to_uint8_video(video), scale)
    if out.shape[0] == 0:
        raise ValueError(f"cannot write a video with no frames (shape {out.shape})")
    return out


def _gif_bytes(video: ArrayLike, fps: float, scale: int, loop: int | None) -> bytes:
    frames = _prepare(video, scale)
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    images = [Image.fromarray(f) for f in frames]
    kwargs: dict = {"duration": max(1, round(1000 / fps))}
    if loop is not None:
        kwargs["loop"] = loop
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], **kwargs)
    return buf.getvalue()


def save_gif(
    path: str | Path, video: ArrayLike, fps: float = 4, scale: int = 1, loop: int | None = 0
) -> Path:
    """Write an animated GIF with Pillow.

    Args:
        path: file to write; missing parent folders are created.
        video: anything :func:`to_uint8_video` accepts (uint8 ``(T, H, W, 3)``, float
            ``(T, 3, H, W)`` in [0, 1], ...).
        fps: frames per second (GIF stores delays in 1/100 s, so it is rounded).
        scale: integer nearest-neighbour upscaling (see :func:`upscale`).
        loop: 0 = loop forever, n = play n + 1 times, None = play once.
    Returns:
        The path written. Note that GIF uses a 256-colour palette per frame and that Pillow
        merges identical consecutive frames into one longer frame (the duration is kept).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_gif_bytes(video, fps, scale, loop))
    return path


def _video_encoder() -> str:
    import av

    try:
        av.codec.Codec("libx264", "w")
        return "libx264"
    except ValueError:  # av.codec.codec.UnknownCodecError
        # Some FFmpeg builds ship without the GPL x264 encoder; mpeg4 is always there.
        return "mpeg4"


def save_mp4(path: str | Path, video: ArrayLike, fps: float = 4, scale: int = 1) -> Path:
    """Write an H.264 MP4 (yuv420p, plays in browsers) with PyAV; MPEG-4 Part 2 if no x264.

    Args:
        path: file to write; missing parent folders are created.
        video: anything :func:`to_uint8_video` accepts.
        fps: frames per second.
        scale: integer nearest-neighbour upscaling (see :func:`upscale`).
    Returns:
        The path written. yuv420p needs even sizes, so an odd height or width is padded by one
        row/column repeating the edge.
    """
    import av

    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    frames = _prepare(video, scale)
    _, h, w, _ = frames.shape
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = _video_encoder()
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "18"}  # visually lossless for small course videos
        else:
            stream.bit_rate = 8_000_000  # mpeg4's 200 kb/s default smears small frames
        for frame in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            container.mux(stream.encode(vf))
        container.mux(stream.encode(None))  # flush delayed (B-)frames
    return path


def save_png(path: str | Path, image_uint8: ArrayLike) -> Path:
    """Write one image as PNG (lossless).

    Args:
        path: file to write; missing parent folders are created.
        image_uint8: uint8 ``(H, W, 3)`` RGB or ``(H, W)`` grey; float ``(3, H, W)`` in [0, 1]
            is converted like :func:`to_uint8_video`.
    Returns:
        The path written.
    """
    arr = _to_numpy(image_uint8)
    if not (arr.dtype == np.uint8 and arr.ndim == 2):
        arr = _as_image(arr)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format="PNG")
    return path


# ----------------------------------------------------------------------------- clips


def _unbatch(clip: Mapping[str, ArrayLike], index: int) -> dict[str, ArrayLike]:
    known = [k for k in _UNBATCHED_NDIM if k in clip]
    if not known:
        raise ValueError(
            f"clip has none of the keys {sorted(_UNBATCHED_NDIM)}; got {sorted(clip)}"
        )
    batched = clip[known[0]].ndim == _UNBATCHED_NDIM[known[0]] + 1
    return {k: (clip[k][index] if batched else clip[k]) for k in known}


def _clip_videos(
    clip: Mapping[str, ArrayLike],
    table: LabelTable,
    max_magnitude: float | None,
    index: int,
) -> list[np.ndarray]:
    c = _unbatch(clip, index)
    videos = []
    if "frames" in c:
        videos.append(to_uint8_video(c["frames"]))
    if "labels" in c:
        videos.append(label_video_rgb(c["labels"], table))
    if "flow_fwd" in c:
        flow = _to_numpy(c["flow_fwd"]).astype(np.float32)
        # Frame 0 has not moved from itself: zero flow (white) keeps columns aligned with frames.
        flow = np.concatenate([np.zeros_like(flow[:1]), flow])
        videos.append(flow_video_rgb(flow, max_magnitude))
    if "visible_fwd" in c:
        vis = _to_numpy(c["visible_fwd"]).astype(np.float32)
        vis = np.concatenate([np.ones_like(vis[:1]), vis])  # every frame-0 pixel sees frame 0
        videos.append(mask_video_rgb(vis))
    if not videos:
        raise ValueError(f"clip has none of the keys {CLIP_PANEL_KEYS}; got {sorted(clip)}")
    return videos


def clip_panel(
    clip: Mapping[str, ArrayLike],
    table: LabelTable = CITYSCAPES,
    scale: int = 1,
    gap: int = 2,
    max_magnitude: float | None = None,
    index: int = 0,
) -> np.ndarray:
    """A video that shows a clip's panels side by side at every time step.

    Panels, left to right, for the keys that exist: ``frames`` (RGB), ``labels`` (palette of
    ``table``), ``flow_fwd`` (flow colours, one scale for the clip; frame 0 = zero flow = white)
    and ``visible_fwd`` (white = visible in frame 0; frame 0 all white).

    Args:
        clip: dict with some of ``frames`` (T+1, 3, H, W) float [0, 1], ``labels`` (T+1, H, W)
            int64, ``flow_fwd`` (T, 2, H, W) pixels, ``visible_fwd`` (T, 1, H, W) 0/1.
            A batched clip (leading B) shows item ``index``.
        table: label set for the label colours.
        scale: integer upscaling of every panel (gaps stay ``gap`` pixels).
        gap: pixels of dark grey between panels (grey, so all-white panels stay visible).
        max_magnitude: flow magnitude (pixels) at full colour; default: the clip's largest.
        index: which item of a batched clip to show.
    Returns:
        uint8 video ``(T+1, H * scale, n * W * scale + (n - 1) * gap, 3)`` for n panels.
    """
    videos = [upscale(v, scale) for v in _clip_videos(clip, table, max_magnitude, index)]
    return hstack_videos(videos, gap=gap, background=PANEL_GAP_GREY)


def clip_strip(
    clip: Mapping[str, ArrayLike],
    table: LabelTable = CITYSCAPES,
    scale: int = 1,
    gap: int = 2,
    max_magnitude: float | None = None,
    index: int = 0,
) -> np.ndarray:
    """One image of a whole clip: rows = frames / labels / flow / visibility, columns = time.

    Same panels and arguments as :func:`clip_panel`; handy for a PNG in a report.

    Returns:
        uint8 image ``(n * H * scale + (n - 1) * gap, (T+1) * W * scale + T * gap, 3)`` for n
        rows (only the rows whose keys exist).
    """
    videos = [upscale(v, scale) for v in _clip_videos(clip, table, max_magnitude, index)]
    return grid_image([list(v) for v in videos], gap=gap, background=PANEL_GAP_GREY)


# ----------------------------------------------------------------------------- notebooks


def show_video(video: ArrayLike, fps: float = 4, scale: int = 1) -> HTML:
    """Display a video inline in a notebook as an animated GIF embedded as base64.

    Works in JupyterLab, classic Jupyter, VS Code and Colab: no files, no JavaScript, and the
    animation is saved inside the notebook. Keep videos small (the GIF is in the notebook).

    Args:
        video: anything :func:`to_uint8_video` accepts.
        fps: frames per second.
        scale: integer nearest-neighbour upscaling.
    Returns:
        ``IPython.display.HTML`` holding ``<img src="data:image/gif;base64,...">``; it shows
        when it is the last expression of a cell, or via ``IPython.display.display``.
    """
    from IPython.display import HTML

    data = base64.b64encode(_gif_bytes(video, fps, scale, loop=0)).decode("ascii")
    # pixelated: if the browser rescales the image, keep small-clip pixels sharp.
    return HTML(
        f'<img src="data:image/gif;base64,{data}" alt="video" '
        'style="image-rendering: pixelated;" />'
    )


def show_clip(
    clip: Mapping[str, ArrayLike],
    fps: float = 4,
    scale: int = 4,
    table: LabelTable = CITYSCAPES,
    max_magnitude: float | None = None,
    index: int = 0,
) -> HTML:
    """Animate a clip inline: ``show_video(add_border(clip_panel(clip, ...)))``; see :func:`clip_panel`.

    The border matters at frame 0, whose flow (zero) and visibility (all visible) panels are all
    white: without it, their outer edges vanish into a white notebook page."""
    panel = clip_panel(clip, table=table, scale=scale, max_magnitude=max_magnitude, index=index)
    return show_video(add_border(panel), fps=fps)


def add_border(video: np.ndarray, width: int = 2, grey: int = PANEL_GAP_GREY) -> np.ndarray:
    """A uint8 video ``(T, H, W, 3)`` framed by ``width`` pixels of ``grey`` on every side:
    ``(T, H + 2 * width, W + 2 * width, 3)``."""
    if width < 0:
        raise ValueError(f"width must be >= 0, got {width}")
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"video must be (T, H, W, 3), got {video.shape}")
    return np.pad(video, ((0, 0), (width, width), (width, width), (0, 0)), constant_values=grey)


# ----------------------------------------------------------------------------- figures


def _plot_array(im: ArrayLike) -> np.ndarray:
    arr = _to_numpy(im)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)  # channels-first tensor -> (H, W, C)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ValueError(f"cannot plot an array of shape {arr.shape} as an image")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.clip(arr, 0.0, 1.0)
    return arr


def _enable_inline_figures() -> None:
    """Inside IPython/Jupyter, make bare Figures display as PNG when they end a cell.

    IPython registers that formatter only once pyplot or ``%matplotlib inline`` has run; a
    kernel that never imported pyplot would show ``<Figure size ...>`` instead of the plot.
    """
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:  # not in IPython: nothing to do
        return
    shell = get_ipython()
    if shell is not None and not getattr(shell, "_seg2vid_figures", False):
        select_figure_formats(shell, {"png"})
        shell._seg2vid_figures = True


def plot_images(
    images: Sequence[ArrayLike],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """A grid of images with titles and no axes.

    Args:
        images: uint8 ``(H, W, 3)``, float ``(H, W, 3)`` in [0, 1], grey ``(H, W)`` (shown with
            a grey colour map, floats as 0..1) or channels-first tensors ``(3, H, W)``.
        titles: one title per image, or None.
        ncols: columns of the grid; default: up to 5.
        figsize: figure size in inches; default: 2.5 inches per cell.
    Returns:
        A :class:`matplotlib.figure.Figure` with one axes per image (shown when it is a cell's
        last expression; save it with ``fig.savefig``).
    """
    from matplotlib.figure import Figure

    images = list(images)
    if not images:
        raise ValueError("plot_images needs at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    ncols = min(len(images), 5) if ncols is None else ncols
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    nrows = -(-len(images) // ncols)
    _enable_inline_figures()
    fig = Figure(figsize=figsize or (2.5 * ncols, 2.5 * nrows), layout="constrained")
    for i, im in enumerate(images):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        arr = _plot_array(im)
        if arr.ndim == 2:
            vmax = 255 if arr.dtype == np.uint8 else 1.0
            ax.imshow(arr, cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
        else:
            ax.imshow(arr, interpolation="nearest")
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize="small")
    return fig


def colorwheel_image(size: int = 128, max_magnitude: float = 1.0) -> np.ndarray:
    """The flow legend as an image: :func:`seg2vid.flow.flow_to_color` over a disc of vectors.

    Pixel (row, col) holds the colour of the flow vector pointing from the centre to it
    (x right, y DOWN, as in images), scaled so the disc's rim has length ``max_magnitude``.

    Returns:
        uint8 ``(size, size, 3)``; outside the disc is white.
    """
    if size < 2:
        raise ValueError(f"size must be >= 2, got {size}")
    if max_magnitude <= 0:
        raise ValueError(f"max_magnitude must be > 0, got {max_magnitude}")
    coords = ((np.arange(size) + 0.5) / size * 2.0 - 1.0) * max_magnitude
    y, x = np.meshgrid(coords, coords, indexing="ij")
    rgb = flow_to_color(np.stack([x, y]), max_magnitude=max_magnitude)
    rgb[np.hypot(x, y) > max_magnitude] = 255
    return rgb


def plot_colorwheel(size: int = 128, max_magnitude: float = 1.0) -> Figure:
    """A figure of the flow colour legend used by :func:`flow_video_rgb` and ``flow_to_color``.

    Hue = direction of motion, saturation = speed: the centre (no motion) is white and the rim
    is ``max_magnitude`` pixels. Arrows mark right, down, left and up in IMAGE coordinates
    (y grows downwards).

    Returns:
        A :class:`matplotlib.figure.Figure` with one axes (ticks in pixels of flow).
    """
    from matplotlib.figure import Figure

    m = float(max_magnitude)
    wheel = colorwheel_image(size, m)
    _enable_inline_figures()
    fig = Figure(figsize=(4.2, 4.2), layout="constrained")
    ax = fig.add_subplot()
    # extent with top=-m puts negative y (up) at the top, as in an image.
    ax.imshow(wheel, extent=(-m, m, m, -m), interpolation="bilinear")
    for (dx, dy), name in [((1, 0), "right"), ((0, 1), "down"), ((-1, 0), "left"),
                           ((0, -1), "up")]:
        ax.annotate(
            "", xy=(0.8 * m * dx, 0.8 * m * dy), xytext=(0, 0),
            arrowprops={"arrowstyle": "->", "color": "black", "lw": 1.2},
        )
        ax.text(1.17 * m * dx, 1.15 * m * dy, name, ha="center", va="center", fontsize="small")
    ax.set_xlim(-1.3 * m, 1.3 * m)
    ax.set_ylim(1.3 * m, -1.3 * m)
    ax.set_aspect("equal")
    ax.set_xlabel("x flow (pixels, + = right)")
    ax.set_ylabel("y flow (pixels, + = down)")
    ax.set_title(f"flow colours: hue = direction\nwhite = still, full colour = {m:g} px")
    return fig


def plot_speed_histogram(
    sample_speeds: ArrayLike,
    true_speeds: ArrayLike,
    bins: int | Sequence[float] = 8,
    title: str | None = None,
    sample_label: str = "model samples",
    true_label: str = "true futures",
    figsize: tuple[float, float] = (6.4, 3.4),
) -> Figure:
    """Histogram of the speeds of a model's samples next to those of the true futures.

    For ONE first frame: the speeds of N samples from the model's prior against the speeds of the
    K exact futures of that frame (:func:`seg2vid.evaluation.multifuture.scene_speeds` gives both;
    a speed is :func:`seg2vid.evaluation.motion_eval.speed`, the clip's mean forward-flow magnitude
    over frames 1..T and all pixels). A sampler that knows how uncertain the future is spreads its
    samples like the truth; one that always predicts a typical motion piles them into one bar.

    Both histograms share the same bins; in each bin the samples' bar stands left of the truth's.

    Args:
        sample_speeds: (N,) speeds in pixels (tensor or array), N >= 1, finite.
        true_speeds: (K,) speeds in pixels, K >= 1, finite.
        bins: number of equal bins spanning both sets' range, or the bin edges (increasing, px).
        title: axes title; default: none.
        sample_label, true_label: legend names (the legend adds the count and the standard deviation).
        figsize: inches.
    Returns:
        A :class:`matplotlib.figure.Figure` with one axes: two bar containers (``ax.containers[0]``
        the samples, ``[1]`` the truth), one bar per bin, heights = counts.
    Raises:
        ValueError: for an empty, non-1-D or non-finite speed vector, naming it.
    """
    from matplotlib.figure import Figure

    def vector(x: ArrayLike, name: str) -> np.ndarray:
        arr = _to_numpy(x).astype(np.float64)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D vector of speeds, got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} holds non-finite values: {arr.tolist()}")
        return arr

    samples, truth = vector(sample_speeds, "sample_speeds"), vector(true_speeds, "true_speeds")
    # shared edges over both sets, so that "the same bar" means "the same speed" for both
    edges = np.histogram_bin_edges(np.concatenate([samples, truth]), bins=bins)
    counts_s, _ = np.histogram(samples, edges)
    counts_t, _ = np.histogram(truth, edges)
    widths = np.diff(edges)
    _enable_inline_figures()
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    for counts, offset, colour, label, values in [
        (counts_s, 0.0, "tab:orange", sample_label, samples), (counts_t, 0.5, "tab:blue", true_label, truth)
    ]:
        ax.bar(edges[:-1] + offset * widths, counts, width=0.45 * widths, align="edge", color=colour,
               label=f"{label} (n = {values.size}, std {values.std():.2f} px)")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel("speed: mean flow magnitude over frames and pixels (px)")
    ax.set_ylabel("count")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig
