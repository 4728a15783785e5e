"""Reader of JFSFDB, the joint face spoofing and forgery benchmark (``jfsfdb``).

The benchmark's list files are not public: users bring their own. Expected input::

    <root>/<any tree>/<video dir>/Face_01.jpg ... Face_07.jpg    # face crops of one video
    <lists_dir>/<list name>.txt   lines "<video dir relative to root> <label>", 1 = real, 0 = attack

Options:

- ``lists_dir``: folder of the list files (relative to root, or absolute);
- ``roles``: mapping list name (file name, ``.txt`` optional) -> role, one of ``train``,
  ``val``, ``intra_test``, ``cross_test``. Only the lists named here are read. Roles map to
  the record split (train / val / test) and are kept in the ``role`` column, so intra- and
  cross-dataset test sets stay apart;
- ``domains``: optional mapping list name -> domain (dataset) name, for every record of that
  list. Otherwise the domain is the *source dataset of each record*, so a combined list (one
  anti-spoofing train list holding SiW, 3DMAD and HKBU videos) gives each video its own dataset:
  the first folder of the video path that names one of the nine datasets (any case, ``-``/``_``
  ignored: ``SiW``, ``3DMAD``, ``HKBU``/``HKBU-MARs``, ``MSU``/``MSU-MFSD``, ``3DMask``,
  ``ROSE``/``ROSE-Youtu``, ``FF``/``FF++``/``FaceForensics``, ``DFDC``, ``CDF``/``Celeb-DF``) gives
  its canonical name (``siw``, ``3dmad``, ``hkbu``, ``msu``, ``3dmask``, ``rose``, ``ffpp``,
  ``dfdc``, ``celebdf``). A path naming none of them takes the list name lower-cased without a
  trailing ``_train``/``_val``/``_dev``/``_test``/``_list`` (``SiW_train.txt`` -> ``siw``), and
  one warning counts such records per list;
- repeated lines: a video listed again with the same role and label is kept once and counted in
  ``frame.attrs["reader_report"]``; with another role or label it is an error naming both lists
  and line numbers.

Labels are flipped (the lists use 1 = real). Each record is a frame folder
(``media="frames"``); a listed path that is a file is kept as ``media="image"``. The task
family (``spoofing`` for SiW, 3DMAD, HKBU-MARs, MSU-MFSD, 3DMask, ROSE-Youtu; ``forgery``
for FaceForensics++, DFDC, Celeb-DF; ``unknown`` otherwise) is guessed from the domain name
and gives ``type``: live / spoof, real / forgery, or real / attack. ``video_id`` =
``jfsfdb/<domain>/<video dir>``; a video listed under two splits is an error (leakage).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from datamodules.readers.common import (
    ListEntryTracker,
    MissingLayoutFileError,
    attach_report,
    check_on_missing,
    child_names,
    finish_records,
    handle_missing_listed,
    read_labelled_list,
    require_dir,
    require_root,
)

ROLE_SPLITS: dict[str, str] = {"train": "train", "val": "val", "intra_test": "test", "cross_test": "test"}
# The lists use 1 = real, 0 = attack: flip into 1 = attack.
LIST_LABELS = {"1": 0, "0": 1}
SPOOFING_PREFIXES = ("siw", "3dmad", "hkbu", "msu", "3dmask", "rose")
FORGERY_PREFIXES = ("ff", "faceforensics", "dfdc", "celeb", "cdf")
TYPE_NAMES: dict[str, tuple[str, str]] = {
    "spoofing": ("live", "spoof"),
    "forgery": ("real", "forgery"),
    "unknown": ("real", "attack"),
}
# Normalised folder name (lower case, letters and digits only) -> canonical source dataset.
SOURCE_DATASETS: dict[str, str] = {
    "siw": "siw",
    "3dmad": "3dmad",
    "hkbu": "hkbu", "hkbumars": "hkbu", "hkbumarsv2": "hkbu",
    "msu": "msu", "msumfsd": "msu",
    "3dmask": "3dmask",
    "rose": "rose", "roseyoutu": "rose",
    "ff": "ffpp", "ffpp": "ffpp", "faceforensics": "ffpp", "faceforensicspp": "ffpp",
    "dfdc": "dfdc",
    "cdf": "celebdf", "celebdf": "celebdf", "celebdfv1": "celebdf", "celebdfv2": "celebdf",
}  # fmt: skip
LIST_SUFFIX = re.compile(r"[_\-.](train|val|dev|test|list|intra_test|cross_test)$", re.IGNORECASE)

JFSFDB_LAYOUT = """<root>/.../<video dir>/Face_01.jpg ... Face_07.jpg
<lists_dir>/<list name>.txt   (lines "<video dir relative to root> <label>", 1 = real, 0 = attack)"""


def task_family(domain: str) -> str:
    """``spoofing``, ``forgery`` or ``unknown`` from a domain name (see module docstring)."""
    key = re.sub(r"[^a-z0-9]", "", domain.lower())
    if key.startswith(SPOOFING_PREFIXES):
        return "spoofing"
    if key.startswith(FORGERY_PREFIXES):
        return "forgery"
    return "unknown"


def default_domain(list_name: str) -> str:
    """Domain name from a list name: ``SiW_train`` -> ``siw`` (suffixes stripped repeatedly)."""
    stem = list_name[:-4] if list_name.lower().endswith(".txt") else list_name
    while LIST_SUFFIX.search(stem):
        stem = LIST_SUFFIX.sub("", stem)
    return stem.lower()


def source_dataset(relative: str) -> str | None:
    """Canonical source dataset named by the first matching folder of ``relative``, else None."""
    for part in relative.replace("+", "p").split("/")[:-1] or relative.split("/"):
        name = SOURCE_DATASETS.get(re.sub(r"[^a-z0-9]", "", part.lower()))
        if name:
            return name
    return None


def _list_file(lists_dir: Path, name: str) -> Path:
    for candidate in (lists_dir / name, lists_dir / f"{name}.txt"):
        if candidate.is_file():
            return candidate
    raise MissingLayoutFileError(
        f"jfsfdb: list file {name!r} named in roles is not in '{lists_dir}' (tried {name!r} and {name + '.txt'!r}); "
        f"the folder holds {child_names(lists_dir)}"
    )


def read_jfsfdb(
    root: Path,
    *,
    lists_dir: Path | str,
    roles: Mapping[str, str],
    domains: Mapping[str, str] | None = None,
    on_missing: str = "raise",
) -> pd.DataFrame:
    """JFSFDB records from user-supplied list files; see the module docstring."""
    check_on_missing(on_missing)
    if not roles:
        raise ValueError(f"jfsfdb: roles must map at least one list name to one of {list(ROLE_SPLITS)}")
    bad_roles = {name: role for name, role in roles.items() if role not in ROLE_SPLITS}
    if bad_roles:
        raise ValueError(f"jfsfdb: unknown role(s) {bad_roles}; roles are {list(ROLE_SPLITS)}")
    root = require_root(root, "jfsfdb", JFSFDB_LAYOUT)
    lists_path = Path(lists_dir).expanduser()
    lists_path = lists_path if lists_path.is_absolute() else root / lists_path
    require_dir(lists_path, "jfsfdb", "folder of list files (lists_dir)")
    domains = dict(domains or {})

    rows = []
    tracker = ListEntryTracker("jfsfdb")
    undetermined: dict[str, int] = {}
    for name, role in roles.items():
        list_path = _list_file(lists_path, name)
        explicit = domains.get(name) or domains.get(list_path.name)
        lines = read_labelled_list(list_path, "jfsfdb", LIST_LABELS, "JFSFDB lists use 1 = real, 0 = attack")
        missing = []
        for number, relative, token, label in lines:
            relative = relative.strip("/")
            if not tracker.admit(relative, list_path.name, number, role, token):
                continue  # the same video, role and label listed again: kept once, counted
            domain = explicit or source_dataset(relative)
            if domain is None:
                domain = default_domain(list_path.name)
                undetermined[list_path.name] = undetermined.get(list_path.name, 0) + 1
            family = task_family(domain)
            path = root / relative
            if not path.exists():
                missing.append(relative)
                continue
            rows.append(
                {
                    "path": relative,
                    "label": label,
                    "domain": domain,
                    "type": TYPE_NAMES[family][label],
                    "video_id": f"jfsfdb/{domain}/{relative}",
                    "split": ROLE_SPLITS[role],
                    "media": "frames" if path.is_dir() else "image",
                    "role": role,
                    "task": family,
                    "list_name": list_path.name,
                }
            )
        handle_missing_listed(missing, len(lines), "jfsfdb", list_path, on_missing)
    if undetermined:
        warnings.warn(
            f"jfsfdb: no folder of the video path names a known source dataset for {sum(undetermined.values())} "
            f"record(s); their domain is the list name: {undetermined}. Name the domain of a list with "
            f"domains={{list name: dataset}} if that is wrong (known folder names: {sorted(set(SOURCE_DATASETS))}).",
            stacklevel=2,
        )
    source = f"jfsfdb reader on '{root}'"
    return attach_report(finish_records(rows, source), tracker.report(), source)
