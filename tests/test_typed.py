"""One checker for values read from files: the TOML config and the index manifest say the
same thing of the same mistake, each in its own words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.config import load_settings
from retrieval.errors import ConfigError, IndexDamagedError
from retrieval.index import read_manifest
from retrieval.records import location_label, paragraphs_label
from retrieval.typed import WrongType, checked


@pytest.mark.parametrize(
    ("value", "hint", "expected"),
    [
        (3, float, 3.0),
        (None, int | None, None),
        (["a", "b"], tuple[str, ...], ("a", "b")),
        ({"k": 1}, dict[str, int], {"k": 1}),
    ],
)
def test_values_that_fit(value: object, hint: object, expected: object) -> None:
    assert checked(value, hint) == expected


@pytest.mark.parametrize(
    ("value", "hint", "expected", "in_items"),
    [
        (True, int, "a whole number", False),  # a bool is not a number
        ("3", float, "a number", False),
        ("x", int | None, "a whole number", False),
        ("a", tuple[str, ...], "a list", False),
        (["a", 1], tuple[str, ...], "a string", True),
    ],
)
def test_values_that_do_not(value: object, hint: object, expected: str, in_items: bool) -> None:
    with pytest.raises(WrongType) as caught:
        checked(value, hint)
    assert (caught.value.expected, caught.value.in_items) == (expected, in_items)


def test_config_and_manifest_word_one_check(tmp_path: Path) -> None:
    config = tmp_path / "citebot.toml"
    config.write_text("[search]\nk = true\n")
    with pytest.raises(ConfigError, match=r"^\[search\] k must be a whole number$"):
        load_settings(config)
    config.write_text('sources = ["a", 1]\n')
    with pytest.raises(ConfigError, match=r"^sources items must be a string$"):
        load_settings(config)

    manifest = {
        "format": "citebot-index",
        "schema_version": 1,
        "model": "m",
        "dimension": True,
        "chunking": {},
        "generation": 1,
        "created": "",
        "updated": "",
    }
    (tmp_path / "index.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexDamagedError, match="'dimension' should be a whole number, not true"):
        read_manifest(tmp_path)


def test_one_spelling_of_a_paragraph_reference() -> None:
    assert paragraphs_label(3, 3) == "¶3"
    assert paragraphs_label(3, 4) == "¶3–4"
    assert location_label((5, 5), None) == "¶5"
    assert location_label((5, 7), (2, 3)) == "pp. 2–3, ¶5–7"
