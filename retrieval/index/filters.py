"""Search filters as SQL over a local store's articles table: source, author and dates.

Also the source completions a filter suggests (folders, files, sources) as a user types.
"""

from __future__ import annotations

import re

from ..records import SearchFilter

# What may follow a source filter's value in the source of an article it matches.
SOURCE_SEPARATORS = "/#:"


def like_escaped(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern whose escape character is a backslash."""
    return re.sub(r"([%_\\])", r"\\\1", text)


def source_option(source: str, typed: int) -> str:
    """What a source suggests after its first ``typed`` characters: the next folder, or the file.

    Like a shell's completion: ``business/`` for ``business/001.txt`` before the slash, and
    ``feed.json`` for its articles ``feed.json#1`` and ``feed.json#2`` (which the source filter
    ``feed.json`` matches together). A URL's ``//`` does not end a folder.
    """
    rest = source[typed:]
    slash = rest.find("/")
    while slash >= 0 and rest[slash + 1 : slash + 2] == "/":
        slash = rest.find("/", slash + 2)
    if slash >= 0:
        return source[: typed + slash + 1]
    whole = re.sub(r"[#:]\d+$", "", source)
    return whole if len(whole) >= typed else source


def filter_condition(filters: SearchFilter, day: str) -> tuple[str, list[object]]:
    """An SQL condition on the articles table (as ``a``) that admits what ``filters`` do, and
    its values; ``day``: the SQL for an article's calendar day."""
    parts: list[str] = []
    values: list[object] = []
    if filters.source:
        value = like_escaped(filters.source)
        # The source itself, or what lies under it as a folder ("/"), a file of several
        # articles ("#2", ":14") or a site; a value ending in one of those is a prefix.
        if filters.source[-1] in SOURCE_SEPARATORS:
            patterns = [value + "%"]
        else:
            patterns = [value, *(value + mark + "%" for mark in SOURCE_SEPARATORS)]
        parts.append("(" + " OR ".join("a.source LIKE ? ESCAPE '\\'" for _ in patterns) + ")")
        values += patterns
    if filters.author:
        parts.append("a.author LIKE ? ESCAPE '\\'")
        values.append(f"%{like_escaped(filters.author)}%")
    if filters.after:
        parts.append(f"{day} >= ?")
        values.append(filters.after.isoformat())
    if filters.before:
        parts.append(f"{day} <= ?")
        values.append(filters.before.isoformat())
    return " AND ".join(parts) or "1", values
