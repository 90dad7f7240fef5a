"""Generate the learner notebooks in notebooks/ from the solution notebooks in solutions/.

    python scripts/build_notebooks.py           # fix the solutions' badges, write notebooks/
    python scripts/build_notebooks.py --check   # change nothing; exit 1 listing what is stale
    python scripts/build_notebooks.py --strip   # strip outputs from solutions/ in place

The transformation lives in scripts/course.py (its docstring is the authors' spec).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="report stale files, write nothing")
    mode.add_argument("--strip", action="store_true", help="strip outputs from solutions/")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args(argv)

    # Works from a fresh checkout too, before `pip install -e .` (course.py lies beside this file).
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from course import NotebookBuildError, check_course, strip_solutions, write_course

    try:
        if args.check:
            problems = check_course(args.root)
            for problem in problems:
                print(problem)
            if problems:
                print(
                    "Notebooks are out of date: run `python scripts/build_notebooks.py` "
                    "(and `--strip` for outputs in solutions/)."
                )
                return 1
            print("notebooks/ is up to date with solutions/.")
            return 0
        changed = strip_solutions(args.root) if args.strip else write_course(args.root)
    except NotebookBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"updated {path}")
    if not changed:
        print("nothing to do.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
