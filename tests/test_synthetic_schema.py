"""One synthetic dataset, one item schema, and a train command that does not change its data when
a default is spelled out (``--split train`` once switched to another dataset class)."""

import csv

import torch

from seg2vid import cli
from seg2vid.data import DatasetConfig, build_dataset, frames_and_label_map
from seg2vid.data.synthetic import SceneConfig, SyntheticStreets, render_clip

TRAIN = ["train", "--preset", "tiny", "--size", "32", "--frames", "2", "--batch-size", "2", "--steps", "2",
         "--num-clips", "4", "--sample-every", "0", "--device", "cpu", "--threads", "1"]


def test_build_dataset_builds_the_one_synthetic_dataset_with_the_common_keys():
    config = DatasetConfig(height=32, width=32, frames=2, num_clips=3, seed=5)
    dataset = build_dataset(config)
    assert type(dataset) is SyntheticStreets
    assert (dataset.height, dataset.width, dataset.frames, dataset.report) == (32, 32, 2, [])
    item = dataset[1]
    direct = SyntheticStreets(3, SceneConfig(height=32, width=32, frames=2), seed=5)[1]
    assert item.keys() == direct.keys()
    assert item.keys() >= {"frames", "labels", "label_map", "name", "flow_fwd", "visible_fwd"}
    assert torch.equal(item["label_map"], item["labels"][0]) and item["name"] == "synthetic:seed=5:1"
    clip = render_clip(dataset.config, dataset.clip_seed(1))
    assert torch.equal(item["frames"], clip["frames"]), "the items are the rendered clips, unchanged"
    frames, labels = frames_and_label_map(item)
    assert frames.shape == (3, 3, 32, 32) and labels.dtype == torch.int64


def losses(path):
    with open(path, newline="") as fh:
        return [(row["step"], row["total"]) for row in csv.DictReader(fh)]


def test_train_with_split_train_spelled_out_trains_on_the_same_data(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEG2VID_PROGRESS", "0")
    assert cli.main([*TRAIN, "--out", str(tmp_path / "a")]) == 0
    plain = capsys.readouterr().out
    assert cli.main([*TRAIN, "--split", "train", "--data", "synthetic", "--out", str(tmp_path / "b")]) == 0
    spelled = capsys.readouterr().out
    assert "a pool of 4 synthetic clips" in plain and "a pool of 4 synthetic clips" in spelled
    assert losses(tmp_path / "a" / "log.csv") == losses(tmp_path / "b" / "log.csv")
    # and each resumes the other's run (the same data config is stored)
    assert cli.main([*TRAIN, "--steps", "3", "--split", "train", "--out", str(tmp_path / "a")]) == 0
    assert "resuming" in capsys.readouterr().out


def test_a_held_out_split_is_not_training_data(tmp_path, capsys):
    assert cli.main([*TRAIN, "--split", "val", "--out", str(tmp_path / "c")]) == 2
    assert "synthetic training uses the train split" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
