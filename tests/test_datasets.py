"""Real-dataset loaders and build_dataset, on tiny fixture folders in the datasets' real layouts.

Every fixture encodes where a pixel came from in its value (frame number, person, group ...), so
the tests check that clip i holds exactly the expected source frames, not only shapes.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from seg2vid.data import (
    CITYSCAPES,
    KTH,
    SCENE,
    UCF101,
    CityscapesSequences,
    DatasetConfig,
    VideoFolder,
    build_dataset,
    cache_label_maps,
)
from seg2vid.data import video as video_module
from seg2vid.data.folder import folder_splits, natural_key

ROOT = Path(__file__).resolve().parents[1]
FRAME_H, FRAME_W = 32, 64  # fixture Cityscapes frames (the real ones are 1024x2048, same 1:2)
LABEL_IDS = (0, 13, 255)  # ids the fixture label maps use


@pytest.fixture(autouse=True)
def _quiet(monkeypatch, one_thread):
    monkeypatch.setenv("SEG2VID_PROGRESS", "0")


# ----------------------------------------------------------------------------- fixture writers


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def city_frame(frame: int, seq: int) -> np.ndarray:
    """A uniform RGB frame: R = frame number (mod 256), G = sequence number, B = 7."""
    return np.broadcast_to(np.array([frame % 256, seq, 7], np.uint8), (FRAME_H, FRAME_W, 3)).copy()


def city_labels(frame: int) -> np.ndarray:
    """Vertical stripes of ids 0 / 13 / 255, the first stripe's width depending on the frame."""
    labels = np.full((FRAME_H, FRAME_W), 255, np.uint8)
    cut = 8 + frame % 5
    labels[:, :cut] = 0
    labels[:, cut : 2 * cut] = 13
    return labels


def make_cityscapes(root: Path, split: str, snippets: dict, labels: bool = True) -> Path:
    """ROOT/leftImg8bit_sequence/{split}/{city}/{city}_{seq:06d}_{frame:06d}_leftImg8bit.png, and the
    _ssmask.png label map next to each frame when ``labels``."""
    for (city, seq), numbers in snippets.items():
        for k in numbers:
            stem = root / "leftImg8bit_sequence" / split / city / f"{city}_{seq:06d}_{k:06d}"
            write_png(Path(f"{stem}_leftImg8bit.png"), city_frame(k, seq))
            if labels:
                write_png(Path(f"{stem}_ssmask.png"), city_labels(k))
    return root


CITY_SNIPPETS = {("aachen", 0): range(0, 6), ("aachen", 1): range(10, 16), ("bochum", 0): range(100, 106)}


def write_video(path: Path, frames: np.ndarray) -> None:
    """Lossless AVI (PNG codec): uint8 (N, H, W) grey or (N, H, W, 3) RGB."""
    path.parent.mkdir(parents=True, exist_ok=True)
    grey = frames.ndim == 3
    with av.open(str(path), "w") as container:
        stream = container.add_stream("png", rate=25)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "gray" if grey else "rgb24"
        for f in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="gray" if grey else "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def kth_video(person: int, n: int = 6, base: int = 0) -> np.ndarray:
    """Grey 24x32 (4:3 like KTH's 120x160) frames: centre square = base + 20 * frame + person, sides 255
    (cut away by the square crop)."""
    frames = np.full((n, 24, 32), 255, np.uint8)
    for j in range(n):
        frames[j, :, 4:28] = base + 20 * j + person
    return frames


def make_kth(root: Path, persons=(1, 2, 21), actions=("boxing", "walking"), n: int = 6) -> Path:
    for action in actions:
        for person in persons:
            write_video(root / action / f"person{person:02d}_{action}_d1_uncomp.avi", kth_video(person, n))
    return root


UCF_CLASSES = ("ApplyEyeMakeup", "Basketball", "HandstandPushups")


def ucf_video(cls: int, group: int, n: int = 5) -> np.ndarray:
    """RGB 24x32 frames, centre square R = 20 * frame, G = group, B = 40 * class; sides 255."""
    frames = np.full((n, 24, 32, 3), 255, np.uint8)
    for j in range(n):
        frames[j, :, 4:28] = (20 * j, group, 40 * cls)
    return frames


def ucf_file(cls: str, group: int) -> str:
    spelled = "HandStandPushups" if cls == "HandstandPushups" else cls  # the real dataset's quirk
    return f"{cls}/v_{spelled}_g{group:02d}_c01.avi"


def make_ucf(root: Path, groups=(1, 8, 9), split_files: bool = True) -> Path:
    for c, cls in enumerate(UCF_CLASSES):
        for g in groups:
            write_video(root / "UCF-101" / ucf_file(cls, g), ucf_video(c, g))
    if split_files:
        lists = root / "ucfTrainTestlist"
        lists.mkdir(parents=True)
        train = [f"{ucf_file(cls, g)} {c + 1}" for c, cls in enumerate(UCF_CLASSES) for g in groups if g >= 8]
        test = [ucf_file(cls, g) for cls in UCF_CLASSES for g in groups if g < 8]
        (lists / "trainlist01.txt").write_text("\n".join(train) + "\n")
        (lists / "testlist01.txt").write_text("\n".join(test) + "\n")
    return root


def make_folder(root: Path, videos: dict[str, int], labelled: tuple[str, ...] = ()) -> Path:
    """ROOT/{video}/frames/{k:06d}.png (R = frame, G = video number) and labels/ for ``labelled``."""
    for v, (name, n) in enumerate(videos.items()):
        for k in range(n):
            write_png(root / name / "frames" / f"{k:06d}.png", city_frame(k, v))
            if name in labelled:
                write_png(root / name / "labels" / f"{k:06d}.png", city_labels(k))
    return root


def build_quietly(cls, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return cls(*args, **kwargs)


def check_common(ds, table, height, width, frames):
    item = ds[0]
    assert ds.table is table and (ds.height, ds.width, ds.frames) == (height, width, frames)
    assert item["frames"].shape == (frames + 1, 3, height, width) and item["frames"].dtype == torch.float32
    assert 0 <= item["frames"].min() and item["frames"].max() <= 1
    assert item["label_map"].shape == (height, width) and item["label_map"].dtype == torch.int64
    assert isinstance(item["name"], str)
    table.check(item["label_map"])
    return item


# ----------------------------------------------------------------------------- Cityscapes


@pytest.fixture(scope="module")
def cityscapes_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cityscapes")
    make_cityscapes(root, "train", CITY_SNIPPETS)
    make_cityscapes(root, "val", {("frankfurt", 0): range(275, 281)})
    return root


def test_cityscapes_clip_counts_and_order(cityscapes_root):
    ds = build_quietly(CityscapesSequences, cityscapes_root, "train", 16, 32, frames=2)
    assert ds.report == [] and len(ds) == 3 * (6 - 2)  # N - stride * T starts per snippet
    assert [ds[i]["name"] for i in (0, 3, 4, 8, 11)] == [
        "aachen_000000_000000", "aachen_000000_000003", "aachen_000001_000010",
        "bochum_000000_000100", "bochum_000000_000103",
    ]  # fmt: skip
    strided = build_quietly(CityscapesSequences, cityscapes_root, "train", 16, 32, frames=2, stride=2)
    assert len(strided) == 3 * (6 - 2 * 2)
    stepped = build_quietly(CityscapesSequences, cityscapes_root, "train", 16, 32, frames=2, clip_step=2)
    assert [stepped[i]["name"][-6:] for i in range(len(stepped))] == [
        "000000",
        "000002",
        "000010",
        "000012",
        "000100",
        "000102",
    ]
    val = build_quietly(CityscapesSequences, cityscapes_root, "val", 16, 32, frames=3)
    assert len(val) == 3 and val[0]["name"] == "frankfurt_000000_000275"


def test_cityscapes_frames_and_labels_are_the_source_ones(cityscapes_root):
    ds = build_quietly(CityscapesSequences, cityscapes_root, "train", 16, 32, frames=2, stride=2)
    item = check_common(ds, CITYSCAPES, 16, 32, 2)
    item = ds[3]  # aachen seq 1, start 11: frames 11, 13, 15
    assert item["name"] == "aachen_000001_000011"
    expected = torch.tensor([[11, 1, 7], [13, 1, 7], [15, 1, 7]], dtype=torch.float32) / 255
    assert torch.allclose(item["frames"].mean((2, 3)), expected, atol=1e-6)
    assert torch.allclose(item["frames"].amax((2, 3)), item["frames"].amin((2, 3)), atol=1e-6)
    # label map of the START frame, nearest-resized (pixel centres: every other pixel from the 2nd)
    source = torch.from_numpy(city_labels(11).astype(np.int64))
    assert torch.equal(item["label_map"], source[1::2, 1::2])
    assert set(item["label_map"].unique().tolist()) <= set(LABEL_IDS)
    odd = build_quietly(CityscapesSequences, cityscapes_root, "train", 13, 27, frames=1)
    assert set(odd[0]["label_map"].unique().tolist()) <= set(LABEL_IDS)


def test_cityscapes_missing_frame_and_label_map_are_reported(tmp_path):
    root = make_cityscapes(tmp_path, "train", CITY_SNIPPETS)
    gap = root / "leftImg8bit_sequence/train/aachen/aachen_000000_000003_leftImg8bit.png"
    gap.unlink()
    label = root / "leftImg8bit_sequence/train/bochum/bochum_000000_000101_ssmask.png"
    label.unlink()
    with pytest.warns(UserWarning, match=r"4 clips left out; 2 files missing: .*see dataset.report"):
        ds = CityscapesSequences(root, "train", 16, 32, frames=2)
    assert ds.report == [f"missing frame: {gap}", f"missing label map: {label}"]
    # frame 3 is in the clips starting at 1, 2, 3; the label map of frame 101 only in the clip at 101
    assert len(ds) == 12 - 4
    names = [ds[i]["name"] for i in range(len(ds))]
    assert "aachen_000000_000000" in names and "aachen_000000_000002" not in names
    assert "bochum_000000_000101" not in names and "bochum_000000_000102" in names


def test_cityscapes_errors(tmp_path, cityscapes_root):
    with pytest.raises(FileNotFoundError, match="leftImg8bit_sequence/test"):
        CityscapesSequences(cityscapes_root, "test")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CityscapesSequences(tmp_path / "nowhere")
    # no label maps at all: every clip left out -> an error naming where they were expected
    empty = tmp_path / "labels"
    empty.mkdir()
    with pytest.warns(UserWarning, match="12 clips left out"):
        with pytest.raises(FileNotFoundError, match=f"no clip has all its files.*under {empty}"):
            CityscapesSequences(cityscapes_root, "train", 16, 32, frames=2, label_dir=empty)
    with pytest.raises(ValueError, match="longest snippet has 6 frames"):
        CityscapesSequences(cityscapes_root, "train", 16, 32, frames=6)
    # an id outside the table: the error names the file
    bad_root = make_cityscapes(tmp_path / "bad", "train", {("ulm", 3): range(0, 3)})
    bad = bad_root / "leftImg8bit_sequence/train/ulm/ulm_000003_000000_ssmask.png"
    write_png(bad, np.full((FRAME_H, FRAME_W), 19, np.uint8))
    ds = build_quietly(CityscapesSequences, bad_root, "train", 16, 32, frames=1)
    with pytest.raises(ValueError, match=f"{bad}.*unknown class id.*19"):
        ds[0]


def test_cityscapes_label_dir_tree_and_on_the_fly_segmenter(tmp_path):
    root = make_cityscapes(tmp_path / "cs", "train", {("ulm", 2): range(0, 4)}, labels=False)
    tree = tmp_path / "ssmasks"
    for k in range(4):
        write_png(tree / "train" / "ulm" / f"ulm_000002_{k:06d}_pred.png", city_labels(k))
    ds = build_quietly(
        CityscapesSequences, root, "train", 32, 64, frames=1, label_dir=tree, label_suffix="_pred.png"
    )
    assert len(ds) == 3 and torch.equal(ds[2]["label_map"], torch.from_numpy(city_labels(2).astype(np.int64)))

    def segmenter(x):  # logits (1, 19, H, W): "car" where red > 1/255, else road
        assert x.shape == (1, 3, 16, 32)
        logits = torch.zeros(1, 19, *x.shape[-2:])
        logits[:, 13] = (x[:, 0] > 1.5 / 255).float()
        return logits

    ds = build_quietly(CityscapesSequences, root, "train", 16, 32, frames=1, segmenter=segmenter)
    assert len(ds) == 3
    assert ds[0]["label_map"].unique().tolist() == [0] and ds[2]["label_map"].unique().tolist() == [13]


def toy_segmenter(x: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) -> ids (1, H, W): the frame number (red) modulo 19, at half resolution."""
    ids = (x[:, 0] * 255).round().long() % 19
    return ids[:, ::2, ::2]


def test_cache_label_maps_writes_skips_and_feeds_the_dataset(tmp_path):
    root = make_cityscapes(tmp_path, "val", {("lindau", 0): range(17, 21)}, labels=False)
    calls = []

    def counted(x):
        calls.append(x.shape)
        return toy_segmenter(x)

    out = tmp_path / "maps"
    assert cache_label_maps(root, "val", counted, label_dir=out, show_progress=False) == {
        "written": 4,
        "skipped": 0,
    }
    assert calls == [(1, 3, FRAME_H, FRAME_W)] * 4
    written = out / "val" / "lindau" / "lindau_000000_000018_ssmask.png"
    assert np.array_equal(np.asarray(Image.open(written)), np.full((FRAME_H, FRAME_W), 18, np.uint8))
    assert cache_label_maps(root, "val", counted, label_dir=out, show_progress=False)["skipped"] == 4
    assert len(calls) == 4
    counts = cache_label_maps(root, "val", counted, label_dir=out, overwrite=True, input_size=(8, 16))
    assert counts == {"written": 4, "skipped": 0} and calls[-1] == (1, 3, 8, 16)
    ds = build_quietly(CityscapesSequences, root, "val", 16, 32, frames=1, label_dir=out)
    assert [ds[i]["label_map"].unique().tolist() for i in range(len(ds))] == [[17], [18], [0]]
    with pytest.raises(ValueError, match="returned shape"):
        cache_label_maps(root, "val", lambda x: x[0, 0], label_dir=out, overwrite=True)


def load_script():
    spec = importlib.util.spec_from_file_location("segment_split", ROOT / "scripts" / "segment_split.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Toy(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, 0] * 255).round().long() % 19


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:FutureWarning")
def test_segment_split_script(tmp_path, monkeypatch):
    script = load_script()
    root = make_cityscapes(tmp_path / "cs", "train", {("jena", 1): range(0, 2)}, labels=False)
    (tmp_path / "mytoyseg.py").write_text(
        "def build():\n    return lambda x: (x[:, 0] * 255).round().long() % 19\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert script.main([str(root), "--model", "mytoyseg:build"]) == {"written": 2, "skipped": 0}
    mask = root / "leftImg8bit_sequence/train/jena/jena_000001_000001_ssmask.png"
    assert np.asarray(Image.open(mask)).max() == 1
    scripted = tmp_path / "toy.pt"
    torch.jit.save(torch.jit.script(_Toy()), str(scripted))
    counts = script.main([str(root), "--model", str(scripted), "--suffix", "_ts.png", "--label-ids"])
    assert counts["written"] == 2
    # label ids 0 and 1 are void in Cityscapes: mapped to train id 255
    assert np.unique(np.asarray(Image.open(mask.with_name("jena_000001_000001_ts.png")))).tolist() == [255]
    exported = tmp_path / "toy.pt2"
    dims = {2: torch.export.Dim("h"), 3: torch.export.Dim("w")}
    torch.export.save(
        torch.export.export(_Toy(), (torch.rand(1, 3, 32, 64),), dynamic_shapes=(dims,)), exported
    )
    counts = script.main(
        [str(root), "--model", str(exported), "--suffix", "_ep.png", "--input-size", "16", "32"]
    )
    assert counts["written"] == 2
    assert np.unique(np.asarray(Image.open(mask.with_name("jena_000001_000001_ep.png")))).tolist() == [1]
    with pytest.raises(SystemExit, match="neither an existing model file"):
        script.main([str(root), "--model", "no_such_model.pt"])
    sys.modules.pop("mytoyseg", None)


# ----------------------------------------------------------------------------- KTH


def test_kth_splits_actions_and_content(tmp_path):
    root = make_kth(tmp_path)
    train = build_quietly(KTH, root, "train", ["walking", "boxing"], height=16, width=16, frames=2)
    check_common(train, SCENE, 16, 16, 2)
    assert len(train) == 2 * 2 * (6 - 2)  # 2 actions x persons 1, 2 x 4 starts
    assert (
        train[0]["name"] == "person01_boxing_d1:start=0" and train[8]["name"] == "person01_walking_d1:start=0"
    )
    test = build_quietly(KTH, root, "test", actions=["walking"], height=16, width=16, frames=2, stride=2)
    assert len(test) == 6 - 2 * 2 and test[1]["name"] == "person21_walking_d1:start=1"
    item = test[1]  # frames 1, 3, 5 of person 21: centre square only (the 255 sides are cropped)
    expected = torch.tensor([20 * j + 21 for j in (1, 3, 5)], dtype=torch.float32) / 255
    assert torch.equal(item["frames"], expected.view(3, 1, 1, 1).expand(3, 3, 16, 16))
    assert torch.equal(item["label_map"], torch.zeros(16, 16, dtype=torch.int64))
    with pytest.raises(ValueError, match="unknown KTH action.*known: boxing, handclapping"):
        KTH(root, actions=["dancing"])
    with pytest.raises(FileNotFoundError, match="missing: .*handwaving; expected"):
        KTH(root, actions=["handwaving"])
    with pytest.raises(FileNotFoundError, match="handclapping.*select yours with actions="):
        KTH(root)
    with pytest.raises(ValueError, match="split must be"):
        KTH(root, split="validation")


def test_video_cache_is_reused_and_refreshed(tmp_path, monkeypatch):
    root = make_kth(tmp_path / "kth", persons=(1, 2), actions=("boxing",))
    decoded = []
    real = video_module.decode_video

    def counting(path, grey=False):
        decoded.append(Path(path).name)
        return real(path, grey)

    monkeypatch.setattr(video_module, "decode_video", counting)
    cache = tmp_path / "cache"
    first = build_quietly(KTH, root, actions=("boxing",), height=16, width=16, frames=2, cache_dir=cache)
    assert len(decoded) == 2 and len(list(cache.rglob("*.npy"))) == 2
    second = build_quietly(KTH, root, actions=("boxing",), height=16, width=16, frames=2, cache_dir=cache)
    second[0], second[5]
    assert len(decoded) == 2, "a second build must read the cache, not decode again"
    assert torch.equal(first[5]["frames"], second[5]["frames"])
    # a changed video (new content, new mtime) is decoded again and the stale entry removed
    video = root / "boxing" / "person01_boxing_d1_uncomp.avi"
    write_video(video, kth_video(1, n=7, base=100))
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = build_quietly(KTH, root, actions=("boxing",), height=16, width=16, frames=2, cache_dir=cache)
    assert decoded[2:] == ["person01_boxing_d1_uncomp.avi"] and len(third) == (7 - 2) + (6 - 2)
    assert third[0]["frames"][0, 0, 0, 0] == pytest.approx(101 / 255)
    assert len(list(cache.rglob("*.npy"))) == 2
    # default cache location: ROOT/.seg2vid_cache
    build_quietly(KTH, root, actions=("boxing",), height=8, width=8, frames=1)
    assert len(list((root / ".seg2vid_cache").rglob("*.npy"))) == 2


def test_unreadable_video_is_reported_not_fatal(tmp_path):
    root = make_kth(tmp_path, persons=(1,), actions=("running",))
    broken = root / "running" / "person02_running_d3_uncomp.avi"
    broken.write_bytes(b"not a video" * 50)
    with pytest.warns(UserWarning, match=r"KTH train: 1 videos left out; 1 files missing or unreadable"):
        ds = KTH(root, actions=["running"], height=16, width=16, frames=2)
    assert len(ds) == 4 and len(ds.report) == 1 and str(broken) in ds.report[0]


# ----------------------------------------------------------------------------- UCF-101


@pytest.fixture(scope="module")
def ucf_root(tmp_path_factory):
    return make_ucf(tmp_path_factory.mktemp("ucf"))


def test_ucf101_split_files_classes_and_content(ucf_root):
    train = build_quietly(
        UCF101, ucf_root, "train", ["Basketball", "ApplyEyeMakeup"], height=16, width=16, frames=2
    )
    check_common(train, SCENE, 16, 16, 2)
    assert len(train) == 2 * 2 * (5 - 2)  # 2 classes x groups 8, 9 x 3 starts
    assert train[0]["name"] == "v_ApplyEyeMakeup_g08_c01:start=0"
    assert train[6]["name"] == "v_Basketball_g08_c01:start=0"
    item = train[7]  # Basketball (class 1), group 8, start 1
    assert item["frames"][:, :, 5, 5].mul(255).round().tolist() == [[20, 8, 40], [40, 8, 40], [60, 8, 40]]
    test = build_quietly(UCF101, ucf_root, "test", ["HandstandPushups"], height=16, width=16, frames=2)
    assert [test[i]["name"] for i in range(len(test))] == [
        f"v_HandStandPushups_g01_c01:start={k}" for k in range(3)
    ]
    everything = build_quietly(UCF101, ucf_root, "test", height=16, width=16, frames=2)
    assert len(everything) == 3 * 3
    with pytest.raises(
        ValueError, match="unknown UCF-101 class.*'Juggling'.*known: ApplyEyeMakeup, Basketball"
    ):
        UCF101(ucf_root, classes=["Juggling"])


def test_ucf101_fallback_rule_and_missing_listed_video(tmp_path):
    root = make_ucf(tmp_path / "nolists", split_files=False)
    with pytest.warns(
        UserWarning, match=r"trainlist01.txt not found; using the official rule.*groups 1-7 test"
    ):
        train = UCF101(root, "train", ["Basketball"], height=8, width=8, frames=1)
    assert [train[i]["name"] for i in (0, len(train) - 1)] == [
        "v_Basketball_g08_c01:start=0",
        "v_Basketball_g09_c01:start=3",
    ]
    with pytest.warns(UserWarning, match="testlist01.txt not found"):
        test = UCF101(root, "test", ["Basketball"], height=8, width=8, frames=1)
    assert {test[i]["name"].split(":")[0] for i in range(len(test))} == {"v_Basketball_g01_c01"}
    with pytest.raises(FileNotFoundError, match="UCF-101 videos not found: expected the folder"):
        UCF101(tmp_path / "nolists" / "UCF-101")
    listed = make_ucf(tmp_path / "lists")
    gone = listed / "UCF-101" / "Basketball" / "v_Basketball_g09_c01.avi"
    gone.unlink()
    with pytest.warns(UserWarning, match="1 videos left out"):
        ds = UCF101(listed, "train", ["Basketball"], height=8, width=8, frames=1)
    assert ds.report == [f"missing video: {gone} (listed in ucfTrainTestlist/)"] and len(ds) == 4


# ----------------------------------------------------------------------------- folder of your own videos


def test_folder_without_labels_uses_scene_zeros(tmp_path):
    root = make_folder(tmp_path, {"walk": 5, "drive": 4})
    ds = build_quietly(VideoFolder, root, 16, 32, frames=2)
    check_common(ds, SCENE, 16, 32, 2)
    assert len(ds) == (4 - 2) + (5 - 2)
    assert [ds[i]["name"] for i in (0, 2)] == ["drive:start=0", "walk:start=0"]  # videos in name order
    assert ds[3]["frames"][:, 0, 0, 0].mul(255).round().tolist() == [1, 2, 3]


def test_folder_with_labels_and_a_missing_one(tmp_path):
    root = make_folder(tmp_path, {"a": 4, "b": 3}, labelled=("a", "b"))
    missing = root / "b" / "labels" / "000000.png"
    missing.unlink()
    with pytest.warns(UserWarning, match="1 clips left out; 1 files missing"):
        ds = VideoFolder(root, 16, 32, frames=1)
    assert ds.table is CITYSCAPES and ds.report == [f"missing label map: {missing}"]
    assert [ds[i]["name"] for i in range(len(ds))] == ["a:start=0", "a:start=1", "a:start=2", "b:start=1"]
    assert torch.equal(ds[1]["label_map"], torch.from_numpy(city_labels(1).astype(np.int64))[1::2, 1::2])
    # a video without a labels/ folder, when the others have one: all its clips left out, reported
    make_folder(tmp_path / "mixed", {"a": 3, "b": 3}, labelled=("a",))
    with pytest.warns(UserWarning, match="2 clips left out"):
        mixed = VideoFolder(tmp_path / "mixed", 8, 8, frames=1)
    assert len(mixed) == 2 and "missing labels folder" in mixed.report[0]
    with pytest.raises(FileNotFoundError, match="frames/\\*.png"):
        VideoFolder(tmp_path / "mixed" / "a" / "frames")


def test_folder_frames_are_sorted_naturally(tmp_path):
    for k in range(12):  # 0.png .. 11.png without leading zeros; string order would be 0, 1, 10, 11, 2, ...
        write_png(tmp_path / "v" / "frames" / f"{k}.png", city_frame(k, 0))
    ds = build_quietly(VideoFolder, tmp_path, 8, 8, frames=11)
    assert [p.name for p in ds.videos[0][1]] == [f"{k}.png" for k in range(12)]
    assert ds[0]["frames"][:, 0, 0, 0].mul(255).round().tolist() == list(range(12))
    assert sorted(["a10", "a9", "A2", "b1"], key=natural_key) == ["A2", "a9", "a10", "b1"]


def test_folder_frames_and_labels_are_centre_cropped_not_squeezed(tmp_path):
    frame = np.zeros((32, 64, 3), np.uint8)
    frame[:, 16:48] = 200  # the centre square is bright, the sides dark
    labels = np.full((32, 64), CITYSCAPES.id_of("sky"), np.uint8)
    labels[:, 16:48] = CITYSCAPES.id_of("road")
    for k in range(2):
        write_png(tmp_path / "v" / "frames" / f"{k:06d}.png", frame)
        write_png(tmp_path / "v" / "labels" / f"{k:06d}.png", labels)
    item = build_quietly(VideoFolder, tmp_path, 16, 16, frames=1)[0]
    # a squeeze would mix the dark sides in (a mean of 100); the crop keeps only the centre square
    assert torch.allclose(item["frames"], torch.full((2, 3, 16, 16), 200 / 255))
    assert (item["label_map"] == CITYSCAPES.id_of("road")).all()


def test_folder_splits_hold_out_whole_videos(tmp_path):
    names = [f"video{i:02d}" for i in range(20)]
    splits = folder_splits(names)
    assert folder_splits(list(reversed(names))) == splits  # deterministic, order-free
    assert set(splits.values()) == {"train", "val", "test"}
    assert {n: s for n, s in folder_splits(names + ["extra"]).items() if n != "extra"} == splits  # stable
    root = make_folder(tmp_path / "many", dict.fromkeys(names[:6], 3))
    parts = {s: build_quietly(VideoFolder, root, 8, 8, frames=1, split=s) for s in ("train", "val", "test")}
    videos = {s: {name for name, _ in ds.videos} for s, ds in parts.items()}
    assert videos["train"] | videos["val"] | videos["test"] == set(names[:6])
    assert not (videos["train"] & videos["val"]) and not (videos["train"] & videos["test"])
    assert not (videos["val"] & videos["test"]) and videos["val"] and videos["test"]
    assert all(not ds.overlaps_training for ds in parts.values())
    # the config route: DatasetConfig(kind="folder", split="test") holds out the same videos
    test = build_dataset(DatasetConfig("folder", str(root), "test", 8, 8, frames=1))
    assert {name for name, _ in test.videos} == videos["test"]


def test_a_folder_too_small_to_hold_out_a_video_warns(tmp_path):
    root = make_folder(tmp_path, {"only": 3})
    train = build_quietly(VideoFolder, root, 8, 8, frames=1, split="train")
    with pytest.warns(UserWarning, match="split 'val' OVERLAPS TRAINING"):
        val = VideoFolder(root, 8, 8, frames=1, split="val")
    assert val.overlaps_training and not train.overlaps_training and len(val) == len(train) == 2
    with pytest.raises(ValueError, match="split must be one of"):
        VideoFolder(root, 8, 8, frames=1, split="dev")


# ----------------------------------------------------------------------------- build_dataset


def test_build_dataset_every_kind(tmp_path, cityscapes_root, ucf_root):
    synthetic = build_dataset(DatasetConfig(height=16, width=16, frames=2, num_clips=3, seed=5))
    item = check_common(synthetic, CITYSCAPES, 16, 16, 2)
    assert {"labels", "flow_fwd", "visible_bwd"} <= set(item) and torch.equal(
        item["label_map"], item["labels"][0]
    )
    assert item["name"] == "synthetic:seed=5:0" and len(synthetic) == 3 and synthetic.report == []
    val = build_dataset(DatasetConfig(split="val", height=16, width=16, frames=2, num_clips=3, seed=5))
    assert not torch.equal(val[0]["frames"], item["frames"])

    kth_root = str(make_kth(tmp_path / "kth", persons=(3,)))
    configs = {
        "cityscapes": (DatasetConfig("cityscapes", str(cityscapes_root), height=16, width=32, frames=2),
                       CITYSCAPES),
        "kth": (DatasetConfig("kth", kth_root, frames=1, classes=("boxing",), height=8, width=8,
                              cache_dir=str(tmp_path / "c")), SCENE),
        "ucf101": (DatasetConfig("ucf101", str(ucf_root), "test", frames=1, classes=("Basketball",),
                                 height=8, width=8, clip_step=2), SCENE),
        "folder": (DatasetConfig("folder", str(make_folder(tmp_path / "f", {"x": 3})), frames=2), SCENE),
    }  # fmt: skip
    lengths = {"cityscapes": 12, "kth": 5, "ucf101": 2, "folder": 1}
    for kind, (config, table) in configs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ds = build_dataset(config)
        h, w = config.size
        check_common(ds, table, h, w, config.frames)
        assert len(ds) == lengths[kind] and ds.report == [], kind
    assert DatasetConfig("folder", "x").size == (64, 64) and DatasetConfig("kth", "x").size == (128, 128)


def test_dataset_config_round_trip_and_errors(tmp_path):
    config = DatasetConfig("ucf101", "/data/ucf", "test", 32, 32, frames=4, stride=2, classes=["Basketball"])
    assert config.classes == ("Basketball",)
    data = config.to_dict()
    assert data["classes"] == ["Basketball"] and all(
        isinstance(v, (str, int, list, type(None))) for v in data.values()
    )
    assert DatasetConfig.from_dict(data) == config
    assert DatasetConfig.from_dict(DatasetConfig().to_dict()) == DatasetConfig()
    with pytest.raises(ValueError, match="unknown DatasetConfig field.*'colour'"):
        DatasetConfig.from_dict({**data, "colour": 1})
    with pytest.raises(ValueError, match="unknown dataset kind 'imagenet'; known: synthetic, cityscapes"):
        DatasetConfig("imagenet")
    with pytest.raises(ValueError, match="needs root="):
        DatasetConfig("kth")
    with pytest.raises(ValueError, match="unknown KTH action"):
        DatasetConfig("kth", "/k", classes=("boxing", "skiing"))
    with pytest.raises(ValueError, match="classes= selects"):
        DatasetConfig("cityscapes", "/c", classes=("car",))
    with pytest.raises(ValueError, match="split 'val2'"):
        DatasetConfig("cityscapes", "/c", split="val2")
    with pytest.raises(FileNotFoundError, match="KTH action folder.*boxing"):
        build_dataset(DatasetConfig("kth", str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="expected the folder .*leftImg8bit_sequence/train"):
        build_dataset(DatasetConfig("cityscapes", str(tmp_path)))
    with pytest.raises(ValueError, match="segmenter= applies to Cityscapes only"):
        build_dataset(DatasetConfig(), segmenter=toy_segmenter)


def test_synthetic_style_is_one_dataset_config_field():
    from seg2vid.data.synthetic import SceneConfig, render_clip

    config = DatasetConfig(style="classic", num_clips=2, height=32, width=32, frames=2)
    assert DatasetConfig.from_dict(config.to_dict()) == config
    item = build_dataset(config)[0]
    seed = item["name"].split("=")[1].split(":")[0]
    assert seed == "0"
    classic = render_clip(SceneConfig(height=32, width=32, frames=2, style="classic"),
                          build_dataset(config).clip_seed(0))
    assert torch.equal(item["frames"], classic["frames"])
    assert DatasetConfig().style == "rich"  # the default since seg2vid 0.2
    default = build_dataset(DatasetConfig(num_clips=2, height=32, width=32, frames=2))[0]
    assert not torch.equal(default["frames"], item["frames"])
    with pytest.raises(ValueError, match="unknown synthetic style"):
        DatasetConfig(style="fancy")
    with pytest.raises(ValueError, match="synthetic dataset only"):
        DatasetConfig(kind="kth", root="/nowhere", style="classic")
