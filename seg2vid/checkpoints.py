"""Checkpoint files: format tags, atomic writes, RNG states, finding and reading, config checks.

The bottom of the package's file handling: it imports only torch and NumPy, so that generation,
evaluation and the models can find and read a checkpoint without loading the training stack.

Every file the package writes is a dict that ``torch.load(..., weights_only=True)`` reads (only
tensors and plain Python values) and carries a ``format`` tag and a ``format_version``; a reader
names the formats it accepts and refuses any other file with a message that names both:

================================  ============================================================
:data:`STAGE2_FORMAT`             stage-2 training checkpoint or model-only export
                                  (:class:`seg2vid.training.stage2.Trainer`,
                                  :func:`seg2vid.models.loading.export_model`)
:data:`STAGE1_FORMAT`             stage-1 training checkpoint (both networks, optimisers, RNG)
:data:`GENERATOR_FORMAT`          stage-1 generator-only export
:data:`SEGMENTER_FORMAT`          the small segmenter of ``scripts/train_segmenter.py``
================================  ============================================================

Writes go through :func:`atomic_write` (a reader or a crash sees the old file or the new one);
:func:`rng_state` / :func:`set_rng_state` store and restore every global RNG for exact resume;
:func:`config_differences` and :class:`CheckpointMismatchError` say which fields differ when a
run is resumed with another configuration; :func:`find_checkpoint` finds a shipped file by its
repository path from wherever a lesson runs.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "GENERATOR_FORMAT",
    "SEGMENTER_FORMAT",
    "STAGE1_FORMAT",
    "STAGE2_FORMAT",
    "CheckpointMismatchError",
    "atomic_write",
    "config_differences",
    "find_checkpoint",
    "load_checkpoint",
    "load_stage1_checkpoint",
    "read_checkpoint",
    "rng_state",
    "set_rng_state",
]

#: Tag and version of a stage-2 checkpoint (training checkpoint or model-only export).
STAGE2_FORMAT = ("seg2vid-stage2", 1)
#: Tag and version of a stage-1 TRAINING checkpoint (both networks, optimisers, RNG states).
STAGE1_FORMAT = ("seg2vid-stage1", 1)
#: Tag and version of a stage-1 generator-only export (:meth:`Stage1Trainer.export_generator`).
GENERATOR_FORMAT = ("seg2vid-stage1-generator", 1)
#: Tag and version of a segmenter checkpoint (``scripts/train_segmenter.py``).
SEGMENTER_FORMAT = ("seg2vid-segmenter", 1)


class CheckpointMismatchError(ValueError):
    """A checkpoint was written with a different configuration than the one it is loaded into."""


def default_file_mode() -> int:
    """The permission bits of a newly created file: ``0o666`` minus the process umask (read
    without changing it for good: ``os.umask`` can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path, write: Any) -> None:
    """Write ``path`` through a temporary file in the same folder and ``os.replace``: a reader (or
    a crash, or a DataLoader worker) sees the old file or the new one, never half of one. The file
    gets :func:`default_file_mode` (``rw-r--r--`` under the usual umask), not mkstemp's private 0600.

    Args:
        path: the file to write (missing folders are created).
        write: called with the open binary file handle, e.g. ``lambda fh: torch.save(obj, fh)``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rng_state(device: torch.device) -> dict[str, Any]:
    """Every global RNG state (torch CPU, CUDA of ``device``, NumPy, Python) as tensors and plain
    values, so that a checkpoint holding it loads with ``torch.load(weights_only=True)``."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        # NumPy's state as tensors and plain numbers: torch.load(weights_only=True) refuses arrays
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore the global RNG states saved by :func:`rng_state` (CUDA's only on a CUDA device)."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def read_checkpoint(
    path: str | Path, formats: tuple[tuple[str, int], ...], what: str,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` and check its format tag.

    Args:
        path: the file.
        formats: the ``(tag, version)`` pairs accepted, e.g. ``(STAGE2_FORMAT,)``.
        what: names the expected kind of file in the error, e.g. ``"seg2vid stage-2 checkpoint"``.
        map_location: where the tensors go.
    Raises:
        FileNotFoundError: no file at ``path``; ValueError: a file of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    found = (ckpt.get("format"), ckpt.get("format_version")) if isinstance(ckpt, dict) else None
    if found not in formats:
        expected = formats[0] if len(formats) == 1 else f"one of {formats}"
        raise ValueError(f"{path} is not a {what} (format {found}, expected {expected})")
    return ckpt


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a stage-2 training checkpoint (or model-only export), format checked.

    Returns:
        dict with ``step`` (int), ``model`` (state dict), ``optimizer``, ``scaler``, ``rng``,
        ``model_config``/``loss_config``/``train_config`` (plain dicts), ``perceptual`` (bool:
        whether the perceptual term was on), ``seg2vid_version``. A model-only file from
        :func:`seg2vid.models.loading.export_model` holds the same keys except ``optimizer``,
        ``scaler`` and ``rng``.
    """
    return read_checkpoint(path, (STAGE2_FORMAT,), "seg2vid stage-2 checkpoint", map_location)


def load_stage1_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a stage-1 TRAINING checkpoint (``torch.load(weights_only=True)``), format checked.

    Returns:
        dict with ``step``, ``generator`` / ``discriminator`` (state dicts), ``optimizer_g`` /
        ``optimizer_d``, ``rng``, ``model_config`` / ``train_config`` (plain dicts),
        ``perceptual`` (bool), ``seg2vid_version``.
    """
    return read_checkpoint(path, (STAGE1_FORMAT,), "seg2vid stage-1 file")


def find_checkpoint(path: str | Path | None) -> Path | None:
    """Where a shipped checkpoint named by its REPOSITORY path is on this machine, or None.

    Lessons name a checkpoint as it lies in the repository (``"data/checkpoints/x.pt"``), never
    by an absolute path, so the same notebook runs in a clone, in CI (papermill runs it in a
    temporary folder) and in the learner's own folder. Tried in order:

    1. ``path`` as given (absolute, or relative to the current folder);
    2. relative to the repository that holds this package (a clone or ``pip install -e``);
    3. relative to ``<sys.prefix>/share/seg2vid`` (where a ``pip install`` puts files that the
       project declares as setuptools ``data-files`` under that folder).

    Returns:
        the first existing file, or ``None`` (also for ``None`` or ``""``): then train from scratch.
    """
    if path is None or str(path) == "":
        return None
    path = Path(path).expanduser()
    candidates = [path]
    if not path.is_absolute():
        repository = Path(__file__).resolve().parents[1]
        candidates += [repository / path, Path(sys.prefix) / "share" / "seg2vid" / path]
    return next((c for c in candidates if c.is_file()), None)


def config_differences(saved: dict, current: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """``"field: checkpoint X, now Y"`` for every key whose value differs between a checkpoint's
    config dict and the current one (a key missing on one side counts as ``None``), sorted;
    keys in ``ignore`` are skipped."""
    return [
        f"{key}: checkpoint {saved.get(key)!r}, now {current.get(key)!r}"
        for key in sorted(set(saved) | set(current))
        if key not in ignore and saved.get(key) != current.get(key)
    ]
