"""The KTH human actions dataset (Schuldt et al., 2004) as clips for Seg2Vid.

On-disk layout, as distributed (one zip per action, unpacked into one folder each)::

    ROOT/
      boxing/        person01_boxing_d1_uncomp.avi ... person25_boxing_d4_uncomp.avi
      handclapping/  person01_handclapping_d1_uncomp.avi ...
      handwaving/    ...
      jogging/       ...
      running/       ...
      walking/       person{NN}_walking_d{1-4}_uncomp.avi

25 persons (NN = 01..25) x 4 scenarios (d1..d4) per action; grey 160x120 videos at 25 fps.
``00sequences.txt`` (the annotated sub-sequences) is not needed and not read: clips come from
every valid start of the whole video.

Split: persons 1-20 are "train", persons 21-25 are "test" (``"val"`` is accepted as another name
for "test"). Frames are grey; an item repeats them to 3 identical channels, after a centred
square crop (120x120) and an antialiased resize to (height, width) (default 128x128). KTH has no
label maps: ``label_map`` is all zeros, table :data:`~seg2vid.data.labels.SCENE`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from seg2vid.data.video import VideoCache, VideoClips

__all__ = ["KTH", "KTH_ACTIONS", "KTH_TEST_PERSONS", "KTH_TRAIN_PERSONS"]

#: The six actions, in the order used for "all actions".
KTH_ACTIONS: tuple[str, ...] = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")
#: Persons of each split.
KTH_TRAIN_PERSONS: tuple[int, ...] = tuple(range(1, 21))
KTH_TEST_PERSONS: tuple[int, ...] = tuple(range(21, 26))

_NAME = re.compile(r"^person(\d{2})_([a-z]+)_d([1-4])_uncomp\.avi$")


def kth_persons(split: str) -> tuple[int, ...]:
    """Persons of ``split`` ("train"; "test" or its alias "val")."""
    if split == "train":
        return KTH_TRAIN_PERSONS
    if split in ("test", "val"):
        return KTH_TEST_PERSONS
    raise ValueError(f"KTH split must be 'train' or 'test' (alias 'val'), got {split!r}")


def check_actions(actions: Sequence[str]) -> tuple[str, ...]:
    """The selected actions in :data:`KTH_ACTIONS` order (all six when empty); a ValueError lists
    the known ones."""
    unknown = [a for a in actions if a not in KTH_ACTIONS]
    if unknown:
        raise ValueError(f"unknown KTH action(s) {unknown}; known: {', '.join(KTH_ACTIONS)}")
    return tuple(a for a in KTH_ACTIONS if a in actions) or KTH_ACTIONS


class KTH(VideoClips):
    """Clips of T + 1 frames from the KTH videos of one split and some actions.

    Clips come from every ``clip_step``-th valid start of every video, ordered by (action in
    :data:`KTH_ACTIONS` order, person, scenario, start). Item ``i`` is a dict: ``frames`` float32
    (T+1, 3, H, W) in [0, 1] (grey, 3 identical channels), ``label_map`` int64 (H, W) zeros,
    ``name`` e.g. ``"person21_boxing_d1:start=40"``.

    Args:
        root: the folder holding the six action folders (see the module docstring).
        split: "train" (persons 1-20) or "test" (persons 21-25; alias "val").
        actions: action names to use; empty = all six.
        height, width: output frame size.
        frames: T, the number of FUTURE frames.
        stride: frame step between clip frames (2 = every other frame: faster motion).
        clip_step: step between the start positions used (1 = every valid start).
        cache_dir: frame cache (default ``ROOT/.seg2vid_cache``); the first build decodes every
            selected video once.

    Raises:
        FileNotFoundError: ``root`` or a selected action folder is missing, or holds no video of
            the split (the message names the expected path and file pattern).
        ValueError: an unknown action or split.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        actions: Sequence[str] = (),
        height: int = 128,
        width: int = 128,
        frames: int = 8,
        stride: int = 1,
        clip_step: int = 1,
        cache_dir: str | Path | None = None,
    ):
        root = Path(root)
        persons = kth_persons(split)
        self.actions = check_actions(actions)
        self.split = split
        if not root.is_dir():
            raise FileNotFoundError(f"KTH root {root} does not exist")
        missing = [str(root / a) for a in self.actions if not (root / a).is_dir()]
        if missing:
            raise FileNotFoundError(
                f"KTH action folder(s) missing: {', '.join(missing)}; expected "
                "ROOT/{action}/person{NN}_{action}_d{1-4}_uncomp.avi for each selected action"
                + ("" if actions else " (all six when none are selected; select yours with actions=)")
            )
        videos: list[tuple[str, Path]] = []
        for action in self.actions:
            folder = root / action
            found = []
            for path in folder.iterdir():
                m = _NAME.match(path.name)
                if m and m.group(2) == action and int(m.group(1)) in persons:
                    found.append(((int(m.group(1)), int(m.group(3))), path))
            if not found:
                raise FileNotFoundError(
                    f"no KTH video of split {split!r} (persons {persons[0]}-{persons[-1]}) in {folder}: "
                    f"expected files named person{{NN}}_{action}_d{{1-4}}_uncomp.avi"
                )
            videos += [(path.name.removesuffix("_uncomp.avi"), path) for _, path in sorted(found)]
        cache = VideoCache(root, height, width, grey=True, square=True, cache_dir=cache_dir)
        super().__init__(videos, cache, frames, stride, clip_step, description=f"KTH {split}")
