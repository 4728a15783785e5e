"""The cached raw index (build_index) and the validated prepared index (load_prepared_index)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from fixtures_layouts import (
    build_celebdf,
    build_ffpp,
    build_jfsfdb,
    build_uadfv,
    build_uniattack_research,
    touch,
    write_text,
)

from datamodules.index import MissingFilesError, build_index, cache_key, load_prepared_index
from datamodules.readers import READERS, DatasetRootNotFoundError, UnknownReaderError
from datamodules.records import RecordError


@pytest.fixture
def counted_uadfv(monkeypatch):
    """Register a UADFV reader that counts its calls, to see whether the cache was used."""
    calls = []

    def read_counted(root: Path, **options):
        calls.append(options)
        return READERS_ORIGINAL["uadfv"](root, **options)

    READERS_ORIGINAL = dict(READERS)
    monkeypatch.setitem(READERS, "uadfv", read_counted)
    return calls


def test_cache_is_used_until_the_data_changes(tmp_path, counted_uadfv):
    root, cache = tmp_path / "uadfv", tmp_path / "cache"
    count = build_uadfv(root)
    first = build_index("uadfv", root, cache)
    second = build_index("uadfv", root, cache)
    assert len(counted_uadfv) == 1  # the second call read the CSV
    pd.testing.assert_frame_equal(first, second)
    assert len(list(cache.glob("uadfv-*.csv"))) == 1 and len(list(cache.glob("uadfv-*.json"))) == 1

    touch(root / "fake" / "0099_fake.mp4")  # a new video: the directory listing changed
    third = build_index("uadfv", root, cache)
    assert len(counted_uadfv) == 2
    assert len(third) == 2 * count + 1
    assert len(list(cache.glob("uadfv-*.csv"))) == 1  # rebuilt in place, not accumulated


def test_cache_inside_the_dataset_does_not_invalidate_itself(tmp_path, counted_uadfv):
    build_uadfv(tmp_path)
    build_index("uadfv", tmp_path, tmp_path / ".index_cache")
    build_index("uadfv", tmp_path, tmp_path / ".index_cache")
    assert len(counted_uadfv) == 1


def test_label_file_edit_rebuilds(tmp_path):
    root, cache = tmp_path / "cdf", tmp_path / "cache"
    build_celebdf(root)
    before = build_index("celebdf_v2", root, cache)
    listing = root / "List_of_testing_videos.txt"
    lines = listing.read_text().splitlines()
    listing.write_text("\n".join(lines[:-1]))  # same file names, different content
    os.utime(listing, ns=(listing.stat().st_atime_ns, listing.stat().st_mtime_ns + 10**9))
    after = build_index("celebdf_v2", root, cache)
    assert (before["split"] == "test").sum() == 4
    assert (after["split"] == "test").sum() == 3


def test_options_get_their_own_cache_entry(tmp_path):
    root, cache = tmp_path / "cdf", tmp_path / "cache"
    build_celebdf(root)
    full = build_index("celebdf_v2", root, cache)
    dropped = build_index("celebdf_v2", root, cache, drop_youtube_real=True)
    assert len(dropped) == len(full) - 1
    assert len(list(cache.glob("celebdf_v2-*.csv"))) == 2
    assert cache_key("celebdf_v2", root, {"drop_youtube_real": True}) != cache_key("celebdf_v2", root, {})
    # option order and tuple/list spelling do not change the key
    assert cache_key("ffpp", root, {"methods": ("A", "B"), "compression": "c23"}) == cache_key(
        "ffpp", root, {"compression": "c23", "methods": ["A", "B"]}
    )


def test_cached_frame_keeps_strings_and_extra_dtypes(tmp_path):
    ffpp_root, uni_root, cache = tmp_path / "ffpp", tmp_path / "uni", tmp_path / "cache"
    build_ffpp(ffpp_root, methods=("Deepfakes",))
    fresh = build_index("ffpp", ffpp_root, cache, methods=["Deepfakes"])
    cached = build_index("ffpp", ffpp_root, cache, methods=["Deepfakes"])
    pd.testing.assert_frame_equal(fresh, cached)
    assert "ffpp/c23/real/000" in set(cached["video_id"])  # leading zeros survive the CSV
    build_uniattack_research(uni_root)
    fresh = build_index("uniattack", uni_root, cache)
    cached = build_index("uniattack", uni_root, cache)
    assert cached["attack_label"].dtype == fresh["attack_label"].dtype == "int64"
    pd.testing.assert_frame_equal(fresh, cached)


def test_absolute_option_paths_are_fingerprinted(tmp_path):
    root, lists_dir, cache = tmp_path / "jfsfdb", tmp_path / "my_lists", tmp_path / "cache"
    build_jfsfdb(root, lists_dir=lists_dir)
    roles = {"SiW_train": "train"}
    assert len(build_index("jfsfdb", root, cache, lists_dir=str(lists_dir), roles=roles)) == 3
    write_text(lists_dir / "SiW_train.txt", "SiW/live/001-1 1\n")
    assert len(build_index("jfsfdb", root, cache, lists_dir=str(lists_dir), roles=roles)) == 1


def test_build_index_errors(tmp_path):
    with pytest.raises(UnknownReaderError, match="known readers"):
        build_index("nope", tmp_path, tmp_path / "cache")
    with pytest.raises(DatasetRootNotFoundError, match=r"(?s)uadfv: dataset root .*missing.*real/<NNNN>.mp4"):
        build_index("uadfv", tmp_path / "missing", tmp_path / "cache")


# ---------------------------------------------------------------- prepared index


def write_prepared(root: Path, rows: list[dict], create_files: bool = True) -> None:
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "index.csv", index=False)
    if create_files:
        for row in rows:
            touch(root / row["path"])


def frame_rows(frames_per_video: int = 2) -> list[dict]:
    """Frame records of one real and one fake FF++ video."""
    rows = []
    for label, video_type in ((0, "real"), (1, "Deepfakes")):
        for frame in range(frames_per_video):
            rows.append(
                {
                    "path": f"ffpp/c23/{video_type}/000/{frame:04d}.png",
                    "label": label,
                    "domain": "ffpp",
                    "type": video_type,
                    "video_id": f"ffpp/c23/{video_type}/000",
                    "split": "train",
                    "frame_index": frame,
                }
            )
    return rows


def test_load_prepared_index_valid(tmp_path):
    write_prepared(tmp_path, frame_rows())
    frame = load_prepared_index(tmp_path)
    assert len(frame) == 4
    assert frame["label"].tolist() == [0, 0, 1, 1]
    assert frame["frame_index"].dtype.kind == "i"  # numeric extras come back as numbers
    assert frame["video_id"].iloc[0] == "ffpp/c23/real/000"


def test_load_prepared_index_missing_files(tmp_path):
    rows = frame_rows(4)
    write_prepared(tmp_path, rows)
    for row in rows[:3]:
        (tmp_path / row["path"]).unlink()
    with pytest.raises(MissingFilesError, match=r"3 of 8 file\(s\).*0000.png.*on_missing='warn'"):
        load_prepared_index(tmp_path)
    with pytest.warns(UserWarning, match=r"3 of 8 file\(s\).*dropped"):
        frame = load_prepared_index(tmp_path, on_missing="warn")
    assert len(frame) == 5


def test_load_prepared_index_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="run face preprocessing first"):
        load_prepared_index(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="has no index.csv"):
        load_prepared_index(tmp_path)
    rows = frame_rows()
    rows[1]["label"] = 2
    write_prepared(tmp_path, rows)
    with pytest.raises(RecordError, match="not 0 \\(real\\) or 1"):
        load_prepared_index(tmp_path)
    rows = frame_rows()
    rows[1]["label"] = 1  # video ffpp/c23/real/000 now has two labels
    write_prepared(tmp_path, rows)
    with pytest.raises(ValueError, match="more than one label"):
        load_prepared_index(tmp_path)
    with pytest.raises(ValueError, match="on_missing"):
        load_prepared_index(tmp_path, on_missing="ignore")
