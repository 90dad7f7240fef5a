"""Multi-process training on the CPU: 2 processes, PyTorch's gloo backend, DDP.

Checks that the ranks stay in sync (identical parameters after N steps), that they train on
different clips, that only rank 0 writes files, and that ``torchrun -m seg2vid train`` works.
"""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from seg2vid.checkpoints import load_checkpoint
from seg2vid.models.seg2vid import Seg2VidConfig
from seg2vid.training.distributed import ProcessInfo, process_info
from seg2vid.training.stage2 import TrainConfig, Trainer

MODEL = Seg2VidConfig(height=32, width=32, frames=2, widths=(8, 8, 16, 16), motion_widths=(8, 8, 16, 16),
                      refine_widths=(8, 16), latent_dim=4)
STEPS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), SEG2VID_PROGRESS="0")
    torch.set_num_threads(1)
    config = TrainConfig(steps=STEPS, batch_size=2, num_clips=8, device="cpu", sample_every=STEPS,
                         checkpoint_every=0, log_every=1)
    trainer = Trainer(MODEL, config, out_dir=Path(out) / "run")
    indices = [trainer.clip_indices(s) for s in range(1, STEPS + 1)]
    trainer.train()
    params = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    torch.save({"params": params, "indices": indices, "is_main": trainer.is_main},
               Path(out) / f"rank{rank}.pt")
    trainer.close()


def test_process_info_reads_torchrun_variables():
    assert process_info({}) == ProcessInfo(0, 1, 0)
    info = process_info({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert info.distributed and not info.is_main and info.local_rank == 1
    with pytest.raises(ValueError, match="integers"):
        process_info({"RANK": "one"})


def test_two_gloo_processes_stay_in_sync_and_only_rank0_writes(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["is_main"] and not r1["is_main"]
    # DDP averaged the gradients: every parameter is bit-identical on both ranks after N steps
    for name, value in r0["params"].items():
        assert torch.equal(value, r1["params"][name]), name
    # ... although each rank trained on its own clips
    assert all(set(a).isdisjoint(b) for a, b in zip(r0["indices"], r1["indices"], strict=True))
    # and the parameters moved
    initial = Trainer(MODEL, TrainConfig(steps=1, batch_size=2, num_clips=8, device="cpu"),
                      out_dir=tmp_path / "unused").model.state_dict()
    assert any(not torch.equal(initial[k], v) for k, v in r0["params"].items())
    # one writer: one header and one row per step in the log, the checkpoint from rank 0
    with open(tmp_path / "run" / "log.csv") as fh:
        rows = list(csv.reader(fh))
    assert [r[0] for r in rows] == ["step", *map(str, range(1, STEPS + 1))]
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["step"] == STEPS
    for name, value in r0["params"].items():
        assert torch.equal(ckpt["model"][name], value), name
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == [f"step_{STEPS:06d}.gif"]


def test_torchrun_module_entry_point(tmp_path):
    """``torchrun --nproc_per_node 2 -m seg2vid train ...`` on the CPU, as the README shows."""
    out = tmp_path / "run"
    env = dict(os.environ, SEG2VID_PROGRESS="0", OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(_free_port()), "-m", "seg2vid", "train", "--device", "cpu",
               "--preset", "tiny", "--size", "32", "--frames", "2", "--steps", "2", "--batch-size", "2",
               "--num-clips", "8", "--sample-every", "0", "--threads", "1", "--out", str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 2
    assert "2 processes" in result.stdout
