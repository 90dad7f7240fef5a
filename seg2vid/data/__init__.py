"""Data: label tables and datasets (the synthetic street dataset is the embedded default).

Real datasets (Cityscapes sequences, KTH, UCF-101, a folder of your own frame folders) load
through :func:`build_dataset` with a :class:`DatasetConfig`; see ``data/README.md`` for the
on-disk layouts.
"""

from seg2vid.data.build import (
    DATASET_KINDS,
    DatasetConfig,
    SyntheticClips,
    build_dataset,
    frames_and_label_map,
)
from seg2vid.data.cityscapes import CityscapesSequences, cache_label_maps
from seg2vid.data.folder import VideoFolder
from seg2vid.data.kth import KTH, KTH_ACTIONS
from seg2vid.data.labels import CITYSCAPES, SCENE, LabelClass, LabelTable
from seg2vid.data.synthetic import (
    STYLES,
    SYNTHETIC_CLASSES,
    SceneConfig,
    SyntheticFutures,
    SyntheticStreets,
    render_clip,
    render_futures,
)
from seg2vid.data.ucf101 import UCF101
from seg2vid.data.video import VideoCache, VideoClips, decode_video

__all__ = [
    "CITYSCAPES",
    "CityscapesSequences",
    "DATASET_KINDS",
    "DatasetConfig",
    "KTH",
    "KTH_ACTIONS",
    "LabelClass",
    "LabelTable",
    "SCENE",
    "STYLES",
    "SYNTHETIC_CLASSES",
    "SceneConfig",
    "SyntheticClips",
    "SyntheticFutures",
    "SyntheticStreets",
    "UCF101",
    "VideoCache",
    "VideoClips",
    "VideoFolder",
    "build_dataset",
    "frames_and_label_map",
    "cache_label_maps",
    "decode_video",
    "render_clip",
    "render_futures",
]
