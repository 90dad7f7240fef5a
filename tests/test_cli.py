"""The seg2vid console script."""

import subprocess
import sys

import av
import numpy as np
import pytest
from PIL import Image

from seg2vid.cli import main
from seg2vid.flow import read_flo


def test_demo_writes_gif_mp4_png_and_flo(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--size", "32x48", "--frames", "3", "--scale", "1"]) == 0
    printed = capsys.readouterr().out
    for name in ("clip.gif", "clip.mp4", "strip.png"):
        assert (out / name).is_file() and str(out / name) in printed
    with Image.open(out / "clip.gif") as gif:
        assert gif.n_frames >= 2  # Pillow merges identical frames; a moving scene has several
    with av.open(str(out / "clip.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 4
    strip = np.asarray(Image.open(out / "strip.png"))
    assert strip.shape[0] > 4 * 32 and strip.shape[1] >= 4 * 48
    flows = sorted((out / "flow").glob("*.flo"))
    assert len(flows) == 3 and read_flo(flows[0]).shape == (2, 32, 48)


def test_bad_size_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--size", "big"])
    assert "size must look like 64 or 128x256" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command", [["demo"], ["generate", "--labels", "data/label_maps/street_90001_color.png"]]
)
@pytest.mark.parametrize(
    "option, value", [("--fps", "0"), ("--scale", "0"), ("--fps", "-2"), ("--scale", "1.5")]
)
def test_zero_fps_and_scale_are_refused_before_generating(tmp_path, capsys, command, option, value):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main([*command, "--out", str(out), option, value])
    assert info.value.code == 2
    assert f"argument {option}:" in capsys.readouterr().err
    assert not out.exists()  # nothing was generated or written


def test_module_entry_point_prints_help():
    result = subprocess.run([sys.executable, "-m", "seg2vid", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "demo" in result.stdout


def test_the_style_choices_are_the_renderers_styles():
    # spelled out in the CLI so that `seg2vid --help` imports no NumPy or torch; must not drift
    from seg2vid.cli import STYLE_CHOICES
    from seg2vid.data.synthetic import STYLES

    assert STYLE_CHOICES == STYLES


def test_the_precision_choices_are_the_librarys():
    from seg2vid.cli import PRECISION_CHOICES
    from seg2vid.utils import PRECISIONS

    assert PRECISION_CHOICES == PRECISIONS
