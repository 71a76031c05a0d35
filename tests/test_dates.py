"""Calendar days from the free-form dates of articles (for date filters)."""

from __future__ import annotations

from datetime import date

import pytest

from retrieval.dates import iso_day, parse_day


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-11",
        "2024-02-11T09:30:00Z",
        "2024-02-11T09:30:00+01:00",
        "2024-02-11 09:30",
        "2024/2/11",
        "2024.02.11",
        "Sun, 11 Feb 2024 09:30:00 GMT",
        "11 February 2024",
        "11th of February, 2024",
        "February 11, 2024",
        "Feb. 11 2024",
        "Sunday, February 11th, 2024",
        "  11  feb  2024 ",
    ],
)
def test_the_ways_sources_write_a_day(text: str) -> None:
    assert parse_day(text) == date(2024, 2, 11)
    assert iso_day(text) == "2024-02-11"


@pytest.mark.parametrize(
    "text",
    [None, "", "2024", "February 2024", "03/04/2024", "2024-02-30", "yesterday", "31 Foo 2024"],
)
def test_no_single_certain_day_gives_none(text: str | None) -> None:
    assert parse_day(text) is None
    assert iso_day(text) is None
