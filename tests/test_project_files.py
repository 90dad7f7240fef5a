"""The project's contract files: README commands, .ci/run, pyproject and environment.yml."""

import re
import sys
from pathlib import Path

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> dict[str, str]:
    """The shell commands under the README's ``<!-- readme-command: NAME -->`` markers."""
    text = (ROOT / "README.md").read_text()
    found = re.findall(r"<!-- readme-command: (\w+) -->\s*```(?:bash|sh)?\n(.*?)```", text, re.S)
    return {name: body.strip() for name, body in found}


def test_readme_has_exactly_two_commands():
    commands = readme_commands()
    assert set(commands) == {"main", "tests"}, commands
    for name, cmd in commands.items():
        assert "\n" not in cmd, f"README command {name} must be one line: {cmd!r}"
    assert "seg2vid demo" in commands["main"]
    assert "pytest" in commands["tests"] and ".[dev]" in commands["tests"]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in ci if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1].strip() == readme_commands()["tests"]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirement_name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_torch_is_never_pinned():
    # Colab's preinstalled torch must survive `pip install seg2vid`: ranges only.
    deps = pyproject()["project"]["dependencies"]
    for dep in deps:
        if requirement_name(dep) in {"torch", "torchvision"}:
            assert "==" not in dep and "<" not in dep, dep
    assert {"torch", "torchvision", "numpy", "matplotlib", "ipywidgets", "flow-vis", "tqdm"} <= {
        requirement_name(d) for d in deps
    }


def test_environment_yml_agrees_with_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    project = pyproject()["project"]
    assert env["name"] == "seg2vid"
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs one pip: section"
    assert "pip" in conda
    python = next(d for d in conda if d.startswith("python"))
    assert python.replace(" ", "") == "python" + project["requires-python"].replace(" ", "")
    # The package and its dev extra come from pip, so the two lists cannot drift apart...
    assert pip_sections[0] == ["-e .[dev]"]
    # ...and anything conda installs on top must be a declared dependency of the package.
    declared = {requirement_name(d) for d in project["dependencies"]}
    declared |= {requirement_name(d) for d in project["optional-dependencies"]["dev"]}
    extra = {requirement_name(d) for d in conda} - {"python", "pip"}
    assert extra <= declared, f"environment.yml installs undeclared packages: {extra - declared}"


def test_dev_extra_has_the_notebook_tools():
    dev = {requirement_name(d) for d in pyproject()["project"]["optional-dependencies"]["dev"]}
    assert {"pytest", "nbval", "papermill", "jupyterlab", "ipykernel", "nbformat",
            "cityscapesscripts", "ruff", "playwright"} <= dev


def test_ci_installs_chromium_for_the_browser_test_and_tolerates_failure():
    # tests/test_browser.py drives Debian's chromium (no browser download); CI installs it before
    # command (B), and a machine without apt (or a failed install) still runs the rest, the
    # browser test skipping with its message.
    ci = (ROOT / ".ci" / "run").read_text()
    install = ci.index("apt-get install -y -qq chromium")
    assert install < ci.index(readme_commands()["tests"])
    assert '|| echo ".ci/run: apt-get install chromium failed' in ci
    assert "playwright install" not in ci


def test_console_script_is_declared():
    assert pyproject()["project"]["scripts"]["seg2vid"] == "seg2vid.cli:main"


def test_readme_warns_about_the_cuda_torch_and_gives_the_cpu_install():
    text = (ROOT / "README.md").read_text()
    assert "about 3 GB" in text
    assert "pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu" in text


def test_the_i3d_option_says_trusted_files_only():
    readme = (ROOT / "README.md").read_text()
    i3d = readme[readme.index("`--i3d`"):]
    assert "trusted files" in i3d[:400]
    from seg2vid.cli import build_parser

    evaluate = build_parser()._subparsers._group_actions[0].choices["evaluate"]
    help_text = next(a.help for a in evaluate._actions if "--i3d" in a.option_strings)
    assert "TRUSTED files only" in help_text
