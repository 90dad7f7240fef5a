"""Files written atomically (checkpoints, logs, summaries, the video cache) get the permissions of
any new file: 0o666 minus the umask, not mkstemp's private 0600."""

import os
import stat

import pytest

from seg2vid.checkpoints import atomic_write


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_get_normal_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "a.json", lambda fh: fh.write(b"{}"))
        atomic_write(tmp_path / "b.npy", lambda fh: fh.write(b"x"))
        plain = tmp_path / "plain.txt"
        plain.write_text("x")  # what any other new file gets
        assert os.umask(umask) == umask  # reading the umask left it as it was
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    assert stat.S_IMODE(plain.stat().st_mode) == expected
    for name in ("a.json", "b.npy"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.npy", "plain.txt"]  # no temp left
