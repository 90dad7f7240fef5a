"""seg2vid.data.label_io: label-map files as people have them (official Cityscapes colours and
labelIds, palette PNGs, GIFs, JPEGs, broken files) and the non-square decision."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seg2vid.cli import main
from seg2vid.data.label_io import LabelMapError, crop_to_aspect, decode_label_file, fit_label_map
from seg2vid.data.labels import CITYSCAPES, CITYSCAPES_CLASSES, label_ids_to_train_ids
from seg2vid.data.video import read_label_map
from seg2vid.generation.pipeline import read_label_png

MAPS = Path(__file__).resolve().parents[1] / "data" / "label_maps"


@pytest.fixture(scope="module")
def street():
    """(train ids, RGB colours) of a shipped sample map."""
    ids = read_label_png(MAPS / "street_90001_trainids.png")
    with Image.open(MAPS / "street_90001_color.png") as im:
        rgb = np.asarray(im.convert("RGB"))
    return ids, rgb


def test_every_row_of_the_official_colour_table_is_read(tmp_path):
    # one pixel per row of the Cityscapes table (34 ids + license plate), as in *_color.png (RGBA)
    rows = CITYSCAPES_CLASSES
    rgba = np.zeros((1, len(rows), 4), dtype=np.uint8)
    rgba[0, :, :3] = [c.color for c in rows]
    rgba[..., 3] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "aachen_000000_000019_gtFine_color.png")
    ids = read_label_png(tmp_path / "aachen_000000_000019_gtFine_color.png")
    for c, got in zip(rows, ids[0], strict=True):
        # a void-for-training class is 255, except where it shares a class's colour (polegroup =
        # pole's colour, license plate = car's): the class wins
        same_colour = [t.train_id for t in rows if t.color == c.color and 0 <= t.train_id < 255]
        expected = same_colour[0] if same_colour else 255
        assert got == expected, (c.name, got, expected)
    assert {int(v) for v in ids[0]} == set(range(19)) | {255}
    ground = CITYSCAPES.from_colors(np.array([[[81, 0, 81]]], dtype=np.uint8))
    assert ground.tolist() == [[255]]


def test_cityscapes_label_ids_maps_are_converted(tmp_path):
    label_ids = np.arange(34, dtype=np.uint8).reshape(2, 17)
    Image.fromarray(label_ids).save(tmp_path / "a_gtFine_labelIds.png")
    with pytest.warns(UserWarning, match="labelIds"):
        ids = read_label_png(tmp_path / "a_gtFine_labelIds.png")
    np.testing.assert_array_equal(ids, label_ids_to_train_ids(label_ids))
    # not named labelIds, holding ids 19..33 that no train-id map can hold: refused with the hint
    small = np.array([[7, 7, 26], [0, 21, 23]], dtype=np.uint8)
    Image.fromarray(small).save(tmp_path / "mine.png")
    refusal = r"mine\.png.*\[21, 23, 26\].*Cityscapes labelIds map.*_labelIds\.png"
    with pytest.raises(LabelMapError, match=refusal):
        read_label_png(tmp_path / "mine.png")
    Image.fromarray(small).save(tmp_path / "mine_labelIds.png")
    with pytest.warns(UserWarning, match="converted to train ids"):
        assert read_label_png(tmp_path / "mine_labelIds.png").tolist() == [[0, 0, 13], [255, 8, 10]]
    # a train-id map is read as it is, without a warning
    Image.fromarray(np.array([[0, 13], [255, 18]], dtype=np.uint8)).save(tmp_path / "train.png")
    assert read_label_png(tmp_path / "train.png").tolist() == [[0, 13], [255, 18]]


def _shuffled_palette_png(rgb: np.ndarray, path: Path, seed: int = 0) -> None:
    """A palette PNG whose palette order is random, as optimisers (optipng) may write it."""
    colours, index = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    order = np.random.default_rng(seed).permutation(256)[: len(colours)]
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[order] = colours
    im = Image.fromarray(order[index.reshape(rgb.shape[:2])].astype(np.uint8), mode="P")
    im.putpalette(palette.reshape(-1).tolist())
    im.save(path, optimize=True)


def test_palette_pngs_are_decoded_by_their_colours(tmp_path, street):
    ids, rgb = street
    with Image.open(MAPS / "street_90001_color.png") as im:
        im.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(tmp_path / "pillow.png")
    _shuffled_palette_png(rgb, tmp_path / "shuffled.png")
    for name in ("pillow.png", "shuffled.png"):
        with Image.open(tmp_path / name) as im:
            assert im.mode == "P"
            assert np.array_equal(np.asarray(im.convert("RGB")), rgb), "the test file is lossless"
        np.testing.assert_array_equal(read_label_png(tmp_path / name), ids)
        np.testing.assert_array_equal(read_label_map(tmp_path / name, CITYSCAPES).numpy(), ids)


def test_gif_label_maps_are_decoded_by_their_colours(tmp_path, street):
    ids, rgb = street
    Image.fromarray(rgb).save(tmp_path / "map.gif")
    np.testing.assert_array_equal(read_label_png(tmp_path / "map.gif"), ids)


def test_jpeg_maps_are_refused_with_the_reason(tmp_path, street):
    Image.fromarray(street[1]).save(tmp_path / "map.jpg", quality=95)
    with pytest.raises(LabelMapError, match=r"map\.jpg is a JPEG: lossy compression changed the colours"):
        read_label_png(tmp_path / "map.jpg")


@pytest.mark.parametrize(
    "name, make, cause",
    [
        ("empty.png", lambda p, png: p.write_bytes(b""), "is empty"),
        ("random.png", lambda p, png: p.write_bytes(np.random.default_rng(0).bytes(500)), "is not an image"),
        ("notes.png", lambda p, png: p.write_text("road, car, car\n"), "is not an image"),
        ("truncated.png", lambda p, png: p.write_bytes(png[: len(png) // 2]), "is truncated or corrupt"),
    ],
)
def test_broken_files_give_one_clear_error(tmp_path, capsys, name, make, cause):
    path = tmp_path / name
    make(path, (MAPS / "street_90001_color.png").read_bytes())
    with pytest.raises(LabelMapError, match=cause) as info:
        decode_label_file(path)
    assert str(path) in str(info.value)
    # the CLI: one line naming the file and the cause, exit status 2, before any model is loaded
    assert main(["generate", "--labels", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(path) in err and cause in err
    assert not (tmp_path / "out").exists()


def test_fit_label_map_keeps_the_aspect_ratio():
    labels = torch.zeros(128, 256, dtype=torch.int64)
    labels[64:, 100:140] = 13  # a car, 64 x 40 pixels
    fitted = fit_label_map(labels, short_side=64, multiple=16)
    assert fitted.shape == (64, 128)  # not a squashed 64x64
    assert (fitted == 13).sum() == 32 * 20  # nearest neighbour at scale 1/2: the car keeps its shape
    assert set(fitted.unique().tolist()) == {0, 13}
    assert fit_label_map(np.zeros((100, 70), dtype=np.int64), 64, 16).shape == (96, 64)
    assert fit_label_map(torch.zeros(64, 64, dtype=torch.long), 64, 16).shape == (64, 64)
    # more elongated than max_ratio (4): centre-cropped to 4:1 first
    assert fit_label_map(torch.zeros(10, 100, dtype=torch.long), 16, 16, max_ratio=4).shape == (16, 64)
    with pytest.raises(ValueError, match="short_side"):
        fit_label_map(labels, 0)


def test_crop_to_aspect_takes_the_centre():
    labels = torch.arange(4 * 8).reshape(4, 8)
    crop = crop_to_aspect(labels, 64, 64)
    assert torch.equal(crop, labels[:, 2:6])
    assert torch.equal(crop_to_aspect(labels.T, 1, 1), labels.T[2:6])
    assert torch.equal(crop_to_aspect(labels, 1, 2), labels)
