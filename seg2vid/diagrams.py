"""Figures of the method: the two-stage pipeline and the stage-2 network with its tensor shapes.

The shapes in :func:`stage2_figure` are not typed in by hand: :func:`stage2_shapes` runs one
training pass of the model it is given with forward hooks on its blocks and records what goes in
and what comes out, so the figure cannot drift from the code. Both figures are matplotlib
``Figure`` objects (no pyplot state), drawn in a notebook by leaving them as a cell's last value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from seg2vid.models.seg2vid import Seg2Vid

__all__ = ["BLOCKS", "pipeline_figure", "stage2_figure", "stage2_shapes"]

#: The stage-2 blocks that :func:`stage2_shapes` hooks: attribute of ``Seg2Vid`` -> display name.
BLOCKS = {
    "image_encoder": "image encoder",
    "background_encoder": "background motion encoder",
    "foreground_encoder": "foreground motion encoder",
    "decoder": "flow decoder",
    "refiner": "refinement U-Net",
}

_COLOURS = {
    "data": "#f2f2f2",
    "stage1": "#dbe9f6",
    "stage2": "#fde8d0",
    "latent": "#e4f2dc",
    "train": "#f6dede",
}


def _shapes(value: Any) -> Any:
    """Tensor shapes inside (nested) tuples/lists; other values as they are."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, tuple | list):
        return [_shapes(v) for v in value]
    return value


def stage2_shapes(model: Seg2Vid, batch_size: int = 1, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Run one training pass of ``model`` on random inputs and record each block's tensor shapes.

    Args:
        model: a :class:`~seg2vid.models.seg2vid.Seg2Vid` (any size; a tiny one is cheap).
        batch_size: B of the random clip.
        seed: seeds the random clip and label map.

    Returns:
        ``{attribute: {"inputs": [...], "output": ...}}`` for every block of :data:`BLOCKS`, each
        shape a tuple (lists for lists/tuples of tensors, e.g. the encoder's four feature maps);
        plus ``"clip"`` with the shapes of the inputs (frames (B, T+1, 3, H, W), one-hot labels
        (B, L, H, W)) and the model output's fields.
    """
    config = model.config
    g = torch.Generator().manual_seed(seed)
    b, t, h, w = batch_size, config.frames, config.height, config.width
    frames = torch.rand(b, t + 1, 3, h, w, generator=g)
    ids = torch.randint(config.label_channels, (b, h, w), generator=g)
    labels = torch.nn.functional.one_hot(ids, config.label_channels).permute(0, 3, 1, 2).float()
    records: dict[str, dict[str, Any]] = {}
    handles = []
    for attribute in BLOCKS:
        block = getattr(model, attribute)

        def hook(module, inputs, output, attribute=attribute):
            records[attribute] = {"inputs": _shapes(list(inputs)), "output": _shapes(output)}

        handles.append(block.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        # fork_rng: the pass draws z and the noise fill from torch's global generator, which the
        # caller's next cells may rely on; the figure must not change what they draw.
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            out = model(frames, labels)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    records["clip"] = {
        "frames": tuple(frames.shape),
        "labels": tuple(labels.shape),
        "refined": tuple(out.frames.shape),
        "warped": tuple(out.warped.shape),
        "flow_fwd": tuple(out.flow_fwd.shape),
        "mask_fwd": tuple(out.mask_fwd.shape),
        "z": tuple(out.z.shape),
    }
    return records


def _fmt(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _box(
    ax: Axes, x: float, y: float, w: float, h: float, title: str, lines: Sequence[str], colour: str
) -> None:
    """A rounded box with centre (x, y), size (w, h), a bold title and smaller lines below it."""
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=colour, edgecolor="0.35", linewidth=1.0,
        )
    )  # fmt: skip
    text = [title, *lines]
    n = len(text)
    for i, line in enumerate(text):
        offset = (n - 1) / 2 - i
        ax.text(
            x, y + offset * 0.21, line, ha="center", va="center",
            fontsize=8.5 if i == 0 else 7, fontweight="bold" if i == 0 else "normal",
            family=None if i == 0 else "monospace",
        )  # fmt: skip


def _arrow(
    ax: Axes, start: tuple[float, float], end: tuple[float, float], dashed: bool = False, label: str = ""
) -> None:
    ax.add_patch(
        FancyArrowPatch(
            start, end, arrowstyle="-|>", mutation_scale=11, linewidth=1.1, color="0.25",
            linestyle=(0, (4, 3)) if dashed else "-", shrinkA=0, shrinkB=0,
        )
    )  # fmt: skip
    if label:
        ax.text(
            (start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12, label,
            ha="center", va="bottom", fontsize=7,
        )  # fmt: skip


def _canvas(width: float, height: float, xmax: float, ymax: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlim(0, xmax)
    ax.set_ylim(0, ymax)
    ax.set_axis_off()
    return fig, ax


def pipeline_figure(height: int = 64, width: int = 64, frames: int = 4, label_channels: int = 20) -> Figure:
    """The two stages of Seg2Vid as a diagram, with the tensors between them.

    Args:
        height, width: frame size in pixels, for the shapes printed on the figure.
        frames: T, the number of generated future frames.
        label_channels: channels of the one-hot label map (Cityscapes: 19 classes + void).

    Returns:
        A ``Figure``: label map -> stage 1 (SPADE generator) -> frame 0 -> stage 2 (flow cVAE:
        flows and masks, warp, refine) -> frames 1..T, with z ~ N(0, I) entering stage 2.
    """
    hw = f"{height}, {width}"
    fig, ax = _canvas(11.5, 3.0, 11.5, 3.0)
    y = 1.9
    _box(ax, 1.0, y, 1.7, 1.0, "label map", [f"one-hot ({label_channels}, {hw})"], _COLOURS["data"])
    _box(ax, 3.35, y, 2.1, 1.0, "stage 1", ["SPADE generator", "(lesson 03)"], _COLOURS["stage1"])
    _box(ax, 5.55, y, 1.5, 1.0, "frame 0", [f"(3, {hw})"], _COLOURS["data"])
    _box(
        ax, 8.05, y, 2.6, 1.25, "stage 2: flow cVAE", ["flows + masks -> warp", "-> refine (lesson 04)"],
        _COLOURS["stage2"],
    )  # fmt: skip
    _box(ax, 10.55, y, 1.6, 1.0, "frames 1..T", [f"({frames}, 3, {hw})"], _COLOURS["data"])
    _box(ax, 8.05, 0.45, 1.9, 0.6, "z ~ N(0, I)", ["a new z, a new future"], _COLOURS["latent"])
    _arrow(ax, (1.85, y), (2.3, y))
    _arrow(ax, (4.4, y), (4.8, y))
    _arrow(ax, (6.3, y), (6.75, y))
    _arrow(ax, (9.35, y), (9.75, y))
    _arrow(ax, (8.05, 0.75), (8.05, y - 0.625))
    # the label map also conditions stage 2
    ax.add_patch(
        FancyArrowPatch((1.0, y + 0.5), (7.4, y + 0.625), connectionstyle="arc3,rad=-0.12", arrowstyle="-|>",
                        mutation_scale=11, linewidth=1.0, color="0.45")
    )  # fmt: skip
    ax.text(4.4, 2.62, "the label map conditions stage 2 too", ha="center", va="top", fontsize=7, color="0.3")
    ax.set_title("Seg2Vid: one label map in, sampled videos out", fontsize=10)
    return fig


def stage2_figure(model: Seg2Vid, batch_size: int = 1) -> Figure:
    """The stage-2 network of ``model`` as a diagram, every shape read from a real forward pass.

    Args:
        model: a :class:`~seg2vid.models.seg2vid.Seg2Vid`; its configuration sets the shapes
            (a "tiny" 64x64 model is drawn in well under a second).
        batch_size: B of the pass (the shapes' first number).

    Returns:
        A ``Figure``: image encoder (first frame + one-hot map -> four feature maps), the two
        motion encoders (training only: the true clip -> mu, logvar), z, the flow decoder (flows and
        masks for every frame), warp-and-fill and the refiner, with input and output shapes.
    """
    s = stage2_shapes(model, batch_size=batch_size)
    clip = s["clip"]
    enc, bg, fg, dec, ref = (s[k] for k in BLOCKS)
    b = clip["frames"][0]
    fig, ax = _canvas(12.5, 5.2, 12.5, 5.2)
    top, bottom = 3.85, 1.35
    _box(
        ax, 1.25, top, 2.2, 1.2, "first frame + one-hot",
        [f"{_fmt(clip['frames'][:1] + clip['frames'][2:])}", f"+ {_fmt(clip['labels'])}"],
        _COLOURS["data"],
    )  # fmt: skip
    features = enc["output"]
    _box(
        ax, 3.95, top, 2.5, 1.7, "image encoder",
        [f"in {_fmt(enc['inputs'][0])}", *(f"1/{2 ** (i + 1)}: {_fmt(f)}" for i, f in enumerate(features))],
        _COLOURS["stage2"],
    )  # fmt: skip
    flows = dec["output"]
    _box(
        ax, 7.0, top, 2.7, 1.7, "flow decoder",
        [
            "(2+1)-D convs over time",
            f"flow_fwd, flow_bwd {_fmt(flows[0])}",
            f"mask_fwd, mask_bwd {_fmt(flows[2])}",
        ],
        _COLOURS["stage2"],
    )  # fmt: skip
    _box(
        ax, 9.45, top, 1.7, 1.2, "warp + fill", ["warp(x0, flow_fwd)", f"{_fmt(clip['warped'])}"],
        _COLOURS["stage2"],
    )  # fmt: skip
    _box(
        ax, 11.45, top, 1.85, 1.2, "refinement U-Net",
        [f"in {_fmt(ref['inputs'][0])}", f"out {_fmt(ref['output'])}"],
        _COLOURS["stage2"],
    )  # fmt: skip
    _box(
        ax, 1.25, bottom, 2.2, 1.0, "true clip", [f"{_fmt(clip['frames'])}", "(training only)"],
        _COLOURS["train"],
    )  # fmt: skip
    _box(
        ax, 4.05, bottom + 0.6, 2.7, 0.95, "background motion encoder",
        [f"in {_fmt(bg['inputs'][0])}", f"mu, logvar {_fmt(bg['output'][0])} each"],
        _COLOURS["train"],
    )  # fmt: skip
    _box(
        ax, 4.05, bottom - 0.6, 2.7, 0.95, "foreground motion encoder",
        [f"in {_fmt(fg['inputs'][0])}", f"mu, logvar {_fmt(fg['output'][0])} each"],
        _COLOURS["train"],
    )  # fmt: skip
    _box(
        ax, 7.0, bottom, 1.9, 1.0, "z = [z_b, z_f]", [f"{_fmt(clip['z'])}", "test time: N(0, I)"],
        _COLOURS["latent"],
    )  # fmt: skip
    _arrow(ax, (2.35, top), (2.7, top))
    _arrow(ax, (5.2, top), (5.65, top), label="skips")
    _arrow(ax, (8.35, top), (8.6, top))
    _arrow(ax, (10.3, top), (10.52, top))
    _arrow(ax, (2.35, bottom + 0.2), (2.7, bottom + 0.6))
    _arrow(ax, (2.35, bottom - 0.2), (2.7, bottom - 0.6))
    _arrow(ax, (5.4, bottom + 0.6), (6.05, bottom + 0.2))
    _arrow(ax, (5.4, bottom - 0.6), (6.05, bottom - 0.2))
    _arrow(ax, (7.0, bottom + 0.5), (7.0, top - 0.85))
    ax.text(
        6.25, 0.1,
        f"B = {b}; every frame t = 1..{clip['frames'][1] - 1} is warped from the FIRST frame; "
        "shapes from a forward pass",
        ha="center", va="bottom", fontsize=7, color="0.3",
    )  # fmt: skip
    ax.set_title("Stage 2: the flow cVAE, with the tensor shapes of this model", fontsize=10)
    return fig
