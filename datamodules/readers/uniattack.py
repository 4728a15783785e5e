"""Reader of UniAttackData, unified physical-digital face attacks (``uniattack``).

Two releases are supported (option ``release``).

``release="research"`` (default), the full release with protocol files::

    <root>/UniAttackData/Data/live/<ethnicity>/<ID>/real.rssdk/color/<NNNN>.jpg
    <root>/UniAttackData/Data/spoof/<eth>/<ID>/{cloth-indoor,cloth-outdoor,screen-rs}/color/<NNNN>.jpg
    <root>/UniAttackData/Data/adv-attacks/<method>/<m>_<eth>-112x112/<ID>/<NNNN>.jpg
    <root>/UniAttackData/Data/{DaGAN,FaceDancer,InsightFace,OneShotTH,SAFA,simswap}/...
    <root>/UniAttackData/protocol/UniAttackData@<protocol>_<image|video>_<train|dev|test>.txt

``root`` may also be the ``UniAttackData`` folder itself. Protocol lines are
``<path relative to root> <label>`` with 0 live, 1 physical, 2 adversarial, 3 digital;
record label = (label != 0), ``type`` = live / physical / adversarial / digital and the raw
value is kept in ``attack_label``. Option ``protocol`` is one of p1, p1.1, p1.2, p1.3, p2.1,
p2.2 and ``unit`` picks the image lists (one record per image, ``media="image"``, one video id
per image as the record contract asks of image datasets; the capture folder is kept in
``sequence``; ids are ``uniattack/<path below UniAttackData/>``) or the video lists (one record per frame folder, ``media="frames"``).
train/dev/test map to train/val/test.

The released lists repeat some lines (P1 test: 7 images listed twice; P2.1: 6 in train, 1 in dev;
P2.2: 7 in test). A line repeating an earlier one with the same split and label is kept once and
counted in ``frame.attrs["reader_report"]`` (the index sidecar and the preprocessing report show
the count per list); the same image in two splits or with two labels is an error naming both
lists and line numbers.

``release="challenge"``, the anonymised challenge release (protocols p1, p2.1, p2.2)::

    <root>/phase1/<protocol>/{train/, dev/, train_label.txt, dev.txt}
    <root>/phase2/<protocol>/{test/, dev_label.txt, test.txt}

Lines are ``p1/train/000001.jpg 1`` with 0 live, 1 spoof (``type`` live / attack); a line's
path is looked up under phase1/, phase2/ and root. train_label.txt gives ``train``,
dev_label.txt gives ``val``. The test labels were not published: if a
``phase2/<protocol>/test_label.txt`` exists it gives ``test``, otherwise there is no test split
and a warning says so (dev.txt/test.txt hold paths only and are not read).
"""

from __future__ import annotations

import warnings
from pathlib import Path, PurePosixPath

import pandas as pd

from common.choices import check_choice
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
    require_file,
    require_root,
    strip_extension,
)

RESEARCH_PROTOCOLS: tuple[str, ...] = ("p1", "p1.1", "p1.2", "p1.3", "p2.1", "p2.2")
CHALLENGE_PROTOCOLS: tuple[str, ...] = ("p1", "p2.1", "p2.2")
RELEASES: tuple[str, ...] = ("research", "challenge")
UNITS: tuple[str, ...] = ("image", "video")
ATTACK_FAMILIES: dict[str, str] = {"0": "live", "1": "physical", "2": "adversarial", "3": "digital"}
ATTACK_LABELS: dict[str, int] = {token: int(token) for token in ATTACK_FAMILIES}
PROTOCOL_SPLITS: dict[str, str] = {"train": "train", "dev": "val", "test": "test"}
CHALLENGE_LABELS = {"0": 0, "1": 1}

UNIATTACK_LAYOUT = """research: <root>/UniAttackData/{Data/..., protocol/UniAttackData@<p>_<image|video>_<train|dev|test>.txt}
challenge: <root>/phase1/<p>/{train/, dev/, train_label.txt, dev.txt}, <root>/phase2/<p>/{test/, dev_label.txt, test.txt}"""


def _resolve(root: Path, relative: str, bases: list[Path]) -> Path | None:
    """First existing ``base/relative``; the research lists start with ``UniAttackData/``,
    which is dropped when ``root`` is that folder itself."""
    candidates = [relative]
    first, _, rest = relative.partition("/")
    if first == root.name and rest:
        candidates.append(rest)
    for base in bases:
        for candidate in candidates:
            path = base / candidate
            if path.exists():
                return path
    return None


def _protocol_dir(root: Path) -> Path:
    for candidate in (root / "UniAttackData" / "protocol", root / "protocol"):
        if candidate.is_dir():
            return candidate
    raise MissingLayoutFileError(
        f"uniattack: no protocol folder in '{root}' (looked for UniAttackData/protocol and protocol); it holds "
        f"{child_names(root)}. Expected:\n{UNIATTACK_LAYOUT}"
    )


def _list_key(relative: str) -> str:
    # The same image may be written with or without the leading UniAttackData/ or ./
    return relative.removeprefix("./").removeprefix("UniAttackData/")


def _read_research(
    root: Path, protocol: str, unit: str, on_missing: str, tracker: ListEntryTracker
) -> list[dict]:
    check_choice("uniattack: protocol", protocol, RESEARCH_PROTOCOLS, note="the research release")
    protocol_dir = _protocol_dir(root)
    rows = []
    for split_name, split in PROTOCOL_SPLITS.items():
        names = [f"UniAttackData@{protocol}_{unit}_{split_name}.txt", f"{protocol}_{unit}_{split_name}.txt"]
        list_path = next((protocol_dir / n for n in names if (protocol_dir / n).is_file()), None)
        if list_path is None:
            raise MissingLayoutFileError(
                f"uniattack: missing protocol file {names[0]} in '{protocol_dir}'; it holds {child_names(protocol_dir)}"
            )
        lines = read_labelled_list(
            list_path, "uniattack", ATTACK_LABELS, "0 live, 1 physical, 2 adversarial, 3 digital", what="protocol file"
        )
        missing = []
        for number, relative, token, attack in lines:
            if not tracker.admit(_list_key(relative), list_path.name, number, split, token):
                continue  # an exact repeat of an earlier line: kept once, counted in the report
            resolved = _resolve(root, relative, [root])
            if resolved is None or (unit == "video") != resolved.is_dir():
                missing.append(relative)
                continue
            path = PurePosixPath(resolved.relative_to(root).as_posix())
            # Ids do not depend on whether root is the UniAttackData folder or its parent.
            canonical = path.as_posix().removeprefix("UniAttackData/")
            video_id = canonical if unit == "video" else strip_extension(canonical)
            rows.append(
                {
                    "path": path.as_posix(),
                    "label": int(attack != 0),
                    "domain": "uniattack",
                    "type": ATTACK_FAMILIES[token],
                    "video_id": f"uniattack/{video_id}",
                    "split": split,
                    "media": "frames" if unit == "video" else "image",
                    "attack_label": attack,
                    "sequence": path.as_posix() if unit == "video" else path.parent.as_posix(),
                }
            )
        handle_missing_listed(missing, len(lines), "uniattack", list_path, on_missing)
    return rows


def _read_challenge(
    root: Path, protocol: str, unit: str, on_missing: str, tracker: ListEntryTracker
) -> list[dict]:
    check_choice("uniattack: protocol", protocol, CHALLENGE_PROTOCOLS, note="the challenge release")
    if unit != "image":
        raise ValueError("uniattack: the challenge release has image lists only; use unit='image'")
    phase1 = require_dir(
        root / "phase1", "uniattack", "challenge phase1 folder", hint=f"Expected:\n{UNIATTACK_LAYOUT}"
    )
    phase2 = require_dir(
        root / "phase2", "uniattack", "challenge phase2 folder", hint=f"Expected:\n{UNIATTACK_LAYOUT}"
    )
    label_files = [
        (
            require_file(phase1 / protocol / "train_label.txt", "uniattack", "challenge train label file"),
            "train",
        ),
        (require_file(phase2 / protocol / "dev_label.txt", "uniattack", "challenge dev label file"), "val"),
    ]
    test_labels = phase2 / protocol / "test_label.txt"
    if test_labels.is_file():
        label_files.append((test_labels, "test"))
    else:
        warnings.warn(
            f"uniattack: no '{test_labels}'; the challenge test labels were not published, so this index "
            "has train and val only.",
            stacklevel=3,
        )
    rows = []
    for list_path, split in label_files:
        lines = read_labelled_list(list_path, "uniattack", CHALLENGE_LABELS, "0 live, 1 spoof", what="label file")
        missing = []
        for number, relative, token, label in lines:
            if not tracker.admit(_list_key(relative), list_path.relative_to(root), number, split, token):
                continue
            resolved = _resolve(root, relative, [phase1, phase2, root])
            if resolved is None or not resolved.is_file():
                missing.append(relative)
                continue
            path = resolved.relative_to(root).as_posix()
            rows.append(
                {
                    "path": path,
                    "label": label,
                    "domain": "uniattack",
                    "type": "attack" if label else "live",
                    "video_id": f"uniattack/challenge/{strip_extension(path)}",
                    "split": split,
                    "media": "image",
                    "attack_label": label,
                    "sequence": PurePosixPath(path).parent.as_posix(),
                }
            )
        handle_missing_listed(missing, len(lines), "uniattack", list_path, on_missing)
    return rows


def read_uniattack(
    root: Path,
    *,
    protocol: str = "p1",
    release: str = "research",
    unit: str = "image",
    on_missing: str = "raise",
) -> pd.DataFrame:
    """UniAttackData records for one protocol of one release; see the module docstring."""
    check_choice("uniattack: release", release, RELEASES)
    check_choice("uniattack: unit", unit, UNITS)
    check_on_missing(on_missing)
    root = require_root(root, "uniattack", UNIATTACK_LAYOUT)
    read = _read_research if release == "research" else _read_challenge
    tracker = ListEntryTracker("uniattack")
    rows = read(root, protocol, unit, on_missing, tracker)
    source = f"uniattack reader ({release}, {protocol}, {unit}) on '{root}'"
    return attach_report(finish_records(rows, source), tracker.report(), source)
