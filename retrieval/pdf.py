"""PDF documents (local files or fetched): their text page by page, in paragraphs.

PDFs store positioned lines, not paragraphs. A paragraph ends where the gap to the next
line is clearly wider than the page's usual line spacing, where the next line is
indented, or after a line that stops well short of the usual line length when it ends a
sentence (or the next line starts one). Lines that repeat at the top or bottom of most
pages (running heads, page numbers) are dropped. Each paragraph keeps its page number,
so a citation can name it.
"""

from __future__ import annotations

import io
import itertools
import logging
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

from .errors import LoadError
from .records import PARAGRAPH_SEPARATOR, Article
from .text import is_headline

logger = logging.getLogger(__name__)

# A line shorter than this share of the page's usual line length, ending a sentence, ends
# its paragraph.
SHORT_LINE = 0.8
# A gap this many times the usual line spacing separates paragraphs.
GAP = 1.4
# A line starting this far (PDF points) right of the page's left margin starts a paragraph.
INDENT = 8.0
_SENTENCE_END = '.!?:…"”’)'
_PAGE_NUMBER = re.compile(r"(?:page\s+)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?|[ivxlc]{1,6}", re.I)
# Titles that are a program's placeholder, not the document's.
_JUNK_TITLE = re.compile(r"^(?:untitled|microsoft word - .*|.*\.(?:docx?|pdf|tex|indd))$", re.I)


@dataclass(frozen=True)
class PdfText:
    title: str | None
    author: str | None
    date: str | None
    # (page number, paragraph) in reading order.
    paragraphs: list[tuple[int, str]]


def read_pdf(data: bytes) -> PdfText:
    """The text of a PDF by page, with its title, author and date when its metadata has them."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("the PDF is encrypted")
        pages = [_page_lines(page) for page in reader.pages]
        metadata = reader.metadata
    except LoadError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise LoadError(f"not a readable PDF: {exc}") from None
    except Exception as exc:  # pypdf raises many types on damaged files
        logger.debug("pypdf failed", exc_info=True)
        raise LoadError(f"not a readable PDF: {type(exc).__name__}: {exc}") from None
    running = _running_lines([[line.text for line in lines] for lines in pages])
    paragraphs = [
        (number, paragraph)
        for number, lines in enumerate(pages, start=1)
        for paragraph in _paragraphs([x for x in lines if _normal(x.text) not in running])
    ]
    if not paragraphs:
        raise LoadError("no text in the PDF (scanned pages need OCR first)")
    title = author = date = None
    if metadata is not None:
        title = _clean(metadata.title)
        author = _clean(metadata.author)
        try:
            created = metadata.creation_date
        except (ValueError, TypeError):
            created = None
        date = created.strftime("%Y-%m-%d") if created else None
    if title and _JUNK_TITLE.match(title):
        title = None
    return PdfText(title, author, date, paragraphs)


def pdf_article(
    data: bytes, *, article_id: str, source: str, fallback_title: str, url: str | None = None
) -> Article:
    """An article of a PDF: its paragraphs with their pages. The title is the metadata's,
    else a first paragraph that is a headline, else ``fallback_title``."""
    text = read_pdf(data)
    paragraphs = text.paragraphs
    title = text.title
    if not title and len(paragraphs) > 1 and is_headline(paragraphs[0][1]):
        title, paragraphs = paragraphs[0][1], paragraphs[1:]
    return Article(
        id=article_id,
        title=title or fallback_title,
        text=PARAGRAPH_SEPARATOR.join(p for _, p in paragraphs),
        source=source,
        url=url,
        date=text.date,
        author=text.author,
        pages=tuple(page for page, _ in paragraphs),
    )


def _normal(line: str) -> str:
    """A line with its digits masked, so "Report — 3" and "Report — 4" are the same head."""
    return re.sub(r"\d+", "#", line.lower())


def _running_lines(pages: list[list[str]]) -> set[str]:
    """First or last lines of at least half the pages (three at least): heads and feet."""
    if len(pages) < 3:
        return set()
    edges: Counter[str] = Counter()
    for lines in pages:
        present = [x for x in lines if x]
        edges.update({_normal(x) for x in present[:1] + present[-1:]})
    return {line for line, count in edges.items() if count >= max(3, len(pages) / 2)}


@dataclass
class _Line:
    text: str
    # Where the line starts on the page (PDF units, y upwards), when pypdf says.
    x: float | None = None
    y: float | None = None


def _page_lines(page: Any) -> list[_Line]:
    """The page's lines as pypdf reads them, each with the position of its first text."""
    lines = [_Line("")]

    def visit(text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
        pieces = text.split("\n")
        for number, piece in enumerate(pieces):
            if number:
                lines.append(_Line(""))
            line = lines[-1]
            if piece.strip() and line.y is None:
                line.x = cm[0] * tm[4] + cm[2] * tm[5] + cm[4]
                line.y = cm[1] * tm[4] + cm[3] * tm[5] + cm[5]
            line.text += piece

    page.extract_text(visitor_text=visit)
    return [_Line(x.text.strip(), x.x, x.y) for x in lines]


def _paragraphs(lines: list[_Line]) -> list[str]:
    lines = [x for x in lines if x.text and not _PAGE_NUMBER.fullmatch(x.text)]
    if not lines:
        return []
    widths = [len(x.text) for x in lines if len(x.text.split()) >= 3]
    usual_width = statistics.median(widths) if widths else 0
    steps = [
        a.y - b.y
        for a, b in itertools.pairwise(lines)
        if a.y is not None and b.y is not None and a.y > b.y
    ]
    # The line spacing is the most common step down (the smallest of equally common ones):
    # a median would be pulled up by paragraph gaps on a page of few lines.
    counts = Counter(round(step * 2) / 2 for step in steps)
    usual_step = min(counts, key=lambda step: (-counts[step], step)) if counts else 0.0
    margin = min((x.x for x in lines if x.x is not None), default=0.0)
    paragraphs: list[str] = []
    current: list[str] = []
    for line, following in zip(lines, [*lines[1:], None], strict=True):
        current.append(line.text)
        if following is None or _ends_paragraph(line, following, usual_width, usual_step, margin):
            paragraphs.append(_join_lines(current))
            current = []
    return paragraphs


def _ends_paragraph(
    line: _Line, following: _Line, usual_width: float, usual_step: float, margin: float
) -> bool:
    gap = line.y - following.y if line.y is not None and following.y is not None else 0.0
    if usual_step and gap > GAP * usual_step:
        return True
    if following.x is not None and following.x - margin > INDENT:
        return True
    # Only a paragraph's last line (or a heading) stops short: it ends a sentence, or the
    # next line starts one.
    short = len(line.text) < SHORT_LINE * usual_width
    return short and (line.text[-1] in _SENTENCE_END or following.text[:1].isupper())


def _join_lines(lines: list[str]) -> str:
    """Lines of one paragraph joined; a word broken at a line's end with a hyphen stays whole."""
    text = lines[0]
    for line in lines[1:]:
        hyphenated = text.endswith("-") and len(text) > 1 and text[-2].isalpha()
        text += line if hyphenated and line[:1].islower() else " " + line
    return re.sub(r"[ \t]+", " ", text).strip()


def _clean(value: object) -> str | None:
    text = " ".join(str(value).split()) if value else ""
    return text or None
