"""Self-checks for the notebooks' exercise cells.

After each exercise a check cell compares the learner's function with the package's version on a
few seeded inputs and prints ONE line::

    ✅ normalise_image: matches the reference on 3 seeded inputs (max |diff| = 5.96e-08)
    ❌ normalise_image: shape (2, 3) but expected (2, 4) (seeded input 1 of 3)
    ⏭ normalise_image: not implemented yet — the rest of the notebook uses the package's version

The checks never raise on the learner's behalf (a stub raising ``NotImplementedError`` or a bug
raising anything else is reported, not propagated), so a check cell never stops the notebook. They
print no timings or memory addresses, so their text is stable from run to run. Errors in the
*reference* side (``reference_fn``, ``make_inputs``) do propagate: those are the author's bugs.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

PASS = "✅"
FAIL = "❌"
SKIP = "⏭"

__all__ = ["Comparison", "check_function", "check_value", "compare"]


@dataclass(frozen=True)
class Comparison:
    """Result of :func:`compare`.

    ``detail`` says what differs first ("" when ``ok``); ``max_abs_diff`` is the largest absolute
    difference over the floating-point values compared (0.0 when they are identical).
    """

    ok: bool
    detail: str = ""
    max_abs_diff: float = 0.0


def compare(got: Any, expected: Any, *, atol: float = 1e-5, rtol: float = 1e-4) -> Comparison:
    """Compare a learner's result with the expected one, structure first.

    Tensors and NumPy arrays: type, then shape, then dtype (then device), then values — exact for
    integer and boolean dtypes, ``|got - expected| <= atol + rtol * |expected|`` for floating
    and complex ones (NaN matches NaN, infinities must match exactly). Python/NumPy numbers: the
    same rule (integers exactly). Tuples/lists and dicts: length or keys, then element by
    element. Anything else: ``==``.
    """
    return _compare(got, expected, atol, rtol, "")


def check_function(
    learner_fn: Callable[..., Any],
    reference_fn: Callable[..., Any],
    make_inputs: Callable[[torch.Generator], Any],
    *,
    name: str | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    n_trials: int = 3,
    seed: int = 0,
) -> bool:
    """Check ``learner_fn`` against ``reference_fn`` on ``n_trials`` seeded inputs; print a verdict.

    Args:
        learner_fn: the learner's function.
        reference_fn: the package's (correct) version, same signature.
        make_inputs: ``make_inputs(generator) -> tuple of positional arguments`` (a non-tuple is
            passed as the single argument). Trial ``i`` gets a CPU ``torch.Generator`` seeded
            with ``seed + i``. Each function gets its own copy of the tensors/arrays, so an
            in-place edit by one cannot leak into the other.
        name: what the verdict calls the function (default: ``learner_fn.__name__``).
        atol, rtol: tolerances for floating-point values (see :func:`compare`).
        n_trials: number of seeded inputs.
        seed: seed of the first trial.

    Returns:
        ``True`` when every output matches; ``False`` when one differs, when ``learner_fn``
        raises ``NotImplementedError`` (an untouched stub) or any other exception. Never raises
        because of ``learner_fn``.
    """
    name = name or getattr(learner_fn, "__name__", "function")
    max_abs_diff = 0.0
    for trial in range(n_trials):
        where = f"seeded input {trial + 1} of {n_trials}"
        args = make_inputs(torch.Generator().manual_seed(seed + trial))
        if not isinstance(args, tuple):
            args = (args,)
        expected = reference_fn(*_copy(args))
        try:
            got = learner_fn(*_copy(args))
        except NotImplementedError:
            print(_not_implemented(name))
            return False
        except Exception as error:  # the learner's bug: report it, never break the notebook
            print(
                f"{FAIL} {name}: raised {type(error).__name__}: {_first_line(error)} ({where}); "
                "call it directly to see the traceback"
            )
            return False
        result = compare(got, expected, atol=atol, rtol=rtol)
        if not result.ok:
            print(f"{FAIL} {name}: {result.detail} ({where})")
            return False
        max_abs_diff = max(max_abs_diff, result.max_abs_diff)
    plural = "input" if n_trials == 1 else "inputs"
    print(
        f"{PASS} {name}: matches the reference on {n_trials} seeded {plural} ({_diff_summary(max_abs_diff)})"
    )
    return True


def check_value(
    value: Any,
    expected: Any,
    name: str = "value",
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> bool:
    """Compare a plain result with its expected value (see :func:`compare`); print a verdict.

    Returns whether they match. Never raises.
    """
    try:
        result = compare(value, expected, atol=atol, rtol=rtol)
    except Exception as error:  # e.g. a custom __eq__ that raises
        print(f"{FAIL} {name}: could not compare ({type(error).__name__}: {_first_line(error)})")
        return False
    if result.ok:
        print(f"{PASS} {name}: matches the expected value ({_diff_summary(result.max_abs_diff)})")
    else:
        print(f"{FAIL} {name}: {result.detail}")
    return result.ok


# --------------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------------


def _not_implemented(name: str) -> str:
    return f"{SKIP} {name}: not implemented yet — the rest of the notebook uses the package's version"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"


def _diff_summary(max_abs_diff: float) -> str:
    return "exact match" if max_abs_diff == 0 else f"max |diff| = {max_abs_diff:.2e}"


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.6g}"
    if isinstance(x, complex):
        return f"{x.real:.6g}{x.imag:+.6g}j"
    return repr(x)


def _copy(obj: Any) -> Any:
    """Fresh tensors/arrays inside (nested) tuples, lists and dicts; other objects are shared."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone().requires_grad_(obj.requires_grad)
    if isinstance(obj, np.ndarray):
        return obj.copy()
    if isinstance(obj, tuple):
        copied = [_copy(x) for x in obj]
        return type(obj)(*copied) if hasattr(obj, "_fields") else tuple(copied)
    if isinstance(obj, list):
        return [_copy(x) for x in obj]
    if isinstance(obj, dict):
        return {key: _copy(x) for key, x in obj.items()}
    return obj


def _index(index: tuple[int, ...]) -> str:
    return f" at index {index}" if index else ""


def _describe(x: Any) -> str:
    if x is None:
        return "None"
    if isinstance(x, torch.Tensor):
        return "a torch.Tensor"
    if isinstance(x, np.ndarray):
        return "a NumPy array"
    if isinstance(x, tuple | list):
        return f"a {type(x).__name__} of {len(x)}"
    return f"a {type(x).__name__}"


def _at(path: str, message: str) -> Comparison:
    return Comparison(False, f"output{path}: {message}" if path else message)


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Number) and not isinstance(x, bool | np.bool_)


def _compare(got: Any, expected: Any, atol: float, rtol: float, path: str) -> Comparison:
    if isinstance(expected, torch.Tensor | np.ndarray):
        if not isinstance(got, type(expected) if isinstance(expected, np.ndarray) else torch.Tensor):
            return _at(path, f"returned {_describe(got)} but expected {_describe(expected)}")
        return _compare_arrays(got, expected, atol, rtol, path)
    if isinstance(expected, bool | np.bool_):
        if not isinstance(got, bool | np.bool_):
            return _at(path, f"returned {_describe(got)} but expected a bool")
        if bool(got) != bool(expected):
            return _at(path, f"{bool(got)} but expected {bool(expected)}")
        return Comparison(True)
    if _is_number(expected):
        if not _is_number(got):
            return _at(path, f"returned {_describe(got)} but expected a number")
        return _compare_numbers(got, expected, atol, rtol, path)
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return _at(path, f"returned {_describe(got)} but expected a dict")
        if set(got) != set(expected):
            return _at(path, f"keys {sorted(map(repr, got))} but expected {sorted(map(repr, expected))}")
        return _compare_items([(f"{path}[{key!r}]", got[key], expected[key]) for key in expected], atol, rtol)
    if isinstance(expected, tuple | list):
        if not isinstance(got, tuple | list):
            return _at(path, f"returned {_describe(got)} but expected {_describe(expected)}")
        if len(got) != len(expected):
            return _at(path, f"returned {_describe(got)} but expected {_describe(expected)}")
        return _compare_items(
            [(f"{path}[{i}]", g, e) for i, (g, e) in enumerate(zip(got, expected, strict=True))],
            atol,
            rtol,
        )
    if got != expected:
        return _at(path, f"{got!r} but expected {expected!r}")
    return Comparison(True)


def _compare_items(items: list[tuple[str, Any, Any]], atol: float, rtol: float) -> Comparison:
    max_abs_diff = 0.0
    for path, got, expected in items:
        result = _compare(got, expected, atol, rtol, path)
        if not result.ok:
            return result
        max_abs_diff = max(max_abs_diff, result.max_abs_diff)
    return Comparison(True, max_abs_diff=max_abs_diff)


def _compare_numbers(got: Any, expected: Any, atol: float, rtol: float, path: str) -> Comparison:
    if isinstance(expected, numbers.Integral) and isinstance(got, numbers.Integral):
        if int(got) != int(expected):
            return _at(path, f"{int(got)} but expected {int(expected)}")
        return Comparison(True)
    g, e = complex(got), complex(expected)
    if any(math.isnan(v) for v in (g.real, g.imag, e.real, e.imag)):
        if (math.isnan(abs(g)), math.isnan(abs(e))) == (True, True):
            return Comparison(True)
        return _at(path, f"{_fmt(got)} but expected {_fmt(expected)}")
    if g == e:  # also equal infinities
        return Comparison(True)
    diff = abs(g - e)
    if math.isinf(diff) or diff > atol + rtol * abs(e):
        return _at(
            path,
            f"{_fmt(got)} but expected {_fmt(expected)} (|diff| = {diff:.2e}; atol={atol:g}, rtol={rtol:g})",
        )
    return Comparison(True, max_abs_diff=diff)


def _compare_arrays(
    got: torch.Tensor | np.ndarray,
    expected: torch.Tensor | np.ndarray,
    atol: float,
    rtol: float,
    path: str,
) -> Comparison:
    if tuple(got.shape) != tuple(expected.shape):
        return _at(path, f"shape {tuple(got.shape)} but expected {tuple(expected.shape)}")
    if got.dtype != expected.dtype:
        return _at(path, f"dtype {got.dtype} but expected {expected.dtype}")
    if isinstance(got, np.ndarray):
        if got.dtype.kind not in "biufc":  # strings, objects, dates: plain equality
            if not np.array_equal(got, expected):
                return _at(path, "values differ")
            return Comparison(True)
        got, expected = (
            torch.from_numpy(np.ascontiguousarray(got)),
            torch.from_numpy(np.ascontiguousarray(expected)),
        )
    elif got.device != expected.device:
        return _at(path, f"device {got.device} but expected {expected.device}")
    g = got.detach().cpu()
    e = expected.detach().cpu()
    if g.numel() == 0:
        return Comparison(True)

    if not (g.is_floating_point() or g.is_complex()):
        bad = g != e
        if bad.any():
            index = tuple(torch.nonzero(bad)[0].tolist())
            return _at(
                path,
                f"{int(bad.sum())} of {g.numel()} values differ; first{_index(index)}: "
                f"got {_fmt(g[index].item())}, expected {_fmt(e[index].item())}",
            )
        return Comparison(True)

    wide = torch.complex128 if g.is_complex() else torch.float64
    g, e = g.to(wide), e.to(wide)
    g_nan, e_nan = torch.isnan(g), torch.isnan(e)
    nan_mismatch = g_nan ^ e_nan
    if nan_mismatch.any():
        index = tuple(torch.nonzero(nan_mismatch)[0].tolist())
        return _at(
            path,
            f"{int(nan_mismatch.sum())} of {g.numel()} values are NaN in only one of the two; "
            f"first{_index(index)}: got {_fmt(g[index].item())}, "
            f"expected {_fmt(e[index].item())}",
        )
    same = (g == e) | (g_nan & e_nan)  # equal infinities count as the same
    diff = torch.where(same, torch.zeros((), dtype=torch.float64), (g - e).abs())
    bad = (diff > atol + rtol * e.abs()) | (~same & (torch.isinf(g) | torch.isinf(e)))
    max_abs_diff = float(diff.max())
    if bad.any():
        worst = tuple(torch.nonzero(diff == diff.max())[0].tolist())
        return _at(
            path,
            f"values differ: max |diff| = {max_abs_diff:.2e}{_index(worst)} "
            f"(got {_fmt(g[worst].item())}, expected {_fmt(e[worst].item())}); "
            f"{int(bad.sum())} of {g.numel()} values outside atol={atol:g}, rtol={rtol:g}",
        )
    return Comparison(True, max_abs_diff=max_abs_diff)
