"""seg2vid: video generation from a single semantic label map (Pan et al., CVPR 2019).

The package behind the course notebooks. Public API by module:

- :mod:`seg2vid.data.labels`    -- the Cityscapes label table, one-hot and colour helpers.
- :mod:`seg2vid.data.synthetic` -- procedural street clips with EXACT labels, flow and occlusion.
- :mod:`seg2vid.flow`           -- pixel-unit backward warping, flow colours, ``.flo`` files.
- :mod:`seg2vid.cvae`           -- reparameterisation, Gaussian KL, ELBO, a small MLP (c)VAE.
- :mod:`seg2vid.losses`         -- photometric, 3x3 SSIM (``ssim_3x3``), smoothness, consistency losses.
- :mod:`seg2vid.data`           -- ``build_dataset``: synthetic, Cityscapes, KTH, UCF-101, your own folder.
- :mod:`seg2vid.metrics`        -- PSNR/SSIM per frame, end-point error, mask scores, best-of-N, diversity.
- :mod:`seg2vid.feature_metrics` -- FVD, FID and LPIPS from LOCAL weight files (never downloaded).
- :mod:`seg2vid.segmenter`      -- the small segmenter that scores semantic fidelity.
- :mod:`seg2vid.evaluate`       -- every metric on held-out clips (``seg2vid evaluate``).
- :mod:`seg2vid.ablations`      -- baselines and ablations that test the paper's claims.
- :mod:`seg2vid.long_video`     -- long videos by chaining chunks.
- :mod:`seg2vid.models`         -- the Seg2Vid networks (stage 2: first frame + labels -> video).
- :mod:`seg2vid.objective`      -- the method's training loss, every term switchable.
- :mod:`seg2vid.perceptual`     -- VGG-19 features from a LOCAL weights file (never downloaded).
- :mod:`seg2vid.train`          -- the trainer: checkpoints, exact resume, logs, sample videos.
- :mod:`seg2vid.distributed`    -- multi-GPU (or multi-process CPU) training under ``torchrun``.
- :mod:`seg2vid.configs`        -- run configs (TOML): the authors' Cityscapes setting, KTH, UCF-101, ...
- :mod:`seg2vid.train_stage1`   -- the stage-1 (SPADE, adversarial) trainer.
- :mod:`seg2vid.pipeline`       -- one label map in, several videos out (stage 1 then stage 2).
- :mod:`seg2vid.viz`            -- frame/flow/mask grids, inline videos, GIF and MP4 files.
- :mod:`seg2vid.exercises`      -- the self-checks used by the notebooks' exercise cells.
- :mod:`seg2vid.course`         -- builds the learner notebooks from the solutions.
- :mod:`seg2vid.utils`          -- progress bars (with an off switch), seeding, device choice.
- :mod:`seg2vid.cli`            -- the ``seg2vid`` console script.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
