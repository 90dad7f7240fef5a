"""seg2vid: video generation from a single semantic label map (Pan et al., CVPR 2019).

The package behind the course notebooks, in layers (each imports only those above it):

- bottom: :mod:`seg2vid.checkpoints` (file formats, atomic writes, finding shipped files),
  :mod:`seg2vid.data` (labels, splits, synthetic streets, real datasets), :mod:`seg2vid.flow`,
  :mod:`seg2vid.cvae`, :mod:`seg2vid.losses`, :mod:`seg2vid.metrics`, :mod:`seg2vid.viz`,
  :mod:`seg2vid.utils`.
- :mod:`seg2vid.models` -- the networks, their loading/export (:mod:`seg2vid.models.loading`) and
  the segmenter.
- :mod:`seg2vid.generation` -- pipeline, long videos, label-map editor (no training module).
- :mod:`seg2vid.training` -- the shared loop, stage 1, stage 2, objective, distributed;
  :mod:`seg2vid.configs` -- run configs (TOML).
- :mod:`seg2vid.evaluation` -- evaluate, ablations, segmentation scores, first frames, FVD/FID/LPIPS.
- top: :mod:`seg2vid.exercises` (the notebooks' self-checks), :mod:`seg2vid.cli` (``seg2vid``,
  ``python -m seg2vid``).

``import seg2vid`` itself loads nothing but this docstring and the version.
"""

__version__ = "0.3.1"

__all__ = ["__version__"]
