"""Time every lesson at its DEFAULT parameters, the way a learner runs it (papermill, one kernel).

    python benchmarks/bench_lessons.py                 # all lessons, one after the other
    python benchmarks/bench_lessons.py 03 06           # only the lessons whose names start so
    python benchmarks/bench_lessons.py --learner 01    # the learner copy (exercise stubs raise)
    python benchmarks/bench_lessons.py --slowest 5 03  # also the 5 slowest cells (where the time goes)

Each lesson runs in a fresh temporary folder (its scratch runs go there), with the repository on
PYTHONPATH, progress bars off and the Agg backend. Prints one line per lesson: the wall time and
whether it ran to the end; the issue's budget is 5 minutes per lesson on a 2-core CPU. This is a
benchmark, not a test: it prints numbers and asserts nothing. Run one lesson at a time on a shared
machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 300


def run_lesson(path: Path, timeout_s: int) -> tuple[float, str, list[tuple[float, int, str]]]:
    """Execute ``path`` with papermill at its default parameters.

    Returns (seconds, status, cells): ``cells`` holds (seconds, cell index, first source line) for
    every code cell that papermill timed, slowest first.
    """
    import papermill

    env = {"SEG2VID_PROGRESS": "0", "MPLBACKEND": "Agg"}
    old = {key: os.environ.get(key) for key in (*env, "PYTHONPATH")}
    os.environ.update(env)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), old["PYTHONPATH"]]))
    status = "ok"
    cells: list[tuple[float, int, str]] = []
    try:
        with tempfile.TemporaryDirectory(prefix=f"bench-{path.stem}-") as workdir:
            start = time.perf_counter()
            try:
                papermill.execute_notebook(
                    str(path), str(Path(workdir) / path.name), cwd=workdir, progress_bar=False,
                    execution_timeout=timeout_s, start_timeout=120,
                )  # fmt: skip
            except papermill.PapermillExecutionError as error:
                status = f"raised in cell {error.exec_count}: {error.ename}"
            except Exception as error:  # a timeout or a dead kernel: report it, go on with the next
                status = f"failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            seconds = time.perf_counter() - start
            cells = _cell_times(Path(workdir) / path.name)
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return seconds, status, cells


def _cell_times(executed: Path) -> list[tuple[float, int, str]]:
    """(seconds, index, first line) of each code cell of papermill's output notebook, slowest first."""
    import nbformat

    if not executed.is_file():  # the kernel died before papermill wrote anything
        return []
    nb = nbformat.read(executed, as_version=4)
    cells = []
    for index, cell in enumerate(nb.cells):
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if cell.cell_type == "code" and duration is not None:
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            cells.append((float(duration), index, first[:70]))
    return sorted(cells, reverse=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="lesson name prefixes (default: every lesson)")
    parser.add_argument("--learner", action="store_true", help="run notebooks/ instead of solutions/")
    parser.add_argument("--timeout", type=int, default=1800, help="per-cell timeout in seconds")
    parser.add_argument("--slowest", type=int, default=0, metavar="N", help="also print the N slowest cells")
    args = parser.parse_args(argv)
    folder = ROOT / ("notebooks" if args.learner else "solutions")
    lessons = [
        p for p in sorted(folder.glob("*.ipynb"))
        if not args.prefixes or p.stem.startswith(tuple(args.prefixes))
    ]
    if not lessons:
        print(f"no lesson in {folder} starts with {args.prefixes}")
        return 1
    print(f"{platform.node()}: {os.cpu_count()} CPU cores, Python {platform.python_version()}; "
          f"{folder.name}/ at default parameters")
    for path in lessons:
        seconds, status, cells = run_lesson(path, args.timeout)
        verdict = "within" if seconds <= BUDGET_S else "OVER"
        print(
            f"{path.stem:32s} {seconds / 60:6.2f} min  {verdict} the {BUDGET_S // 60}-min budget  {status}",
            flush=True,
        )
        for cell_seconds, index, first in cells[: args.slowest]:
            print(f"    cell {index:3d} {cell_seconds:7.1f} s  {first}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
