"""Loading trained networks from their checkpoint files, and exporting model-only copies.

What generation, evaluation and the lessons need from a checkpoint, without the training stack:
:func:`load_model` (stage 2, :class:`~seg2vid.models.seg2vid.Seg2Vid`), :func:`load_spade_generator`
(stage 1, :class:`~seg2vid.models.spade.SpadeGenerator`) and :func:`export_model` (a stage-2
checkpoint without optimiser and RNG states, for shipping). The file formats themselves live in
:mod:`seg2vid.checkpoints`; the segmenter's loader is :func:`seg2vid.models.segmenter.load_segmenter`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from seg2vid.checkpoints import (
    GENERATOR_FORMAT,
    STAGE1_FORMAT,
    atomic_write,
    load_checkpoint,
    read_checkpoint,
)
from seg2vid.data.synthetic import LEGACY_STYLE
from seg2vid.models.seg2vid import Seg2Vid, Seg2VidConfig
from seg2vid.models.spade import SpadeConfig, SpadeGenerator
from seg2vid.utils import pick_device

__all__ = ["MODEL_ONLY_KEYS", "export_model", "load_model", "load_spade_generator", "parse_inference_options",
           "trained_style", "with_inference_options"]


def load_model(path: str | Path, device: str | torch.device | None = None) -> Seg2Vid:
    """The trained :class:`Seg2Vid` of a checkpoint, in eval mode (for generation and lessons)."""
    ckpt = load_checkpoint(path)
    model = Seg2Vid(Seg2VidConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(pick_device(str(device) if device is not None else None)).eval()


def with_inference_options(model: Seg2Vid, changes: dict[str, Any]) -> Seg2Vid:
    """``model`` with some of its inference-only config fields changed (in place; returned).

    Only :attr:`Seg2VidConfig.INFERENCE_ONLY` fields (``object_pin``, ``forward_mask``) may change:
    they alter what inference computes from the same weights, never the network, so scoring a
    checkpoint with another setting needs no new file. The new config is validated.

    Raises:
        ValueError: naming a field that is not inference-only, or an invalid value.
    """
    other = sorted(set(changes) - set(Seg2VidConfig.INFERENCE_ONLY))
    if other:
        raise ValueError(f"only the inference-only fields {', '.join(Seg2VidConfig.INFERENCE_ONLY)} can be "
                         f"changed on a trained model; not {', '.join(other)}")
    model.config = model.config.replace(**changes)
    return model


def parse_inference_options(pairs: list[str]) -> dict[str, Any]:
    """``["forward_mask=geometry", "object_pin=0.8"]`` -> ``{"forward_mask": "geometry", "object_pin": 0.8}``:
    each value read as JSON (numbers, ``null``), else kept as a string.

    Raises:
        ValueError: for an item without ``=``.
    """
    import json

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected FIELD=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


#: Keys of a training checkpoint that :func:`export_model` keeps (no optimiser, scaler or RNG).
MODEL_ONLY_KEYS = ("format", "format_version", "seg2vid_version", "step", "model", "model_config",
                   "loss_config", "train_config", "perceptual")


def export_model(checkpoint_path: str | Path, out_path: str | Path) -> Path:
    """Write a model-only copy of a training checkpoint, for shipping and for :func:`load_model`.

    Keeps the weights, the step and the three configs (so the file still says how it was trained)
    and drops the optimiser, the GradScaler and the RNG states, which only resuming needs: about a
    third of the size. The file is written atomically and loads with
    ``torch.load(weights_only=True)``; :meth:`seg2vid.training.stage2.Trainer.resume` refuses it
    with a clear message.

    Args:
        checkpoint_path: a checkpoint written by :class:`seg2vid.training.stage2.Trainer`
            (``OUT/checkpoints/last.pt``).
        out_path: the file to write (missing folders are created).
    Returns:
        ``out_path`` as a :class:`~pathlib.Path`.
    """
    ckpt = load_checkpoint(checkpoint_path)
    exported = {key: ckpt[key] for key in MODEL_ONLY_KEYS}
    if "data_config" in ckpt:
        exported["data_config"] = ckpt["data_config"]
    # own, compact storages: a state-dict tensor may be a view into a larger one
    exported["model"] = {k: v.detach().clone().contiguous() for k, v in ckpt["model"].items()}
    out_path = Path(out_path)
    atomic_write(out_path, lambda fh: torch.save(exported, fh))
    return out_path


def trained_style(ckpt: dict[str, Any]) -> str | None:
    """The synthetic streets' style a stage-2 checkpoint (or export) was trained on.

    Read from its ``data_config``: the recorded scene's ``style``; a synthetic run that recorded
    no style was trained before seg2vid 0.2, on :data:`~seg2vid.data.synthetic.LEGACY_STYLE`
    ("classic") streets. None when it was trained on another dataset.
    """
    data = ckpt.get("data_config") or {"kind": "synthetic"}
    if data.get("kind") != "synthetic":
        return None
    return (data.get("scene") or {}).get("style", LEGACY_STYLE)


def load_spade_generator(path: str | Path, device: str | torch.device | None = None) -> SpadeGenerator:
    """The trained generator of a generator-only export OR of a training checkpoint, in eval mode.

    Read with ``torch.load(weights_only=True)``; a file of another format is a ``ValueError``.
    """
    ckpt = read_checkpoint(path, (GENERATOR_FORMAT, STAGE1_FORMAT), "seg2vid stage-1 file")
    model = SpadeGenerator(SpadeConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"] if "model" in ckpt else ckpt["generator"])
    return model.to(pick_device(str(device) if device is not None else None)).eval()
