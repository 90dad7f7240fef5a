"""Training: the shared loop, stage 1 (SPADE, adversarial), stage 2, the objective, multi-process.

- :mod:`seg2vid.training.loop`        -- the loop both trainers share (log, cadence, summary, resume).
- :mod:`seg2vid.training.stage2`      -- :class:`~seg2vid.training.stage2.Trainer` for the Seg2Vid model.
- :mod:`seg2vid.training.stage1`      -- :class:`~seg2vid.training.stage1.Stage1Trainer` (SPADE generator).
- :mod:`seg2vid.training.objective`   -- the method's stage-2 loss, every term switchable.
- :mod:`seg2vid.training.adversarial` -- hinge GAN and feature-matching losses of stage 1.
- :mod:`seg2vid.training.perceptual`  -- VGG-19 features from a LOCAL weights file (never downloaded).
- :mod:`seg2vid.training.distributed` -- multi-GPU (or multi-process CPU) training under ``torchrun``.

Nothing here is imported by :mod:`seg2vid.generation` or :mod:`seg2vid.models`: inference never
loads the training stack.
"""
