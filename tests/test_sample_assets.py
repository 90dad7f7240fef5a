"""The shipped sample label maps in data/label_maps (inputs for `seg2vid generate`)."""

from pathlib import Path

import numpy as np
import pytest

from seg2vid.data.labels import CITYSCAPES
from seg2vid.data.synthetic import SYNTHETIC_CLASSES
from seg2vid.generation.pipeline import read_label_png

MAPS = Path(__file__).resolve().parents[1] / "data" / "label_maps"
PAIRS = sorted(p.name.removesuffix("_trainids.png") for p in MAPS.glob("*_trainids.png"))


def test_there_are_sample_maps():
    assert len(PAIRS) >= 2, f"expected sample label maps in {MAPS} (scripts/make_sample_label_maps.py)"


@pytest.mark.parametrize("stem", PAIRS)
def test_both_encodings_hold_the_same_map(stem):
    ids = read_label_png(MAPS / f"{stem}_trainids.png")
    colours = read_label_png(MAPS / f"{stem}_color.png")
    assert ids.shape == (64, 64) and np.array_equal(ids, colours)
    allowed = {CITYSCAPES.id_of(n) for n in SYNTHETIC_CLASSES}
    assert set(np.unique(ids).tolist()) <= allowed
