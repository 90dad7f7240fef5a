"""Run configurations: one TOML file says what to train, on what data, and how.

A run config has four tables, each optional::

    [model]            # a preset, then any Seg2VidConfig field
    preset = "paper"
    frames = 8

    [data]             # seg2vid.data.DatasetConfig fields (kind, root, split, ...)
    kind = "cityscapes"
    root = ""          # give it here or with --data-root; nothing is downloaded

    [train]            # seg2vid.training.stage2.TrainConfig fields
    steps = 100000
    amp = "bf16"

    [loss]             # LossConfig fields, on top of LossConfig.for_pixel_flows(width)
    kl_warmup_steps = 0

The data's height, width and frames are the model's (set them in ``[model]``). When the data's
label table is not Cityscapes (KTH and UCF-101 have no label maps: one "scene" class), the
model's label channels and motion groups follow the table.

A STAGE-1 run config (``seg2vid train-stage1 --config FILE``) says ``stage = 1`` before its
tables; its ``[model]`` is a SPADE preset (``tiny``, ``large``) and
:class:`~seg2vid.models.spade.SpadeConfig` fields, its ``[train]`` the
:class:`~seg2vid.training.stage1.Stage1TrainConfig` fields, loss weights included (there is no
``[loss]``), and ``[data]`` the same DatasetConfig fields (first frames and their label maps)::

    stage = 1
    [model]
    preset = "tiny"
    [train]
    height = 64        # the image size: in [train] for stage 1, in [model] for stage 2
    width = 64
    steps = 2600

Where the image size lives, and why: in the config of what depends on it. Seg2Vid's flow scale
and the size of its clips are part of the video model, so stage 2 keeps ``height``/``width`` in
:class:`~seg2vid.models.Seg2VidConfig`; the SPADE generator's weights fit any size (a multiple of
its ``size_multiple``), so stage 1 keeps the size of the images it trains on in
:class:`~seg2vid.training.stage1.Stage1TrainConfig` (as every stage-1 checkpoint has). In both,
``[data]`` never sets the size: the data follow it.

The configs shipped with the package (``seg2vid.configs.NAMES``; the files lie next to this
module) are the authors' Cityscapes setting (128x256, 1 + 4), its 1 + 8 variant, KTH, UCF-101,
the shipped tiny synthetic model and the 128x128 synthetic model that lesson 05 trains on a Colab
GPU. ``seg2vid train --config NAME_OR_PATH``; command-line options override the file.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seg2vid.models.seg2vid import PRESETS, Seg2VidConfig
from seg2vid.models.spade import SPADE_PRESETS, SpadeConfig
from seg2vid.training.objective import LossConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["CONFIG_DIR", "NAMES", "RunConfig", "load_run_config", "model_for_table"]

#: Folder of the shipped ``*.toml`` run configs.
CONFIG_DIR = Path(__file__).resolve().parent
#: Names of the shipped run configs (file stems).
NAMES = tuple(sorted(p.stem for p in CONFIG_DIR.glob("*.toml")))

_SECTIONS = ("model", "data", "train", "loss")


@dataclass(frozen=True)
class RunConfig:
    """A parsed run config: the model preset and the four tables as plain dicts.

    Attributes:
        preset: name in :data:`seg2vid.models.PRESETS` (stage 2) or
            :data:`seg2vid.models.SPADE_PRESETS` (stage 1).
        model: Seg2VidConfig fields that override the preset's.
        data: DatasetConfig fields (without height/width/frames: the model's).
        train: TrainConfig fields.
        loss: LossConfig fields on top of ``LossConfig.for_pixel_flows(width)``.
        source: the file it came from (or ``""``).
        stage: 2 (the video model, ``seg2vid train``) or 1 (the SPADE generator,
            ``seg2vid train-stage1``).
    """

    preset: str = "tiny"
    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    loss: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    stage: int = 2

    def _require_stage(self, stage: int) -> None:
        if self.stage != stage:
            command = {1: "seg2vid train-stage1", 2: "seg2vid train"}[self.stage]
            raise ValueError(
                f"{self.source or 'config'} is a stage-{self.stage} run config: use {command} --config")

    def _preset(self, presets: dict[str, Any]) -> Any:
        if self.preset not in presets:
            raise ValueError(
                f"{self.source or 'config'}: unknown preset {self.preset!r}; known: {sorted(presets)}"
            )
        return presets[self.preset]

    def model_config(self) -> Seg2VidConfig:
        """Stage 2: the preset with the ``[model]`` overrides (lists become tuples)."""
        self._require_stage(2)
        where = f"{self.source or 'config'} [model]"
        return self._preset(PRESETS).replace(**Seg2VidConfig.check_fields(self.model, where))

    def spade_config(self) -> SpadeConfig:
        """Stage 1: the SPADE preset with the ``[model]`` overrides (lists become tuples)."""
        self._require_stage(1)
        where = f"{self.source or 'config'} [model]"
        return self._preset(SPADE_PRESETS).replace(**SpadeConfig.check_fields(self.model, where))

    def loss_config(self, width: int) -> LossConfig:
        """Stage 2: the authors' loss weights converted for pixel flows at ``width``, with
        ``[loss]`` on top."""
        self._require_stage(2)
        LossConfig.check_fields(self.loss, f"{self.source or 'config'} [loss]")
        return LossConfig.for_pixel_flows(width, **self.loss)


def load_run_config(name_or_path: str | Path) -> RunConfig:
    """Read a run config: a shipped name (see :data:`NAMES`) or a path to a ``.toml`` file.

    Raises:
        FileNotFoundError: neither a shipped name nor an existing file (the names are listed).
        ValueError: a table other than model/data/train/loss (no loss for stage 1), a ``stage``
            other than 1 or 2, a size in ``[data]``, or a malformed file (named).
    """
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        shipped = CONFIG_DIR / f"{name_or_path}.toml"
        if not shipped.is_file():
            raise FileNotFoundError(
                f"no run config {str(name_or_path)!r}: not a file, nor a shipped name ({', '.join(NAMES)})"
            )
        path = shipped
    try:
        values = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}") from None
    stage = values.pop("stage", 2)
    if stage not in (1, 2):
        raise ValueError(f"{path}: stage must be 1 (train-stage1) or 2 (train), got {stage!r}")
    unknown = set(values) - set(_SECTIONS)
    if unknown:
        raise ValueError(f"{path}: unknown table(s) {sorted(unknown)}; a run config has {list(_SECTIONS)}")
    if stage == 1 and "loss" in values:
        raise ValueError(f"{path}: a stage-1 run config has no [loss]: its loss weights are [train] fields")
    model = dict(values.get("model", {}))
    preset = model.pop("preset", "tiny")
    data = dict(values.get("data", {}))
    clash = {"height", "width", "frames"} & set(data)
    if clash:
        home = "[train] (stage 1)" if stage == 1 else "[model]"
        raise ValueError(f"{path}: set {sorted(clash)} in {home}; the data follow that size")
    train, loss = dict(values.get("train", {})), dict(values.get("loss", {}))
    return RunConfig(preset, model, data, train, loss, str(path), stage)


def model_for_table(config: Seg2VidConfig, table: Any) -> Seg2VidConfig:
    """``config`` with its label channels and motion groups taken from ``table`` (a LabelTable)."""
    groups = Seg2VidConfig.for_table(table)
    return config.replace(
        label_channels=groups.label_channels,
        background_channels=groups.background_channels,
        foreground_channels=groups.foreground_channels,
    )
