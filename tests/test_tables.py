"""The table registry as a package: every table a module of sweeps/tables/ defines is collected
(no hand-written list to forget), each lives in its paper's module, and a row that names a sweep's
knob set reads the set's values from conf/sweep/<sweep>.yaml and is refused when the sweep lacks it."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import pytest
from conftest import REPO

import sweeps.tables as tables
from sweeps.tables import TABLES, Column, Measure, PaperTable, Row, ablation, collect_tables, knob_sets

PACKAGE = REPO / "sweeps" / "tables"


def defined_tables(path: Path) -> dict[str, str]:
    """``{table name: variable}`` of the ``X = PaperTable(name=..., ...)`` assignments at a module's top level."""
    found = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "PaperTable":
            name = next(k.value.value for k in value.keywords if k.arg == "name")
            found[name] = node.targets[0].id if isinstance(node, ast.Assign) else node.target.id
    return found


def test_every_table_defined_in_the_package_is_collected_from_its_papers_module():
    by_module = {path.stem: defined_tables(path) for path in sorted(PACKAGE.glob("*.py"))}
    defined = {name for names in by_module.values() for name in names}
    assert defined == set(TABLES), (sorted(defined - set(TABLES)), sorted(set(TABLES) - defined))
    for module, names in by_module.items():
        for name in names:
            assert TABLES[name].paper == module, f"{name} (paper {TABLES[name].paper}) is defined in {module}.py"


def toy_table(name: str) -> PaperTable:
    column = Column("auc", "AUC", Measure("auc", ("ffpp",)))
    return PaperTable(name, "toy", "Table 1", "toy", (column,), (Row("r", "r", None, {}),), "percent", 2, "x")


def test_collect_tables_registers_a_new_modules_tables_once_and_refuses_two_with_one_name():
    new = types.ModuleType("sweeps.tables.toy")
    new.TOY_TABLE1, new.not_a_table = toy_table("toy_table1"), "x"
    again = types.ModuleType("sweeps.tables.toy_reuse")
    again.TOY_TABLE1 = new.TOY_TABLE1  # imported elsewhere: the same table, counted once
    collected = collect_tables([*tables.paper_modules(), new, again])
    assert collected["toy_table1"] is new.TOY_TABLE1 and len(collected) == len(TABLES) + 1
    clash = types.ModuleType("sweeps.tables.clash")
    clash.OTHER = toy_table("toy_table1")
    with pytest.raises(ValueError, match="two tables named 'toy_table1'"):
        collect_tables([new, clash])


def test_a_row_naming_a_knob_set_reads_its_values_from_the_sweep_yaml():
    assert ablation("dfmoe_losses", {"dfmoe_loss_set": "B"}) == {
        "sweep_name": "dfmoe_losses",
        "detector.aux_loss_weights.expert_param_penalty": 0.1,
        "detector.aux_loss_weights.expert_entropy": 0.0,
        "detector.aux_loss_weights.augmentation_consistency": 0.0,
    }
    assert ablation("dfmoe_modules", {"dfmoe_modules": "augmentation_only"}) == {
        "sweep_name": "dfmoe_modules",
        "detector.num_experts": 1,
        "detector.top_k": 1,
        "detector.augmentation": True,
    }
    # a choice interpolated directly (dtn_mas: false -> both MAS switches), other keys kept as given
    assert ablation("dtn_mas", {"experiment": "dtn_self_distill", "dtn_mas": False}) == {
        "sweep_name": "dtn_mas",
        "experiment": "dtn_self_distill",
        "detector.moe_expert_scaling": False,
        "detector.multi_attention_scaling": False,
    }
    row = next(r for r in TABLES["gmdf_table5"].rows if r.key == "gmdf")
    assert row.match == ablation("gmdf_components", {"gmdf_components": "VII"})
    assert row.match["detector.components.meta_moe"] is True


def test_a_row_naming_a_set_the_sweep_lacks_is_refused(tmp_path, monkeypatch):
    with pytest.raises(KeyError, match=r"conf/sweep/dfmoe_losses.yaml: dfmoe_loss_set='E' is not swept"):
        ablation("dfmoe_losses", {"dfmoe_loss_set": "E"})
    # swept but missing from the sets (a YAML edited on one side only)
    (tmp_path / "toy.yaml").write_text(
        "toy_set: A\ntoy_sets:\n  A: {w: 0.1}\ndetector:\n  weights: ${toy_sets.${toy_set}}\n"
        "hydra:\n  sweeper:\n    params:\n      toy_set: A,B\n"
    )
    monkeypatch.setattr(knob_sets, "SWEEP_CONF", tmp_path)
    knob_sets._sweep.cache_clear()
    try:
        assert ablation("toy", {"toy_set": "A"}) == {"sweep_name": "toy", "detector.weights.w": 0.1}
        with pytest.raises(KeyError, match=r"toy_set='B' names no set of toy_sets; its sets are \['A'\]"):
            ablation("toy", {"toy_set": "B"})
    finally:
        knob_sets._sweep.cache_clear()
