"""Protocols as config: which named datasets (with split, types and domain name) are train,
validation and each test set. This module parses and checks that config; it never reads data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from common.choices import check_choice, check_known_keys
from datamodules.records import SPLITS


class ProtocolError(ValueError):
    """A protocol that names unknown datasets, splits or malformed items."""


RECORDS_DOMAIN = "records"


@dataclass(frozen=True)
class ProtocolItem:
    """One (dataset, split) slice, optionally restricted to some fine-grained types.

    ``domain`` is the domain name the records get (default: the dataset name), so the same
    dataset can stand for one domain in one protocol and be split into several in another;
    ``records`` keeps each record's own ``domain`` column (a joint dataset such as JFSFDB whose
    reader names the source dataset of every video).
    """

    dataset: str
    split: str
    types: tuple[str, ...] | None = None
    exclude_types: tuple[str, ...] = ()
    domain: str | None = None

    @property
    def domain_name(self) -> str:
        return self.domain or self.dataset


@dataclass(frozen=True)
class Protocol:
    name: str
    train: tuple[ProtocolItem, ...]
    val: tuple[ProtocolItem, ...]
    test: dict[str, tuple[ProtocolItem, ...]] = field(default_factory=dict)

    def datasets(self) -> set[str]:
        items = [*self.train, *self.val, *(i for group in self.test.values() for i in group)]
        return {item.dataset for item in items}


def _item(raw: object, where: str) -> ProtocolItem:
    if isinstance(raw, str):
        raise ProtocolError(f"{where}: expected a mapping with 'dataset' and 'split', got the string {raw!r}")
    if not isinstance(raw, Mapping):
        raise ProtocolError(
            f"{where}: expected a mapping with 'dataset' and 'split', got {type(raw).__name__}"
        )
    check_known_keys(where, raw, ("dataset", "split", "types", "exclude_types", "domain"), error=ProtocolError)
    if "dataset" not in raw or "split" not in raw:
        raise ProtocolError(f"{where}: each item needs 'dataset' and 'split', got {dict(raw)}")
    split = str(raw["split"])
    check_choice(f"{where}: split", split, SPLITS, error=ProtocolError)
    types = raw.get("types")
    return ProtocolItem(
        dataset=str(raw["dataset"]),
        split=split,
        types=tuple(str(t) for t in types) if types is not None else None,
        exclude_types=tuple(str(t) for t in raw.get("exclude_types") or ()),
        domain=str(raw["domain"]) if raw.get("domain") else None,
    )


def _items(raw: object, where: str) -> tuple[ProtocolItem, ...]:
    if isinstance(raw, Mapping):
        return (_item(raw, where),)
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        return tuple(_item(r, f"{where}[{i}]") for i, r in enumerate(raw))
    raise ProtocolError(f"{where}: expected an item or a list of items, got {raw!r}")


def parse_protocol(raw: Mapping, known_datasets: Sequence[str]) -> Protocol:
    """Parse a protocol mapping (``conf/protocol/*.yaml``) and check every dataset name exists."""
    name = str(raw.get("name", "<unnamed protocol>"))
    for key in ("train", "val"):
        if not raw.get(key):
            raise ProtocolError(
                f"protocol {name!r}: '{key}' is empty; a protocol needs train and validation data"
            )
    test_raw = raw.get("test") or {}
    if not isinstance(test_raw, Mapping):
        raise ProtocolError(f"protocol {name!r}: 'test' must map test-set names to items, got {test_raw!r}")
    protocol = Protocol(
        name=name,
        train=_items(raw["train"], f"protocol {name!r} train"),
        val=_items(raw["val"], f"protocol {name!r} val"),
        test={str(k): _items(v, f"protocol {name!r} test.{k}") for k, v in test_raw.items()},
    )
    unknown = sorted(protocol.datasets() - set(known_datasets))
    if unknown:
        raise ProtocolError(
            f"protocol {name!r} names unknown dataset(s) {unknown}; datasets defined in data.datasets: "
            f"{sorted(known_datasets)}"
        )
    return protocol
