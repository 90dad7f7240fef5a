"""The lessons' exercise checks diagnose: wrong answers a learner writes fail with a message that
names the mistake, and right answers pass (seg2vid.exercises, used by the notebooks' check cells).

The generic machinery (compare, check_function, check_value) is tested in test_notebooks.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seg2vid import cvae
from seg2vid.exercises import (
    Probe,
    check_elbo_loss,
    check_function,
    check_reparameterize,
    check_total_loss,
    check_warp_and_fill,
    check_warp_by_hand,
)
from seg2vid.flow import warp

pytestmark = pytest.mark.usefixtures("one_thread")


def verdict(capsys, check, fn) -> tuple[bool, str]:
    passed = check(fn)
    out = capsys.readouterr().out
    assert out.count("\n") == 1, f"a check prints ONE line, got {out!r}"
    return passed, out


def assert_fails_naming(capsys, check, fn, *phrases):
    passed, out = verdict(capsys, check, fn)
    assert not passed and out.startswith("❌"), out
    for phrase in phrases:
        assert phrase in out, f"{phrase!r} not in {out!r}"
    return out


def assert_passes(capsys, check, fn):
    passed, out = verdict(capsys, check, fn)
    assert passed and out.startswith("✅"), out


# ------------------------------------------------------------------ generic probes and names


def test_probes_come_first_and_print_their_hint(capsys):
    probe = Probe("zero input", (torch.zeros(3),), "hint: zero must map to zero")
    ok = check_function(
        lambda x: x + 1, lambda x: 2 * x, lambda g: torch.rand(3, generator=g), probes=[probe], name="f"
    )
    out = capsys.readouterr().out
    assert not ok
    assert "(probe: zero input). hint: zero must map to zero" in out


def test_output_names_replace_indices(capsys):
    ok = check_function(
        lambda x: (x, x + 1), lambda x: (x, x), lambda g: torch.rand(3, generator=g),
        name="f", output_names=("a", "b"),
    )
    out = capsys.readouterr().out
    assert not ok and "❌ f: b: values differ" in out and "output[1]" not in out


def test_a_known_mistake_is_named(capsys):
    ok = check_function(
        lambda x: -x, lambda x: x, lambda g: torch.rand(3, generator=g) + 1,
        name="f", mistakes={"sign flipped": lambda x: -x},
    )
    out = capsys.readouterr().out
    assert not ok and out.startswith("❌ f: sign flipped (seeded input 1 of 3: values differ")


# ------------------------------------------------------------------ lesson 01


def reparameterize_right(mu, logvar, generator=None):
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def test_reparameterize(capsys):
    assert_passes(capsys, check_reparameterize, reparameterize_right)

    def exp_logvar(mu, logvar, generator=None):
        return mu + torch.exp(logvar) * torch.randn(mu.shape, generator=generator, dtype=mu.dtype)

    out = assert_fails_naming(
        capsys, check_reparameterize, exp_logvar, "exp(logvar), the VARIANCE", "logvar = 2"
    )
    assert "values differ" in out

    def no_mu(mu, logvar, generator=None):
        return torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator, dtype=mu.dtype)

    assert_fails_naming(capsys, check_reparameterize, no_mu, "the mean is missing")

    def stub(mu, logvar, generator=None):
        raise NotImplementedError("Student exercise: ...")

    passed, out = verdict(capsys, check_reparameterize, stub)
    assert not passed and out.startswith("⏭")


def elbo(recon_reduce, use_beta=True):
    def fn(logits, target, mu, logvar, beta=1.0):
        recon = recon_reduce(F.binary_cross_entropy_with_logits(logits, target, reduction="none"))
        kl = cvae.kl_diagonal_gaussian(mu, logvar)
        return recon + (beta if use_beta else 1.0) * kl, recon, kl

    return fn


def test_elbo_loss(capsys):
    assert_passes(capsys, check_elbo_loss, elbo(lambda b: b.sum(dim=1).mean()))
    assert_fails_naming(
        capsys, check_elbo_loss, elbo(lambda b: b.mean()), "averaged over the pixels", "loss: "
    )
    assert_fails_naming(capsys, check_elbo_loss, elbo(lambda b: b.sum()), "summed over the batch")
    out = assert_fails_naming(
        capsys, check_elbo_loss, elbo(lambda b: b.sum(dim=1).mean(), use_beta=False), "ignores beta"
    )
    assert "loss: " in out and "output[0]" not in out


# ------------------------------------------------------------------ lesson 02


def warp_by_hand(sign=-1.0, units="false", corners=False, order="xy", padding="border"):
    def fn(image, flow_px):
        _, _, h, w = image.shape
        ys, xs = torch.meshgrid(
            torch.arange(h, dtype=image.dtype), torch.arange(w, dtype=image.dtype), indexing="ij"
        )
        x, y = xs + sign * flow_px[:, 0], ys + sign * flow_px[:, 1]
        if units == "false":
            x, y = (2 * x + 1) / w - 1, (2 * y + 1) / h - 1
        else:
            x, y = 2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1
        grid = torch.stack((x, y) if order == "xy" else (y, x), dim=-1)
        return F.grid_sample(image, grid, mode="bilinear", padding_mode=padding, align_corners=corners)

    return fn


def test_warp_by_hand(capsys):
    assert_passes(capsys, check_warp_by_hand, warp_by_hand())
    # consistent: right too
    assert_passes(capsys, check_warp_by_hand, warp_by_hand(units="true", corners=True))
    sign = assert_fails_naming(
        capsys, check_warp_by_hand, warp_by_hand(sign=+1.0), "sign error", "+1 pixel in x"
    )
    units = assert_fails_naming(
        capsys, check_warp_by_hand, warp_by_hand(units="true"), "align_corners units mixed", "zero flow"
    )
    assert sign.split("(")[0] != units.split("(")[0]  # the two mistakes get different messages
    assert_fails_naming(
        capsys, check_warp_by_hand, warp_by_hand(corners=True), "called with align_corners=True"
    )
    assert_fails_naming(
        capsys, check_warp_by_hand, warp_by_hand(order="yx"), "x and y are swapped", "zero flow"
    )
    assert_fails_naming(capsys, check_warp_by_hand, warp_by_hand(padding="zeros"), "padding_mode='border'")


def test_warp_by_hand_unknown_mistakes_get_the_probes_hint(capsys):
    def off_by_half(image, flow_px):
        return warp_by_hand()(image, flow_px + 0.5)

    assert_fails_naming(capsys, check_warp_by_hand, off_by_half, "zero flow", "the units are wrong")

    def y_flipped(image, flow_px):  # right at zero flow and for +1 px in x, wrong sign in y
        return warp(image, flow_px * torch.tensor([1.0, -1.0])[None, :, None, None])

    assert_fails_naming(capsys, check_warp_by_hand, y_flipped, "whole-pixel shift")


# ------------------------------------------------------------------ lesson 04


def test_warp_and_fill(capsys):
    def right(first, flow, mask, noise):
        warped = warp(first.unsqueeze(1), flow)
        return warped, warped * mask + noise * (1 - mask)

    def reversed_mask(first, flow, mask, noise):
        warped = warp(first.unsqueeze(1), flow)
        return warped, warped * (1 - mask) + noise * mask

    assert_passes(capsys, check_warp_and_fill, right)
    out = assert_fails_naming(capsys, check_warp_and_fill, reversed_mask, "the wrong way round", "filled: ")
    assert "output[1]" not in out
    assert_fails_naming(capsys, check_warp_and_fill, lambda *a: tuple(reversed(right(*a))), "swapped")


def total_loss(kl_factor):
    def fn(terms, config, step):
        total = 0.0
        for name, value in terms.items():
            weight = getattr(config, name)
            if name == "kl" and config.kl_warmup_steps > 0:
                weight = weight * kl_factor(step, config.kl_warmup_steps)
            total = total + weight * value
        return total

    return fn


def test_total_loss(capsys):
    assert_passes(capsys, check_total_loss, total_loss(lambda s, n: min(1.0, (s + 1) / n)))
    # The mistake the issue found PASSING the old check (the KL term is tiny inside the full loss):
    assert_fails_naming(
        capsys, check_total_loss, total_loss(lambda s, n: min(1.0, s / n)),
        "step / warm-up", "(step + 1)", "step 0",
    )
    assert_fails_naming(capsys, check_total_loss, total_loss(lambda s, n: (s + 1) / n), "min(1, ...)")
    assert_fails_naming(capsys, check_total_loss, total_loss(lambda s, n: 1.0), "not warmed up")
