"""seg2vid.generation.editor: label-map edits (place an object, change the road) and the ipywidgets editor."""

import numpy as np
import pytest
import torch

from seg2vid.data.labels import CITYSCAPES
from seg2vid.data.synthetic import SceneConfig, render_clip
from seg2vid.generation.editor import (
    EDITOR_CLASSES,
    LabelMapEditor,
    label_map_editor,
    place_object,
    road_fraction,
    set_road_width,
)

ROAD, SIDEWALK, CAR = CITYSCAPES.id_of("road"), CITYSCAPES.id_of("sidewalk"), CITYSCAPES.id_of("car")


@pytest.fixture(scope="module")
def labels():
    return render_clip(SceneConfig(height=64, width=64, frames=1), seed=0)["labels"][0].numpy()


def _box_mask(shape, rows, cols):
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


@pytest.mark.parametrize("name", EDITOR_CLASSES)
def test_place_object_fills_the_box_and_nothing_else(labels, name):
    before = labels.copy()
    out = place_object(labels, name, x=30, y=50, width=7, height=5)
    assert out.dtype == np.int64 and out.shape == labels.shape
    np.testing.assert_array_equal(labels, before)  # the input is not modified
    box = _box_mask(labels.shape, slice(46, 51), slice(27, 34))  # rows y-h+1..y, cols x-w//2..+w-1
    assert (out[box] == CITYSCAPES.id_of(name)).all()
    np.testing.assert_array_equal(out[~box], labels[~box])


def test_place_object_accepts_a_tensor_and_even_width(labels):
    out = place_object(torch.from_numpy(labels), "car", x=10, y=20, width=4, height=2)
    box = _box_mask(labels.shape, slice(19, 21), slice(8, 12))
    assert (out[box] == CAR).all()
    np.testing.assert_array_equal(out[~box], labels[~box])


def test_place_object_clips_at_the_borders(labels):
    h, w = labels.shape
    out = place_object(labels, "bus", x=w - 2, y=3, width=10, height=8)  # over the top-right corner
    box = _box_mask(labels.shape, slice(0, 4), slice(w - 7, w))
    assert (out[box] == CITYSCAPES.id_of("bus")).all()
    np.testing.assert_array_equal(out[~box], labels[~box])
    out = place_object(labels, "person", x=0, y=h + 5, width=3, height=8)  # bottom-left, partly below
    box = _box_mask(labels.shape, slice(h - 2, h), slice(0, 2))
    assert (out[box] == CITYSCAPES.id_of("person")).all()
    np.testing.assert_array_equal(out[~box], labels[~box])
    np.testing.assert_array_equal(place_object(labels, "car", x=-50, y=-50, width=5, height=5), labels)


def test_place_object_refuses_unknown_classes_and_bad_sizes(labels):
    with pytest.raises(ValueError, match=r"unknown class name 'spaceship'.*known: road, sidewalk"):
        place_object(labels, "spaceship", 10, 10, 3, 3)
    with pytest.raises(ValueError, match="width and height must be >= 1"):
        place_object(labels, "car", 10, 10, 0, 3)
    with pytest.raises(ValueError, match="unknown class id"):
        place_object(np.full((4, 4), 42), "car", 1, 1, 1, 1)


def test_set_road_width_changes_only_the_ground(labels):
    before = labels.copy()
    ground = (labels == ROAD) | (labels == SIDEWALK)
    assert ground.any()
    for fraction in (0.0, 0.3, 0.5, 1.0):
        out = set_road_width(labels, fraction)
        np.testing.assert_array_equal(out[~ground], labels[~ground])
        assert np.isin(out[ground], [ROAD, SIDEWALK]).all()
    np.testing.assert_array_equal(labels, before)
    assert (set_road_width(labels, 1.0)[ground] == ROAD).all()
    assert (set_road_width(labels, 0.0)[ground] == SIDEWALK).all()
    shares = [road_fraction(set_road_width(labels, f)) for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert shares == sorted(shares) and shares[0] == 0.0 and shares[-1] == 1.0


def test_set_road_width_is_a_centred_band():
    row = np.array([[2, SIDEWALK, ROAD, ROAD, ROAD, ROAD, ROAD, ROAD, ROAD, SIDEWALK, 10]])
    # ground: columns 1..9, i.e. [1, 10) with centre 5.5; a band of 4.5 holds pixel centres 3.5..7.5
    out = set_road_width(row, 0.5)
    np.testing.assert_array_equal(out, [[2, SIDEWALK, SIDEWALK, ROAD, ROAD, ROAD, ROAD, ROAD,
                                         SIDEWALK, SIDEWALK, 10]])
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\]"):
        set_road_width(row, 1.5)


def test_editor_builds_and_updates_with_the_shipped_pipeline(labels):
    pytest.importorskip("ipywidgets")
    from seg2vid.generation.pipeline import Pipeline

    try:
        pipe = Pipeline.from_shipped(device="cpu")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    editor = label_map_editor(pipe, labels, n_samples=2, seed=0, scale=1)
    assert isinstance(editor, LabelMapEditor)
    assert editor.output in editor.widget.children and editor.videos is None
    editor.class_name.value, editor.x.value, editor.y.value, editor.size.value = "person", 20, 60, 12
    editor.road.value = 0.5
    html = editor.update()
    assert "data:image/gif;base64," in html.data
    assert len(editor.output.outputs) == 1
    assert "image/gif" in editor.output.outputs[0]["data"]["text/html"]
    h, w = pipe.size
    assert tuple(editor.videos.shape) == (2, pipe.frames + 1, 3, h, w)
    expected = place_object(set_road_width(labels, 0.5), "person", 20, 60, 5, 12)
    np.testing.assert_array_equal(editor.label_map, expected)
    first = editor.videos.clone()
    editor.button.click()  # the button regenerates with the same seed: the same videos
    torch.testing.assert_close(editor.videos, first)


class _StubPipeline:
    """What LabelMapEditor's controls need of a pipeline (no model: nothing is generated)."""

    table = CITYSCAPES

    def prepare_labels(self, label_map):
        return torch.as_tensor(label_map)


def test_an_untouched_editor_edits_nothing_even_after_the_browser_snaps_the_slider(labels):
    pytest.importorskip("ipywidgets")
    editor = LabelMapEditor(_StubPipeline(), labels)
    step = editor.road.step
    on_step = round(editor.road.value / step) * step
    assert abs(editor.road.value - on_step) < 1e-9, "the initial road width must lie on the slider's step"
    editor.road.value = on_step  # what the browser sends back after snapping
    editor.class_name.value = "(none)"
    np.testing.assert_array_equal(editor.edited_map(), labels)
