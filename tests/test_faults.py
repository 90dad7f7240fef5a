"""Faults a user meets: broken checkpoint files, an unusable --out, a wrong --device, a full disk,
a killed run. Each is one line on stderr naming the file and the cause, exit status 2, and
nothing half-written; a killed run's leftovers are cleaned up and its torn log repaired."""

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seg2vid import cli
from seg2vid.checkpoints import load_checkpoint
from seg2vid.training.loop import read_log

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "checkpoints"
#: A stage-2 run of a few seconds on the CPU.
TRAIN = ["train", "--preset", "tiny", "--size", "32", "--frames", "2", "--batch-size", "2",
         "--num-clips", "4", "--sample-every", "0", "--device", "cpu", "--threads", "1"]
TRAIN1 = ["train-stage1", "--size", "32", "--batch-size", "2", "--num-clips", "4", "--sample-every", "0",
          "--device", "cpu", "--threads", "1"]


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("SEG2VID_PROGRESS", "0")


def broken_file(tmp_path: Path, kind: str) -> Path:
    """An empty, truncated (half of a real checkpoint) or random-bytes ``.pt``."""
    path = tmp_path / f"{kind}.pt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = (SHIPPED / "seg2vid_tiny_64.pt").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


CAUSES = {"empty": "the file is empty", "truncated": "truncated", "random": "not a torch.save file"}


def label_png(tmp_path: Path) -> Path:
    path = tmp_path / "map.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(path)
    return path


def one_error_line(capsys, *words: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def no_temporaries(folder: Path) -> bool:
    return not list(folder.rglob("*.tmp"))


@pytest.mark.parametrize("kind", ["empty", "truncated", "random"])
@pytest.mark.parametrize("command", ["generate", "generate-stage1", "evaluate", "train", "train-stage1"])
def test_a_broken_checkpoint_is_one_line_and_exit_2(tmp_path, capsys, kind, command):
    bad = broken_file(tmp_path, kind)
    out = tmp_path / "out"
    if command.startswith("generate"):
        option = "--checkpoint" if command == "generate" else "--stage1"
        argv = ["generate", "--labels", str(label_png(tmp_path)), option, str(bad), "--out", str(out),
                "--device", "cpu"]
    elif command == "evaluate":
        argv = ["evaluate", "--checkpoint", str(bad), "--num-clips", "1", "--samples", "1",
                "--segmenter", "none", "--device", "cpu", "--out", str(out)]
    else:  # a run whose checkpoint was damaged: the default resume reads it
        (out / "checkpoints").mkdir(parents=True)
        shutil.copy(bad, out / "checkpoints" / "last.pt")
        bad = out / "checkpoints" / "last.pt"
        argv = [*(TRAIN if command == "train" else TRAIN1), "--steps", "1", "--out", str(out)]
    before = bad.read_bytes()
    assert cli.main(argv) == 2
    one_error_line(capsys, str(bad), CAUSES[kind])
    assert not list(out.rglob("*.gif")) and not (out / "eval.json").exists() and no_temporaries(tmp_path)
    assert bad.read_bytes() == before


@pytest.mark.parametrize("command", ["generate", "train", "train-stage1", "evaluate"])
def test_an_out_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, command):
    out = tmp_path / "taken"
    out.write_text("not a folder")
    argv = {"generate": ["generate", "--labels", str(label_png(tmp_path)), "--device", "cpu"],
            "train": [*TRAIN, "--steps", "1"], "train-stage1": [*TRAIN1, "--steps", "1"],
            "evaluate": ["evaluate", "--num-clips", "1", "--samples", "1", "--segmenter", "none",
                         "--device", "cpu"]}[command]
    assert cli.main([*argv, "--out", str(out)]) == 2
    one_error_line(capsys, str(out), "not a folder")
    assert out.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_is_refused(tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        argv = ["generate", "--labels", str(label_png(tmp_path)), "--device", "cpu", "--out", str(out)]
        assert cli.main(argv) == 2
        one_error_line(capsys, str(out), "cannot write there")
        assert not list(out.iterdir())
    finally:
        out.chmod(0o700)


def test_a_folder_that_cannot_be_written_is_refused(tmp_path, capsys, monkeypatch):
    """As root (CI containers) chmod does not stop writes: the check's own failure is simulated."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", kwargs.get("dir"))

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    out = tmp_path / "ro"
    assert cli.main([*TRAIN, "--steps", "1", "--out", str(out)]) == 2
    one_error_line(capsys, str(out), "cannot write there", "permission denied")
    assert not (out / "checkpoints").exists()


@pytest.mark.parametrize("device", ["banana", "cuda"])
@pytest.mark.parametrize("command", ["generate", "train", "train-stage1", "evaluate"])
def test_a_device_that_is_not_there_is_one_line(tmp_path, capsys, device, command):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "out"
    argv = {"generate": ["generate", "--labels", str(label_png(tmp_path))],
            "train": [*TRAIN[:-4], "--steps", "1"], "train-stage1": [*TRAIN1[:-4], "--steps", "1"],
            "evaluate": ["evaluate", "--num-clips", "1"]}[command]
    assert cli.main([*argv, "--device", device, "--out", str(out)]) == 2
    cause = "not a device name" if device == "banana" else "CUDA is not available"
    one_error_line(capsys, repr(device), cause)
    assert not out.exists()


class FullDisk:
    """A file that takes ``room`` bytes, then fails every write with ENOSPC (as a full disk does)."""

    def __init__(self, fh, room: int):
        self.fh, self.room = fh, room

    def write(self, data):
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()


def test_a_full_disk_during_a_checkpoint_keeps_the_last_good_one(tmp_path, capsys, monkeypatch):
    import seg2vid.checkpoints as checkpoints

    out = tmp_path / "run"
    assert cli.main([*TRAIN, "--steps", "2", "--checkpoint-every", "1", "--out", str(out)]) == 0
    good = (out / "checkpoints" / "last.pt").read_bytes()
    capsys.readouterr()
    real_fdopen = os.fdopen
    monkeypatch.setattr(checkpoints.os, "fdopen",
                        lambda fd, mode="r", *a, **k: FullDisk(real_fdopen(fd, mode, *a, **k), 100_000))
    assert cli.main([*TRAIN, "--steps", "3", "--checkpoint-every", "1", "--out", str(out)]) == 2
    err = one_error_line(capsys, f"{out / 'checkpoints' / 'last.pt'}: no space left on device",
                         "last good checkpoint")
    assert "(step 2)" in err and "unexpected pos" not in err
    assert (out / "checkpoints" / "last.pt").read_bytes() == good
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 2
    assert no_temporaries(out)


def test_leftover_temporaries_are_removed_and_a_torn_log_row_is_repaired(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main([*TRAIN, "--steps", "3", "--checkpoint-every", "0", "--out", str(out)]) == 0
    log = out / "log.csv"
    # a process killed in the middle of writing step 3's row (the checkpoint holds step 3)...
    text = log.read_text()
    log.write_text(text[: len(text) - 12])
    # ... and in the middle of atomic writes (SIGKILL runs no cleanup)
    stale = [out / "checkpoints" / ".last.pt.k1ll3d.tmp", out / ".log.csv.x.tmp", out / ".summary.json.y.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    assert cli.main([*TRAIN, "--steps", "5", "--checkpoint-every", "0", "--out", str(out)]) == 0
    assert not any(path.exists() for path in stale)
    steps = read_log(log)["step"]  # failed on the torn row before
    assert list(steps) == [1, 2, 4, 5], "the torn row is dropped, nothing duplicated"
    # a torn row of a step after the checkpoint (killed before saving it) is dropped as well
    with open(log, "a") as fh:
        fh.write("6,0.12")
    assert cli.main([*TRAIN, "--steps", "6", "--checkpoint-every", "0", "--out", str(out)]) == 0
    assert list(read_log(log)["step"]) == [1, 2, 4, 5, 6]
