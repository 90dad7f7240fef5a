"""Networks of the method. Stage 2 (first frame + label map -> video): :mod:`seg2vid.models.seg2vid`."""

from seg2vid.models.seg2vid import PRESETS, Seg2Vid, Seg2VidConfig, Seg2VidOutput

__all__ = ["PRESETS", "Seg2Vid", "Seg2VidConfig", "Seg2VidOutput"]
