"""Batch questions for `citebot ask --batch`: a JSON Lines file, one question a line; a bad
line gets an error of its own and the others are still answered."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import CitebotError
from .text import printable


@dataclass(frozen=True)
class BatchLine:
    """A line of a batch file: its question, or why it has none."""

    number: int
    question: str | None = None
    error: str | None = None


def read_batch(path: Path) -> list[BatchLine]:
    """The non-blank lines of a JSON Lines file of questions, in order."""
    try:
        # utf-8-sig: a byte order mark is not part of the first line.
        lines = path.read_text(encoding="utf-8-sig").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise CitebotError(f"cannot read {path}: {exc}") from None
    return [_batch_line(n, line) for n, line in enumerate(lines, start=1) if line.strip()]


def _batch_line(number: int, line: str) -> BatchLine:
    try:
        record = json.loads(line)
    except RecursionError:
        return BatchLine(number, error="not a question: nested too deeply")
    except ValueError:  # not JSON, or a number too long to convert
        return BatchLine(number, error='not JSON: each line must be {"question": ...}')
    question = record.get("question") if isinstance(record, dict) else None
    if not isinstance(question, str):
        return BatchLine(number, error='line has no "question" string')
    if question != printable(question):
        return BatchLine(number, error="the question is not valid Unicode text")
    return BatchLine(number, question)
