"""Notebook parameters are checked in the first code cell after each lesson's `parameters` cell
(seg2vid.utils.check_parameters): a bad value fails there, in one line naming it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from seg2vid.utils import check_parameters

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def test_good_values_pass():
    check_parameters(counts=dict(a=1, b=np.int64(3)), non_negative=dict(seed=0),
                     positive_numbers=dict(lr=1e-3), non_negative_numbers=dict(w=0.0), fractions=dict(f=1),
                     ranges=dict(t=(4, 1, 4), n=(9, 2, None)), multiples=dict(size=(64, 16)))


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (dict(non_negative=dict(train_steps=-3)), "parameter train_steps = -3: must be an integer >= 0"),
        (dict(counts=dict(num_samples=0)), "parameter num_samples = 0: must be an integer >= 1"),
        (dict(counts=dict(batch_size=2.0)), "parameter batch_size = 2.0: must be an integer >= 1"),
        (dict(counts=dict(steps=True)), "parameter steps = True: must be an integer >= 1"),
        (dict(positive_numbers=dict(learning_rate=0)), "parameter learning_rate = 0: must be a number > 0"),
        (dict(positive_numbers=dict(fps=float("nan"))), "parameter fps = nan: must be a number > 0"),
        (dict(non_negative_numbers=dict(w="1")), "parameter w = '1': must be a number >= 0"),
        (dict(fractions=dict(kl_warmup=1.5)), "parameter kl_warmup = 1.5: must be a number from 0 to 1"),
        (dict(ranges=dict(frame_index=(5, 1, 4))),
         "parameter frame_index = 5: must be an integer from 1 to 4"),
        (dict(ranges=dict(n=(1, 2, None))), "parameter n = 1: must be an integer >= 2"),
        (dict(multiples=dict(size=(40, 16))), "parameter size = 40: must be a positive multiple of 16"),
        (dict(multiples=dict(size=(0, 16))), "parameter size = 0: must be a positive multiple of 16"),
    ],
)
def test_a_bad_value_gets_one_line_naming_it(rules, message):
    with pytest.raises(ValueError) as err:
        check_parameters(**rules)
    assert str(err.value) == message


def _parameters_and_check(path: Path) -> tuple[str, ast.Module]:
    """The `parameters` cell's source and the first statement of the next code cell."""
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    i = next(k for k, c in enumerate(code) if "parameters" in c.metadata.get("tags", []))
    first = ast.parse(code[i + 1].source).body[0]
    return code[i].source, ast.Module(body=[first], type_ignores=[])


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem[:2])
def test_every_lesson_checks_its_parameters_first_and_its_defaults_pass(path):
    from test_notebooks import CI_PARAMETERS

    source, check = _parameters_and_check(path)
    call = check.body[0]
    assert isinstance(call, ast.Expr) and ast.unparse(call.value.func) == "check_parameters", (
        f"{path.name}: the cell after `parameters` must start with check_parameters(...)")
    checked = {kw.arg for kw in call.value.keywords}
    for values in ({}, CI_PARAMETERS[path.stem]):  # the defaults and the CI values pass
        namespace = {"check_parameters": check_parameters}
        exec(source, namespace)
        namespace.update(values)
        exec(compile(check, path.name, "exec"), namespace)
    # every numeric parameter is checked (bools, strings and paths are not numbers)
    numeric = [name for name, value in namespace.items() if name != "check_parameters"
               and not name.startswith("__") and not isinstance(value, (bool, str))]
    mentioned = ast.unparse(call)
    missing = [name for name in numeric if not re.search(rf"\b{name}\b", mentioned)]
    assert checked and not missing, f"{path.name}: unchecked parameter(s) {missing}"


def test_lesson_04_refuses_negative_train_steps_at_the_check_cell():
    source, check = _parameters_and_check(ROOT / "solutions" / "04_image_to_video.ipynb")
    namespace = {"check_parameters": check_parameters}
    exec(source, namespace)
    namespace["train_steps"] = -3
    with pytest.raises(ValueError, match=r"^parameter train_steps = -3: must be an integer >= 0$"):
        exec(compile(check, "04", "exec"), namespace)
    namespace.update(train_steps=0, num_samples=0)
    with pytest.raises(ValueError, match=r"^parameter num_samples = 0: must be an integer >= 2$"):
        exec(compile(check, "04", "exec"), namespace)
