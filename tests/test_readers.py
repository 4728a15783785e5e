"""Readers on tiny trees in the official layouts: counts, labels (incl. flipped files),
domains, types, unique video ids, splits, and the clear errors on broken inputs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
from fixtures_layouts import (
    CELEBDF_FAKE,
    CELEBDF_REAL,
    CELEBDF_YOUTUBE,
    DFD_FAKES,
    DFD_REALS,
    FFPP_METHODS,
    JFSFDB_LISTS,
    build_celebdf,
    build_deeperforensics,
    build_dfd,
    build_dfdc,
    build_dfdcp,
    build_diff,
    build_ffpp,
    build_jfsfdb,
    build_uadfv,
    build_uniattack_challenge,
    build_uniattack_research,
    build_wilddeepfake,
    touch,
    write_text,
    write_tiny_video,
)

from datamodules.readers import (
    READERS,
    DatasetLayoutError,
    DatasetRootNotFoundError,
    EmptyFolderError,
    LabelValueError,
    MissingLayoutFileError,
    MissingListedFilesError,
    UnknownReaderError,
    get_reader,
)
from datamodules.readers.common import holdout_groups
from datamodules.records import RECORD_COLUMNS


def assert_contract(frame: pd.DataFrame, root: Path) -> None:
    """Checks every reader output must pass, whatever the dataset."""
    assert set(RECORD_COLUMNS) | {"media"} <= set(frame.columns)
    assert set(frame["label"].unique()) <= {0, 1}
    assert set(frame["split"].unique()) <= {"train", "val", "test"}
    assert frame["path"].is_unique
    for relative, media in zip(frame["path"], frame["media"]):
        assert not Path(relative).is_absolute()
        target = root / relative
        assert target.is_dir() if media == "frames" else target.is_file(), relative
    whole = frame[frame["media"].isin(["video", "frames"])]
    assert whole["video_id"].is_unique


# ---------------------------------------------------------------- registry


def test_registry_names_every_reader():
    assert set(READERS) == {
        "ffpp",
        "dfd",
        "celebdf_v1",
        "celebdf_v2",
        "dfdc",
        "dfdcp",
        "diff",
        "wilddeepfake",
        "uniattack",
        "jfsfdb",
        "uadfv",
        "deeperforensics",
    }
    assert get_reader("ffpp") is READERS["ffpp"]


def test_unknown_reader_lists_known_ones():
    with pytest.raises(UnknownReaderError, match=r"'ffp'.*celebdf_v2.*ffpp"):
        get_reader("ffp")


def test_missing_root_names_dataset_and_layout(tmp_path):
    with pytest.raises(
        DatasetRootNotFoundError,
        match=r"(?s)celebdf_v2: dataset root .*nowhere.* does not exist.*Celeb-synthesis",
    ):
        READERS["celebdf_v2"](tmp_path / "nowhere")


# ---------------------------------------------------------------- FaceForensics++ and DFD


def test_ffpp_counts_labels_splits_and_ids(tmp_path):
    pairs = build_ffpp(tmp_path)
    frame = READERS["ffpp"](tmp_path, compression="c23")
    assert_contract(frame, tmp_path)
    n_pairs = {split: len(p) for split, p in pairs.items()}
    for split, count in n_pairs.items():
        part = frame[frame["split"] == split]
        assert (part["label"] == 0).sum() == 2 * count  # both originals of each pair
        assert (part["label"] == 1).sum() == 2 * count * len(FFPP_METHODS)  # a_b and b_a per method
    assert set(frame["type"]) == {"real", *FFPP_METHODS}
    assert (frame.loc[frame["type"] == "real", "label"] == 0).all()
    assert set(frame["domain"]) == {"ffpp"}
    # same file name under two methods must stay two videos
    assert {"ffpp/c23/Deepfakes/000_001", "ffpp/c23/Face2Face/000_001", "ffpp/c23/real/000"} <= set(
        frame["video_id"]
    )
    assert frame.loc[frame["video_id"] == "ffpp/c23/Deepfakes/001_000", "split"].item() == "train"
    assert not frame["path"].str.contains("masks").any()


def test_ffpp_accepts_c0_for_raw_and_selects_methods(tmp_path):
    build_ffpp(tmp_path, compression_folder="c0")
    frame = READERS["ffpp"](tmp_path, compression="raw", methods=["FaceShifter"])
    assert set(frame["type"]) == {"real", "FaceShifter"}
    assert frame["video_id"].str.startswith("ffpp/raw/").all()
    assert frame["path"].str.contains("/c0/videos/").all()


def test_ffpp_missing_split_file(tmp_path):
    build_ffpp(tmp_path)
    (tmp_path / "val.json").unlink()
    with pytest.raises(MissingLayoutFileError, match=r"train.json, val.json, test.json.*splits_dir"):
        READERS["ffpp"](tmp_path)


def test_ffpp_missing_compression_names_what_exists(tmp_path):
    build_ffpp(tmp_path, compression_folder="c23")
    with pytest.raises(MissingLayoutFileError, match=r"c40/videos.*\['c23'\]"):
        READERS["ffpp"](tmp_path, compression="c40")


def test_ffpp_missing_listed_video_raises_or_warns(tmp_path):
    build_ffpp(tmp_path)
    (tmp_path / "manipulated_sequences/FaceSwap/c23/videos/006_007.mp4").unlink()
    with pytest.raises(MissingListedFilesError, match=r"1 of .* missing.*006_007"):
        READERS["ffpp"](tmp_path)
    with pytest.warns(UserWarning, match="1 of"):
        frame = READERS["ffpp"](tmp_path, on_missing="warn")
    assert "ffpp/c23/FaceSwap/006_007" not in set(frame["video_id"])


def test_ffpp_unlisted_video_is_dropped_with_warning(tmp_path):
    build_ffpp(tmp_path)
    touch(tmp_path / "original_sequences/youtube/c23/videos/999.mp4")
    with pytest.warns(UserWarning, match=r"1 file\(s\) on disk are not in"):
        frame = READERS["ffpp"](tmp_path)
    assert "ffpp/c23/real/999" not in set(frame["video_id"])


def test_ffpp_empty_videos_folder(tmp_path):
    build_ffpp(tmp_path, methods=("Deepfakes",))
    (tmp_path / "manipulated_sequences/Face2Face/c23/videos").mkdir(parents=True)
    with pytest.raises(EmptyFolderError, match=r"Face2Face videos folder .* holds no"):
        READERS["ffpp"](tmp_path, methods=["Face2Face"])


def test_ffpp_bad_split_entry_names_file(tmp_path):
    build_ffpp(tmp_path)
    write_text(tmp_path / "test.json", json.dumps([["006", "007", "008"]]))
    with pytest.raises(DatasetLayoutError, match=r"test.json', entry 0"):
        READERS["ffpp"](tmp_path)


def test_ffpp_masks_give_each_fake_its_mask_video(tmp_path):
    build_ffpp(tmp_path, masks="all")
    assert "mask_path" not in READERS["ffpp"](tmp_path).columns  # masks are opt-in
    with pytest.warns(UserWarning, match=r"FaceShifter has no masks.*8 video"):
        frame = READERS["ffpp"](tmp_path, masks=True)
    assert_contract(frame, tmp_path)
    masked = frame[frame["mask_path"] != ""]
    assert set(masked["type"]) == {"Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"}
    assert len(masked) == 4 * 8  # every fake of the four methods (8 fakes each)
    for row in masked.itertuples():
        assert row.mask_path == f"manipulated_sequences/{row.type}/masks/videos/{Path(row.path).name}"
        assert (tmp_path / row.mask_path).is_file()
    assert (frame.loc[frame["type"].isin(["real", "FaceShifter"]), "mask_path"] == "").all()


def test_ffpp_missing_masks_raise_or_warn_with_counts(tmp_path):
    build_ffpp(tmp_path, methods=("Deepfakes", "Face2Face"))  # "some": the b_a fakes have no mask
    with pytest.raises(
        MissingListedFilesError, match=r"8 of 16 manipulated video\(s\) have no mask.*-t masks"
    ):
        READERS["ffpp"](tmp_path, methods=["Deepfakes", "Face2Face"], masks=True)
    with pytest.warns(UserWarning, match=r"8 of 16 .* empty mask_path"):
        frame = READERS["ffpp"](tmp_path, methods=["Deepfakes", "Face2Face"], masks=True, on_missing="warn")
    fakes = frame[frame["label"] == 1]
    assert (fakes["mask_path"] != "").sum() == 8 and len(fakes) == 16  # no video dropped
    import shutil

    shutil.rmtree(tmp_path / "manipulated_sequences/Face2Face/masks")
    with pytest.raises(MissingLayoutFileError, match=r"Face2Face/masks/videos.*-d Face2Face -t masks"):
        READERS["ffpp"](tmp_path, methods=["Face2Face"], masks=True)
    with pytest.raises(ValueError, match="masks must be true or false"):
        READERS["ffpp"](tmp_path, masks="yes")


def test_dfd_masks(tmp_path):
    build_dfd(tmp_path, masks=True)
    frame = READERS["dfd"](tmp_path, masks=True)
    fakes = frame[frame["label"] == 1]
    assert (fakes["mask_path"].str.startswith("manipulated_sequences/DeepFakeDetection/masks/videos/")).all()
    assert (frame.loc[frame["label"] == 0, "mask_path"] == "").all()


def test_dfd_is_test_only_with_real_and_fake(tmp_path):
    build_dfd(tmp_path)
    frame = READERS["dfd"](tmp_path)
    assert_contract(frame, tmp_path)
    assert len(frame) == len(DFD_REALS) + len(DFD_FAKES)
    assert (frame["split"] == "test").all()
    assert (frame["label"] == 1).sum() == len(DFD_FAKES)
    assert set(frame["type"]) == {"real", "DeepFakeDetection"}
    assert set(frame["domain"]) == {"dfd"}


# ---------------------------------------------------------------- Celeb-DF


@pytest.mark.parametrize("name", ["celebdf_v1", "celebdf_v2"])
def test_celebdf_flips_test_labels_and_splits(tmp_path, name):
    # alternative spelling of the YouTube folder, and no newline after the last list line
    expected = build_celebdf(tmp_path, youtube_folder="Youtube-real")
    frame = READERS[name](tmp_path)
    assert_contract(frame, tmp_path)
    assert len(frame) == expected["total"]
    test = frame[frame["split"] == "test"]
    assert len(test) == expected["test"]
    # the list says 1 = real: the record must say 0 for the real ones
    assert test.set_index("video_id")["label"].to_dict() == {
        f"{name}/Celeb-real/id3_0000": 0,
        f"{name}/YouTube-real/00003": 0,
        f"{name}/Celeb-synthesis/id3_id0_0000": 1,
        f"{name}/Celeb-synthesis/id2_id3_0000": 1,
    }
    assert (frame.loc[frame["type"] == "Celeb-synthesis", "label"] == 1).all()
    assert set(frame["domain"]) == {name}
    assert {"train", "val"} <= set(frame["split"])


def test_celebdf_validation_is_by_identity_and_deterministic(tmp_path):
    build_celebdf(tmp_path)
    first = READERS["celebdf_v2"](tmp_path, val_fraction=0.3)
    second = READERS["celebdf_v2"](tmp_path, val_fraction=0.3)
    pd.testing.assert_frame_equal(first, second)
    train_val = first[first["split"] != "test"].copy()
    stems = train_val["video_id"].str.split("/").str[-1]
    identity = stems.str.extract(r"^(id\d+)_")[0].fillna(stems)
    # every identity lies wholly in train or wholly in val
    assert (train_val.groupby(identity)["split"].nunique() == 1).all()
    assert set(train_val["split"]) == {"train", "val"}


def test_celebdf_drop_youtube_real(tmp_path):
    expected = build_celebdf(tmp_path, trailing_newline=True)
    frame = READERS["celebdf_v2"](tmp_path, drop_youtube_real=True)
    test = frame[frame["split"] == "test"]
    assert len(test) == expected["test"] - expected["test_youtube"]
    assert not test["video_id"].str.contains("YouTube-real").any()
    # YouTube-real stays available for training
    assert frame["video_id"].str.contains("YouTube-real").sum() == len(CELEBDF_YOUTUBE) - 1
    assert len(frame) == len(CELEBDF_REAL) + len(CELEBDF_YOUTUBE) + len(CELEBDF_FAKE) - 1


def test_celebdf_videos_in_a_subfolder(tmp_path):
    expected = build_celebdf(tmp_path)
    nested = tmp_path / "Celeb-real/videos"
    nested.mkdir()
    for path in sorted((tmp_path / "Celeb-real").glob("*.mp4")):
        path.rename(nested / path.name)
    frame = READERS["celebdf_v2"](tmp_path)
    assert len(frame) == expected["total"]
    assert (
        frame.set_index("video_id").loc["celebdf_v2/Celeb-real/id3_0000", "path"]
        == "Celeb-real/videos/id3_0000.mp4"
    )


def test_celebdf_unknown_label_names_file_and_line(tmp_path):
    build_celebdf(tmp_path)
    with (tmp_path / "List_of_testing_videos.txt").open("a") as handle:
        handle.write("\n2 Celeb-real/id0_0000.mp4")
    with pytest.raises(LabelValueError, match=r"List_of_testing_videos.txt, line 5: label '2'.*1 = real"):
        READERS["celebdf_v2"](tmp_path)


def test_celebdf_label_contradicting_folder_is_an_error(tmp_path):
    build_celebdf(tmp_path)
    write_text(tmp_path / "List_of_testing_videos.txt", "0 Celeb-real/id3_0000.mp4\n")
    with pytest.raises(LabelValueError, match=r"line 1: .*means fake .* Celeb-real"):
        READERS["celebdf_v2"](tmp_path)


def test_celebdf_missing_test_list(tmp_path):
    build_celebdf(tmp_path)
    (tmp_path / "List_of_testing_videos.txt").unlink()
    with pytest.raises(MissingLayoutFileError, match=r"official test list.*List_of_testing_videos.txt"):
        READERS["celebdf_v1"](tmp_path)


def test_celebdf_missing_listed_test_video(tmp_path):
    build_celebdf(tmp_path)
    (tmp_path / "Celeb-real/id3_0000.mp4").unlink()
    with pytest.raises(MissingListedFilesError, match=r"1 of 4 .*Celeb-real/id3_0000.mp4"):
        READERS["celebdf_v2"](tmp_path)


def test_celebdf_empty_folder(tmp_path):
    build_celebdf(tmp_path)
    for path in (tmp_path / "Celeb-synthesis").iterdir():
        path.unlink()
    with pytest.raises(EmptyFolderError, match="Celeb-synthesis"):
        READERS["celebdf_v2"](tmp_path)


# ---------------------------------------------------------------- DFDC and DFDCP


def test_dfdc_train_val_by_original_and_test_labels(tmp_path):
    expected = build_dfdc(tmp_path)
    frame = READERS["dfdc"](tmp_path, val_fraction=0.4)
    assert_contract(frame, tmp_path)
    train_val = frame[frame["split"] != "test"]
    assert len(train_val) == expected["train_total"]
    assert {"train", "val"} <= set(train_val["split"])
    # a fake shares the split of its original
    by_id = frame.set_index("video_id")["split"]
    assert by_id["dfdc/part0/cccc"] == by_id["dfdc/part0/aaaa"]
    assert by_id["dfdc/part1/ffff"] == by_id["dfdc/part1/gggg"] == by_id["dfdc/part1/eeee"]
    test = frame[frame["split"] == "test"]
    assert len(test) == expected["test"] and test["label"].sum() == expected["test_fake"]
    assert frame.set_index("video_id").loc["dfdc/test/t002", "label"] == 0
    assert frame.set_index("video_id").loc["dfdc/part0/cccc", "type"] == "fake"


def test_dfdc_test_only(tmp_path):
    build_dfdc(tmp_path)
    for part in tmp_path.glob("dfdc_train_part_*"):
        for path in part.iterdir():
            path.unlink()
        part.rmdir()
    with pytest.raises(MissingLayoutFileError, match=r"splits=\['test'\]"):
        READERS["dfdc"](tmp_path)
    frame = READERS["dfdc"](tmp_path, splits=["test"])
    assert set(frame["split"]) == {"test"}


def test_dfdc_unknown_label_names_line(tmp_path):
    build_dfdc(tmp_path)
    write_text(tmp_path / "test/labels.csv", "filename,label\nt001.mp4,1\nt002.mp4,fake\n")
    with pytest.raises(LabelValueError, match=r"labels.csv, line 3: label 'fake'"):
        READERS["dfdc"](tmp_path, splits=["test"])


def test_dfdc_missing_labels_and_metadata(tmp_path):
    build_dfdc(tmp_path)
    (tmp_path / "dfdc_train_part_1/metadata.json").unlink()
    with pytest.raises(MissingLayoutFileError, match=r"metadata.json.*dfdc_train_part_1"):
        READERS["dfdc"](tmp_path, splits=["train"])
    (tmp_path / "test/labels.csv").unlink()
    with pytest.raises(MissingLayoutFileError, match=r"test label file"):
        READERS["dfdc"](tmp_path, splits=["test"])


def test_dfdcp_subsets(tmp_path):
    expected = build_dfdcp(tmp_path)
    test = READERS["dfdcp"](tmp_path)
    everything = READERS["dfdcp"](tmp_path, subset="all")
    assert_contract(everything, tmp_path)
    assert len(test) == expected["test"] and len(everything) == expected["all"]
    assert (everything["split"] == "test").all()
    assert set(everything["type"]) == {"real", "method_A", "method_B"}
    assert (everything.loc[everything["type"] == "real", "label"] == 0).all()
    assert (everything.loc[everything["type"] != "real", "label"] == 1).all()


def test_dfdcp_unknown_label_and_missing_json(tmp_path):
    build_dfdcp(tmp_path)
    metadata = json.loads((tmp_path / "dataset.json").read_text())
    metadata["method_A/100/100_X/100_A_001.mp4"]["label"] = "maybe"
    write_text(tmp_path / "dataset.json", json.dumps(metadata))
    with pytest.raises(
        LabelValueError, match=r"dataset.json, entry 'method_A/100/100_X/100_A_001.mp4': label 'maybe'"
    ):
        READERS["dfdcp"](tmp_path)
    (tmp_path / "dataset.json").unlink()
    with pytest.raises(MissingLayoutFileError, match="dataset.json"):
        READERS["dfdcp"](tmp_path)


# ---------------------------------------------------------------- DiFF


def test_diff_reads_real_and_subsets(tmp_path):
    count = build_diff(tmp_path)
    frame = READERS["diff"](tmp_path)
    assert_contract(frame, tmp_path)
    assert frame["type"].value_counts().to_dict() == count
    assert (frame["media"] == "image").all()
    assert set(frame["split"]) == {"train", "val", "test"}
    assert set(frame.loc[frame["type"] == "T2I", "method"]) == {"SDXL", "Midjourney"}
    assert (frame.loc[frame["type"] == "real", "label"] == 0).all()
    only = READERS["diff"](tmp_path, subsets=["fs"])
    assert set(only["type"]) == {"real", "FS"}


def test_diff_explains_unexpected_layout(tmp_path):
    touch(tmp_path / "somewhere/else/x.png")
    with pytest.raises(DatasetLayoutError, match=r"(?s)none of the 1 images.*DiFF_real"):
        READERS["diff"](tmp_path)
    build_diff(tmp_path)
    with pytest.warns(UserWarning, match=r"1 image\(s\).*somewhere/else/x.png"):
        READERS["diff"](tmp_path)


def test_diff_without_real_images_is_an_error(tmp_path):
    build_diff(tmp_path)
    for path in sorted((tmp_path / "DiFF_real").rglob("*.png")):
        path.unlink()
    with pytest.raises(DatasetLayoutError, match="no real images"):
        READERS["diff"](tmp_path)


def test_diff_empty_root(tmp_path):
    with pytest.raises(EmptyFolderError, match="no .* images"):
        READERS["diff"](tmp_path)


# ---------------------------------------------------------------- WildDeepfake


@pytest.mark.parametrize("spaces", [False, True])
def test_wilddeepfake_folders(tmp_path, spaces):
    expected = build_wilddeepfake(tmp_path, spaces=spaces)
    frame = READERS["wilddeepfake"](tmp_path, val_fraction=0.25)
    assert_contract(frame, tmp_path)
    assert len(frame) == 4 * expected["sequences_per_category"]
    assert (frame["media"] == "frames").all()
    assert frame["video_id"].str.startswith("wilddeepfake/").all()
    test = frame[frame["split"] == "test"]
    assert len(test) == 2 * expected["sequences_per_category"]
    val = frame[frame["split"] == "val"]
    assert set(val["label"]) == {0, 1}  # both classes held out
    # the sequences of one source video never straddle train and val
    assert (frame.groupby("source_group")["split"].nunique() == 1).all()


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_wilddeepfake_archives_extract_outside_the_dataset_and_rerun_quietly(tmp_path, monkeypatch):
    data = tmp_path / "WildDeepfake"
    build_wilddeepfake(data, archives=True)
    with pytest.raises(DatasetLayoutError, match=r"archive\(s\).*extract_archives=True"):
        READERS["wilddeepfake"](data)
    before = _tree(data)
    extracted = tmp_path / "prepared" / "extracted"
    frame = READERS["wilddeepfake"](data, extract_archives=True, extract_dir=extracted)
    assert _tree(data) == before  # nothing written into the (possibly read-only) dataset folder
    assert len(frame) == 4 * 8
    assert frame.attrs["media_root"] == str(extracted)
    assert all((extracted / p).is_dir() for p in frame["path"])
    assert (extracted / "real_train/0/1/2.png").is_file()
    # a re-run extracts nothing again and says nothing
    monkeypatch.setattr("tarfile.open", lambda *a, **k: pytest.fail("extracted twice"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = READERS["wilddeepfake"](data, extract_archives=True, extract_dir=extracted)
    pd.testing.assert_frame_equal(again, frame)
    monkeypatch.undo()
    # default: FACEMOE_CACHE, one folder per dataset root
    monkeypatch.setenv("FACEMOE_CACHE", str(tmp_path / "cache"))
    cached = READERS["wilddeepfake"](data, extract_archives=True)
    assert cached.attrs["media_root"].startswith(str(tmp_path / "cache" / "wilddeepfake-extracted"))
    assert list(cached["path"]) == list(frame["path"])


def test_wilddeepfake_extraction_links_categories_extracted_by_hand(tmp_path):
    data = tmp_path / "data"
    build_wilddeepfake(data, archives=True)
    build_wilddeepfake(tmp_path / "by_hand")
    (data / "real_test").rename(tmp_path / "archived_real_test")
    (tmp_path / "by_hand" / "real_test").rename(data / "real_test")  # this category as folders
    extracted = tmp_path / "extracted"
    frame = READERS["wilddeepfake"](data, extract_archives=True, extract_dir=extracted)
    assert (extracted / "real_test").is_symlink()
    assert len(frame) == 4 * 8 and all((extracted / p).is_dir() for p in frame["path"])
    assert set(frame.loc[frame["path"].str.startswith("real_test/"), "split"]) == {"test"}


def test_wilddeepfake_archives_beside_folders_warn_once(tmp_path):
    build_wilddeepfake(tmp_path)
    build_wilddeepfake(tmp_path / "archives", archives=True)
    for category in ("real_train", "real_test", "fake_train", "fake_test"):
        for archive in (tmp_path / "archives" / category).glob("*.tar.gz"):
            archive.rename(tmp_path / category / archive.name)
    with pytest.warns(UserWarning, match=r"16 archive\(s\) are left aside") as caught:
        READERS["wilddeepfake"](tmp_path)
    assert len([w for w in caught if "wilddeepfake" in str(w.message)]) == 1


def test_wilddeepfake_preprocess_command_extracts_into_the_prepared_tree(tmp_path):
    from datamodules.preprocess.__main__ import parse_reader_options, read_records

    build_wilddeepfake(tmp_path / "data", archives=True)
    out = tmp_path / "prepared" / "wilddeepfake"
    records = read_records(
        "wilddeepfake", tmp_path / "data", parse_reader_options(["extract_archives=true"]), out
    )
    assert records.attrs["media_root"] == str(out / "extracted")
    assert (out / "extracted" / records["path"].iloc[0]).is_dir()


def test_wilddeepfake_missing_category_and_empty(tmp_path):
    build_wilddeepfake(tmp_path)
    for path in sorted((tmp_path / "fake_test").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    with pytest.raises(EmptyFolderError, match="fake_test"):
        READERS["wilddeepfake"](tmp_path)
    (tmp_path / "fake_test").rmdir()
    with pytest.raises(MissingLayoutFileError, match="fake_test"):
        READERS["wilddeepfake"](tmp_path)


# ---------------------------------------------------------------- UniAttackData


def test_uniattack_research_image_protocol(tmp_path):
    counts = build_uniattack_research(tmp_path, protocol="p2.1")
    frame = READERS["uniattack"](tmp_path, protocol="p2.1")
    assert_contract(frame, tmp_path)
    assert frame["split"].value_counts().to_dict() == {
        "train": counts["train"],
        "val": counts["dev"],
        "test": counts["test"],
    }
    assert set(frame["type"]) == {"live", "physical", "adversarial", "digital"}
    assert ((frame["attack_label"] != 0).astype(int) == frame["label"]).all()
    assert (frame.loc[frame["type"] == "live", "label"] == 0).all()
    assert frame["video_id"].is_unique  # one id per image


def test_uniattack_research_video_protocol_and_inner_root(tmp_path):
    build_uniattack_research(tmp_path)
    frame = READERS["uniattack"](tmp_path, unit="video")
    assert (frame["media"] == "frames").all()
    assert frame["video_id"].is_unique
    # root may be the UniAttackData folder itself: paths are then relative to it
    inner = READERS["uniattack"](tmp_path / "UniAttackData")
    assert inner["path"].str.startswith("Data/").all()
    outer = READERS["uniattack"](tmp_path)
    assert sorted(inner["video_id"]) == sorted(outer["video_id"])
    assert "uniattack/Data/DaGAN/CA-001/0001" in set(outer["video_id"])


def test_uniattack_unknown_label_and_missing_protocol(tmp_path):
    build_uniattack_research(tmp_path)
    list_path = tmp_path / "UniAttackData/protocol/UniAttackData@p1_image_dev.txt"
    write_text(list_path, list_path.read_text() + "UniAttackData/Data/simswap/EA-002/0001.jpg 4")
    with pytest.raises(LabelValueError, match=r"p1_image_dev.txt, line 3: label '4'"):
        READERS["uniattack"](tmp_path)
    with pytest.raises(MissingLayoutFileError, match=r"UniAttackData@p1.3_image_train.txt"):
        READERS["uniattack"](tmp_path, protocol="p1.3")


def test_uniattack_repeated_lines_are_kept_once_and_counted(tmp_path):
    # The released P2.1 lists repeat lines (6 in train, 1 in dev): same image, split and label.
    counts = build_uniattack_research(tmp_path, protocol="p2.1", repeats={"train": 3, "dev": 1})
    frame = READERS["uniattack"](tmp_path, protocol="p2.1")
    assert frame["split"].value_counts().to_dict() == {
        "train": counts["train"],
        "val": counts["dev"],
        "test": counts["test"],
    }
    report = frame.attrs["reader_report"]
    assert report["repeated_list_lines"] == 4
    by_list = report["repeated_lines_by_list"]
    assert by_list["UniAttackData@p2.1_image_train.txt"] == {"count": 3, "lines": [6, 7, 8]}
    assert by_list["UniAttackData@p2.1_image_dev.txt"] == {"count": 1, "lines": [3]}
    # the count survives the index cache (sidecar), on the first build and on a cache hit
    from datamodules.index import build_index

    for _ in range(2):
        indexed = build_index("uniattack", tmp_path, tmp_path / "cache", protocol="p2.1")
        assert len(indexed) == len(frame)
        assert indexed.attrs["reader_report"]["repeated_list_lines"] == 4
    sidecar = json.loads(next((tmp_path / "cache").glob("uniattack-*.json")).read_text())
    assert sidecar["reader_report"]["repeated_list_lines"] == 4
    # a list without repeats reports nothing
    assert "reader_report" not in READERS["uniattack"](tmp_path, protocol="p2.1", unit="video").attrs


def test_uniattack_path_in_two_splits_or_with_two_labels_names_lists_and_lines(tmp_path):
    build_uniattack_research(tmp_path)
    protocol = tmp_path / "UniAttackData/protocol"
    leaked = "UniAttackData/Data/live/central-asia/CA-001/real.rssdk/color/0001.jpg"
    test_list = protocol / "UniAttackData@p1_image_test.txt"
    write_text(test_list, test_list.read_text() + f"{leaked} 0\n")
    with pytest.raises(
        DatasetLayoutError,
        match=r"two splits: 'UniAttackData@p1_image_train.txt' line 1 .*'UniAttackData@p1_image_test.txt' line 4",
    ):
        READERS["uniattack"](tmp_path)
    build_uniattack_research(tmp_path)  # rewrites the lists
    train_list = protocol / "UniAttackData@p1_image_train.txt"
    write_text(train_list, train_list.read_text() + f"{leaked} 1\n")
    with pytest.raises(DatasetLayoutError, match=r"two labels: .*_train.txt' line 1 .*_train.txt' line 6"):
        READERS["uniattack"](tmp_path)


def test_uniattack_challenge_release(tmp_path):
    counts = build_uniattack_challenge(tmp_path)
    with pytest.warns(UserWarning, match="test labels were not published"):
        frame = READERS["uniattack"](tmp_path, release="challenge")
    assert_contract(frame, tmp_path)
    assert frame["split"].value_counts().to_dict() == {"train": counts["train"], "val": counts["val"]}
    assert set(frame["type"]) == {"live", "attack"}
    assert frame["path"].str.startswith("phase1/").all()
    build_uniattack_challenge(tmp_path, with_test_labels=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = READERS["uniattack"](tmp_path, release="challenge")
    assert (frame["split"] == "test").sum() == counts["test"]
    assert frame.loc[frame["split"] == "test", "path"].str.startswith("phase2/").all()


# ---------------------------------------------------------------- JFSFDB


ROLES = {
    "SiW_train": "train",
    "FF_train": "train",
    "SiW_test": "intra_test",
    "MSU_test": "cross_test",
    "CelebDF_test.txt": "cross_test",
}


def test_jfsfdb_flips_labels_and_assigns_roles(tmp_path):
    lists_dir = build_jfsfdb(tmp_path)
    frame = READERS["jfsfdb"](tmp_path, lists_dir="lists", roles=ROLES)
    assert_contract(frame, tmp_path)
    assert len(frame) == sum(len(entries) for entries in JFSFDB_LISTS.values())
    by_path = frame.set_index("path")
    assert by_path.loc["SiW/live/001-1", "label"] == 0  # list says 1 = real
    assert by_path.loc["SiW/spoof/001-2", "label"] == 1
    assert by_path.loc["SiW/live/001-1", "type"] == "live"
    assert by_path.loc["FF/fake/000_003", "type"] == "forgery"
    assert by_path.loc["MSU/live/real_client001", "role"] == "cross_test"
    assert by_path.loc["SiW/live/009-1", "split"] == "test"
    assert set(frame["domain"]) == {"siw", "ffpp", "msu", "celebdf"}  # source dataset of each path
    assert (frame["media"] == "frames").all()
    # an absolute lists_dir works as well, and domains can be named explicitly
    renamed = READERS["jfsfdb"](
        tmp_path, lists_dir=lists_dir, roles={"FF_train": "train"}, domains={"FF_train": "ffpp"}
    )
    assert set(renamed["domain"]) == {"ffpp"} and len(renamed) == 2


def test_jfsfdb_combined_list_gets_the_source_dataset_per_record(tmp_path):
    build_jfsfdb(tmp_path)
    entries = [("SiW/live/001-1", "1"), ("3DMAD/session1/attack_03", "0"), ("HKBU-MARs/real/01_01", "1"),
               ("SiW/spoof/001-2", "0"), ("SiW/spoof/001-2", "0"), ("misc/unknown_video", "0")]  # fmt: skip
    for video_dir, _ in entries:
        for k in range(1, 8):
            touch(tmp_path / video_dir / f"Face_{k:02d}.jpg")
    write_text(tmp_path / "lists/AntiSpoof_train.txt", "".join(f"{d} {v}\n" for d, v in entries))
    with pytest.warns(UserWarning, match=r"1 record\(s\); their domain is the list name: \{'AntiSpoof_train.txt': 1\}"):
        frame = READERS["jfsfdb"](tmp_path, lists_dir="lists", roles={"AntiSpoof_train": "train"})
    domains = frame.set_index("path")["domain"].to_dict()
    assert domains == {
        "SiW/live/001-1": "siw", "3DMAD/session1/attack_03": "3dmad", "HKBU-MARs/real/01_01": "hkbu",
        "SiW/spoof/001-2": "siw", "misc/unknown_video": "antispoof",
    }  # fmt: skip
    assert set(frame.loc[frame["domain"] != "antispoof", "task"]) == {"spoofing"}
    assert frame.attrs["reader_report"]["repeated_list_lines"] == 1  # SiW/spoof/001-2 twice
    # an explicit domain for the list still wins
    named = READERS["jfsfdb"](
        tmp_path, lists_dir="lists", roles={"AntiSpoof_train": "train"}, domains={"AntiSpoof_train": "pad"}
    )
    assert set(named["domain"]) == {"pad"}


def test_jfsfdb_errors(tmp_path):
    build_jfsfdb(tmp_path)
    with pytest.raises(MissingLayoutFileError, match=r"'Nope'.*SiW_train.txt"):
        READERS["jfsfdb"](tmp_path, lists_dir="lists", roles={"Nope": "train"})
    with pytest.raises(ValueError, match=r"unknown role.*intra_test"):
        READERS["jfsfdb"](tmp_path, lists_dir="lists", roles={"SiW_train": "testing"})
    write_text(tmp_path / "lists/Bad.txt", "SiW/live/001-1 1\nSiW/spoof/001-2 real\n")
    with pytest.raises(LabelValueError, match=r"Bad.txt, line 2: label 'real'"):
        READERS["jfsfdb"](tmp_path, lists_dir="lists", roles={"Bad": "train"})
    # the same video in a train and a test list is leakage
    write_text(tmp_path / "lists/Leak.txt", "SiW/live/001-1 1\n")
    with pytest.raises(DatasetLayoutError, match=r"two splits: 'SiW_train.txt' line 1 .*'Leak.txt' line 1"):
        READERS["jfsfdb"](
            tmp_path,
            lists_dir="lists",
            roles={"SiW_train": "train", "Leak": "intra_test"},
            domains={"Leak": "siw"},
        )


# ---------------------------------------------------------------- UADFV and DeeperForensics


@pytest.mark.parametrize(("nested", "capitalised"), [(False, False), (True, True)])
def test_uadfv_layouts(tmp_path, nested, capitalised):
    count = build_uadfv(tmp_path, nested=nested, capitalised=capitalised)
    frame = READERS["uadfv"](tmp_path)
    assert_contract(frame, tmp_path)
    assert len(frame) == 2 * count  # frames folders are not videos
    assert (frame["split"] == "test").all()
    assert frame.groupby("type")["label"].unique().map(list).to_dict() == {"fake": [1], "real": [0]}


def test_builders_can_write_decodable_videos(tmp_path):
    """The fixture option later stages (face preprocessing) use: real tiny MP4s, not placeholders."""
    import av

    build_uadfv(tmp_path, write_video=write_tiny_video)
    frame = READERS["uadfv"](tmp_path)
    with av.open(str(tmp_path / frame["path"].iloc[0])) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 4 and decoded[0].shape == (32, 32, 3)
    assert decoded[0].std() > 0  # a gradient, not a blank frame


def test_uadfv_missing_folder_and_empty(tmp_path):
    (tmp_path / "real").mkdir()
    with pytest.raises(MissingLayoutFileError, match=r"'real' and a 'fake' folder"):
        READERS["uadfv"](tmp_path)
    (tmp_path / "fake").mkdir()
    with pytest.raises(EmptyFolderError, match="real videos"):
        READERS["uadfv"](tmp_path)


def test_deeperforensics_fakes_and_targets(tmp_path):
    counts = build_deeperforensics(tmp_path)
    frame = READERS["deeperforensics"](tmp_path)
    assert_contract(frame, tmp_path)
    fakes, reals = frame[frame["label"] == 1], frame[frame["label"] == 0]
    assert fakes["split"].value_counts().to_dict() == counts
    assert reals["split"].value_counts().to_dict() == counts  # one target per fake here
    assert set(fakes["type"]) == {"DF-VAE"} and set(fakes["variant"]) == {"end_to_end"}
    assert frame.set_index("video_id").loc["deeperforensics/real/004", "split"] == "test"
    assert not frame["path"].str.startswith("source_videos").any()
    level = READERS["deeperforensics"](tmp_path, variant="end_to_end_level_1", include_real=False)
    assert (level["label"] == 1).all() and len(level) == sum(counts.values())


def test_deeperforensics_errors(tmp_path):
    build_deeperforensics(tmp_path, with_targets=False)
    with pytest.raises(MissingLayoutFileError, match=r"real \(target\) videos.*include_real=False"):
        READERS["deeperforensics"](tmp_path)
    with pytest.raises(
        MissingLayoutFileError, match=r"variant folder 'end_to_end_mix_9_distortions'.*end_to_end"
    ):
        READERS["deeperforensics"](tmp_path, variant="end_to_end_mix_9_distortions")
    (tmp_path / "lists/splits/val.txt").unlink()
    with pytest.raises(MissingLayoutFileError, match=r"val split list"):
        READERS["deeperforensics"](tmp_path, include_real=False)


# ---------------------------------------------------------------- shared helpers


def test_holdout_is_order_independent_and_sized():
    groups = [f"g{k}" for k in range(20)]
    first = holdout_groups(groups, 0.25, salt="x")
    assert first == holdout_groups(list(reversed(groups)), 0.25, salt="x")
    assert len(first) == 5
    assert holdout_groups(groups, 0.0, salt="x") == set()
    assert len(holdout_groups(["a", "b"], 0.1, salt="x")) == 1  # validation is never empty
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        holdout_groups(groups, 1.0, salt="x")
