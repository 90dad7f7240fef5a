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

The configs shipped with the package (``seg2vid.configs.NAMES``; the files lie next to this
module) are the authors' Cityscapes setting (128x256, 1 + 4), its 1 + 8 variant, KTH, UCF-101,
the shipped tiny synthetic model and the 128x128 synthetic model that lesson 05 trains on a Colab
GPU. ``seg2vid train --config NAME_OR_PATH``; command-line options override the file.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seg2vid.models.seg2vid import PRESETS, Seg2VidConfig
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
        preset: name in :data:`seg2vid.models.PRESETS`.
        model: Seg2VidConfig fields that override the preset's.
        data: DatasetConfig fields (without height/width/frames: the model's).
        train: TrainConfig fields.
        loss: LossConfig fields on top of ``LossConfig.for_pixel_flows(width)``.
        source: the file it came from (or ``""``).
    """

    preset: str = "tiny"
    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    loss: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def model_config(self) -> Seg2VidConfig:
        """The preset with the ``[model]`` overrides (lists become tuples)."""
        if self.preset not in PRESETS:
            raise ValueError(
                f"{self.source or 'config'}: unknown preset {self.preset!r}; known: {sorted(PRESETS)}"
            )
        known = {f.name for f in dataclasses.fields(Seg2VidConfig)}
        unknown = set(self.model) - known
        if unknown:
            raise ValueError(f"{self.source or 'config'}: unknown [model] field(s) {sorted(unknown)}")
        return PRESETS[self.preset].replace(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in self.model.items()})

    def loss_config(self, width: int) -> LossConfig:
        """The authors' loss weights converted for pixel flows at ``width``, with ``[loss]`` on top."""
        known = {f.name for f in dataclasses.fields(LossConfig)}
        unknown = set(self.loss) - known
        if unknown:
            raise ValueError(f"{self.source or 'config'}: unknown [loss] field(s) {sorted(unknown)}")
        return LossConfig.for_pixel_flows(width, **self.loss)


def load_run_config(name_or_path: str | Path) -> RunConfig:
    """Read a run config: a shipped name (see :data:`NAMES`) or a path to a ``.toml`` file.

    Raises:
        FileNotFoundError: neither a shipped name nor an existing file (the names are listed).
        ValueError: a table other than model/data/train/loss, or a malformed file (named).
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
    unknown = set(values) - set(_SECTIONS)
    if unknown:
        raise ValueError(f"{path}: unknown table(s) {sorted(unknown)}; a run config has {list(_SECTIONS)}")
    model = dict(values.get("model", {}))
    preset = model.pop("preset", "tiny")
    data = dict(values.get("data", {}))
    clash = {"height", "width", "frames"} & set(data)
    if clash:
        raise ValueError(f"{path}: set {sorted(clash)} in [model]; the data follow the model's size")
    train, loss = dict(values.get("train", {})), dict(values.get("loss", {}))
    return RunConfig(preset, model, data, train, loss, str(path))


def model_for_table(config: Seg2VidConfig, table: Any) -> Seg2VidConfig:
    """``config`` with its label channels and motion groups taken from ``table`` (a LabelTable)."""
    groups = Seg2VidConfig.for_table(table)
    return config.replace(
        label_channels=groups.label_channels,
        background_channels=groups.background_channels,
        foreground_channels=groups.foreground_channels,
    )
