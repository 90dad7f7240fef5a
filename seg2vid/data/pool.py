"""A fixed pool of training clips, each loaded (rendered) on first use and kept as 8 bits.

The trainers reuse a pool of N clips epoch after epoch. Rendering all N up front cost short runs
most of their time (a 20-step ``torchrun`` example spent 19 of its 35 s rendering 1000 clips it
never used), so :class:`ClipPool` loads clip i the first time a batch asks for it. What a batch
holds does not depend on the order in which clips were loaded: clip i is ``load(i)``, a pure
function of i (the synthetic streets are a function of (seed, i)), and a resumed run simply
loads its clips again when it meets them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["ClipPool"]


class ClipPool:
    """``size`` clips, clip ``i`` = ``load(i)``, loaded on first access and stored.

    Args:
        size: N, the number of clips in the pool.
        load: ``load(i) -> (frames, labels)`` for i in 0..N-1: two uint8 tensors whose shapes are
            the same for every i (e.g. frames (T+1, 3, H, W), labels (H, W)).

    The storage for all N clips is allocated at the first load (``torch.empty``: the operating
    system hands out memory pages as they are written, so a short run uses only what it loads).
    """

    def __init__(self, size: int, load: Callable[[int], tuple[Tensor, Tensor]]):
        if size < 1:
            raise ValueError(f"a clip pool needs at least one clip, got size={size}")
        self.size = size
        self._load = load
        self._frames: Tensor | None = None
        self._labels: Tensor | None = None
        self._loaded = torch.zeros(size, dtype=torch.bool)

    def __len__(self) -> int:
        return self.size

    @property
    def num_loaded(self) -> int:
        """How many clips have been loaded so far."""
        return int(self._loaded.sum())

    def _store(self, i: int) -> None:
        frames, labels = self._load(i)
        if frames.dtype != torch.uint8 or labels.dtype != torch.uint8:
            raise TypeError(f"a pool stores uint8 clips; load({i}) gave {frames.dtype} / {labels.dtype}")
        if self._frames is None:
            self._frames = torch.empty((self.size, *frames.shape), dtype=torch.uint8)
            self._labels = torch.empty((self.size, *labels.shape), dtype=torch.uint8)
        elif frames.shape != self._frames.shape[1:] or labels.shape != self._labels.shape[1:]:
            raise ValueError(f"clip {i} has shapes {tuple(frames.shape)} / {tuple(labels.shape)}, the pool "
                             f"{tuple(self._frames.shape[1:])} / {tuple(self._labels.shape[1:])}")
        self._frames[i] = frames
        self._labels[i] = labels
        self._loaded[i] = True

    def get(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        """Clips ``indices`` (loading those not loaded yet): frames (B, ...) and labels (B, ...) uint8."""
        indices = [int(i) for i in indices]
        for i in indices:
            if not 0 <= i < self.size:
                raise IndexError(f"clip {i} is outside the pool of {self.size}")
            if not self._loaded[i]:
                self._store(i)
        if not indices:
            raise ValueError("no clip indices given")
        index = torch.tensor(indices)
        return self._frames[index], self._labels[index]
