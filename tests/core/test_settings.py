"""The settings comparison that resumable jobs use to refuse a folder kept for other settings."""

from __future__ import annotations

from cortico.settings import as_saved, settings_differences


def test_equal_settings_have_no_differences_even_with_tuples() -> None:
    wanted = {"tasks": ("reach", "push"), "steps": 10}
    assert settings_differences(as_saved(wanted), wanted) == []


def test_each_differing_field_is_named_with_both_values() -> None:
    saved = {"steps": 10, "lr": 0.001, "seed": 0}
    assert settings_differences(saved, {"steps": 10, "lr": 0.002, "seed": 1}) == [
        "lr: 0.001 there, 0.002 here",
        "seed: 0 there, 1 here",
    ]


def test_fields_that_may_change_are_not_differences() -> None:
    assert settings_differences({"steps": 10, "seed": 0}, {"steps": 20, "seed": 0}, may_change=["steps"]) == []


def test_a_field_saved_before_it_existed_reads_as_its_default() -> None:
    saved = {"steps": 10}
    assert settings_differences(saved, {"steps": 10, "balance": True}, defaults={"balance": True}) == []
    assert settings_differences(saved, {"steps": 10, "balance": False}, defaults={"balance": True}) == [
        "balance: True there, False here"
    ]
    assert settings_differences(saved, {"steps": 10, "balance": True}) == ["balance: (not set) there, True here"]


def test_saved_fields_the_settings_no_longer_have_are_ignored() -> None:
    assert settings_differences({"steps": 10, "retired": 3}, {"steps": 10}) == []
