"""One message for a bad choice or an unknown key (common/choices.py): the key, the value, what is allowed."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from common.choices import check_choice, check_known_keys, settings_from_mapping


class ConfigError(ValueError):
    pass


def test_check_choice_names_the_key_the_value_and_the_allowed_values():
    assert check_choice("fusion", "max", ("weighted", "max")) == "max"
    with pytest.raises(ValueError, match=r"^DFMoE: fusion='avg': expected one of \['weighted', 'max'\]$"):
        check_choice("DFMoE: fusion", "avg", ("weighted", "max"))
    with pytest.raises(ConfigError, match=r"^balance='x': expected one of \['none', 'oversample'\] \(a note\)$"):
        check_choice("balance", "x", {"oversample", "none"}, error=ConfigError, note="a note")  # sets sorted


def test_unknown_keys_are_listed_with_the_known_ones():
    check_known_keys("threads", {"intra_op": 1}, ("intra_op", "inter_op"))
    with pytest.raises(ValueError, match=r"^threads: unknown key\(s\) \['workers'\]; known: \['inter_op', 'intra_op'\]$"):
        check_known_keys("threads", {"workers": 2}, ("intra_op", "inter_op"))


def test_settings_from_mapping_builds_the_dataclass_or_names_the_unknown_key():
    @dataclass(frozen=True)
    class Settings:
        a: int = 1
        b: str = "x"

    assert settings_from_mapping(Settings, {"b": "y"}, "s") == Settings(1, "y")
    assert settings_from_mapping(Settings, None, "s") == Settings()
    with pytest.raises(ValueError, match=r"detector.s: unknown key\(s\) \['c'\]; known: \['a', 'b'\]"):
        settings_from_mapping(Settings, {"c": 0}, "detector.s")

