"""One check for "this setting must be one of these values" and one for "these keys must be known",
so every layer refuses a bad config value with the same message: the key, the value, what is allowed."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any


def allowed_values(allowed: Collection[Any]) -> list[Any]:
    """The allowed values as a list in a stable order: sets and mappings sorted, sequences as written."""
    if isinstance(allowed, (set, frozenset, Mapping)):
        return sorted(allowed, key=str)
    return list(allowed)


def check_choice(key: str, value: Any, allowed: Collection[Any], *, error: type[Exception] = ValueError, note: str = "") -> Any:
    """``value`` when it is one of ``allowed``; else ``error("<key>=<value!r>: expected one of [...] (<note>)")``."""
    if value not in allowed:
        raise error(f"{key}={value!r}: expected one of {allowed_values(allowed)}" + (f" ({note})" if note else ""))
    return value


def check_known_keys(where: str, raw: Mapping[str, Any] | Iterable[str], known: Iterable[str], *,
                     error: type[Exception] = ValueError) -> None:
    """Refuse keys of ``raw`` outside ``known``: ``<where>: unknown key(s) [...]; known: [...]``."""
    known = set(known)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise error(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")


def settings_from_mapping(cls: type, raw: Mapping[str, Any] | None, where: str, *, error: type[Exception] = ValueError) -> Any:
    """The dataclass ``cls`` built from a config mapping whose keys must be its fields (the rest default)."""
    from dataclasses import fields

    raw = dict(raw or {})
    check_known_keys(where, raw, (f.name for f in fields(cls)), error=error)
    return cls(**raw)
