"""Protocols are config; bad names stop with a message naming what was asked and what exists."""

from __future__ import annotations

import pytest

from datamodules.protocol import ProtocolError, parse_protocol

KNOWN = ["ffpp_c23", "celebdf_v2", "dfdc"]


def test_parse_protocol_items_and_domains():
    p = parse_protocol(
        {
            "name": "x",
            "train": [{"dataset": "ffpp_c23", "split": "train", "types": ["real", "Deepfakes"], "domain": "ff"}],
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
        parse_protocol({"name": "x", "train": [{"dataset": "celebdf_v3", "split": "train"}], "val": [{"dataset": "dfdc", "split": "val"}]}, KNOWN)
    assert "celebdf_v3" in str(err.value) and "ffpp_c23" in str(err.value)


@pytest.mark.parametrize(
    "train, match",
    [
        ([{"dataset": "dfdc", "split": "training"}], "split 'training'"),
        ([{"dataset": "dfdc"}], "needs 'dataset' and 'split'"),
        ([{"dataset": "dfdc", "split": "train", "typo": 1}], "unknown key"),
        (None, "'train' is empty"),
    ],
)
def test_malformed_items(train, match):
    with pytest.raises(ProtocolError, match=match):
        parse_protocol({"name": "x", "train": train, "val": [{"dataset": "dfdc", "split": "val"}]}, KNOWN)
