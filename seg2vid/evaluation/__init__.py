"""Evaluation: every metric of the course on held-out clips, and the ablation study.

- :mod:`seg2vid.evaluation.evaluate`        -- a model (or baseline) on held-out clips (``seg2vid evaluate``).
- :mod:`seg2vid.evaluation.first_frames`    -- stage 1 (label map -> first frame) against its baselines.
- :mod:`seg2vid.evaluation.segmentation`    -- mIoU, confusion matrices, semantic fidelity.
- :mod:`seg2vid.evaluation.fvd`, :mod:`~seg2vid.evaluation.fid`, :mod:`~seg2vid.evaluation.lpips` --
  FVD, FID and LPIPS from LOCAL weight files; :mod:`seg2vid.evaluation.features` -- what they share
  (feature extraction, the Frechet distance, weight-file checks, which metrics the files allow).
- :mod:`seg2vid.evaluation.ablations`       -- baselines and ablations that test the paper's claims.

The per-frame scores (PSNR, SSIM, end-point error, ...) are :mod:`seg2vid.metrics`.
"""
