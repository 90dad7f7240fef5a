"""Data: label tables and datasets (the synthetic street dataset is the embedded default)."""

from seg2vid.data.labels import CITYSCAPES, LabelClass, LabelTable
from seg2vid.data.synthetic import SYNTHETIC_CLASSES, SceneConfig, SyntheticStreets, render_clip

__all__ = [
    "CITYSCAPES",
    "LabelClass",
    "LabelTable",
    "SYNTHETIC_CLASSES",
    "SceneConfig",
    "SyntheticStreets",
    "render_clip",
]
