"""Readers of Celeb-DF v1 (``celebdf_v1``) and v2 (``celebdf_v2``); both share one layout.

Expected layout (as unpacked from the official release)::

    <root>/Celeb-real/id<k>_<clip:04d>.mp4                 # v2: 590 videos
    <root>/YouTube-real/<5 digits>.mp4                     # v2: 300 (also spelled Youtube-real)
    <root>/Celeb-synthesis/id<a>_id<b>_<clip:04d>.mp4      # v2: 5639
    <root>/List_of_testing_videos.txt                      # v2: 518 lines "<label> <folder>/<file>.mp4"

Videos may also sit one level deeper (``Celeb-real/videos/``): files are matched by name.
In the test list **1 = real, 0 = fake**; the reader flips it to the record convention
(1 = fake) and checks that every listed label agrees with the folder (a disagreement means the
direction was misread and is an error naming the line). The last line may lack a newline.

Splits: only the test list is official. Everything not in it is ``train``; a deterministic
validation part is carved out of train by identity: Celeb-real ``id<k>_<clip>`` and
Celeb-synthesis ``id<k>_id<j>_<clip>`` are grouped by their first identity ``id<k>`` (so a real
clip and the fakes made from that identity's footage stay together) and every YouTube-real
video is its own group. ``val_fraction`` of the groups (ranked by a SHA-1 of the group name,
see ``holdout_groups``) become ``val``. ``drop_youtube_real`` removes YouTube-real from the
test set (some papers test on 448 videos instead of 518).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from datamodules.readers.common import (
    VIDEO_EXTENSIONS,
    DatasetLayoutError,
    LabelValueError,
    check_on_missing,
    child_names,
    find_child,
    finish_records,
    handle_missing_listed,
    holdout_groups,
    list_media,
    normalise_name,
    read_labelled_list,
    relative_posix,
    require_file,
    require_root,
)

TEST_LIST_NAME = "List_of_testing_videos.txt"
# Canonical folder name -> (record label, record type, spellings accepted on disk).
CELEBDF_FOLDERS: dict[str, tuple[int, str, tuple[str, ...]]] = {
    "Celeb-real": (0, "real", ("Celeb-real",)),
    "YouTube-real": (0, "real", ("YouTube-real", "Youtube-real")),
    "Celeb-synthesis": (1, "Celeb-synthesis", ("Celeb-synthesis",)),
}
# The official list uses 1 = real: flip into 1 = fake.
TEST_LIST_LABELS = {"1": 0, "0": 1}
IDENTITY_PATTERN = re.compile(r"^(id\d+)_")

CELEBDF_LAYOUT = """<root>/Celeb-real/id<k>_<clip>.mp4
<root>/YouTube-real/<5 digits>.mp4
<root>/Celeb-synthesis/id<a>_id<b>_<clip>.mp4
<root>/List_of_testing_videos.txt   (lines "<label> <folder>/<file>.mp4", 1 = real)"""


def identity_group(folder: str, stem: str) -> str:
    """The validation hold-out group of a Celeb-DF video (its first identity, see module doc)."""
    match = IDENTITY_PATTERN.match(stem)
    if folder == "YouTube-real" or match is None:
        return f"{folder}/{stem}"
    return match.group(1)


def _read_test_list(path: Path, domain: str) -> dict[tuple[str, str], int]:
    """(canonical folder, file name) -> record label for every line of the test list."""
    by_key = {normalise_name(name): name for name in CELEBDF_FOLDERS}
    entries: dict[tuple[str, str], int] = {}
    listed = read_labelled_list(path, domain, TEST_LIST_LABELS, "Celeb-DF lists use 1 = real, 0 = fake", label_first=True, what=None)
    for number, relative, token, label in listed:
        folder_name, _, file_name = relative.partition("/")
        canonical = by_key.get(normalise_name(folder_name))
        if canonical is None or not file_name:
            raise DatasetLayoutError(
                f"{domain}: {path}, line {number}: path {relative!r} is not '<folder>/<file>' with folder in "
                f"{list(CELEBDF_FOLDERS)}"
            )
        folder_label = CELEBDF_FOLDERS[canonical][0]
        if label != folder_label:
            raise LabelValueError(
                f"{domain}: {path}, line {number}: label {token!r} means "
                f"{'fake' if label else 'real'} (the list uses 1 = real) but the video is in {canonical}, "
                "which holds only " + ("fake" if folder_label else "real") + " videos"
            )
        key = (canonical, file_name)
        if key in entries:
            raise DatasetLayoutError(f"{domain}: {path}, line {number}: {relative!r} is listed twice")
        entries[key] = label
    if not entries:
        raise DatasetLayoutError(f"{domain}: test list '{path}' holds no entries")
    return entries


def _read_celebdf(
    root: Path, domain: str, *, drop_youtube_real: bool, val_fraction: float, on_missing: str
) -> pd.DataFrame:
    check_on_missing(on_missing)
    root = require_root(root, domain, CELEBDF_LAYOUT)
    folders: dict[str, Path] = {}
    for canonical, (_, _, spellings) in CELEBDF_FOLDERS.items():
        found = find_child(root, spellings)
        if found is None:
            raise DatasetLayoutError(
                f"{domain}: no {canonical} folder in '{root}' (looked for {list(spellings)}); it holds "
                f"{child_names(root)}. Expected:\n{CELEBDF_LAYOUT}"
            )
        folders[canonical] = found
    test_list = require_file(
        root / TEST_LIST_NAME, domain, "official test list", hint="It ships with the Celeb-DF release."
    )
    test_entries = _read_test_list(test_list, domain)

    videos: dict[tuple[str, str], Path] = {}
    for canonical, folder in folders.items():
        # Recursive: some copies keep the videos in <folder>/videos/; the list names only the file.
        for path in list_media(folder, VIDEO_EXTENSIONS, domain, canonical):
            previous = videos.setdefault((canonical, path.name), path)
            if previous != path:
                raise DatasetLayoutError(
                    f"{domain}: two videos named {path.name!r} in {canonical}: '{previous}' and '{path}'"
                )
    missing = [f"{folder}/{name}" for folder, name in test_entries if (folder, name) not in videos]
    handle_missing_listed(missing, len(test_entries), domain, test_list, on_missing)

    train_groups = [
        identity_group(folder, Path(name).stem)
        for folder, name in videos
        if (folder, name) not in test_entries
    ]
    held_out = holdout_groups(train_groups, val_fraction, salt=domain)
    rows = []
    for (folder, name), path in videos.items():
        label, video_type, _ = CELEBDF_FOLDERS[folder]
        stem = Path(name).stem
        if (folder, name) in test_entries:
            if drop_youtube_real and folder == "YouTube-real":
                continue
            split = "test"
        else:
            split = "val" if identity_group(folder, stem) in held_out else "train"
        rows.append(
            {
                "path": relative_posix(path, root),
                "label": label,
                "domain": domain,
                "type": video_type,
                "video_id": f"{domain}/{folder}/{stem}",
                "split": split,
                "media": "video",
                "source_folder": folder,
            }
        )
    return finish_records(rows, f"{domain} reader on '{root}'")


def read_celebdf_v1(
    root: Path, *, drop_youtube_real: bool = False, val_fraction: float = 0.1, on_missing: str = "raise"
) -> pd.DataFrame:
    """Celeb-DF v1 (408 real / 795 fake); see the module docstring for layout and splits."""
    return _read_celebdf(
        root,
        "celebdf_v1",
        drop_youtube_real=drop_youtube_real,
        val_fraction=val_fraction,
        on_missing=on_missing,
    )


def read_celebdf_v2(
    root: Path, *, drop_youtube_real: bool = False, val_fraction: float = 0.1, on_missing: str = "raise"
) -> pd.DataFrame:
    """Celeb-DF v2 (890 real / 5639 fake); see the module docstring for layout and splits."""
    return _read_celebdf(
        root,
        "celebdf_v2",
        drop_youtube_real=drop_youtube_real,
        val_fraction=val_fraction,
        on_missing=on_missing,
    )
