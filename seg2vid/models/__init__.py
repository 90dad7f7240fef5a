"""Networks of the method. Stage 1 (label map -> first frame): :mod:`seg2vid.models.spade`, behind
the interface of :mod:`seg2vid.models.stage1`. Stage 2 (first frame + label map -> video):
:mod:`seg2vid.models.seg2vid`."""

from seg2vid.models.seg2vid import PRESETS, VARIANTS, Seg2Vid, Seg2VidConfig, Seg2VidOutput
from seg2vid.models.spade import (
    SPADE,
    SPADE_PRESETS,
    MultiScaleDiscriminator,
    PatchDiscriminator,
    SpadeConfig,
    SpadeGenerator,
    SpadeResBlock,
)
from seg2vid.models.stage1 import FirstFrameGenerator, ImageFirstFrame, split_label_groups

__all__ = [
    "PRESETS",
    "SPADE",
    "SPADE_PRESETS",
    "VARIANTS",
    "FirstFrameGenerator",
    "ImageFirstFrame",
    "MultiScaleDiscriminator",
    "PatchDiscriminator",
    "Seg2Vid",
    "Seg2VidConfig",
    "Seg2VidOutput",
    "SpadeConfig",
    "SpadeGenerator",
    "SpadeResBlock",
    "split_label_groups",
]
