"""The notebook CI contract.

Static (fast): every solution notebook has ONE literal ``parameters`` cell; nothing committed holds
outputs; ``notebooks/`` is exactly what ``scripts/build_notebooks.py`` generates; CI parameters
exist for every lesson. Unit tests cover ``scripts/course.py`` (the generator) and
``seg2vid.exercises`` (the self-checks).

Execution (``-m notebook``): each solution runs under papermill with its CI parameters and must
not raise; then its learner copy runs under nbval (``--nbval-lax``) with the same parameters and
the solution's outputs for the ``# NBVAL_CHECK_OUTPUT`` cells, and must raise exactly in its
exercise cells.
"""

from __future__ import annotations

import ast
import copy
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from seg2vid.exercises import check_function, check_value, compare

ROOT = Path(__file__).resolve().parents[1]
# the notebook build tool is a dev script (it needs nbformat), not part of the runtime package
sys.path.insert(0, str(ROOT / "scripts"))
import course  # noqa: E402
from course import (  # noqa: E402
    NotebookBuildError,
    build_learner_notebook,
    check_course,
    render_notebook,
    replace_code_solutions,
    replace_markdown_solutions,
    strip_outputs,
    write_course,
)

SOLUTIONS = sorted((ROOT / course.SOLUTIONS_DIR).glob("*.ipynb"))
LEARNER_COPIES = sorted((ROOT / course.NOTEBOOKS_DIR).glob("*.ipynb"))
REBUILD = "run `python scripts/build_notebooks.py`"

#: The small CI-scale values papermill injects into each lesson's `parameters` cell, by stem.
CI_PARAMETERS: dict[str, dict[str, object]] = {
    "00_welcome_and_data": {
        "height": 32,
        "width": 48,
        "frames": 3,
        "seed": 0,
        "num_gallery_clips": 4,
        "num_stats_clips": 10,
    },
    "01_from_vae_to_cvae": {
        "seed": 0,
        "hidden_dim": 128,
        "digits_epochs": 20,
        "toy_steps": 500,
        "futures_per_input": 32,
    },
    "02_optical_flow_and_warping": {
        "height": 32,
        "width": 32,
        "seed": 0,
        "num_eval_clips": 2,
        "steps_per_level": 40,
        "scale": 2,
    },
    "03_semantic_conditioning": {
        "seed": 0,
        "train_steps": 3,
        "batch_size": 4,
        "num_train_clips": 8,
        "num_eval_images": 4,
        "stage2_fallback_steps": 2,
        "num_motion_clips": 2,
    },
    "04_image_to_video": {
        "seed": 0,
        "train_steps": 3,
        "batch_size": 2,
        "num_eval_clips": 4,
        "num_samples": 3,
    },
    "05_full_training_on_gpu": {
        "seed": 0,
        "cpu_threads": 1,
        "size": 32,
        "frames": 2,
        "steps": 8,
        "batch_size": 2,
        "num_clips": 16,
        "chunk_steps": 2,
        "measure_steps": 3,
        "stage1_steps": 4,
        "stage1_batch_size": 2,
        "stage1_num_clips": 8,
        "num_samples": 2,
        "folder_steps": 2,
    },
    "06_evaluation_and_long_videos": {
        "seed": 0,
        "num_test_clips": 6,
        "n_samples": 3,
        "max_samples": 4,
        # the study's machinery runs at CI scale (the default reads the committed results)
        "ablation_rerun": True,
        "ablation_height": 32,
        "ablation_width": 32,
        "ablation_frames": 2,
        "ablation_steps": 3,
        "ablation_batch_size": 2,
        "ablation_num_clips": 8,
        "ablation_seeds": [0, 1],
        "ablation_test_clips": 4,
        "ablation_n_samples": 2,
        "num_long_videos": 2,
    },
}

#: Environment of every notebook kernel the tests start.
KERNEL_ENV = {"SEG2VID_PROGRESS": "0", "MPLBACKEND": "Agg"}
CELL_TIMEOUT_S = 600

KERNEL_METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}

# nbval lets a cell tagged `raises-exception` raise but does NOT fail when it runs cleanly, so
# this plugin (a conftest.py next to the notebook under test) adds that half of the contract.
STRICT_EXCEPTIONS_PLUGIN = '''\
"""Written by tests/test_notebooks.py: cells expected to raise must raise."""
import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    options = getattr(item, "options", None)
    if options is not None and options.get("check_exception"):
        errors = [out for out in item.test_outputs or [] if out.get("output_type") == "error"]
        is_exercise = "exercise" in item.cell.metadata.get("tags", [])
        name = f"{item.name} (cell id {item.cell.get('id')!r})"
        if not errors:
            raise AssertionError(
                f"{name} is tagged raises-exception but ran without an error"
                + (": an exercise cell must raise its stub's NotImplementedError" if is_exercise else "")
            )
        error = errors[0]
        if is_exercise and not (
            error.get("ename") == "NotImplementedError"
            and str(error.get("evalue", "")).startswith("Student exercise")
        ):
            raise AssertionError(
                f"{name}, an exercise, raised {error.get('ename')}: {error.get('evalue')}; "
                "expected the stub's NotImplementedError('Student exercise: ...')"
            )
    return result
'''


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _kernel_environ() -> dict[str, str]:
    """os.environ plus KERNEL_ENV, with the repository importable even without `pip install -e`."""
    env = {**os.environ, **KERNEL_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    for key in ("PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        env.pop(key, None)
    return env


def parameter_names(source: str) -> list[str]:
    """Names a `parameters` cell assigns; raises ValueError unless it is only `name = literal`."""
    names = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            raise ValueError(f"line {node.lineno}: only `name = literal` assignments are allowed")
        if not all(isinstance(target, ast.Name) for target in targets):
            raise ValueError(f"line {node.lineno}: assign to plain names only")
        try:
            ast.literal_eval(value)
        except ValueError:
            raise ValueError(
                f"line {node.lineno}: {ast.unparse(value)!r} is not a literal "
                "(papermill can only override literals; compute derived values in a later cell)"
            ) from None
        names.extend(target.id for target in targets)
    return names


def _parameters_cells(nb: nbformat.NotebookNode) -> list[int]:
    return [i for i, cell in enumerate(nb.cells) if course.PARAMETERS_TAG in course.cell_tags(cell)]


# ============================================================================================
# Static contract of the committed notebooks
# ============================================================================================


def test_there_are_solution_notebooks():
    assert SOLUTIONS, f"no notebooks in {course.SOLUTIONS_DIR}/"


@pytest.mark.parametrize("path", SOLUTIONS, ids=_rel)
def test_one_literal_parameters_cell(path):
    nb = course.read_notebook(path)
    indices = _parameters_cells(nb)
    assert len(indices) == 1, (
        f"{_rel(path)}: {len(indices)} cells tagged 'parameters' (cells {indices}); need exactly one"
    )
    cell = nb.cells[indices[0]]
    assert cell.cell_type == "code", f"{_rel(path)}: the 'parameters' cell is not a code cell"
    try:
        parameter_names(cell.source)
    except ValueError as error:
        pytest.fail(f"{_rel(path)}, cell {indices[0]} (parameters): {error}")


@pytest.mark.parametrize("path", SOLUTIONS + LEARNER_COPIES, ids=_rel)
def test_committed_without_outputs(path):
    nb = course.read_notebook(path)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"{_rel(path)}: cells {dirty} hold outputs or execution counts; "
        "run `python scripts/build_notebooks.py --strip` then `python scripts/build_notebooks.py`"
    )


def test_learner_notebooks_are_generated_and_up_to_date():
    try:
        problems = [p for p in check_course(ROOT) if p.kind != "outputs"]
    except NotebookBuildError as error:
        pytest.fail(f"a solution notebook breaks the conventions: {error}")
    assert not problems, (
        "notebooks/ does not match what solutions/ generates:\n"
        + "\n".join(f"  {problem}" for problem in problems)
        + f"\nFix: {REBUILD} (never edit notebooks/ by hand)."
    )


@pytest.mark.parametrize("path", SOLUTIONS, ids=_rel)
def test_install_guard_installs_from_repo_slug(path):
    problem = course.install_problem(course.read_notebook(path))
    assert problem is None, (
        f"{_rel(path)}: {problem} (REPO_SLUG lives in scripts/course.py; the install URL must follow it)"
    )


@pytest.mark.parametrize("path", SOLUTIONS, ids=_rel)
def test_ci_parameters_exist(path):
    assert path.stem in CI_PARAMETERS, (
        f"add CI parameters for {path.stem!r} to CI_PARAMETERS in tests/test_notebooks.py"
    )
    nb = course.read_notebook(path)
    indices = _parameters_cells(nb)
    assert len(indices) == 1, "see test_one_literal_parameters_cell"
    unknown = set(CI_PARAMETERS[path.stem]) - set(parameter_names(nb.cells[indices[0]].source))
    assert not unknown, f"CI_PARAMETERS[{path.stem!r}] sets {sorted(unknown)}, not in its cell"


def test_no_ci_parameters_without_a_notebook():
    stale = set(CI_PARAMETERS) - {path.stem for path in SOLUTIONS}
    assert not stale, f"CI_PARAMETERS has entries for missing notebooks: {sorted(stale)}"


# ============================================================================================
# Execution: solutions under papermill, learner copies under nbval
# ============================================================================================


@pytest.fixture(scope="session")
def executed_solution(tmp_path_factory) -> Callable[[str], nbformat.NotebookNode]:
    """``executed_solution(stem)``: the solution run once per session with its CI parameters."""
    import papermill

    cache: dict[str, nbformat.NotebookNode | BaseException] = {}

    def run(stem: str) -> nbformat.NotebookNode:
        if stem not in cache:
            workdir = tmp_path_factory.mktemp(f"solution-{stem}")
            try:
                with pytest.MonkeyPatch.context() as patch:
                    for key, value in _kernel_environ().items():
                        patch.setenv(key, value)
                    cache[stem] = papermill.execute_notebook(
                        str(ROOT / course.SOLUTIONS_DIR / f"{stem}.ipynb"),
                        str(workdir / f"{stem}.executed.ipynb"),
                        parameters=CI_PARAMETERS[stem],
                        cwd=str(workdir),
                        progress_bar=False,
                        execution_timeout=CELL_TIMEOUT_S,
                        start_timeout=120,
                    )
            except BaseException as error:  # noqa: B036 - cached so the learner test can skip
                cache[stem] = error
        result = cache[stem]
        if isinstance(result, BaseException):
            raise result
        return result

    return run


def _copy_checked_outputs(learner: nbformat.NotebookNode, executed: nbformat.NotebookNode) -> int:
    """Give the learner's `# NBVAL_CHECK_OUTPUT` cells the executed solution's outputs (by id)."""
    by_id = {cell.get("id"): cell for cell in executed.cells}
    n_copied = 0
    for index, cell in enumerate(learner.cells):
        if cell.cell_type != "code" or not course.has_check_output_marker(cell.source):
            continue
        reference = by_id.get(cell.get("id"))
        assert reference is not None, f"learner cell {index} (id {cell.get('id')}) not in solution"
        cell.outputs = copy.deepcopy(reference.outputs)
        # nbval compares only cells with an execution count ("unrun" cells are skipped).
        cell.execution_count = reference.execution_count or 1
        n_copied += 1
    return n_copied


def _run_nbval(notebook: Path) -> subprocess.CompletedProcess:
    """Run nbval on ``notebook`` in its own folder, with the strict-exception plugin."""
    folder = notebook.parent
    (folder / "conftest.py").write_text(STRICT_EXCEPTIONS_PLUGIN, encoding="utf-8")
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # no ancestor's config
    command = [
        sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
        "--nbval-cell-timeout", str(CELL_TIMEOUT_S), "-p", "no:cacheprovider",
        "-q", "--color=no", notebook.name,
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=folder, env=_kernel_environ(), capture_output=True, text=True, timeout=1800
    )


@pytest.mark.notebook
@pytest.mark.parametrize("path", SOLUTIONS, ids=_rel)
def test_solution_notebook_runs(path, executed_solution):
    assert path.stem in CI_PARAMETERS, f"add CI parameters for {path.stem!r} (see CI_PARAMETERS)"
    executed = executed_solution(path.stem)
    errors = [
        i
        for i, cell in enumerate(executed.cells)
        if any(out.output_type == "error" for out in cell.get("outputs", []))
    ]
    assert not errors, f"{_rel(path)}: cells {errors} raised"


@pytest.mark.notebook
@pytest.mark.parametrize("path", SOLUTIONS, ids=_rel)
def test_learner_notebook_nbval(path, executed_solution, tmp_path):
    import papermill

    stem = path.stem
    assert stem in CI_PARAMETERS, f"add CI parameters for {stem!r} (see CI_PARAMETERS)"
    learner_source = ROOT / course.NOTEBOOKS_DIR / path.name
    assert learner_source.exists(), f"{_rel(learner_source)} is missing; {REBUILD}"
    try:
        executed = executed_solution(stem)
    except BaseException:  # noqa: B036 - reported once, by test_solution_notebook_runs
        pytest.skip(f"the solution {_rel(path)} does not run; see test_solution_notebook_runs")

    learner = tmp_path / path.name
    papermill.execute_notebook(
        str(learner_source),
        str(learner),
        parameters=CI_PARAMETERS[stem],
        prepare_only=True,
        progress_bar=False,
    )
    nb = course.read_notebook(learner)
    _copy_checked_outputs(nb, executed)
    nbformat.write(nb, learner)

    result = _run_nbval(learner)
    assert result.returncode == 0, (
        f"nbval failed on the learner copy of {stem} (exercise cells must raise their stub's "
        "NotImplementedError, other cells must not raise, # NBVAL_CHECK_OUTPUT cells must print "
        f"what the solution printed):\n{result.stdout[-8000:]}\n{result.stderr[-2000:]}"
    )


@pytest.mark.notebook
def test_nbval_run_fails_when_an_exercise_cell_does_not_raise(tmp_path):
    nb = new_notebook(
        cells=[
            new_code_cell("x = 1", id="ok"),
            new_code_cell("y = x + 1", id="quiet", metadata={"tags": ["exercise", "raises-exception"]}),
        ],
        metadata=KERNEL_METADATA,
    )
    nbformat.write(nb, tmp_path / "quiet.ipynb")
    result = _run_nbval(tmp_path / "quiet.ipynb")
    assert result.returncode != 0
    assert "ran without an error" in result.stdout


# ============================================================================================
# scripts/course.py
# ============================================================================================


def _code(source: str, *tags: str, id: str) -> nbformat.NotebookNode:
    return new_code_cell(source, id=id, metadata={"tags": list(tags)} if tags else {})


def _markdown(source: str, *tags: str, id: str) -> nbformat.NotebookNode:
    return new_markdown_cell(source, id=id, metadata={"tags": list(tags)} if tags else {})


def _lesson(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return new_notebook(cells=list(cells), metadata=copy.deepcopy(KERNEL_METADATA))


EXERCISE_SOURCE = """\
def f(x):
    y = x + 1
    # BEGIN SOLUTION: add the two halves
    z = y * 2
    # END SOLUTION
    for i in range(3):
        # BEGIN SOLUTION
        z += i
        # END SOLUTION
    return z


f(1)"""


def test_code_regions_become_indented_raises_with_hint():
    new, n_regions = replace_code_solutions(EXERCISE_SOURCE)
    assert n_regions == 2
    assert new == (
        "def f(x):\n"
        "    y = x + 1\n"
        '    raise NotImplementedError("Student exercise: add the two halves")\n'
        "    for i in range(3):\n"
        f'        raise NotImplementedError("Student exercise: {course.DEFAULT_HINT}")\n'
        "    return z\n"
        "\n"
        "\n"
        "f(1)"
    )


def test_hint_with_quotes_stays_valid_python():
    new, _ = replace_code_solutions('# BEGIN SOLUTION: use "mean" not \\sum\nx = 1\n# END SOLUTION')
    with pytest.raises(NotImplementedError, match=r'Student exercise: use "mean" not \\sum'):
        exec(new, {})


@pytest.mark.parametrize(
    "source, message",
    [
        ("# BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n# END SOLUTION", "without a '# BEGIN SOLUTION'"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", "do not nest"),
    ],
)
def test_broken_code_markers_are_errors(source, message):
    with pytest.raises(NotebookBuildError, match=message):
        replace_code_solutions(source, "demo, cell 3")


def test_markdown_regions_become_placeholders():
    source = "Why?\n<!-- BEGIN SOLUTION -->\nBecause\nreasons.\n<!-- END SOLUTION -->\nNext."
    assert replace_markdown_solutions(source) == (f"Why?\n{course.MARKDOWN_PLACEHOLDER}\nNext.", 1)
    with pytest.raises(NotebookBuildError, match="unbalanced"):
        replace_markdown_solutions("<!-- BEGIN SOLUTION --> oops")


#: The install guard every lesson carries (see course.install_problem).
INSTALL_SOURCE = "\n".join(
    [
        "try:",
        "    import seg2vid",
        "except ImportError:",
        f'    %pip install -q "{course.INSTALL_REQUIREMENT}"',
    ]
)


def _demo_solution() -> nbformat.NotebookNode:
    return _lesson(
        _markdown("# Demo", id="title"),
        _code(INSTALL_SOURCE, id="install"),
        _code("n = 3", "parameters", id="params"),
        _code(EXERCISE_SOURCE, "exercise", id="ex"),
        _markdown("<!-- BEGIN SOLUTION -->It blurs.<!-- END SOLUTION -->", "exercise", id="think"),
        _code("print(n)", id="after"),
    )


def test_learner_copy():
    solution = _demo_solution()
    solution.cells[5].outputs = [nbformat.v4.new_output("stream", name="stdout", text="3\n")]
    solution.cells[5].execution_count = 7
    before = render_notebook(solution)
    learner = build_learner_notebook(solution, "demo")
    assert render_notebook(solution) == before, "the solution must not be modified"

    badge, *cells = learner.cells
    assert course.BADGE_TAG in badge.metadata["tags"]
    assert badge.source.endswith(f"github/{course.REPO_SLUG}/blob/{course.BRANCH}/notebooks/demo.ipynb)")
    assert [cell.id for cell in cells] == [
        "title", "install", "params", "ex", "ex-solution", "think", "think-solution", "after"
    ]  # fmt: skip
    assert cells[3].metadata["tags"] == ["exercise", "raises-exception"]
    assert "BEGIN SOLUTION" not in cells[3].source and "NotImplementedError" in cells[3].source
    for link in (cells[4], cells[6]):  # every exercise links to its solution
        assert link.cell_type == "markdown"
        assert (
            f"https://github.com/{course.REPO_SLUG}/blob/{course.BRANCH}/solutions/demo.ipynb" in link.source
        )
        assert "colab.research.google.com" in link.source
    assert cells[5].source == course.MARKDOWN_PLACEHOLDER
    assert cells[5].metadata["tags"] == ["exercise"], "markdown cells cannot raise"
    assert cells[2].metadata["tags"] == ["parameters"]
    assert cells[1].source == INSTALL_SOURCE, "the install guard is copied unchanged"
    assert cells[7].outputs == [] and cells[7].execution_count is None
    nbformat.validate(learner)


@pytest.mark.parametrize(
    "cells, message",
    [
        ([_code("x = 1", "exercise", id="a")], "tagged 'exercise' but holds no SOLUTION"),
        ([_markdown("text", "exercise", id="a")], "tagged 'exercise' but holds no"),
        ([_code("# BEGIN SOLUTION\nx = 1\n# END SOLUTION", id="a")], "has SOLUTION"),
        ([_markdown("<!-- BEGIN SOLUTION -->a<!-- END SOLUTION -->", id="a")], "has SOL"),
        (
            [_code("# NBVAL_CHECK_OUTPUT\n# BEGIN SOLUTION\nx = 1\n# END SOLUTION", "exercise", id="a")],
            "cannot be marked # NBVAL_CHECK_OUTPUT",
        ),
        (
            [_code("x = (\n# BEGIN SOLUTION\n1\n# END SOLUTION\n)", "exercise", id="a")],
            "not valid Python",
        ),
    ],
)
def test_tag_and_marker_errors_name_notebook_and_cell(cells, message):
    # Indices are the solution's own (the badge cell is inserted after the checks).
    with pytest.raises(NotebookBuildError, match="solutions/demo.ipynb, cell 0: .*" + re.escape(message)):
        build_learner_notebook(_lesson(*cells), "demo")


def test_badge_is_inserted_moved_and_repaired():
    nb = _lesson(_markdown("# T", id="t"))
    assert "no Colab badge" in course.badge_problem(nb, "demo", "solutions")
    assert course.set_badge(nb, "demo", "solutions")
    assert nb.cells[0].id == course.BADGE_CELL_ID
    assert nb.cells[0].source == course.badge_source("demo", "solutions")
    assert course.badge_problem(nb, "demo", "solutions") is None
    assert not course.set_badge(nb, "demo", "solutions"), "already right: no change"

    nb.cells.reverse()  # badge now second
    assert "must be the first cell" in course.badge_problem(nb, "demo", "solutions")
    nb.cells[1].source = "[![Open In Colab](x)](https://colab.research.google.com/github/a/b)"
    course.set_badge(nb, "demo", "solutions")
    assert [cell.id for cell in nb.cells] == [course.BADGE_CELL_ID, "t"]
    assert f"github/{course.REPO_SLUG}/blob/" in nb.cells[0].source
    assert "does not point at notebooks/demo.ipynb" in course.badge_problem(nb, "demo", "notebooks")


def test_strip_outputs_keeps_tags():
    nb = _lesson(_code("1", "parameters", id="a"))
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "1"})]
    nb.cells[0].execution_count = 1
    nb.cells[0].metadata["execution"] = {"iopub.status.busy": "2024-01-01"}
    nb.metadata["papermill"] = {"parameters": {}}
    strip_outputs(nb)
    assert nb.cells[0].outputs == [] and nb.cells[0].execution_count is None
    assert nb.cells[0].metadata == {"tags": ["parameters"]}
    assert "papermill" not in nb.metadata


def test_building_twice_gives_identical_bytes():
    solution = _demo_solution()
    first = render_notebook(build_learner_notebook(solution, "demo"))
    assert render_notebook(build_learner_notebook(solution, "demo")) == first
    reread = nbformat.reads(render_notebook(solution), as_version=4)
    assert render_notebook(build_learner_notebook(reread, "demo")) == first


def _course_tree(tmp_path: Path) -> Path:
    (tmp_path / "solutions").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "solutions" / "demo.ipynb").write_text(render_notebook(_demo_solution()))
    return tmp_path


def test_write_then_check_round_trip(tmp_path):
    root = _course_tree(tmp_path)
    kinds = sorted(problem.kind for problem in check_course(root))
    assert kinds == ["badge", "missing"]

    assert write_course(root) == ["solutions/demo.ipynb", "notebooks/demo.ipynb"]
    assert check_course(root) == []
    snapshot = {p: p.read_bytes() for p in sorted(root.rglob("*.ipynb"))}
    assert write_course(root) == [], "a second build changes nothing"
    assert {p: p.read_bytes() for p in sorted(root.rglob("*.ipynb"))} == snapshot

    (root / "notebooks" / "demo.ipynb").write_text("{}")
    (root / "notebooks" / "orphan.ipynb").write_text("{}")
    assert sorted(problem.kind for problem in check_course(root)) == ["extra", "stale"]
    write_course(root)
    assert check_course(root) == [] and not (root / "notebooks" / "orphan.ipynb").exists()

    solution = course.read_notebook(root / "solutions" / "demo.ipynb")
    solution.cells[-1].execution_count = 3
    (root / "solutions" / "demo.ipynb").write_text(render_notebook(solution))
    assert [problem.kind for problem in check_course(root)] == ["outputs"]
    assert course.strip_solutions(root) == ["solutions/demo.ipynb"]
    assert check_course(root) == [] and course.strip_solutions(root) == []


@pytest.mark.parametrize(
    "source, message",
    [
        (INSTALL_SOURCE, None),
        (INSTALL_SOURCE.replace(course.REPO_SLUG, "someone/fork"), "installs from github.com/someone/fork"),
        (INSTALL_SOURCE.replace(course.REPO_SLUG, course.REPO_SLUG + ".git"), None),
        ("import seg2vid", "no install guard"),
        (f'# %pip install "{course.INSTALL_REQUIREMENT}"', "no install guard"),
        (f'%pip install -q "{course.INSTALL_REQUIREMENT}"', "not guarded"),
        (INSTALL_SOURCE + " torch==2.1.0", "names torch"),
        (INSTALL_SOURCE.replace("-q", "-q --force-reinstall"), "would reinstall every dependency"),
        (
            "import importlib.util, sys\nif importlib.util.find_spec('seg2vid') is None:\n"
            f"    !{{sys.executable}} -m pip install '{course.INSTALL_REQUIREMENT}'",
            None,
        ),
    ],
)
def test_install_problem(source, message):
    problem = course.install_problem(_lesson(_markdown("# T", id="t"), _code(source, id="setup")))
    if message is None:
        assert problem is None
    else:
        assert problem is not None and message in problem


def test_a_drifted_install_url_fails_check_and_build(tmp_path):
    root = _course_tree(tmp_path)
    write_course(root)
    solution = course.read_notebook(root / "solutions" / "demo.ipynb")
    solution.cells[2].source = INSTALL_SOURCE.replace(course.REPO_SLUG, "old-owner/seg2vid")
    (root / "solutions" / "demo.ipynb").write_text(render_notebook(solution))
    problems = [p for p in check_course(root) if p.kind == "install"]
    assert [p.path for p in problems] == ["solutions/demo.ipynb"]
    assert "github.com/old-owner/seg2vid" in problems[0].detail
    with pytest.raises(NotebookBuildError, match="solutions/demo.ipynb: cell 2, .*REPO_SLUG"):
        write_course(root)


def test_script_check_mode_lists_problems_and_exits_1(tmp_path):
    root = _course_tree(tmp_path)
    script = [sys.executable, str(ROOT / "scripts" / "build_notebooks.py"), "--root", str(root)]
    result = subprocess.run([*script, "--check"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "missing  notebooks/demo.ipynb" in result.stdout
    assert "python scripts/build_notebooks.py" in result.stdout
    assert not (root / "notebooks" / "demo.ipynb").exists(), "--check writes nothing"
    assert subprocess.run(script, capture_output=True).returncode == 0
    assert subprocess.run([*script, "--check"], capture_output=True).returncode == 0


def test_parameters_cell_checker():
    assert parameter_names("# CI overrides these\nsize = 64  # px\nseed: int = 0\nxs = (1, -2.5)") == [
        "size",
        "seed",
        "xs",
    ]
    for bad in ("size = 2 * 32", "import torch", "cfg.size = 3", "x: int"):
        with pytest.raises(ValueError):
            parameter_names(bad)


# ============================================================================================
# seg2vid.exercises
# ============================================================================================


def _double(x: torch.Tensor) -> torch.Tensor:
    return x * 2


def _make_inputs(generator: torch.Generator) -> tuple[torch.Tensor]:
    return (torch.randn(2, 3, generator=generator),)


def test_check_function_match(capsys):
    assert check_function(lambda x: x + x, _double, _make_inputs, name="double")
    assert capsys.readouterr().out == ("✅ double: matches the reference on 3 seeded inputs (exact match)\n")
    assert check_function(lambda x: x * 2 + 1e-7, _double, _make_inputs, name="double")
    assert "max |diff| = 1." in capsys.readouterr().out


def test_check_function_shape_mismatch(capsys):
    assert not check_function(lambda x: x[:, :2], _double, _make_inputs, name="double")
    assert capsys.readouterr().out == ("❌ double: shape (2, 2) but expected (2, 3) (seeded input 1 of 3)\n")


def test_check_function_dtype_mismatch(capsys):
    assert not check_function(lambda x: (x * 2).double(), _double, _make_inputs, name="double")
    assert "dtype torch.float64 but expected torch.float32" in capsys.readouterr().out


def test_check_function_value_mismatch_reports_max_diff(capsys):
    def off_by_one_at_corner(x):
        y = x * 2
        y[1, 2] += 1
        return y

    assert not check_function(off_by_one_at_corner, _double, _make_inputs, name="double")
    out = capsys.readouterr().out
    assert out.startswith("❌ double: values differ: max |diff| = 1.00e+00 at index (1, 2)")
    assert "1 of 6 values outside atol=1e-05, rtol=0.0001" in out


def test_check_function_not_implemented_is_a_friendly_skip(capsys):
    def stub(x):
        raise NotImplementedError("Student exercise: double it")

    assert check_function(stub, _double, _make_inputs, name="double") is False
    assert capsys.readouterr().out == (
        "⏭ double: not implemented yet — the rest of the notebook uses the package's version\n"
    )


def test_check_function_reports_other_exceptions(capsys):
    assert not check_function(lambda x: x.nope, _double, _make_inputs, name="double")
    out = capsys.readouterr().out
    assert out.startswith("❌ double: raised AttributeError: ")
    assert "nope" in out and "0x" not in out


def test_check_function_gives_each_side_its_own_inputs(capsys):
    def in_place(x):
        return x.mul_(2)

    assert check_function(in_place, _double, _make_inputs, name="in_place")


def test_check_function_is_seeded():
    seen = []
    check_function(_double, _double, lambda g: seen.append(torch.rand(1, generator=g)) or (1,))
    again = []
    check_function(_double, _double, lambda g: again.append(torch.rand(1, generator=g)) or (1,))
    assert torch.equal(torch.cat(seen), torch.cat(again)) and len(set(torch.cat(seen).tolist())) == 3


def test_check_value(capsys):
    assert check_value(0.1 + 0.2, 0.3, "sum")
    assert not check_value((1, torch.zeros(2)), (1, torch.ones(2)), "pair")
    assert not check_value(np.zeros(3, dtype=np.int64), np.zeros(4, dtype=np.int64), "array")
    assert not check_value(torch.tensor(1.0), 1.0, "scalar")
    assert capsys.readouterr().out.splitlines() == [
        "✅ sum: matches the expected value (max |diff| = 5.55e-17)",
        "❌ pair: output[1]: values differ: max |diff| = 1.00e+00 at index (0,) (got 0, expected 1);"
        " 2 of 2 values outside atol=1e-05, rtol=0.0001",
        "❌ array: shape (3,) but expected (4,)",
        "❌ scalar: returned a torch.Tensor but expected a number",
    ]


def test_compare_nan_and_integers():
    nan = float("nan")
    assert compare(torch.tensor([nan, 1.0]), torch.tensor([nan, 1.0])).ok
    assert "NaN in only one" in compare(torch.tensor([0.0, 1.0]), torch.tensor([nan, 1.0])).detail
    assert compare(torch.arange(3), torch.arange(3)).ok
    assert "1 of 3 values differ" in compare(torch.tensor([0, 1, 3]), torch.arange(3)).detail
    assert "returned a list of 1 but expected a tuple of 2" in compare([1], (1, 2)).detail


def test_lesson_04_run_by_papermill_stops_at_the_check_cell(tmp_path):
    """The real thing, once: papermill with train_steps = -3 fails in the cell after `parameters`."""
    papermill = pytest.importorskip("papermill")
    env = {"SEG2VID_PROGRESS": "0", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        with pytest.raises(papermill.PapermillExecutionError) as err:
            papermill.execute_notebook(str(ROOT / "solutions" / "04_image_to_video.ipynb"),
                                       str(tmp_path / "04.ipynb"), parameters={"train_steps": -3},
                                       cwd=str(ROOT / "solutions"), progress_bar=False)
    assert err.value.ename == "ValueError"
    assert err.value.evalue == "parameter train_steps = -3: must be an integer >= 0"
    executed = nbformat.read(tmp_path / "04.ipynb", as_version=4)
    failed = [c.get("id") for c in executed.cells if c.cell_type == "code"
              and any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert failed == ["find-checkpoint"]
