"""The training loop that both trainers share: the CSV log, the cadence, the summary, exact resume.

:class:`TrainLoop` is the base of :class:`seg2vid.training.stage2.Trainer` (the video model) and
:class:`seg2vid.training.stage1.Stage1Trainer` (the SPADE generator). It owns what a training run
is, whatever it trains: the folder layout (``OUT/checkpoints/last.pt``, ``OUT/log.csv``,
``OUT/summary.json``, ``OUT/samples/``), one CSV row per step, the sample and checkpoint cadence,
SIGTERM handling, the slow-CPU warning, the summary, the epoch permutation of a fixed pool of
clips, the checkpoint header, the note on the last good checkpoint after a failure, and
:meth:`TrainLoop.resume` (config checks naming every differing field, RNG states, log
truncation), and :meth:`TrainLoop.warm_start` (a new run from another run's weights). A trainer
supplies its networks' step and the few hooks listed in the class.
"""

from __future__ import annotations

import csv
import io
import json
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from seg2vid import __version__
from seg2vid.checkpoints import (
    CheckpointMismatchError,
    atomic_write,
    config_differences,
    remove_stale_temporaries,
    rng_state,
    set_rng_state,
)
from seg2vid.utils import progress_enabled

__all__ = ["NonFiniteError", "TrainLoop", "TrainingStopped", "read_log"]


class NonFiniteError(FloatingPointError):
    """A batch, a loss term or a gradient held NaN or inf; training stopped before the update."""


class TrainingStopped(RuntimeError):
    """A run was stopped by SIGTERM before its last step (its checkpoint is saved and the same
    command resumes it): what comes after training -- exporting, scoring -- must not use it."""


def read_log(path: str | Path) -> dict[str, np.ndarray]:
    """A trainer's ``log.csv`` (stage 1 or 2) as ``{column: float64 array over the logged steps}``,
    e.g. ``log["step"]``, ``log["total"]``, ``log["step_s"]`` (empty dict for a log without rows)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {key: np.array([float(row[key]) for row in rows]) for key in (rows[0] if rows else [])}


def _catch_sigterm(loop: TrainLoop) -> Callable[[], None]:
    """Make SIGTERM (a Colab runtime or a cluster job being stopped, ``kill``) end the training
    loop after the current step, with a checkpoint, instead of killing it mid-step. Returns the
    function that restores the previous handler. Only the main thread may set handlers: elsewhere
    (a training loop in a worker thread) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        loop._stop_signal = signum

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


class TrainLoop:
    """The bookkeeping that :class:`seg2vid.training.stage2.Trainer` and
    :class:`seg2vid.training.stage1.Stage1Trainer` share.

    A subclass sets the attributes ``config`` (with ``steps``, ``log_every``, ``sample_every``,
    ``checkpoint_every``, ``seed``), ``device``, ``step``, ``_started``, ``columns``, ``perceptual``,
    ``model_config``, ``data_config`` and the output paths (:meth:`_set_output_paths`); it provides
    :meth:`save_checkpoint` (starting from :meth:`_checkpoint_header`), :meth:`write_samples`,
    :meth:`_train_one` (load one batch and take one step), :meth:`_history_keys`, and for
    :meth:`resume` :meth:`_read_checkpoint`, :meth:`_resume_configs` and :meth:`_load_state`; it
    names what differs in the class attributes below. :meth:`_train_loop` then runs the loop: the CSV
    row, the history, the slow-CPU warning, the progress bar, the sample and checkpoint cadence,
    the final checkpoint, sample and ``summary.json``.
    """

    def _set_output_paths(self, out_dir: str | Path) -> None:
        """The run's layout: ``OUT/checkpoints/last.pt``, ``OUT/log.csv``, ``OUT/summary.json``,
        ``OUT/samples/``."""
        self.out_dir = Path(out_dir)
        self.checkpoint_path = self.out_dir / "checkpoints" / "last.pt"
        self.log_path = self.out_dir / "log.csv"
        self.summary_path = self.out_dir / "summary.json"
        self.samples_dir = self.out_dir / "samples"

    #: Description of the progress bar.
    _BAR_DESC = "train"
    #: How to resume, named in the error when ``out_dir`` already holds a run.
    _RESUME_HINT = "Trainer.resume(), seg2vid train --resume"
    #: History keys shown in the progress bar's postfix (those present).
    _POSTFIX_KEYS: tuple[str, ...] = ("total", "recon", "kl")
    #: What is slow, in the slow-CPU warning ("<what> on the CPU: about N min ...").
    _SLOW_WHAT = "training"
    #: Whether this process writes files (False on ranks > 0 of a multi-process run).
    is_main = True
    #: Set by the SIGTERM handler while :meth:`_train_loop` runs: stop after the current step.
    _stop_signal: int | None = None
    #: (epoch, its permutation of the pool), cached by :meth:`_permutation`.
    _epoch_order: tuple[int, Tensor] | None = None

    def _sync_stop(self, stop: bool) -> bool:
        """Whether to stop now, agreed by all processes (alone: ``stop``)."""
        return stop

    def _history_keys(self) -> list[str]:
        """Columns of a CSV row kept in the history (the summary's "last losses", the postfix)."""
        raise NotImplementedError

    def _train_one(self, step: int, fail: Any) -> tuple[dict[str, Any], float, float]:
        """Load the batch of (1-based) step ``step`` and take one optimiser step.

        Returns the log row (without ``step``, ``data_s``, ``step_s``), the time the batch started
        loading and the time the step started (``time.perf_counter()``). On a failure it calls
        ``fail(message)`` (which writes the summary with the reason) and raises.
        """
        raise NotImplementedError

    def _before_loop(self, until: int) -> None:
        """Called once before the loop starts (and its clock): nothing by default."""

    def _summary_configs(self) -> dict[str, Any]:
        """The configs of ``summary.json``, in order, after ``model_config``: ``train_config``."""
        return {"train_config": self.config.to_dict()}

    def _train_loop(self, until: int | None) -> dict[str, Any]:
        """The body of ``train(until)``; see :meth:`Trainer.train`. Returns the summary dict."""
        tc = self.config
        until = tc.steps if until is None else min(until, tc.steps)
        if not self._started and self.checkpoint_path.is_file():
            raise FileExistsError(
                f"{self.out_dir} already holds a run ({self.checkpoint_path}): resume it "
                f"({self._RESUME_HINT}) or train into another folder"
            )
        new_log = not self._started or not self.log_path.is_file()
        self._started = True
        main = self.is_main
        if main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._remove_stale_temporaries()
        self._before_loop(until)
        history: list[dict[str, float]] = []
        start_step, start = self.step, time.perf_counter()

        def fail(message: str) -> None:
            self._write_summary(f"failed: {message}", history, time.perf_counter() - start,
                                self.step - start_step)

        bar = None
        if progress_enabled() and main:
            from tqdm.auto import tqdm

            bar = tqdm(total=until, initial=self.step, desc=self._BAR_DESC, unit="step")
        log = open(self.log_path, "w" if new_log else "a", newline="") if main else None
        self._stop_signal = None
        restore = _catch_sigterm(self)
        try:
            writer = csv.DictWriter(log, fieldnames=self.columns) if log is not None else None
            if writer is not None and new_log:
                writer.writeheader()
            for step, row, t0, t1 in self._steps(until, fail):
                row = {"step": step, **row, "data_s": round(t1 - t0, 4),
                       "step_s": round(time.perf_counter() - t1, 4)}
                if writer is not None:
                    writer.writerow(row)
                    log.flush()
                history.append({k: row[k] for k in self._history_keys()})
                if step == start_step + 2 and main:  # the first step also pays one-off warm-up costs
                    self._warn_if_slow(time.perf_counter() - t0, until - step)
                if bar is not None:
                    bar.update(1)
                    if step % tc.log_every == 0 or step == until:
                        bar.set_postfix({k: f"{history[-1][k]:.3g}" for k in self._POSTFIX_KEYS
                                         if k in history[-1]}, refresh=False)
                if tc.sample_every and step % tc.sample_every == 0:
                    self.write_samples()
                if tc.checkpoint_every and step % tc.checkpoint_every == 0:
                    self.save_checkpoint()
                if self._sync_stop(self._stop_signal is not None):
                    break
        finally:
            restore()
            if log is not None:
                log.close()
            if bar is not None:
                bar.close()
        if self.step > start_step or not self.checkpoint_path.is_file():
            self.save_checkpoint()
            if tc.sample_every and self.step % tc.sample_every:
                self.write_samples()
        if self.step >= tc.steps:
            status = "finished"
        elif self.step < until:
            status = (f"stopped by SIGTERM at step {self.step} of {tc.steps}; the checkpoint is saved and "
                      "the run can be resumed: run the same command again")
        else:
            status = f"paused at step {self.step} of {tc.steps}"
        return self._write_summary(status, history, time.perf_counter() - start, self.step - start_step)

    def _steps(self, until: int, fail: Any) -> Iterator[tuple[int, dict[str, Any], float, float]]:
        """Train step by step up to ``until``; yields (step, log row, batch start, step start).

        Subclasses that load batches ahead (DataLoader workers) override this."""
        while self.step < until:
            step = self.step + 1
            row, t0, t1 = self._train_one(step, fail)
            yield step, row, t0, t1

    def _warn_if_slow(self, seconds_per_step: float, steps_left: int) -> None:
        """Warn when the rest of a CPU run would take more than 15 minutes (points at ``train()``'s
        caller: _warn_if_slow <- _train_loop <- train <- caller)."""
        minutes = seconds_per_step * steps_left / 60
        if self.device.type == "cpu" and minutes > 15:
            warnings.warn(
                f"{self._SLOW_WHAT} on the CPU: about {minutes:.0f} min for the {steps_left} steps left "
                f"({seconds_per_step:.2f} s/step). A GPU runtime is far faster (Colab: Runtime -> "
                "Change runtime type -> GPU).",
                stacklevel=4,
            )

    def _remove_stale_temporaries(self) -> list[Path]:
        """Remove what a killed write left (``.last.pt.*.tmp``, ``.log.csv.*.tmp``, ...) before this
        run writes anything: :func:`seg2vid.checkpoints.atomic_write` cleans up after an exception,
        but SIGKILL or a power cut runs no ``except``."""
        return (remove_stale_temporaries(self.checkpoint_path.parent, (self.checkpoint_path.name,))
                + remove_stale_temporaries(self.out_dir, (self.log_path.name, self.summary_path.name)))

    def _truncate_log(self, step: int) -> None:
        """Repair the CSV log for a resume at ``step``, atomically: drop the rows after ``step``
        (written before an interruption) and a torn row (a process killed in the middle of writing
        it: too few fields or a field that is no number); keep one row per step, in order. Without
        this the next rows would be appended to the torn one and :func:`read_log` would fail."""
        if not self.log_path.is_file():
            return
        with open(self.log_path, newline="") as fh:
            rows = list(csv.reader(fh))
        if not rows or rows[0] != self.columns:
            raise ValueError(f"{self.log_path} has other columns than this run: {rows[0] if rows else []}")

        def whole(row: list[str]) -> bool:
            if len(row) != len(self.columns):
                return False
            try:
                [float(v) for v in row]
            except ValueError:
                return False
            return True

        kept, last = [rows[0]], 0
        for row in rows[1:]:
            if whole(row) and last < int(float(row[0])) <= step:
                kept.append(row)
                last = int(float(row[0]))
        text = io.StringIO()
        csv.writer(text).writerows(kept)
        atomic_write(self.log_path, lambda fh: fh.write(text.getvalue().encode()))

    def _write_summary(
        self, status: str, history: list[dict[str, float]], seconds: float, steps_done: int
    ) -> dict[str, Any]:
        """Write ``summary.json`` atomically (rank 0 only): status, throughput, the last losses,
        paths, configs. Returns the summary."""
        window = history[-self.config.log_every:]
        summary = {
            "status": status,
            # whether the same command (or resume()) continues this run from its checkpoint
            "resumable": self.step < self.config.steps and self.checkpoint_path.is_file(),
            "step": self.step,
            "steps": self.config.steps,
            "device": str(self.device),
            "perceptual": self.perceptual is not None,
            "seconds_this_session": round(seconds, 3),
            "steps_per_second": round(steps_done / seconds, 4) if seconds > 0 and steps_done else None,
            "last_losses": {k: float(np.mean([r[k] for r in window])) for k in window[0]} if window else {},
            "paths": {"checkpoint": str(self.checkpoint_path), "log": str(self.log_path),
                      "samples": str(self.samples_dir)},
            "model_config": self.model_config.to_dict(),
            **self._summary_configs(),
            "versions": {"seg2vid": __version__, "torch": torch.__version__},
        }
        text = json.dumps(summary, indent=2)
        if self.is_main:
            atomic_write(self.summary_path, lambda fh: fh.write(text.encode()))
        return json.loads(text)

    # ------------------------------------------------------------------ checkpoints and resume

    #: Format tag of this trainer's training checkpoints (see :mod:`seg2vid.checkpoints`).
    _FORMAT: tuple[str, int]

    def _read_checkpoint(self, path: str | Path) -> dict[str, Any]:
        """Read one of this trainer's training checkpoints, format checked."""
        raise NotImplementedError

    def _checkpoint_header(self) -> dict[str, Any]:
        """The first keys of every checkpoint: format tag and version, package version, step."""
        return {"format": self._FORMAT[0], "format_version": self._FORMAT[1],
                "seg2vid_version": __version__, "step": self.step}

    def _write_checkpoint(self, state: dict[str, Any]) -> Path:
        """Write ``OUT/checkpoints/last.pt`` atomically: the header, the trainer's ``state``
        (weights, optimisers, configs), then what every trainer stores (``data_config``, whether
        the perceptual term was on, the RNG states). Only tensors and plain values, so it loads
        with ``torch.load(weights_only=True)``."""
        ckpt = {**self._checkpoint_header(), **state, "data_config": self.data_config,
                "perceptual": self.perceptual is not None, "rng": rng_state(self.device)}
        atomic_write(self.checkpoint_path, lambda fh: torch.save(ckpt, fh))
        return self.checkpoint_path

    def _permutation(self, epoch: int, n: int) -> Tensor:
        """The order (n,) in which epoch ``epoch`` visits a pool of n clips: a permutation seeded by
        (seed, epoch), so that the batch of a step is a pure function of (seed, step)."""
        if self._epoch_order is None or self._epoch_order[0] != epoch:
            seed = int(np.random.SeedSequence([self.config.seed, epoch]).generate_state(1)[0])
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
            self._epoch_order = (epoch, order)
        return self._epoch_order[1]

    def _failure_note(self) -> str:
        """What is left after a failed step: the last good checkpoint (untouched) and its step."""
        if self.checkpoint_path.is_file():
            saved = self._read_checkpoint(self.checkpoint_path)["step"]
            return f"the last good checkpoint, untouched, is {self.checkpoint_path} (step {saved})"
        return "no checkpoint had been written yet"

    def _resume_configs(self, ckpt: dict[str, Any]) -> list[tuple[str, dict, dict, tuple[str, ...]]]:
        """(name, checkpoint's dict, current dict, fields allowed to differ) of every config that
        :meth:`resume` compares, in the order the differences are reported."""
        raise NotImplementedError

    def _saved_data_config(self, ckpt: dict[str, Any]) -> dict[str, Any]:
        """The checkpoint's ``data_config`` as :meth:`resume` compares it with ``self.data_config``
        (checkpoints from before ``data_config`` existed were all trained on synthetic streets)."""
        return ckpt.get("data_config", {"kind": "synthetic"})

    def _load_state(self, ckpt: dict[str, Any]) -> None:
        """Load the networks' and optimisers' states of a checked checkpoint."""
        raise NotImplementedError

    def _check_resumable(self, path: Path, ckpt: dict[str, Any]) -> None:
        """Refuse a file that holds no training state (nothing by default)."""

    def _after_resume(self) -> None:
        """Called after the RNG states and the step are restored (nothing by default)."""

    def resume(self, path: str | Path | None = None) -> int:
        """Continue from a checkpoint (default ``OUT/checkpoints/last.pt``); returns its step.

        Every config of the run must equal the checkpoint's, except the train config's
        ``RESUMABLE_CHANGES`` (run length, bookkeeping, where it runs); otherwise a
        :class:`~seg2vid.checkpoints.CheckpointMismatchError` names every differing field. The
        data (``data_config``) and whether the perceptual term is on must match too. Log rows
        after the checkpoint's step (written before an interruption) are dropped.
        """
        path = Path(path) if path is not None else self.checkpoint_path
        if self.is_main:
            self._remove_stale_temporaries()
        ckpt = self._read_checkpoint(path)
        self._check_resumable(path, ckpt)
        problems = [f"{name} {d}" for name, saved, current, ignore in self._resume_configs(ckpt)
                    for d in config_differences(saved, current, ignore)]
        problems += [f"data {d}" for d in config_differences(self._saved_data_config(ckpt), self.data_config)]
        if ckpt["perceptual"] != (self.perceptual is not None):
            on = {True: "on", False: "off"}
            problems.append(
                f"perceptual term (VGG-19 weights given): checkpoint {on[ckpt['perceptual']]}, "
                f"now {on[self.perceptual is not None]}"
            )
        if problems:
            raise CheckpointMismatchError(
                f"{path} was written with a different configuration; differing fields:\n  "
                + "\n  ".join(problems)
            )
        self._load_state(ckpt)
        set_rng_state(ckpt["rng"], self.device)
        self.step = ckpt["step"]
        self._after_resume()
        if self.is_main:
            self._truncate_log(self.step)
        self._started = True
        return self.step

    # ------------------------------------------------------------------ warm start

    def _read_weights(self, path: Path) -> dict[str, Any]:
        """Read a file whose networks :meth:`warm_start` can take (default: a training checkpoint)."""
        return self._read_checkpoint(path)

    def _warm_start_model_config(self, ckpt: dict[str, Any]) -> dict[str, Any]:
        """The checkpoint's model config as this version's dict (fields added since: defaults)."""
        raise NotImplementedError

    def _load_weights(self, ckpt: dict[str, Any], new_modules: bool = False) -> None:
        """Load the networks' weights (no optimiser state) of a checked checkpoint; with
        ``new_modules``, weights this model has and the checkpoint lacks keep their initial values."""
        raise NotImplementedError

    def warm_start(self, path: str | Path, keep_step: bool = True, differ: tuple[str, ...] = ()) -> int:
        """Start this new run from the network weights of another run's checkpoint or export
        (e.g. to train on top of a shipped model), before the first step; returns the step it
        starts from.

        Unlike :meth:`resume`, only the weights are taken: the optimisers start afresh, the RNGs
        and the batches follow this run's own seed, and the train, loss and data configs may
        differ from the checkpoint's. The model config must equal the checkpoint's, otherwise a
        :class:`~seg2vid.checkpoints.CheckpointMismatchError` names every differing field. With
        ``keep_step`` the step count continues from the checkpoint's (so step-based schedules
        such as the KL warm-up continue, and ``train_config.steps`` counts from there);
        otherwise it starts at 0. ``differ`` names model config fields that may differ from the
        checkpoint's (e.g. ``object_motion``): the checkpoint's weights are trained under another
        computation, and weights that only this model has (a module the option adds) keep their
        initial values; every weight of the checkpoint must still fit this model exactly.

        Raises:
            ValueError: the run has already started or been resumed.
        """
        if self._started:
            raise ValueError("warm_start() starts a new run: call it before train(), and not after resume()")
        path = Path(path)
        ckpt = self._read_weights(path)
        problems = config_differences(self._warm_start_model_config(ckpt), self.model_config.to_dict(),
                                      ignore=tuple(differ))
        if problems:
            raise CheckpointMismatchError(
                f"{path} holds another model; differing model fields:\n  " + "\n  ".join(problems))
        self._load_weights(ckpt, new_modules=bool(differ))
        self.step = int(ckpt["step"]) if keep_step else 0
        return self.step
