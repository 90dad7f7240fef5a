"""The widgets work with ipywidgets 7.6+ and 8.x (pyproject: ``ipywidgets>=7.6``; Colab has shipped 7.x).

Only one ipywidgets is installed at a time, so the API check is static: every widget class,
constructor keyword and attribute that the package's editor and the lessons use is looked up in
the traits of ipywidgets 7.6.0 (recorded below from the 7.6.0 wheel) AND in the installed
ipywidgets (8.x here). The names that changed between 7 and 8 (``description_tooltip`` became
``tooltip``; ``Output.outputs`` stayed a tuple) are therefore caught if they are ever used. The
editor itself runs in tests/test_editor.py with the installed version (run by hand with 7.6.0 and
7.8.5 as well: see the report of the change).
"""

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Public traits of the widget classes in ipywidgets 7.6.0 (``cls.class_trait_names()`` minus
#: private ones and comm/keys/log), plus the methods used, all present in 7.6.0 and 8.x.
IPYWIDGETS_7_6 = {
    "Button": ["button_style", "description", "disabled", "icon", "layout", "style", "tooltip"],
    "Dropdown": ["description", "description_tooltip", "disabled", "index", "label", "layout", "options",
                 "style", "value"],
    "FloatSlider": ["continuous_update", "description", "description_tooltip", "disabled", "layout", "max",
                    "min", "orientation", "readout", "readout_format", "step", "style", "value"],
    "HBox": ["box_style", "children", "layout"],
    "HTML": ["description", "description_tooltip", "layout", "placeholder", "style", "value"],
    "IntSlider": ["continuous_update", "description", "description_tooltip", "disabled", "layout", "max",
                  "min", "orientation", "readout", "readout_format", "step", "style", "value"],
    "Output": ["layout", "msg_id", "outputs"],
    "VBox": ["box_style", "children", "layout"],
}
METHODS = {"Button": ["on_click", "click"]}
#: Called like a function; its keywords are the widgets of the controlled function's arguments.
FUNCTIONS = {"interactive"}


def _sources() -> dict[str, str]:
    """Python sources that use ipywidgets: the editor and the code cells of the lessons."""
    out = {"seg2vid/generation/editor.py": (ROOT / "seg2vid" / "generation" / "editor.py").read_text()}
    for nb in sorted((ROOT / "solutions").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        code = [c for c in code if "widgets" in c and not c.lstrip().startswith(("!", "%"))]
        if code:
            lines = [line for c in code for line in c.splitlines()]
            out[nb.name] = "\n".join(line for line in lines if not line.lstrip().startswith(("!", "%")))
    return out


def _target(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return f"self.{node.attr}"
    return None


def _uses(source: str) -> set[tuple[str, str]]:
    """(widget class, keyword or attribute) pairs used in ``source``."""
    tree = ast.parse(source)
    dicts: dict[str, list[str]] = {}  # name = dict(k=...) -> keys, for **name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name) and node.value.func.id == "dict"):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    dicts[t.id] = [k.arg for k in node.value.keywords if k.arg]
    uses: set[tuple[str, str]] = set()
    kinds: dict[str, str] = {}  # variable -> widget class
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "widgets"):
            cls = node.func.attr
            if cls in FUNCTIONS:
                continue
            uses.add((cls, "__class__"))
            for kw in node.keywords:
                names = [kw.arg] if kw.arg else dicts.get(getattr(kw.value, "id", ""), ["<unknown **kwargs>"])
                uses.update((cls, n) for n in names)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            f = node.value.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "widgets":
                for t in node.targets:
                    if _target(t):
                        kinds[_target(t)] = f.attr
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _target(node.value) in kinds:
            uses.add((kinds[_target(node.value)], node.attr))
    return uses


def _all_uses() -> set[tuple[str, str]]:
    uses = set()
    for source in _sources().values():
        uses |= _uses(source)
    return uses


def test_the_scan_finds_the_widgets_in_use():
    uses = _all_uses()
    # the editor's controls and lesson 04's latent sliders
    for expected in [("Dropdown", "options"), ("IntSlider", "max"), ("FloatSlider", "step"),
                     ("Button", "button_style"), ("Button", "on_click"), ("Output", "outputs"),
                     ("FloatSlider", "continuous_update"), ("HTML", "value"), ("VBox", "__class__")]:
        assert expected in uses, expected


def test_every_widget_name_in_use_exists_in_ipywidgets_7_6_and_in_the_installed_one():
    widgets = pytest.importorskip("ipywidgets")
    uses = _all_uses()
    missing_7, missing_now = [], []
    for cls, name in sorted(uses):
        if name == "__class__":
            if cls not in IPYWIDGETS_7_6:
                missing_7.append(cls)
            if not hasattr(widgets, cls):
                missing_now.append(cls)
            continue
        if name not in IPYWIDGETS_7_6.get(cls, []) + METHODS.get(cls, []):
            missing_7.append(f"{cls}.{name}")
        installed = getattr(widgets, cls, None)
        if installed is None or not (name in installed.class_traits() or hasattr(installed, name)):
            missing_now.append(f"{cls}.{name}")
    assert not missing_7, f"not in ipywidgets 7.6: {missing_7}"
    assert not missing_now, f"not in the installed ipywidgets {widgets.__version__}: {missing_now}"


def test_pyproject_allows_ipywidgets_7_6():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"ipywidgets>=7.6"' in text


def test_the_check_catches_an_8_only_name():
    # ipywidgets 8 renamed description_tooltip to tooltip: a Dropdown(tooltip=...) would break 7.x
    uses = _uses("import ipywidgets as widgets\nd = widgets.Dropdown(options=[1], tooltip='t')\nd.index\n")
    assert ("Dropdown", "tooltip") in uses and ("Dropdown", "index") in uses
    assert "tooltip" not in IPYWIDGETS_7_6["Dropdown"]
