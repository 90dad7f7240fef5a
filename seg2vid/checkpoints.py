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
repository path from wherever a lesson runs (the installed package data ``seg2vid._shipped``,
:func:`shipped_checkpoint`).
"""

from __future__ import annotations

import errno
import os
import pickle
import random
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
    "remove_stale_temporaries",
    "shipped_checkpoint",
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


class _WriteErrors:
    """A binary file handle that remembers the first ``OSError`` of a ``write``: ``torch.save``
    turns a failed write (a full disk) into ``RuntimeError: unexpected pos ...``, which names
    neither the file nor the cause; :func:`atomic_write` raises the remembered error instead."""

    def __init__(self, fh: Any):
        self._fh = fh
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._fh.write(data)
        except OSError as err:
            self.error = self.error or err
            raise

    def __getattr__(self, name: str) -> Any:  # flush, fileno, tell, seek, ... of the real file
        return getattr(self._fh, name)


def atomic_write(path: Path, write: Any) -> None:
    """Write ``path`` through a temporary file in the same folder and ``os.replace``: a reader (or
    a crash, or a DataLoader worker) sees the old file or the new one, never half of one. The file
    gets :func:`default_file_mode` (``rw-r--r--`` under the usual umask), not mkstemp's private 0600.
    A temporary file left by a killed process (``.NAME.*.tmp``) is removed by
    :func:`remove_stale_temporaries` at the next start of a run.

    Args:
        path: the file to write (missing folders are created).
        write: called with the open binary file handle, e.g. ``lambda fh: torch.save(obj, fh)``.
    Raises:
        OSError: the folder cannot be written, or the disk is full (``errno.ENOSPC``, whatever
            ``write`` made of the failed write), with ``filename`` = ``path``; the old file at
            ``path`` is untouched and the temporary file removed.
    """
    path = Path(path)
    for folder in (path.parent, *path.parent.parents):
        if folder.exists():  # mkdir would say "File exists" about a file in the way
            if not folder.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a folder", str(folder))
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, "wb") as raw:
            fh = _WriteErrors(raw)
            try:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            except Exception as err:
                cause = fh.error or (err if isinstance(err, OSError) else None)
                if cause is not None:
                    raise OSError(cause.errno, cause.strerror or str(cause), str(path)) from err
                raise
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: str | Path, names: tuple[str, ...]) -> list[Path]:
    """Remove the temporary files (``.NAME.*.tmp``) that :func:`atomic_write` left in ``folder``
    for the files ``names`` when its process was killed mid-write (SIGKILL, power loss: no
    ``except`` ran). Call it when a run starts, before anything writes there. Returns the files
    removed."""
    folder = Path(folder)
    removed = []
    for name in names:
        for tmp in folder.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


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
        FileNotFoundError: no file at ``path``; ValueError: an empty, truncated or corrupt file,
        or one of another format (the message names the file and the cause).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    problem = _not_a_torch_file(path)
    if problem:
        raise ValueError(f"{path} is not a {what}: {problem}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:  # a pickle with code in it: refused, never run
        raise ValueError(f"{path} is not a {what}: it holds objects other than tensors and plain "
                         "values, which weights_only loading refuses") from err
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError) as err:
        # a damaged archive: torch's messages are long and name neither the file nor the cause
        first = str(err).strip().split(". ")[0].splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path} is not a {what}: corrupt file ({first})") from err
    found = (ckpt.get("format"), ckpt.get("format_version")) if isinstance(ckpt, dict) else None
    if found not in formats:
        expected = formats[0] if len(formats) == 1 else f"one of {formats}"
        raise ValueError(f"{path} is not a {what} (format {found}, expected {expected})")
    return ckpt


def _not_a_torch_file(path: Path) -> str | None:
    """Why ``path`` cannot be a ``torch.save`` file (a zip archive), or None when it may be one:
    empty, truncated (a zip's start without its central directory: a killed copy or download),
    or something else altogether (random bytes, an image, a text file)."""
    import zipfile

    if path.stat().st_size == 0:
        return "the file is empty"
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04":
        return "not a torch.save file (random bytes or a file of another kind)"
    if not zipfile.is_zipfile(path):
        return "the file is truncated (its zip archive has no end: an interrupted copy or download?)"
    return None


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


#: The repository folder of the shipped checkpoints; the same files install as the package
#: ``seg2vid._shipped`` (pyproject's ``package-dir``), which :func:`shipped_checkpoint` reads.
SHIPPED_FOLDER = "data/checkpoints"


def shipped_checkpoint(name: str) -> Path | None:
    """The installed copy of a shipped file (``"seg2vid_tiny_64.pt"``, ``"..._64.log.csv"``), or None.

    When this package lies in a source tree (a clone, ``pip install -e``, or ``PYTHONPATH``), the
    file is the one in that tree's ``data/checkpoints`` (never the current folder's). Otherwise it
    is read with :mod:`importlib.resources` from the package ``seg2vid._shipped``, which
    ``pyproject.toml`` maps onto ``data/checkpoints``: so it is found in a wheel, a ``--user`` or
    ``--target`` install and a system Python (Colab) alike. The source tree comes first so that a
    copy of the tree on ``PYTHONPATH`` reads its own files, not those of another editable install.
    """
    from importlib import resources

    candidate = Path(__file__).resolve().parents[1] / SHIPPED_FOLDER / name
    if candidate.is_file():
        return candidate
    try:
        resource = resources.files("seg2vid._shipped").joinpath(name)
    except ModuleNotFoundError:
        return None
    # a wheel installs real files; only a zip import would need as_file(), which we do not support
    return Path(str(resource)) if resource.is_file() else None


def find_checkpoint(path: str | Path | None) -> Path | None:
    """The file a checkpoint name stands for, or None (also for ``None`` or ``""``: train from scratch).

    Lessons name a shipped checkpoint as it lies in the repository (``"data/checkpoints/x.pt"``),
    never by an absolute path, so the same notebook runs in a clone, in CI (papermill runs it in a
    temporary folder), on Colab and in the learner's own folder. Tried in order:

    1. an explicit path: absolute, or relative to the current folder and not of the form
       ``data/checkpoints/NAME`` (e.g. ``runs/x/checkpoints/last.pt``, ``./my.pt``);
    2. for ``data/checkpoints/NAME``: the shipped file :func:`shipped_checkpoint` ``(NAME)`` (the
       installed package data, or the repository that holds this package) -- a stray copy in the
       current folder never replaces the shipped model;
    3. otherwise (a lesson's own export, a repository file such as ``data/results/x.json``): the
       path relative to the current folder, then relative to the repository that holds this
       package (a clone or an editable install).

    The returned path says which file is used; the CLI prints it.
    """
    if path is None or str(path) == "":
        return None
    path = Path(path).expanduser()
    parts = path.parts
    shipped_name = (not path.is_absolute() and len(parts) == 3
                    and "/".join(parts[:2]) == SHIPPED_FOLDER)
    if shipped_name:
        found = shipped_checkpoint(parts[2])
        if found is not None:
            return found
    candidates = [path]
    if not path.is_absolute():
        candidates.append(Path(__file__).resolve().parents[1] / path)
    return next((c for c in candidates if c.is_file()), None)


def config_differences(saved: dict, current: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """``"field: checkpoint X, now Y"`` for every key whose value differs between a checkpoint's
    config dict and the current one (a key missing on one side counts as ``None``), sorted;
    keys in ``ignore`` are skipped. Nested dicts on both sides are compared field by field
    (``"scene.style: checkpoint 'classic', now 'rich'"``)."""
    differences = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if key in ignore or old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            differences += [f"{key}.{d}" for d in config_differences(old, new)]
        else:
            differences.append(f"{key}: checkpoint {old!r}, now {new!r}")
    return differences
