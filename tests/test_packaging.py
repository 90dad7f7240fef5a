"""The shipped checkpoints travel as package data: a wheel installed anywhere finds them.

Colab's system Python (prefix /usr, data dir /usr/local) once missed them: they installed as
setuptools data-files under a prefix that find_checkpoint did not look in. Now they are the
package ``seg2vid._shipped`` (pyproject's package-dir maps it onto data/checkpoints), read with
importlib.resources, whatever the layout; a copy in the current folder never replaces them.
"""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
import tomllib

from seg2vid.checkpoints import find_checkpoint, shipped_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ["seg2vid_tiny_64.pt", "spade_tiny_64.pt", "segmenter_tiny_64.pt", "seg2vid_tiny_64.log.csv",
           "spade_tiny_64.log.csv", "segmenter_tiny_64.log.csv"]


def test_the_package_list_holds_every_package():
    """pyproject lists the packages (find cannot see seg2vid._shipped): none may be forgotten."""
    import setuptools

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = setuptools.find_packages(str(ROOT), include=["seg2vid*"])
    assert sorted(config["packages"]) == sorted([*found, "seg2vid._shipped"])
    assert config["package-dir"] == {"seg2vid._shipped": "data/checkpoints"}
    assert "data-files" not in config


@pytest.fixture(scope="module")
def wheel_install(tmp_path_factory):
    """The project built as a wheel (offline, no build isolation) and installed with
    ``pip install --target``: a folder that is no environment's prefix, used through PYTHONPATH."""
    base = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    build = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-w", str(base / "dist"), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (base / "dist").glob("seg2vid-*.whl")
    # --target never touches the running environment's own seg2vid (it implies --ignore-installed)
    install = subprocess.run([*pip, "install", "--no-deps", "--no-index", "--ignore-installed",
                              "--target", str(base / "site"), str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    return wheel, base / "site"


def test_the_wheel_carries_the_checkpoints_as_package_data(wheel_install):
    wheel, _ = wheel_install
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in SHIPPED:
        assert f"seg2vid/_shipped/{name}" in names
    assert not any(".data/data/" in n for n in names), "no data-files any more"


def test_an_installed_wheel_finds_the_shipped_models_from_another_folder(wheel_install, tmp_path):
    _, site = wheel_install
    # a stray copy in the current folder must not replace the shipped model
    (tmp_path / "data" / "checkpoints").mkdir(parents=True)
    (tmp_path / "data" / "checkpoints" / "seg2vid_tiny_64.pt").write_bytes(b"stray")
    script = (
        "import json, seg2vid\n"
        "from seg2vid.checkpoints import find_checkpoint\n"
        "from seg2vid.generation.pipeline import Pipeline\n"
        "p = Pipeline.from_shipped(device='cpu')\n"
        "print(json.dumps({'package': seg2vid.__file__, 'sources': {k: str(v) for k, v in p.sources.items()},"
        " 'segmenter': str(find_checkpoint('data/checkpoints/segmenter_tiny_64.pt')),"
        " 'log': str(find_checkpoint('data/checkpoints/seg2vid_tiny_64.log.csv')), 'size': p.size}))\n"
    )
    # seg2vid from the --target folder (PYTHONPATH comes before any installed or editable copy),
    # torch and the rest from the running environment
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["package"].startswith(str(site))
    for key, path in {"stage1": found["sources"]["stage1"], "stage2": found["sources"]["stage2"],
                      "segmenter": found["segmenter"], "log": found["log"]}.items():
        assert path.startswith(str(site / "seg2vid" / "_shipped")), (key, path)
    assert found["size"] == [64, 64]


def test_a_stray_copy_in_the_current_folder_does_not_replace_the_shipped_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stray = tmp_path / "data" / "checkpoints" / "seg2vid_tiny_64.pt"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"stray")
    found = find_checkpoint("data/checkpoints/seg2vid_tiny_64.pt")
    assert found == shipped_checkpoint("seg2vid_tiny_64.pt") and found.read_bytes() != b"stray"
    assert find_checkpoint(stray) == stray, "an explicit (absolute) path wins"
    # a data/checkpoints name that is not shipped (a lesson's own export) is the current folder's
    (stray.parent / "mine.pt").write_bytes(b"mine")
    assert find_checkpoint("data/checkpoints/mine.pt") == Path("data/checkpoints/mine.pt")


def test_generate_prints_which_models_it_used(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from seg2vid import cli

    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "map.png")
    argv = ["generate", "--labels", str(tmp_path / "map.png"), "--samples", "1", "--seed", "0",
            "--device", "cpu", "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert f"stage 1 {shipped_checkpoint('spade_tiny_64.pt')}" in out
    assert f"stage 2 {shipped_checkpoint('seg2vid_tiny_64.pt')}" in out
