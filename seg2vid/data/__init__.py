"""Data: label tables and datasets (the synthetic street dataset is the embedded default)."""

from seg2vid.data.labels import CITYSCAPES, LabelClass, LabelTable

__all__ = ["CITYSCAPES", "LabelClass", "LabelTable"]
