"""Every dataset seed of the synthetic streets, in one place: which clips train, which are held out.

The synthetic streets are an endless stream; a "split" is a dataset seed (clip ``i`` of seed ``s``
is a pure function of ``(s, i)``). Training pools use the run's ``seed`` (0 by default); every
held-out set uses a seed far from it, so no clip is ever both trained on and scored:

========================  ==========  =========================================================
name                      seed        used by
========================  ==========  =========================================================
:data:`SAMPLE_OFFSET`     seed + 1e6  the trainers' sample videos/pictures (both stages)
:data:`VAL_SEED`          2,000,000   ``split="val"``: ``build_dataset``, ``seg2vid evaluate
                                      --split val``, ``scripts/evaluate_shipped.py`` (the shipped
                                      stage-2 checkpoint's recorded evaluation), lesson 04
:data:`FIRST_FRAME_SEED`  2,000,003   the stage-1 evaluation (the shipped SPADE's recorded scores)
:data:`LESSON_SEED`       3,000,000   lesson 03's label-map editing experiment (clips with a
                                      visible object, picked from held-out clips)
:data:`TEST_SEED`         7,000,000   ``split="test"``: ``seg2vid evaluate`` (default), the
                                      ablation study, ``build_dataset``, lesson 06
========================  ==========  =========================================================

Before these were gathered here, ``seg2vid evaluate --split val`` used 7,000,001 and
``build_dataset(split="test")`` 3,000,000; each split now has ONE seed, chosen so that every
recorded number (the shipped checkpoints' JSON files, the README's evaluation and ablation
tables) is reproduced unchanged. :func:`split_seed` gives a split's seed for a run seed.
"""

from __future__ import annotations

__all__ = [
    "FIRST_FRAME_SEED", "LESSON_SEED", "SAMPLE_OFFSET", "SPLIT_OFFSET", "TEST_SEED", "VAL_SEED", "split_seed",
]

#: Held-out sample clips of a training run come from dataset seed ``seed + SAMPLE_OFFSET``.
SAMPLE_OFFSET = 1_000_000
#: The validation clips (``split="val"``).
VAL_SEED = 2_000_000
#: The fixed label maps on which stage 1 (label map -> first frame) is evaluated.
FIRST_FRAME_SEED = 2_000_003
#: Held-out clips that lesson 03's experiment picks from (no run trains or is scored on them).
LESSON_SEED = 3_000_000
#: The test clips (``split="test"``): the evaluation protocol of ``seg2vid evaluate``.
TEST_SEED = 7_000_000
#: Dataset seed of each split relative to the run's seed.
SPLIT_OFFSET = {"train": 0, "val": VAL_SEED, "test": TEST_SEED}


def split_seed(split: str, seed: int = 0) -> int:
    """The dataset seed of ``split`` ("train", "val" or "test") for a run seeded with ``seed``."""
    if split not in SPLIT_OFFSET:
        raise ValueError(f"synthetic split must be one of {sorted(SPLIT_OFFSET)}, got {split!r}")
    return seed + SPLIT_OFFSET[split]
