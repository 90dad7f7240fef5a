"""Multi-process training on the CPU: 2 processes, PyTorch's gloo backend, DDP.

One ``torchrun`` run of ``seg2vid train`` with 2 processes checks that the ranks stay in sync
(identical parameters after N steps), that they train on different clips and that only rank 0
writes files.
"""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys

import pytest
import torch

from seg2vid.checkpoints import load_checkpoint
from seg2vid.training.distributed import ProcessInfo, process_info

STEPS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_process_info_reads_torchrun_variables():
    assert process_info({}) == ProcessInfo(0, 1, 0)
    info = process_info({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert info.distributed and not info.is_main and info.local_rank == 1
    with pytest.raises(ValueError, match="integers"):
        process_info({"RANK": "one"})


#: Run by each torchrun rank: ``seg2vid train`` (the CLI, as the README shows), with the trainer's
#: ``train`` wrapped so that every rank also saves its parameters and the clips it drew.
WORKER = """
import sys
from pathlib import Path

import torch

from seg2vid import cli
from seg2vid.training.stage2 import Trainer

out, steps = Path(sys.argv[1]), int(sys.argv[2])
original = Trainer.train


def train(self, *args, **kwargs):
    state = lambda: {k: v.detach().clone() for k, v in self.model.state_dict().items()}
    initial, indices = state(), [self.clip_indices(s) for s in range(1, steps + 1)]
    result = original(self, *args, **kwargs)
    torch.save({"initial": initial, "params": state(), "indices": indices, "is_main": self.is_main},
               out / f"rank{self.process.rank}.pt")
    return result


Trainer.train = train
sys.exit(cli.main(sys.argv[3:]))
"""


def test_torchrun_two_gloo_processes_stay_in_sync_and_only_rank0_writes(tmp_path):
    """``torchrun --nproc_per_node 2 ... seg2vid train`` on the CPU, as the README shows: DDP keeps
    the ranks' parameters identical although each trains on its own clips, and one rank writes."""
    out = tmp_path / "run"
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    env = dict(os.environ, SEG2VID_PROGRESS="0", SEG2VID_NO_TCMALLOC="1", OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(_free_port()), str(worker), str(tmp_path), str(STEPS),
               "train", "--device", "cpu", "--preset", "tiny", "--size", "32", "--frames", "2",
               "--steps", str(STEPS), "--batch-size", "2", "--num-clips", "8", "--sample-every", str(STEPS),
               "--checkpoint-every", "0", "--log-every", "1", "--threads", "1", "--out", str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 processes" in result.stdout
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["is_main"] and not r1["is_main"]
    # DDP averaged the gradients: every parameter is bit-identical on both ranks after N steps
    for name, value in r0["params"].items():
        assert torch.equal(value, r1["params"][name]), name
    # ... although each rank trained on its own clips
    assert all(set(a).isdisjoint(b) for a, b in zip(r0["indices"], r1["indices"], strict=True))
    # and the parameters moved
    assert any(not torch.equal(r0["initial"][k], v) for k, v in r0["params"].items())
    # one writer: one header and one row per step in the log, the checkpoint from rank 0
    with open(out / "log.csv") as fh:
        rows = list(csv.reader(fh))
    assert [r[0] for r in rows] == ["step", *map(str, range(1, STEPS + 1))]
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt["step"] == STEPS
    for name, value in r0["params"].items():
        assert torch.equal(ckpt["model"][name], value), name
    assert sorted(p.name for p in (out / "samples").iterdir()) == [f"step_{STEPS:06d}.gif"]
