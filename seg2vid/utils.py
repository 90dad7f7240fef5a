"""Small shared helpers: progress bars with a global switch, seeding, device choice."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

#: Environment variable that turns every seg2vid progress bar off when set to "0"/"false"/"no".
#: The notebook tests set it so that nbval never sees progress-bar text.
PROGRESS_ENV = "SEG2VID_PROGRESS"


def progress_enabled() -> bool:
    """Whether seg2vid shows progress bars (``SEG2VID_PROGRESS`` not set to 0/false/no/off)."""
    return os.environ.get(PROGRESS_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


def progress(iterable: Iterable[T], **tqdm_kwargs) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm progress bar unless progress bars are switched off.

    ``tqdm.auto`` is used so the bar is a widget in Jupyter/Colab and text in a terminal.
    """
    if not progress_enabled():
        return iter(iterable)
    from tqdm.auto import tqdm

    return iter(tqdm(iterable, **tqdm_kwargs))


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(prefer: str | None = None) -> torch.device:
    """Return ``prefer`` if given, else CUDA when available, else Apple MPS, else CPU.

    Raises:
        ValueError: ``prefer`` is no device name (``"banana"``), or names a CUDA / MPS device that
            this machine or this torch build does not have (checked here, not at the first
            tensor moved there, where torch's message is a traceback deep inside a model).
    """
    if prefer:
        try:
            device = torch.device(prefer)
        except RuntimeError:
            raise ValueError(f"device {prefer!r} is not a device name (cpu, cuda, cuda:1, mps)") from None
        if device.type == "cuda":
            if not torch.cuda.is_available():
                build = "this torch has no CUDA support" if torch.version.cuda is None else "no GPU found"
                raise ValueError(f"device {prefer!r}: CUDA is not available ({build}); use --device cpu")
            if device.index is not None and device.index >= torch.cuda.device_count():
                raise ValueError(f"device {prefer!r}: this machine has {torch.cuda.device_count()} GPU(s)")
        if device.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                         and torch.backends.mps.is_available()):
            raise ValueError(f"device {prefer!r}: Apple MPS is not available here; use --device cpu")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
