"""The label table against cityscapesscripts, and the one-hot / colour helpers."""

import numpy as np
import pytest
import torch

from seg2vid.data.labels import CITYSCAPES, CITYSCAPES_CLASSES, LabelTable, label_ids_to_train_ids


def test_table_matches_cityscapesscripts():
    from cityscapesscripts.helpers.labels import labels as reference

    assert len(CITYSCAPES_CLASSES) == len(reference)
    for ours, ref in zip(CITYSCAPES_CLASSES, reference, strict=True):
        assert (ours.name, ours.id, ours.train_id, ours.category, ours.category_id) == (
            ref.name, ref.id, ref.trainId, ref.category, ref.categoryId)
        assert (ours.has_instances, ours.ignore_in_eval, ours.color) == (
            ref.hasInstances, ref.ignoreInEval, tuple(ref.color))


def test_train_table_and_groups():
    assert CITYSCAPES.num_classes == 19 and CITYSCAPES.num_channels == 20
    assert CITYSCAPES.background_ids == tuple(range(11))  # road .. sky
    assert CITYSCAPES.foreground_ids == tuple(range(11, 19))  # person .. bicycle
    assert CITYSCAPES.id_of("car") == 13 and CITYSCAPES.colors[13] == (0, 0, 142)
    with pytest.raises(KeyError, match="unknown class name 'tram'"):
        CITYSCAPES.id_of("tram")


def test_one_hot_and_void_channel():
    labels = torch.tensor([[0, 13], [255, 18]])
    oh = CITYSCAPES.one_hot(labels)
    assert oh.shape == (20, 2, 2) and oh.dtype == torch.float32
    assert torch.equal(oh.sum(0), torch.ones(2, 2))
    assert oh[0, 0, 0] == 1 and oh[13, 0, 1] == 1 and oh[19, 1, 0] == 1 and oh[18, 1, 1] == 1
    batch = CITYSCAPES.one_hot(labels.expand(3, 4, 2, 2))
    assert batch.shape == (3, 4, 20, 2, 2)


@pytest.mark.parametrize("bad", [19, 100, -1])
def test_unknown_ids_are_named(bad):
    with pytest.raises(ValueError, match=rf"unknown class id\(s\) \[{bad}\]"):
        CITYSCAPES.one_hot(torch.tensor([[0, bad]]))


def test_float_label_maps_are_refused():
    with pytest.raises(TypeError, match="integer train ids"):
        CITYSCAPES.colorize(np.zeros((2, 2), np.float32))


def test_colorize_roundtrip_and_unknown_colour():
    labels = np.array([[0, 1, 2], [10, 13, 255]])
    rgb = CITYSCAPES.colorize(labels)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == (128, 64, 128) and tuple(rgb[1, 2]) == (0, 0, 0)
    assert np.array_equal(CITYSCAPES.from_colors(rgb), labels)
    rgb[0, 0] = (1, 2, 3)
    with pytest.raises(ValueError, match=r"\(1, 2, 3\)"):
        CITYSCAPES.from_colors(rgb)


def test_group_mask():
    labels = torch.tensor([[0, 11, 13, 10]])
    assert CITYSCAPES.group_mask(labels, "foreground").tolist() == [[False, True, True, False]]
    assert CITYSCAPES.group_mask(labels, "background").tolist() == [[True, False, False, True]]


def test_custom_table():
    table = LabelTable(names=("ground", "ball"), colors=((0, 255, 0), (255, 0, 0)), foreground=(False, True))
    assert table.num_channels == 3 and table.foreground_ids == (1,)
    assert table.one_hot(torch.tensor([[1, 255]])).shape == (3, 1, 2)
    with pytest.raises(ValueError, match="one colour and one group flag"):
        LabelTable(names=("a", "b"), colors=((0, 0, 0),), foreground=(False, False))


def test_annotation_ids_to_train_ids():
    ids = np.array([[7, 8, 26], [0, 24, 33]])
    assert label_ids_to_train_ids(ids).tolist() == [[0, 1, 13], [255, 11, 18]]
    with pytest.raises(ValueError, match="0..33"):
        label_ids_to_train_ids(np.array([40]))
