"""The knob values behind a sweep's named choices, read from ``conf/sweep/<sweep>.yaml``.

A sweep that varies several knobs together names each combination once in its YAML and picks one by
a choice key (``dfmoe_loss_set: B`` selects ``dfmoe_loss_sets.B``; the detector's knobs interpolate
``${dfmoe_loss_sets.${dfmoe_loss_set}}``); a sweep that varies one value under a name of its own
interpolates it directly (``dtn_mas: true`` -> ``detector.moe_expert_scaling: ${dtn_mas}``). A table
row names the choice, and :func:`expand_choices` replaces it by the knob values the jobs' configs hold
(dotted keys, as the row matched them before), so every knob value is written once, in the YAML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

SWEEP_CONF = Path(__file__).resolve().parents[2] / "conf" / "sweep"
"""Where the sweep configs live (``conf/sweep``)."""

# ${<sets>.${<choice>}} or ${<sets>.${<choice>}.<field>}: a knob read from the chosen set.
_FROM_SET = re.compile(r"^\$\{(?P<sets>\w+)\.\$\{(?P<choice>\w+)\}(?:\.(?P<field>[\w.]+))?\}$")
# ${<choice>}: a knob that takes the choice's value itself.
_DIRECT = re.compile(r"^\$\{(?P<choice>\w+)\}$")
_NOT_KNOBS = ("defaults", "hydra")


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{dotted key: value}`` of a nested mapping's leaves."""
    if not isinstance(node, Mapping):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


@cache
def _sweep(sweep: str) -> tuple[dict[str, Any], dict[str, list[tuple[str, str | None, str | None]]]]:
    """The raw config of ``sweep`` and, per choice key, the knobs it sets: ``(knob, sets, field)``
    (``sets`` None: the knob takes the choice's value)."""
    path = SWEEP_CONF / f"{sweep}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"sweep {sweep!r}: no {path}")
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    knobs: dict[str, list[tuple[str, str | None, str | None]]] = {}
    for key, value in raw.items():
        if key in _NOT_KNOBS:
            continue
        for knob, leaf in _leaves(value, key).items():
            if not isinstance(leaf, str):
                continue
            if found := _FROM_SET.match(leaf):
                knobs.setdefault(found["choice"], []).append((knob, found["sets"], found["field"]))
            elif (found := _DIRECT.match(leaf)) and found["choice"] in raw:
                knobs.setdefault(found["choice"], []).append((knob, None, None))
    return raw, knobs


def choice_keys(sweep: str) -> tuple[str, ...]:
    """The keys of ``conf/sweep/<sweep>.yaml`` that choose knob values (``dfmoe_loss_set``, ``dtn_mas``)."""
    return tuple(_sweep(sweep)[1])


def _yaml_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def choice_knobs(sweep: str, choice: str, value: Any) -> dict[str, Any]:
    """The knob values (dotted config keys) that ``<choice>: <value>`` gives a job of ``sweep``.

    Raises a KeyError naming the file when the sweep has no such choice, or when ``value`` is not one
    its sweeper runs (or, for a named set, not one of its sets)."""
    raw, knobs = _sweep(sweep)
    path = f"conf/sweep/{sweep}.yaml"
    if choice not in knobs:
        raise KeyError(f"{path}: {choice!r} chooses no knobs; its choice keys are {sorted(knobs)}")
    params = ((raw.get("hydra") or {}).get("sweeper") or {}).get("params") or {}
    swept = [v.strip() for v in str(params.get(choice, "")).split(",")]
    if _yaml_text(value) not in swept:
        raise KeyError(f"{path}: {choice}={value!r} is not swept; hydra.sweeper.params.{choice} runs {swept}")
    out: dict[str, Any] = {}
    for knob, sets, field in knobs[choice]:
        if sets is None:
            out[knob] = value
            continue
        options = raw[sets]
        if value not in options:
            raise KeyError(f"{path}: {choice}={value!r} names no set of {sets}; its sets are {list(options)}")
        chosen = options[value]
        for part in field.split(".") if field else ():
            chosen = chosen[part]
        out.update(_leaves(chosen, knob))
    return out


def expand_choices(sweep: str, knobs: Mapping[str, Any]) -> dict[str, Any]:
    """``knobs`` with every choice key of ``sweep`` (``dfmoe_loss_set: B``) replaced by the knob values
    it selects in ``conf/sweep/<sweep>.yaml``; other keys are kept as given."""
    out: dict[str, Any] = {}
    for key, value in knobs.items():
        if "." not in key and key in choice_keys(sweep):
            out.update(choice_knobs(sweep, key, value))
        else:
            out[key] = value
    return out
