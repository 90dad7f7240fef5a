"""seg2vid.generation.pipeline: label map -> first frame -> futures with the shipped 64x64 checkpoints."""

import numpy as np
import pytest
import torch
from PIL import Image

import seg2vid.generation.pipeline as pipeline_module
from seg2vid.cli import main
from seg2vid.data.first_frames import render_first_frames
from seg2vid.data.labels import CITYSCAPES
from seg2vid.data.synthetic import SceneConfig, render_clip
from seg2vid.evaluation.first_frames import class_mean_colors
from seg2vid.generation.pipeline import Pipeline, read_label_png

#: A scene seed far from any training pool (pools use small dataset seeds); it has three cars.
UNSEEN_SEED = 424242


@pytest.fixture(scope="module")
def pipe():
    return Pipeline.from_shipped(device="cpu")


@pytest.fixture(scope="module")
def unseen_labels():
    return render_clip(SceneConfig(height=64, width=64, frames=1), seed=UNSEEN_SEED)["labels"][0]


def _seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_end_to_end_on_an_unseen_label_map(pipe, unseen_labels):
    videos = pipe.generate(unseen_labels, n_samples=3, generator=_seeded())
    assert videos.shape == (3, pipe.frames + 1, 3, 64, 64)
    assert torch.isfinite(videos).all() and videos.min() >= 0 and videos.max() <= 1

    # frame 0 follows the map: each large class looks most like that class in the synthetic data
    images, labels = render_first_frames(16, 64, 64, seed=7)
    reference = class_mean_colors(images, labels)
    generated = class_mean_colors(videos[:1, 0], unseen_labels[None])
    large = ("road", "sky", "building")
    for name in large:
        assert name in generated
        distances = {other: float((generated[name][0] - reference[other][0]).norm()) for other in large}
        assert min(distances, key=distances.get) == name, (name, distances)

    # the cars move: frames change inside them (measured ~0.12 mean abs difference)
    cars = unseen_labels == CITYSCAPES.id_of("car")
    assert cars.sum() > 10
    motion = (videos[:, 1:] - videos[:, :1]).abs().mean(2)  # (n, T, H, W)
    assert float(motion[:, :, cars].mean()) > 0.04  # measured 0.125

    # same seed, same videos; the first frame is shared by the samples
    assert torch.equal(videos, pipe.generate(unseen_labels, n_samples=3, generator=_seeded()))
    assert torch.equal(videos[0, 0], videos[2, 0])


def test_label_maps_are_resized_by_nearest_neighbour_without_new_classes(pipe, capsys):
    # road (0) and sky (10) in stripes, a person (11) column: interpolating ids would invent
    # classes between them (5 = pole); nearest neighbour at 2x repeats every pixel exactly.
    small = torch.zeros(32, 32, dtype=torch.int64)
    small[:, 8:16] = CITYSCAPES.id_of("sky")
    small[:, 20] = CITYSCAPES.id_of("person")
    resized = pipe.prepare_labels(small)
    assert resized.shape == (64, 64) and resized.dtype == torch.int64
    assert torch.equal(resized, small.repeat_interleave(2, 0).repeat_interleave(2, 1))
    assert "resizing the 32x32 label map" in capsys.readouterr().err


def test_given_first_frame_and_resizing(pipe, unseen_labels, capsys):
    image = np.full((64, 64, 3), 128, dtype=np.uint8)
    videos = pipe.generate(unseen_labels.numpy(), n_samples=2, first_frame=image, generator=_seeded())
    assert torch.allclose(videos[:, 0], torch.full((2, 3, 64, 64), 128 / 255))
    big = unseen_labels.repeat_interleave(2, 0).repeat_interleave(2, 1)  # 128x128
    resized = pipe.generate(big, n_samples=1, generator=_seeded())
    assert resized.shape == (1, pipe.frames + 1, 3, 64, 64)
    assert "resizing the 128x128 label map" in capsys.readouterr().err


def test_a_non_square_map_is_centre_cropped_not_squashed(pipe, unseen_labels, capsys):
    wide = torch.full((64, 128), CITYSCAPES.id_of("sky"), dtype=torch.int64)
    wide[:, 32:96] = unseen_labels  # the unseen scene in the middle of a wider map
    assert torch.equal(pipe.prepare_labels(wide), unseen_labels)
    assert "centre-cropping the 64x128 label map to 64x64" in capsys.readouterr().err


def test_png_encodings_give_the_same_video(pipe, unseen_labels, tmp_path):
    ids = unseen_labels.numpy().astype(np.uint8)
    Image.fromarray(ids).save(tmp_path / "ids.png")
    Image.fromarray(CITYSCAPES.colorize(ids)).save(tmp_path / "colors.png")
    from_ids, from_colors = read_label_png(tmp_path / "ids.png"), read_label_png(tmp_path / "colors.png")
    assert from_ids.dtype == np.int64 and np.array_equal(from_ids, unseen_labels.numpy())
    assert np.array_equal(from_ids, from_colors)
    a = pipe.generate(from_ids, n_samples=2, generator=_seeded(5))
    b = pipe.generate(from_colors, n_samples=2, generator=_seeded(5))
    assert torch.equal(a, b)


def test_unknown_colour_id_and_missing_file_are_clear_errors(pipe, tmp_path):
    rgb = CITYSCAPES.colorize(np.zeros((16, 16), dtype=np.int64))
    rgb[3, 4] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "bad_colour.png")
    with pytest.raises(ValueError, match=r"\(1, 2, 3\)"):
        read_label_png(tmp_path / "bad_colour.png")
    ids = np.zeros((16, 16), dtype=np.uint8)
    ids[5, 5] = 77
    Image.fromarray(ids).save(tmp_path / "bad_id.png")
    with pytest.raises(ValueError, match="77"):
        read_label_png(tmp_path / "bad_id.png")
    with pytest.raises(ValueError, match="77"):
        pipe.generate(torch.from_numpy(ids.astype(np.int64)), n_samples=1)
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        read_label_png(tmp_path / "nowhere.png")


def test_missing_checkpoint_is_named(monkeypatch):
    monkeypatch.setattr(pipeline_module, "SHIPPED_STAGE1", "data/checkpoints/no_such_stage1.pt")
    with pytest.raises(FileNotFoundError, match="no_such_stage1.pt"):
        Pipeline.from_shipped(device="cpu")


def test_bf16_generation_is_float32_and_within_a_grey_level_of_fp32(pipe, unseen_labels, monkeypatch):
    """precision="bf16" runs stage 2 under bfloat16 autocast: the same seed draws the same futures
    (z in fp32), the videos come back float32 and differ from the exact ones by less than one 8-bit
    grey level on average; "auto" on a CPU without native bf16 IS fp32, bit for bit."""
    import seg2vid.models.seg2vid as stage2_module
    from seg2vid import utils

    exact = pipe.generate(unseen_labels, n_samples=2, generator=torch.Generator().manual_seed(5))
    fast = pipe.generate(unseen_labels, n_samples=2, generator=torch.Generator().manual_seed(5),
                         precision="bf16")
    assert fast.dtype == torch.float32 and fast.shape == exact.shape and fast.is_contiguous()
    assert not torch.equal(fast, exact)
    assert (fast - exact).abs().mean() < 1 / 255
    monkeypatch.setattr(utils, "bf16_supported", lambda device="cpu": False)
    auto = pipe.generate(unseen_labels, n_samples=2, generator=torch.Generator().manual_seed(5),
                         precision="auto")
    assert torch.equal(auto, exact)
    with pytest.raises(ValueError, match="precision must be one of"):
        pipe.generate(unseen_labels, n_samples=1, precision="fp8")
    assert stage2_module.uses_bf16 is utils.uses_bf16


def test_cli_generate_writes_gif_mp4_and_sheet(unseen_labels, tmp_path, capsys):
    Image.fromarray(CITYSCAPES.colorize(unseen_labels)).save(tmp_path / "map.png")
    out = tmp_path / "gen"
    args = ["generate", "--labels", str(tmp_path / "map.png"), "--out", str(out), "--samples", "2",
            "--seed", "3", "--device", "cpu", "--scale", "1", "--precision", "bf16"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    names = ["sample_0.gif", "sample_0.mp4", "sample_1.gif", "sample_1.mp4", "samples.png"]
    for name in names:
        assert (out / name).is_file() and str(out / name) in printed
    # one number per sample: how far it moves the scene (two samples, two different numbers)
    line = next(row for row in printed.splitlines() if "how far each future moves" in row)
    changes = [float(v) for v in line.split(":")[-1].split(",")]
    assert len(changes) == 2 and all(0 < c < 1 for c in changes) and changes[0] != changes[1]
    sheet = np.asarray(Image.open(out / "samples.png"))
    assert sheet.shape[0] >= 2 * 64 and sheet.shape[1] >= 6 * 64  # label map + 1 + T frames per row

    bad = CITYSCAPES.colorize(unseen_labels)
    bad[0, 0] = (9, 9, 8)
    Image.fromarray(bad).save(tmp_path / "bad.png")
    assert main(["generate", "--labels", str(tmp_path / "bad.png"), "--out", str(out)]) == 2
    assert "(9, 9, 8)" in capsys.readouterr().err


def test_demo_writes_clip_and_futures(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--size", "32x48", "--frames", "2", "--scale", "1",
                 "--samples", "2"]) == 0
    printed = capsys.readouterr().out
    for name in ("clip.gif", "clip.mp4", "strip.png", "future_0.gif", "future_1.mp4", "futures.png"):
        assert (out / name).is_file() and str(out / name) in printed
    assert len(list((out / "flow").glob("*.flo"))) == 2


def test_demo_without_checkpoints_still_writes_the_clip(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pipeline_module, "SHIPPED_STAGE2", "data/checkpoints/no_such_stage2.pt")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--size", "32x48", "--frames", "2", "--scale", "1"]) == 0
    printed = capsys.readouterr().out
    assert "note" in printed and "no_such_stage2.pt" in printed
    assert (out / "clip.gif").is_file() and (out / "strip.png").is_file()
    assert not (out / "futures.png").exists()
