"""Calendar days from the free-form dates that articles carry, for date filters.

Sources write dates in many ways ("2024-02-11", "2024-02-11T09:30:00Z",
"Sun, 11 Feb 2024 09:30:00 GMT", "11 February 2024", "February 11, 2024"). The shown
date stays as the source wrote it; filters compare the calendar day parsed from it.
A date that names no single day ("2024", "March 2024") or could be read two ways
("03/04/2024") gives None, and a date filter leaves such articles out.
"""

from __future__ import annotations

import email.utils
import functools
import re
from datetime import date, datetime

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = "(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4})"
# An optional weekday, then "11 February 2024" or "February 11, 2024"; a time may follow.
_WEEKDAY = r"(?:[a-z]+\.?,?\s+)?"
_NAMED = [
    re.compile(rf"^{_WEEKDAY}{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}\b"),
    re.compile(rf"^{_WEEKDAY}{_MONTH}\s+{_DAY},?\s+{_YEAR}\b"),
]
# Year first with any of - / . between the parts: never ambiguous.
_YEAR_FIRST = re.compile(r"^(?P<year>\d{4})[-/.](?P<month>\d{1,2})[-/.](?P<day>\d{1,2})(?:\b|T)")


@functools.lru_cache(maxsize=4096)
def parse_day(text: str | None) -> date | None:
    """The calendar day ``text`` names, or None when it names no single, certain day."""
    if not text:
        return None
    text = " ".join(text.split())
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        pass
    if match := _YEAR_FIRST.match(text):
        return _day(match["year"], match["month"], match["day"])
    lowered = text.lower()
    for pattern in _NAMED:
        if match := pattern.match(lowered):
            return _day(match["year"], str(_MONTHS[match["month"]]), match["day"])
    try:  # RFC 2822, as in RSS feeds and e-mail
        return email.utils.parsedate_to_datetime(text).date()
    except (TypeError, ValueError, IndexError):
        return None


def iso_day(text: str | None) -> str | None:
    """``parse_day`` as an ISO string (YYYY-MM-DD), which sorts like the dates it names."""
    day = parse_day(text)
    return day.isoformat() if day else None


def _day(year: str, month: str, day: str) -> date | None:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None
