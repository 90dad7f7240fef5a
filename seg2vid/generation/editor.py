"""Edit a label map by hand and regenerate its videos: pure helpers and an ipywidgets editor.

    >>> from seg2vid.generation.editor import place_object, set_road_width, LabelMapEditor
    >>> edited = place_object(labels, "car", x=32, y=50, width=14, height=8)   # new int64 (H, W)
    >>> edited = set_road_width(edited, 0.5)            # road on the middle half of the ground
    >>> editor = label_map_editor(Pipeline.from_shipped(), labels)
    >>> display(editor.widget); editor.update()        # update() also runs headless

The helpers never modify their input: they return a new int64 (H, W) map of train ids.
:func:`label_map_editor` (the class :class:`LabelMapEditor`) puts a class dropdown, position,
size and road-width sliders and a *regenerate* button next to an ``Output`` that shows the
edited, colourised map beside the sampled futures (:func:`seg2vid.viz.show_video`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from seg2vid import viz
from seg2vid.data.labels import CITYSCAPES, LabelTable

if TYPE_CHECKING:
    from IPython.display import HTML

    from seg2vid.generation.pipeline import Pipeline

__all__ = [
    "EDITOR_CLASSES",
    "OBJECT_ASPECT",
    "LabelMapEditor",
    "box_street_map",
    "label_map_editor",
    "place_object",
    "road_fraction",
    "set_road_width",
]

#: Classes offered by the editor's dropdown.
EDITOR_CLASSES = ("car", "person", "bus", "truck", "bicycle")
#: Width / height of the box the editor draws for each class (its size slider sets the height).
OBJECT_ASPECT = {"car": 1.8, "person": 0.4, "bus": 2.2, "truck": 1.8, "bicycle": 1.0}


def _as_label_array(label_map: np.ndarray | torch.Tensor, table: LabelTable) -> np.ndarray:
    """A new int64 (H, W) copy of ``label_map`` (checked against ``table``)."""
    arr = label_map.detach().cpu().numpy() if isinstance(label_map, torch.Tensor) else np.asarray(label_map)
    if arr.ndim != 2:
        raise ValueError(f"label_map must be (H, W) integer train ids, got shape {arr.shape}")
    table.check(arr)
    return arr.astype(np.int64, copy=True)


def _class_id(class_name: str, table: LabelTable) -> int:
    if class_name not in table.names:
        raise ValueError(f"unknown class name {class_name!r}; known: {', '.join(table.names)}")
    return table.names.index(class_name)


def place_object(
    label_map: np.ndarray | torch.Tensor,
    class_name: str,
    x: int,
    y: int,
    width: int,
    height: int,
    table: LabelTable = CITYSCAPES,
) -> np.ndarray:
    """Draw a filled box of class ``class_name`` whose bottom-centre pixel is (x, y).

    The box covers rows ``y - height + 1 .. y`` and columns ``x - width // 2 .. x - width // 2 +
    width - 1``, clipped to the frame (a box entirely outside changes nothing).

    Args:
        label_map: int (H, W) train ids of ``table`` (void allowed); not modified.
        class_name: a class of ``table`` (e.g. "car", "person").
        x, y: column and row of the box's bottom-centre pixel (may lie outside the frame).
        width, height: box size in pixels, >= 1.
    Returns:
        a new int64 (H, W) map.
    Raises:
        ValueError: unknown class name (the message lists the known ones), size < 1, or a map
            that is not (H, W) or holds unknown ids.
    """
    class_id = _class_id(class_name, table)
    if width < 1 or height < 1:
        raise ValueError(f"width and height must be >= 1, got {width}x{height}")
    out = _as_label_array(label_map, table)
    h, w = out.shape
    top, bottom = int(y) - int(height) + 1, int(y) + 1
    left = int(x) - int(width) // 2
    right = left + int(width)
    top, bottom = max(top, 0), min(bottom, h)
    left, right = max(left, 0), min(right, w)
    if top < bottom and left < right:
        out[top:bottom, left:right] = class_id
    return out


def box_street_map(seed: int, height: int = 64, width: int = 64,
                   table: LabelTable = CITYSCAPES) -> np.ndarray:
    """A street drawn by hand, as a user of the editor would: boxes and one trapezoid.

    Sky above a horizon; a facade (building) or a hedge (vegetation) box on each side; the ground
    below the horizon sidewalk, with a road trapezoid that widens towards the camera
    (:func:`set_road_width`); then one to four cars and up to two people placed with
    :func:`place_object` (boxes of :data:`OBJECT_ASPECT`), bigger the lower they stand. Nothing
    here is the renderer's geometry (no perspective facades, windows, poles or car shapes): these
    maps test whether a generator trained on rendered maps paints a map it was not shown.

    Args:
        seed: draws the horizon, the side boxes, the road width and the objects.
        height, width: map size in pixels (>= 16).
    Returns:
        int64 (height, width) train ids of ``table``.
    """
    if height < 16 or width < 16:
        raise ValueError(f"a box street needs at least 16x16 pixels, got {height}x{width}")
    rng = np.random.default_rng(seed)
    ids = {name: table.id_of(name) for name in ("road", "sidewalk", "building", "vegetation", "sky")}
    out = np.full((height, width), ids["sky"], np.int64)
    horizon = int(height * rng.uniform(0.3, 0.5))
    out[horizon:] = ids["sidewalk"]
    for side in (0, 1):  # a facade or a hedge on each side, reaching above the horizon
        box_w = int(width * rng.uniform(0.15, 0.35))
        top = int(horizon * rng.uniform(0.0, 0.8))
        cols = slice(0, box_w) if side == 0 else slice(width - box_w, width)
        out[top: horizon + int((height - horizon) * 0.3), cols] = ids["building" if rng.random() < 0.7
                                                                      else "vegetation"]
    cols = np.arange(width) + 0.5
    near = rng.uniform(0.7, 1.1)  # road width at the bottom row, as a share of the frame
    for row in range(horizon, height):
        depth = (row + 1 - horizon) / (height - horizon)
        half = width * (0.02 + near * depth) / 2
        out[row, np.abs(cols - width / 2) < half] = ids["road"]
    for _ in range(int(rng.integers(1, 5))):  # cars on the road
        y = int(rng.integers(horizon + 2, height))
        size = max(2, int((y - horizon) * 0.35))
        out = place_object(out, "car", int(rng.integers(width // 4, 3 * width // 4)), y,
                           max(2, int(size * OBJECT_ASPECT["car"])), size, table)
    for _ in range(int(rng.integers(0, 3))):  # people on the sidewalks
        y = int(rng.integers(horizon + 2, height))
        size = max(3, int((y - horizon) * 0.5))
        left = rng.random() < 0.5
        x = int(rng.integers(0, width // 5) if left else rng.integers(4 * width // 5, width))
        out = place_object(out, "person", x, y, max(1, int(size * OBJECT_ASPECT["person"])), size, table)
    return out


def road_fraction(label_map: np.ndarray | torch.Tensor, table: LabelTable = CITYSCAPES) -> float:
    """Share of the ground (road + sidewalk pixels) that is road: a float in [0, 1] (0 with no ground)."""
    arr = _as_label_array(label_map, table)
    road, sidewalk = table.id_of("road"), table.id_of("sidewalk")
    n_road, n_side = int((arr == road).sum()), int((arr == sidewalk).sum())
    return n_road / (n_road + n_side) if n_road + n_side else 0.0


def set_road_width(
    label_map: np.ndarray | torch.Tensor, fraction: float, table: LabelTable = CITYSCAPES
) -> np.ndarray:
    """Make the road the middle ``fraction`` of the ground in every row, the rest sidewalk.

    Only road and sidewalk pixels ("ground") change. In each row holding ground pixels, with
    ``lo``/``hi`` the first/last ground column, ground pixels in the centred band of width
    ``fraction * (hi - lo + 1)`` become road and the other ground pixels become sidewalk
    (``fraction`` 1: all ground is road; 0: all sidewalk). The perspective of the street (wider
    ground near the bottom) is kept.

    Args:
        label_map: int (H, W) train ids of ``table``; not modified.
        fraction: in [0, 1].
    Returns:
        a new int64 (H, W) map.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    out = _as_label_array(label_map, table)
    road, sidewalk = table.id_of("road"), table.id_of("sidewalk")
    ground = (out == road) | (out == sidewalk)
    cols = np.arange(out.shape[1])
    for row in np.flatnonzero(ground.any(axis=1)):
        where = np.flatnonzero(ground[row])
        lo, hi = where[0], where[-1]
        centre, half = (lo + hi + 1) / 2.0, fraction * (hi - lo + 1) / 2.0
        band = (cols + 0.5 >= centre - half) & (cols + 0.5 < centre + half)
        out[row, ground[row] & band] = road
        out[row, ground[row] & ~band] = sidewalk
    return out


class LabelMapEditor:
    """An ipywidgets editor: place an object, change the road width, regenerate the futures.

    Attributes:
        widget: the ``ipywidgets.VBox`` to display (controls above an ``Output``).
        output: the ``ipywidgets.Output`` that shows the edited map and the videos.
        label_map: the last edited int64 (H, W) map (the original until :meth:`update` runs).
        videos: the last generated float (n_samples, T+1, 3, H, W) in [0, 1], or None.

    Args:
        pipeline: a :class:`~seg2vid.generation.pipeline.Pipeline` (e.g. ``Pipeline.from_shipped()``).
        label_map: int (H, W) train ids; resized to the pipeline's size (nearest) first.
        n_samples: futures sampled per regeneration.
        seed: seeds every regeneration (the same controls give the same videos).
        scale: display upscaling.
        fps: frames per second of the GIF.
    """

    #: Step of the road-width slider; the initial value is rounded onto it.
    ROAD_STEP = 0.01

    def __init__(
        self,
        pipeline: Pipeline,
        label_map: np.ndarray | torch.Tensor,
        n_samples: int = 2,
        seed: int = 0,
        scale: int = 3,
        fps: float = 4,
    ):
        import ipywidgets as widgets

        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        self.pipeline = pipeline
        self.table = pipeline.table
        self.base = pipeline.prepare_labels(_as_label_array(label_map, self.table)).numpy()
        self.n_samples, self.seed, self.scale, self.fps = n_samples, seed, scale, fps
        self.label_map = self.base.copy()
        self.videos: torch.Tensor | None = None
        h, w = self.base.shape
        # The browser snaps a slider's value to its step: an initial value off the step would be
        # moved on display (0.89 -> 0.9 with a 0.05 step) and redraw the road nobody touched.
        self.initial_road = round(
            round(road_fraction(self.base, self.table) / self.ROAD_STEP) * self.ROAD_STEP, 2
        )

        self.class_name = widgets.Dropdown(
            options=["(none)", *EDITOR_CLASSES], value="car", description="object"
        )
        self.x = widgets.IntSlider(value=w // 2, min=0, max=w - 1, description="x")
        self.y = widgets.IntSlider(value=h * 4 // 5, min=0, max=h - 1, description="y (bottom)")
        self.size = widgets.IntSlider(value=max(h // 6, 1), min=1, max=h, description="height")
        self.road = widgets.FloatSlider(value=self.initial_road, min=0.0, max=1.0, step=self.ROAD_STEP,
                                        description="road width")
        self.button = widgets.Button(description="regenerate", button_style="primary")
        self.output = widgets.Output()
        self.button.on_click(lambda _button: self.update())
        self.widget = widgets.VBox([
            widgets.HBox([self.class_name, self.x, self.y]),
            widgets.HBox([self.size, self.road, self.button]),
            self.output,
        ])

    def edited_map(self) -> np.ndarray:
        """The map the controls describe: int64 (H, W) (the road edit only once its slider moved)."""
        labels = self.base
        if abs(self.road.value - self.initial_road) > 1e-6:
            labels = set_road_width(labels, float(self.road.value), self.table)
        name = self.class_name.value
        if name in OBJECT_ASPECT:
            height = int(self.size.value)
            width = max(1, round(height * OBJECT_ASPECT[name]))
            labels = place_object(labels, name, self.x.value, self.y.value, width, height, self.table)
        return np.array(labels, dtype=np.int64, copy=True)

    def update(self) -> HTML:
        """Edit the map from the controls, sample ``n_samples`` futures and show them.

        Returns:
            the ``IPython.display.HTML`` put in :attr:`output`: the colourised map, then each
            video, side by side (an animated GIF).
        """
        self.label_map = self.edited_map()
        generator = torch.Generator().manual_seed(self.seed)
        self.videos = self.pipeline.generate(self.label_map, n_samples=self.n_samples, generator=generator)
        picture = self.table.colorize(self.label_map)  # (H, W, 3) uint8
        html = viz.show_video(viz.hstack_videos([picture, *self.videos]), fps=self.fps, scale=self.scale)
        # Set the outputs directly: works in a kernel and headless (no IPython shell needed).
        self.output.outputs = (_display_data(html),)
        return html


def _display_data(html: HTML) -> dict[str, Any]:
    return {
        "output_type": "display_data",
        "data": {"text/html": html.data, "text/plain": "<IPython.core.display.HTML object>"},
        "metadata": {},
    }


def label_map_editor(
    pipeline: Pipeline,
    label_map: np.ndarray | torch.Tensor,
    n_samples: int = 2,
    seed: int = 0,
    scale: int = 3,
) -> LabelMapEditor:
    """Build a :class:`LabelMapEditor`: display ``editor.widget``, call ``editor.update()``.

    Args:
        pipeline: a :class:`~seg2vid.generation.pipeline.Pipeline`.
        label_map: int (H, W) train ids.
        n_samples: futures per regeneration.
        seed: seeds every regeneration.
        scale: display upscaling.
    """
    return LabelMapEditor(pipeline, label_map, n_samples=n_samples, seed=seed, scale=scale)
