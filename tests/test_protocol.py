"""Protocols are config; bad names stop with a message naming what was asked and what exists; one
prepared folder serves several named datasets through ``where`` (JFSFDB intra / cross test lists)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from datamodules.protocol import ProtocolError, parse_protocol
from datamodules.sources import load_dataset_records, select_where

KNOWN = ["ffpp_c23", "celebdf_v2", "dfdc"]


def test_parse_protocol_items_and_domains():
    p = parse_protocol(
        {
            "name": "x",
            "train": [
                {"dataset": "ffpp_c23", "split": "train", "types": ["real", "Deepfakes"], "domain": "ff"}
            ],
            "val": {"dataset": "ffpp_c23", "split": "val"},
            "test": {"cdf": {"dataset": "celebdf_v2", "split": "test"}},
        },
        KNOWN,
    )
    assert p.train[0].types == ("real", "Deepfakes") and p.train[0].domain_name == "ff"
    assert p.val[0].domain_name == "ffpp_c23"
    assert list(p.test) == ["cdf"]


def test_unknown_dataset_names_it_and_lists_known():
    with pytest.raises(ProtocolError) as err:
        parse_protocol(
            {
                "name": "x",
                "train": [{"dataset": "celebdf_v3", "split": "train"}],
                "val": [{"dataset": "dfdc", "split": "val"}],
            },
            KNOWN,
        )
    assert "celebdf_v3" in str(err.value) and "ffpp_c23" in str(err.value)


@pytest.mark.parametrize(
    "train, match",
    [
        ([{"dataset": "dfdc", "split": "training"}], r"split='training': expected one of \['train', 'val', 'test'\]"),
        ([{"dataset": "dfdc"}], "needs 'dataset' and 'split'"),
        ([{"dataset": "dfdc", "split": "train", "typo": 1}], "unknown key"),
        (None, "'train' is empty"),
    ],
)
def test_malformed_items(train, match):
    with pytest.raises(ProtocolError, match=match):
        parse_protocol({"name": "x", "train": train, "val": [{"dataset": "dfdc", "split": "val"}]}, KNOWN)


# ---------------------------------------------------------------- one prepared folder, several names


def _prepared_jfsfdb(root: Path) -> pd.DataFrame:
    """A prepared JFSFDB folder: 2 videos x 2 crops per role, the reader's `role` column kept."""
    rows = []
    for role, split, domain in [
        ("train", "train", "siw"),
        ("train", "train", "ffpp"),
        ("val", "val", "siw"),
        ("intra_test", "test", "siw"),
        ("cross_test", "test", "msu"),
    ]:
        for video in range(2):
            for frame in range(2):
                path = f"crops/jfsfdb/{domain}/{role}/{video}/{frame:06d}.png"
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (8, 8)).save(root / path)
                rows.append(
                    {
                        "path": path,
                        "label": video,
                        "domain": domain,
                        "type": "spoof" if video else "live",
                        "video_id": f"jfsfdb/{domain}/{role}/{video}",
                        "split": split,
                        "media": "image",
                        "role": role,
                        "frame_index": frame,
                    }
                )
    index = pd.DataFrame(rows)
    index.to_csv(root / "index.csv", index=False)
    return index


def test_jfsfdb_intra_and_cross_test_sets_follow_the_role_column(tmp_path):
    from conftest import compose
    from hydra.utils import instantiate

    index = _prepared_jfsfdb(tmp_path / "prepared" / "jfsfdb")
    cfg = compose(["protocol=jfsfdb_joint", f"paths.prepared_dir={tmp_path / 'prepared'}"], tmp_path)
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    videos = {s.name: set(s.frames["video_id"]) for s in datamodule.test_sets}
    by_role = index.groupby("role")["video_id"].agg(set)
    assert videos["jfsfdb_intra"] == by_role["intra_test"]
    assert videos["jfsfdb_cross"] == by_role["cross_test"]
    assert videos["jfsfdb"] == by_role["intra_test"] | by_role["cross_test"]
    assert set(datamodule.train_table["video_id"]) == by_role["train"]
    # `domain: records`: the training domains are the JFSFDB sources the reader named, not one "jfsfdb"
    assert datamodule.domain_names == ["siw", "ffpp"]
    assert set(datamodule.train_table["domain"]) == {"siw", "ffpp"}


def test_where_errors_name_the_column_and_the_values(tmp_path):
    index = _prepared_jfsfdb(tmp_path)
    assert len(select_where(index, {"role": ["intra_test", "cross_test"]}, "x")) == 8
    assert select_where(index, None, "x") is index
    with pytest.raises(ValueError, match=r"column 'task'.*'role'"):
        select_where(index, {"task": "spoofing"}, "dataset 'jfsfdb_intra'")
    with pytest.raises(ValueError, match=r"\['intra'\].*'intra_test'"):
        select_where(index, {"role": "intra"}, "dataset 'jfsfdb_intra'")
    with pytest.raises(ValueError, match="no row satisfies every condition"):
        select_where(index, {"role": "cross_test", "domain": "siw"}, "x")
    with pytest.raises(ValueError, match="must map column names"):
        select_where(index, ["role"], "x")
    records = load_dataset_records(
        "jfsfdb_cross", {"prepared": str(tmp_path), "where": {"role": "cross_test"}}, "prepared"
    )
    assert set(records["role"]) == {"cross_test"} and records["file"].map(lambda f: Path(f).is_file()).all()
