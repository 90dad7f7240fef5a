"""Self-checks for the notebooks' exercise cells.

After each exercise a check cell compares the learner's function with the package's version on a
few seeded inputs and prints ONE line::

    ✅ normalise_image: matches the reference on 3 seeded inputs (max |diff| = 5.96e-08)
    ❌ normalise_image: shape (2, 3) but expected (2, 4) (seeded input 1 of 3)
    ⏭ normalise_image: not implemented yet — the rest of the notebook uses the package's version

A check can also *diagnose*: ``probes`` are hand-picked inputs tried before the seeded ones (zero
flow, a shift of exactly one pixel, ``logvar != 0``), each with a hint printed when it fails, and
``mistakes`` maps a message to a function that makes a known mistake; when the learner's output
equals that wrong function's output, the verdict names the mistake instead of "values differ"::

    ❌ reparameterize: you used exp(logvar), the variance, as the standard deviation; ...

The checks never raise on the learner's behalf (a stub raising ``NotImplementedError`` or a bug
raising anything else is reported, not propagated), so a check cell never stops the notebook. They
print no timings or memory addresses, so their text is stable from run to run. Errors in the
*reference* side (``reference_fn``, ``make_inputs``) do propagate: those are the author's bugs.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

PASS = "✅"
FAIL = "❌"
SKIP = "⏭"

__all__ = [
    "Comparison",
    "Probe",
    "check_elbo_loss",
    "check_function",
    "check_reparameterize",
    "check_total_loss",
    "check_value",
    "check_warp_and_fill",
    "check_warp_by_hand",
    "compare",
]


@dataclass(frozen=True)
class Comparison:
    """Result of :func:`compare`.

    ``detail`` says what differs first ("" when ``ok``); ``max_abs_diff`` is the largest absolute
    difference over the floating-point values compared (0.0 when they are identical).
    """

    ok: bool
    detail: str = ""
    max_abs_diff: float = 0.0


@dataclass(frozen=True)
class Probe:
    """A hand-picked input for :func:`check_function`, tried before the seeded ones.

    ``description`` says what the input is ("zero flow"); ``args`` are the positional arguments
    (a non-tuple is the single argument); ``hint`` is printed after the verdict when the learner's
    output differs on this input and no known mistake matched ("" for none).
    """

    description: str
    args: Any
    hint: str = ""


def compare(
    got: Any,
    expected: Any,
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    names: Sequence[str] | None = None,
) -> Comparison:
    """Compare a learner's result with the expected one, structure first.

    Tensors and NumPy arrays: type, then shape, then dtype (then device), then values — exact for
    integer and boolean dtypes, ``|got - expected| <= atol + rtol * |expected|`` for floating
    and complex ones (NaN matches NaN, infinities must match exactly). Python/NumPy numbers: the
    same rule (integers exactly). Tuples/lists and dicts: length or keys, then element by
    element. Anything else: ``==``.

    ``names`` names the elements of a tuple/list result (``("loss", "recon", "kl")``): messages
    then say ``recon: ...`` instead of ``output[1]: ...``.
    """
    if names is not None and isinstance(expected, tuple | list) and len(names) == len(expected):
        if not isinstance(got, tuple | list) or len(got) != len(expected):
            return _at(
                "", f"returned {_describe(got)} but expected {_describe(expected)} ({', '.join(names)})"
            )
        return _compare_items(
            [(name, g, e) for name, g, e in zip(names, got, expected, strict=True)], atol, rtol
        )
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
    probes: Sequence[Probe] = (),
    mistakes: Mapping[str, Callable[..., Any]] | None = None,
    output_names: Sequence[str] | None = None,
) -> bool:
    """Check ``learner_fn`` against ``reference_fn`` on probes and seeded inputs; print a verdict.

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
        probes: hand-picked inputs (:class:`Probe`) tried first, in order; a failing probe's
            verdict names it and prints its hint.
        mistakes: ``{message: wrong_fn}``; ``wrong_fn`` has the reference's signature and makes
            one known mistake. When an output differs from the reference but equals a wrong
            function's output (same tolerances), the verdict prints that message. The wrong
            functions are tried in order and only on a failing input.
        output_names: names of the elements of a tuple result, used in the messages.

    Returns:
        ``True`` when every output matches; ``False`` when one differs, when ``learner_fn``
        raises ``NotImplementedError`` (an untouched stub) or any other exception. Never raises
        because of ``learner_fn``.
    """
    name = name or getattr(learner_fn, "__name__", "function")
    max_abs_diff = 0.0
    cases: list[tuple[str, Any, str]] = [(f"probe: {p.description}", p.args, p.hint) for p in probes]
    for trial in range(n_trials):
        args = make_inputs(torch.Generator().manual_seed(seed + trial))
        cases.append((f"seeded input {trial + 1} of {n_trials}", args, ""))
    for where, args, hint in cases:
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
        result = compare(got, expected, atol=atol, rtol=rtol, names=output_names)
        if not result.ok:
            mistake = _known_mistake(got, args, mistakes or {}, atol, rtol, output_names)
            if mistake is not None:
                print(f"{FAIL} {name}: {mistake} ({where}: {result.detail})")
            else:
                print(f"{FAIL} {name}: {result.detail} ({where})" + (f". {hint}" if hint else ""))
            return False
        max_abs_diff = max(max_abs_diff, result.max_abs_diff)
    n_trials = len(cases)
    plural = "input" if n_trials == 1 else "inputs"
    kind = "seeded " if not probes else ""
    print(
        f"{PASS} {name}: matches the reference on {n_trials} {kind}{plural} ({_diff_summary(max_abs_diff)})"
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


def _known_mistake(
    got: Any,
    args: tuple,
    mistakes: Mapping[str, Callable[..., Any]],
    atol: float,
    rtol: float,
    names: Sequence[str] | None,
) -> str | None:
    """The message of the first known mistake whose output equals ``got`` on ``args``, or None."""
    for message, wrong_fn in mistakes.items():
        try:
            wrong = wrong_fn(*_copy(args))
            if compare(got, wrong, atol=atol, rtol=rtol, names=names).ok:
                return message
        except Exception:  # a wrong variant that cannot run on this input simply does not match
            continue
    return None


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
    if not path:
        return Comparison(False, message)
    # "[1]" and "['key']" hang off the output; a name given by the caller stands on its own.
    return Comparison(False, f"output{path}: {message}" if path[0] == "[" else f"{path}: {message}")


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


# --------------------------------------------------------------------------------------------
# The lessons' checks: probes and known mistakes for the exercises whose wrong answers look alike
# --------------------------------------------------------------------------------------------
# Each takes the learner's function, prints one verdict and returns whether it passed. The package
# modules are imported inside, so that importing this module stays cheap.


def _seeded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn(mu, logvar, generator) -> fn(mu, logvar, seed): each side gets its own seeded generator."""
    return lambda mu, logvar, s: fn(mu, logvar, torch.Generator().manual_seed(s))


def check_reparameterize(learner_fn: Callable[..., Any]) -> bool:
    """Lesson 01, exercise 1: ``reparameterize(mu, logvar, generator)`` against
    :func:`seg2vid.cvae.reparameterize`, with ``logvar != 0`` probes (at ``logvar = 0`` the
    variance, the standard deviation and 1 coincide, so no mistake there shows)."""
    from seg2vid import cvae

    def exp_logvar(mu, logvar, generator):
        return mu + torch.exp(logvar) * torch.randn(mu.shape, generator=generator, dtype=mu.dtype)

    def logvar_as_std(mu, logvar, generator):
        return mu + logvar * torch.randn(mu.shape, generator=generator, dtype=mu.dtype)

    def sqrt_logvar(mu, logvar, generator):
        return mu + logvar.abs().sqrt() * torch.randn(mu.shape, generator=generator, dtype=mu.dtype)

    def no_mean(mu, logvar, generator):
        return torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator, dtype=mu.dtype)

    def inputs(g: torch.Generator):
        mu, logvar = torch.randn(2, 5, 3, generator=g)
        return mu, logvar, int(torch.randint(99, (1,), generator=g))

    hint = "the standard deviation is exp(0.5 * logvar); draw eps exactly as the exercise says"
    return check_function(
        _seeded(learner_fn),
        _seeded(cvae.reparameterize),
        inputs,
        name="reparameterize",
        probes=[
            Probe(
                "mu = 0, logvar = 2 (sigma = e ≈ 2.72)", (torch.zeros(4, 3), torch.full((4, 3), 2.0), 0), hint
            ),
            Probe(
                "mu = 1, logvar = -1 (sigma ≈ 0.61)", (torch.ones(4, 3), torch.full((4, 3), -1.0), 1), hint
            ),
        ],
        mistakes={
            "you used exp(logvar), the VARIANCE, as the standard deviation; sigma = exp(0.5 * logvar)": (
                _seeded(exp_logvar)
            ),
            "you used logvar itself as the standard deviation; sigma = exp(0.5 * logvar)": (
                _seeded(logvar_as_std)
            ),
            "you took the square root of logvar; sigma = exp(0.5 * logvar), "
            "the square root of the variance exp(logvar)": _seeded(sqrt_logvar),
            "the mean is missing: z = mu + sigma * eps": _seeded(no_mean),
        },
    )


def check_elbo_loss(learner_fn: Callable[..., Any]) -> bool:
    """Lesson 01, exercise 3: ``elbo_loss(logits, target, mu, logvar, beta) -> (loss, recon, kl)``
    against :func:`seg2vid.cvae.elbo_loss`; names the reduction and ``beta`` mistakes."""
    import torch.nn.functional as F

    from seg2vid import cvae

    def bce(logits, target):
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none")

    def variant(recon_fn, combine):
        def fn(logits, target, mu, logvar, beta=1.0):
            recon = recon_fn(bce(logits, target))
            kl = cvae.kl_diagonal_gaussian(mu, logvar)
            return combine(recon, kl, beta), recon, kl

        return fn

    def right_sum(b):
        return b.sum(dim=1).mean()

    def inputs(g: torch.Generator):
        return (
            torch.randn(5, 16, generator=g) * 3,
            torch.rand(5, 16, generator=g),
            torch.randn(5, 3, generator=g),
            torch.randn(5, 3, generator=g),
            0.1 + 0.8 * float(torch.rand((), generator=g)),  # never 0 or 1: beta's mistakes show
        )

    return check_function(
        learner_fn,
        cvae.elbo_loss,
        inputs,
        name="elbo_loss",
        output_names=("loss", "recon", "kl"),
        mistakes={
            "recon is averaged over the pixels too; SUM it over the pixels of each image (dim=1), "
            "then average over the batch": variant(lambda b: b.mean(), lambda r, k, beta: r + beta * k),
            "recon is summed over the batch too; sum over the pixels (dim=1), "
            "then .mean() over the batch": variant(lambda b: b.sum(), lambda r, k, beta: r + beta * k),
            "loss ignores beta: loss = recon + beta * kl": variant(right_sum, lambda r, k, beta: r + k),
            "beta multiplies the wrong term: loss = recon + beta * kl": variant(
                right_sum, lambda r, k, beta: beta * r + k
            ),
        },
    )


def check_warp_by_hand(learner_fn: Callable[..., Any]) -> bool:
    """Lesson 02, exercise 1: ``warp_by_hand(image, flow_px)`` against :func:`seg2vid.flow.warp`.

    Probes: zero flow (any units or ``align_corners`` mistake, or x and y swapped, already fails
    there), exactly +1 pixel in x (a sign error fails here but not at zero flow), and a whole-pixel
    shift in x and y; known mistakes are named."""
    import torch.nn.functional as F

    from seg2vid.flow import warp

    def sample(image, x_norm, y_norm, align_corners=False, padding_mode="border"):
        grid = torch.stack((x_norm, y_norm), dim=-1)
        return F.grid_sample(
            image, grid, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners
        )

    def sources(image, flow_px, sign=-1.0):
        _, _, h, w = image.shape
        ys, xs = torch.meshgrid(
            torch.arange(h, dtype=image.dtype), torch.arange(w, dtype=image.dtype), indexing="ij"
        )
        return xs + sign * flow_px[:, 0], ys + sign * flow_px[:, 1], h, w

    def right_units(x, y, h, w):
        return (2 * x + 1) / w - 1, (2 * y + 1) / h - 1

    def true_units(x, y, h, w):
        return 2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1

    def sign_flipped(image, flow_px):
        return sample(image, *right_units(*sources(image, flow_px, sign=+1.0)))

    def units_for_true(image, flow_px):
        return sample(image, *true_units(*sources(image, flow_px)))

    def sampled_with_true(image, flow_px):
        return sample(image, *right_units(*sources(image, flow_px)), align_corners=True)

    def x_y_swapped(image, flow_px):
        x, y = right_units(*sources(image, flow_px))
        return sample(image, y, x)

    def zeros_padding(image, flow_px):
        return sample(image, *right_units(*sources(image, flow_px)), padding_mode="zeros")

    def pixels_as_normalised(image, flow_px):
        x, y, h, w = sources(image, torch.zeros_like(flow_px))
        x, y = right_units(x, y, h, w)
        return sample(image, x - flow_px[:, 0], y - flow_px[:, 1])

    def inputs(g: torch.Generator):
        return torch.rand(2, 3, 6, 9, generator=g), 3.0 * torch.randn(2, 2, 6, 9, generator=g)

    image = torch.rand(1, 3, 6, 9, generator=torch.Generator().manual_seed(1))
    zero = torch.zeros(1, 2, 6, 9)
    one_right = zero.clone()
    one_right[:, 0] = 1.0
    shift = zero.clone()
    shift[:, 0], shift[:, 1] = 2.0, -1.0
    return check_function(
        learner_fn,
        warp,
        inputs,
        name="warp_by_hand",
        probes=[
            Probe(
                "zero flow, where the output must equal the image",
                (image, zero),
                "With zero flow every pixel reads its own centre, so the units are wrong: the "
                "normalisation (2x + 1)/W - 1 and align_corners=False must go together, x first",
            ),
            Probe(
                "+1 pixel in x only: out(x, y) = image(x - 1, y)",
                (image, one_right),
                "Zero flow passed, so the units at rest are right; check the sign (read at p - flow) "
                "and that channel 0 of the flow is x",
            ),
            Probe("a whole-pixel shift, +2 px in x and -1 px in y", (image, shift), ""),
        ],
        mistakes={
            "the content moves the wrong way: read the image at p - flow, not p + flow "
            "(sign error)": sign_flipped,
            "align_corners units mixed: the grid is normalised for align_corners=True (2x/(W-1) - 1) "
            "but sampled with align_corners=False; use (2x + 1)/W - 1": units_for_true,
            "align_corners units mixed: the grid is normalised for align_corners=False ((2x + 1)/W - 1) "
            "but grid_sample was called with align_corners=True": sampled_with_true,
            "x and y are swapped: the grid's last axis holds x (column) first, then y (row)": x_y_swapped,
            "positions outside the image read zeros: use padding_mode='border'": zeros_padding,
            "the flow was used in normalised units: convert it from pixels before adding it": (
                pixels_as_normalised
            ),
        },
    )


def check_warp_and_fill(learner_fn: Callable[..., Any]) -> bool:
    """Lesson 04, exercise 1: ``warp_and_fill(first_frame, flow_fwd, mask_fwd, noise) ->
    (warped, filled)`` against :func:`seg2vid.models.seg2vid.warp_and_fill`."""
    from seg2vid.flow import warp
    from seg2vid.models.seg2vid import warp_and_fill

    def mask_reversed(first_frame, flow, mask, noise):
        warped = warp(first_frame.unsqueeze(1), flow)
        return warped, warped * (1 - mask) + noise * mask

    def no_noise(first_frame, flow, mask, noise):
        warped = warp(first_frame.unsqueeze(1), flow)
        return warped, warped * mask

    def swapped(first_frame, flow, mask, noise):
        return tuple(reversed(warp_and_fill(first_frame, flow, mask, noise)))

    def inputs(g: torch.Generator):
        b, t, h, w = 2, 3, 8, 12
        return (
            torch.rand(b, 3, h, w, generator=g),
            2.0 * torch.randn(b, t, 2, h, w, generator=g),
            torch.rand(b, t, 1, h, w, generator=g),
            torch.rand(b, t, 3, h, w, generator=g),
        )

    return check_function(
        learner_fn,
        warp_and_fill,
        inputs,
        name="warp_and_fill",
        output_names=("warped", "filled"),
        mistakes={
            "the mask is used the wrong way round: keep the warp where mask_fwd is 1 (visible) and "
            "the noise where it is 0": mask_reversed,
            "filled has no noise: filled = warped * mask_fwd + noise * (1 - mask_fwd)": no_noise,
            "the two outputs are swapped: return (warped, filled)": swapped,
        },
    )


def check_total_loss(learner_fn: Callable[..., Any]) -> bool:
    """Lesson 04, exercise 2: ``total_loss(terms, config, step)`` against the weights of
    :meth:`seg2vid.training.objective.LossConfig.weight`.

    The KL weight is probed ON ITS OWN (a terms dict holding only ``kl = 1``): inside a full loss
    the KL term is so small that a wrong warm-up changes the total by less than any tolerance."""
    from seg2vid.training.objective import TERMS, LossConfig

    def reference(terms, config, step):
        return sum(config.weight(name, step) * value for name, value in terms.items())

    def variant(kl_weight):
        def fn(terms, config, step):
            total = 0.0
            for name, value in terms.items():
                w = getattr(config, name)
                if name == "kl":
                    w = w * kl_weight(step, config.kl_warmup_steps)
                total = total + w * value
            return total

        return fn

    def inputs(g: torch.Generator):
        warmup = int(torch.tensor([0, 10, 500])[torch.randint(3, (1,), generator=g)])
        terms = {name: torch.rand((), generator=g) for name in TERMS}
        return terms, LossConfig(kl_warmup_steps=warmup), int(torch.randint(0, 1000, (1,), generator=g))

    kl_only = {"kl": torch.tensor(1.0)}
    ten = LossConfig(kl=1.0, kl_warmup_steps=10)
    return check_function(
        learner_fn,
        reference,
        inputs,
        name="total_loss",
        n_trials=4,
        probes=[
            Probe("the KL term alone, kl = 1, kl_warmup_steps = 10, step 0 (weight 0.1)", (kl_only, ten, 0)),
            Probe("the KL term alone, kl = 1, kl_warmup_steps = 10, step 4 (weight 0.5)", (kl_only, ten, 4)),
            Probe("the KL term alone, kl = 1, kl_warmup_steps = 10, step 50 (weight 1)", (kl_only, ten, 50)),
            Probe("the KL term alone, kl = 1, no warm-up (weight 1)", (kl_only, LossConfig(kl=1.0), 0)),
            Probe("recon alone (weight config.recon = 2)", ({"recon": torch.tensor(1.0)}, ten, 0)),
        ],
        mistakes={
            "the warm-up weight is step / warm-up; the exercise asks for (step + 1) / warm-up, with "
            "step counted from 0": variant(lambda s, n: min(1.0, s / n) if n else 1.0),
            "the KL weight keeps growing after the warm-up: cap it with min(1, ...)": variant(
                lambda s, n: (s + 1) / n if n else 1.0
            ),
            "the KL weight is not warmed up: multiply config.kl by "
            "min(1, (step + 1) / kl_warmup_steps)": variant(lambda s, n: 1.0),
        },
    )
