"""Small shared helpers: progress bars with a global switch, seeding, device choice, notebook
parameter checks."""

from __future__ import annotations

import importlib.util
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
    """Whether seg2vid shows progress bars: ``SEG2VID_PROGRESS`` is not set to 0/false/no/off and
    tqdm is installed (a bare torch + torchvision machine trains without it, bars off)."""
    if os.environ.get(PROGRESS_ENV, "1").strip().lower() in {"0", "false", "no", "off"}:
        return False
    return importlib.util.find_spec("tqdm") is not None


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


def _parameter_error(name: str, value: object, rule: str) -> ValueError:
    return ValueError(f"parameter {name} = {value!r}: must be {rule}")


def _is_int(value: object) -> bool:
    # bool is an int subclass, but `train_steps = True` is a typo, not a count
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: object) -> bool:
    return (_is_int(value) or isinstance(value, (float, np.floating))) and bool(np.isfinite(value))


def check_parameters(
    *,
    counts: dict[str, object] | None = None,
    non_negative: dict[str, object] | None = None,
    positive_numbers: dict[str, object] | None = None,
    non_negative_numbers: dict[str, object] | None = None,
    fractions: dict[str, object] | None = None,
    ranges: dict[str, tuple[object, int, int | None]] | None = None,
    multiples: dict[str, tuple[object, int]] | None = None,
) -> None:
    """Check a notebook's parameters (the values of its papermill ``parameters`` cell) before they
    are used, so that a bad value fails at once with one line naming it, not deep inside a model.

    Each argument maps parameter names to values (``counts=dict(batch_size=batch_size)``):

    Args:
        counts: integers >= 1 (steps, batch sizes, numbers of clips or samples, display scale).
        non_negative: integers >= 0 (seeds; step counts where 0 means "skip").
        positive_numbers: finite numbers > 0 (learning rates, frames per second).
        non_negative_numbers: finite numbers >= 0 (loss weights).
        fractions: finite numbers in [0, 1].
        ranges: name -> (value, low, high): an integer in [low, high] (both inclusive; high None =
            no upper bound).
        multiples: name -> (value, k): an integer >= k that is a multiple of k (image sides for
            networks that halve them log2(k) times).
    Raises:
        ValueError: ``parameter NAME = VALUE: must be ...`` for the first value that breaks its rule.
    """
    for name, value in (counts or {}).items():
        if not (_is_int(value) and value >= 1):
            raise _parameter_error(name, value, "an integer >= 1")
    for name, value in (non_negative or {}).items():
        if not (_is_int(value) and value >= 0):
            raise _parameter_error(name, value, "an integer >= 0")
    for name, value in (positive_numbers or {}).items():
        if not (_is_number(value) and value > 0):
            raise _parameter_error(name, value, "a number > 0")
    for name, value in (non_negative_numbers or {}).items():
        if not (_is_number(value) and value >= 0):
            raise _parameter_error(name, value, "a number >= 0")
    for name, value in (fractions or {}).items():
        if not (_is_number(value) and 0 <= value <= 1):
            raise _parameter_error(name, value, "a number from 0 to 1")
    for name, (value, low, high) in (ranges or {}).items():
        if not (_is_int(value) and value >= low and (high is None or value <= high)):
            rule = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
            raise _parameter_error(name, value, rule)
    for name, (value, k) in (multiples or {}).items():
        if not (_is_int(value) and value >= k and value % k == 0):
            raise _parameter_error(name, value, f"a positive multiple of {k}")


# ----------------------------------------------------------------------------- bfloat16

#: ``precision`` values of the bf16 switches (the perceptual term, generation): ``"fp32"``,
#: ``"bf16"`` (bfloat16 autocast) or ``"auto"`` (bf16 where :func:`bf16_supported`).
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "auto")


def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Whether bfloat16 convolutions run natively (fast) on ``device``.

    CPU: oneDNN's check for AVX-512 BF16 / AMX (elsewhere bf16 is emulated and SLOWER than fp32);
    CUDA: ``torch.cuda.is_bf16_supported()`` (Ampere or newer).
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def uses_bf16(precision: str, device: torch.device | str = "cpu") -> bool:
    """Resolve a ``precision`` of :data:`PRECISIONS` for ``device``: True for ``"bf16"``, and for
    ``"auto"`` where :func:`bf16_supported`. Raises ValueError naming the choices otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision == "bf16" or (precision == "auto" and bf16_supported(device))


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else :func:`platform.processor`), for benchmark
    records: bf16 arithmetic runs on different units (AVX-512 BF16, AMX) on different CPUs."""
    import platform
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
