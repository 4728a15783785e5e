"""Reader of UADFV (``uadfv``), a small cross-dataset test set (49 real / 49 fake videos).

UADFV (Yang, Li and Lyu, "Exposing Deep Fakes Using Inconsistent Head Poses", ICASSP 2019)
has no download script or split; the copy the authors share on request, mirrored by several
projects, unpacks to::

    <root>/real/0000.mp4 ... 0048.mp4
    <root>/fake/0000_fake.mp4 ... 0048_fake.mp4

Tolerated variations: the two folders may sit one level down (``<root>/UADFV/real``), may be
spelled in any case (``Real``, ``FAKE``), and may hold the videos in a sub-folder
(``real/videos/``); folders of extracted frames next to the videos are ignored because only
video files are listed. Every record is ``test`` (the dataset is only used for testing).
``video_id`` = ``uadfv/<real|fake>/<file stem>``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from datamodules.readers.common import (
    VIDEO_EXTENSIONS,
    MissingLayoutFileError,
    child_names,
    find_child,
    finish_records,
    list_media,
    relative_posix,
    require_root,
)

UADFV_LAYOUT = """<root>/real/<NNNN>.mp4
<root>/fake/<NNNN>_fake.mp4   (the two folders may also sit in <root>/UADFV/)"""


def _class_folders(root: Path) -> tuple[Path, Path]:
    for base in [root, *sorted(child for child in root.iterdir() if child.is_dir())]:
        real, fake = find_child(base, ["real"]), find_child(base, ["fake"])
        if real is not None and fake is not None:
            return real, fake
    raise MissingLayoutFileError(
        f"uadfv: '{root}' (or one sub-folder of it) must hold a 'real' and a 'fake' folder; it holds "
        f"{child_names(root)}. Expected:\n{UADFV_LAYOUT}"
    )


def read_uadfv(root: Path) -> pd.DataFrame:
    """UADFV videos, all in the test split; see the module docstring for the tolerated layouts."""
    root = require_root(root, "uadfv", UADFV_LAYOUT)
    real_dir, fake_dir = _class_folders(root)
    rows = []
    for name, folder, label in (("real", real_dir, 0), ("fake", fake_dir, 1)):
        for path in list_media(folder, VIDEO_EXTENSIONS, "uadfv", f"{name} videos"):
            rows.append(
                {
                    "path": relative_posix(path, root),
                    "label": label,
                    "domain": "uadfv",
                    "type": name,
                    "video_id": f"uadfv/{name}/{path.stem}",
                    "split": "test",
                    "media": "video",
                }
            )
    return finish_records(rows, f"uadfv reader on '{root}'")
