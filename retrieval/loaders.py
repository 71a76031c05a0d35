"""Read articles from files: .txt, .md, .html and .json/.jsonl exports.

Each loader returns the articles of one file. A file that cannot be read at all raises
LoadError; a JSON Lines file with some bad records returns the good ones and a
problem for each bad one, so one broken line does not cost the whole export.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LoadError
from .records import PARAGRAPH_SEPARATOR, Article, Problem
from .text import split_sentences

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".text")
MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + MARKDOWN_SUFFIXES + HTML_SUFFIXES + JSON_SUFFIXES


@dataclass(frozen=True)
class SourceFile:
    """A file to read, and the name it is cited by (relative to the folder it was found in)."""

    path: Path
    name: str


@dataclass(frozen=True)
class Loaded:
    articles: list[Article]
    problems: list[Problem]


def discover(paths: Sequence[Path | str]) -> tuple[list[SourceFile], list[Problem]]:
    """The supported files under ``paths`` (recursively, hidden ones skipped), sorted."""
    found: list[SourceFile] = []
    problems: list[Problem] = []
    for given in map(Path, paths):
        if given.is_dir():
            for dirpath, dirnames, filenames in os.walk(given):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for filename in sorted(filenames):
                    path = Path(dirpath) / filename
                    if not filename.startswith(".") and path.suffix.lower() in SUPPORTED_SUFFIXES:
                        found.append(SourceFile(path, path.relative_to(given).as_posix()))
        elif given.is_file():
            if given.suffix.lower() in SUPPORTED_SUFFIXES:
                found.append(SourceFile(given, given.name))
            else:
                problems.append(Problem(str(given), f"unsupported file type {given.suffix!r}"))
        else:
            problems.append(Problem(str(given), "no such file or folder"))
    return found, problems


def load_file(source: SourceFile) -> Loaded:
    suffix = source.path.suffix.lower()
    if suffix in JSON_SUFFIXES:
        return _load_json(source)
    text = _read_text(source.path)
    if suffix in MARKDOWN_SUFFIXES:
        return Loaded([_load_markdown(source, text)], [])
    if suffix in HTML_SUFFIXES:
        return Loaded([_load_html(source, text)], [])
    return Loaded(_load_plain_text(source, text), [])


# -- reading and paragraphs ------------------------------------------------------


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror or exc}") from None
    if b"\x00" in data[:8192]:
        raise LoadError("not a text file (binary content)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Older exports are often Windows-1252; decoding it loses no text.
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise LoadError("not UTF-8 or Windows-1252 text") from None
        logger.info("%s is not UTF-8; read as Windows-1252", path)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs of plain text: blocks between blank lines (hard-wrapped lines joined),
    or, in a file with no blank lines, one paragraph a line."""
    text = text.strip("\n\f ")
    if re.search(r"\n[ \t]*\n", text):
        blocks = re.split(r"\n[ \t]*\n", text)
        paragraphs = [
            " ".join(line.strip() for line in b.splitlines() if line.strip()) for b in blocks
        ]
    else:
        paragraphs = [line.strip() for line in text.splitlines()]
    return [re.sub(r"[ \t]+", " ", p) for p in paragraphs if p]


def _join(paragraphs: Sequence[str]) -> str:
    return PARAGRAPH_SEPARATOR.join(paragraphs)


def title_from_name(name: str) -> str:
    stem = Path(name).stem
    words = re.sub(r"[_\-]+", " ", stem).strip()
    return words[:1].upper() + words[1:] if words else name


def is_headline(line: str) -> bool:
    """A short line that does not end like a sentence: a headline, not a paragraph."""
    line = line.strip()
    return 0 < len(line) <= 150 and len(line.split()) <= 20 and line[-1] not in ".,;:"


# -- plain text, with several articles in one file --------------------------------

_EXPLICIT_SEPARATOR = re.compile(r"^[ \t]*(?:-{3,}|\f)[ \t]*$|\f", re.MULTILINE)
_CREDIT = re.compile(
    r"^(?:translated|reporting|additional reporting|edited|compiled|written) by\b", re.IGNORECASE
)
_HONORIFICS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sir",
    "president",
    "the",
    "this",
    "it",
    "he",
    "she",
}
_BYLINE = re.compile(r"^(?P<name>[A-Z][\w.'’-]*(?: [A-Z][\w.'’-]*){1,3}) (?:is|was) (?:an?|the) ")


def is_sign_off(paragraph: str) -> bool:
    """An author line ("Jane Doe is a professor at ...") or a credit ("Translated by ...")."""
    if len(paragraph.split()) > 30 or len(split_sentences(paragraph)) > 1:
        return False
    if _CREDIT.match(paragraph):
        return True
    byline = _BYLINE.match(paragraph)
    return bool(byline) and byline.group("name").split()[0].lower().rstrip(".") not in _HONORIFICS


def is_cut_off(paragraph: str) -> bool:
    """A long paragraph that stops mid-sentence (on a word or a comma): an excerpt's end."""
    end = paragraph.rstrip()[-1]
    return len(paragraph.split()) >= 50 and (end.isalnum() or end == ",")


def _starts_sentence(paragraph: str) -> bool:
    return paragraph.lstrip("\"'“‘(")[:1].isupper()


def split_articles(paragraphs: Sequence[str]) -> list[list[str]]:
    """Split one file's paragraphs into articles (see README, "Several articles in one file").

    An article ends after its sign-off lines (author line, "Translated by ...") when it
    has a body of at least two paragraphs before them, or after a paragraph cut off
    mid-sentence when the next paragraph starts a sentence (an excerpt, not a line break
    in the middle of a sentence).
    """
    articles: list[list[str]] = []
    current: list[str] = []
    for index, paragraph in enumerate(paragraphs):
        current.append(paragraph)
        following = paragraphs[index + 1] if index + 1 < len(paragraphs) else None
        if following is None:
            break
        body = [p for p in current if not is_sign_off(p)]
        ends_sign_off = is_sign_off(paragraph) and not is_sign_off(following) and len(body) >= 2
        ends_excerpt = is_cut_off(paragraph) and _starts_sentence(following)
        if ends_sign_off or ends_excerpt:
            articles.append(current)
            current = []
    if current:
        articles.append(current)
    return articles


def _excerpt_title(paragraphs: Sequence[str], words: int = 12) -> str:
    first = split_sentences(paragraphs[0])[0] if paragraphs else ""
    tokens = first.split()
    return " ".join(tokens[:words]) + ("…" if len(tokens) > words else "")


def _load_plain_text(source: SourceFile, text: str) -> list[Article]:
    parts = [p for p in _EXPLICIT_SEPARATOR.split(text) if p.strip()]
    groups: list[list[str]] = []
    for part in parts:
        groups.extend(split_articles(split_paragraphs(part)))
    if not groups:
        raise LoadError("no text")
    stem = source.name.rsplit(".", 1)[0]
    articles = []
    for number, paragraphs in enumerate(groups, start=1):
        if len(paragraphs) > 1 and is_headline(paragraphs[0]):
            title, paragraphs = paragraphs[0], paragraphs[1:]
        elif len(groups) > 1:
            title = _excerpt_title(paragraphs)
        else:
            title = title_from_name(source.name)
        several = len(groups) > 1
        articles.append(
            Article(
                id=f"{stem}#{number}" if several else stem,
                title=title,
                text=_join(paragraphs),
                source=f"{source.name}#{number}" if several else source.name,
            )
        )
    return articles


# -- markdown ----------------------------------------------------------------------

_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$")


def _load_markdown(source: SourceFile, text: str) -> Article:
    import frontmatter
    import yaml

    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        raise LoadError(f"bad front matter: {exc}") from None
    meta = post.metadata
    body = post.content.strip()
    title = _string(meta.get("title"))
    first_line, _, rest = body.partition("\n")
    if not title and (heading := _HEADING.match(first_line)):
        title, body = heading.group(1), rest
    paragraphs = split_paragraphs(body)
    if not paragraphs:
        raise LoadError("no text")
    return Article(
        id=source.name.rsplit(".", 1)[0],
        title=title or title_from_name(source.name),
        text=_join(paragraphs),
        source=source.name,
        url=_string(meta.get("url")),
        date=_string(meta.get("date")),
        author=_string(meta.get("author")),
    )


# -- html ----------------------------------------------------------------------------


def _load_html(source: SourceFile, html: str) -> Article:
    import trafilatura

    # Precision mode: a page with no article (only menus and a footer) yields nothing
    # rather than its navigation text.
    document = trafilatura.bare_extraction(
        html, with_metadata=True, include_comments=False, favor_precision=True
    )
    if document is None or not (document.text or "").strip():
        raise LoadError("no article text found in the HTML")
    lines = [line.strip() for line in document.text.splitlines() if line.strip()]
    title = (document.title or "").strip()
    if lines and title and lines[0] == title:
        lines = lines[1:]
    if not lines:
        raise LoadError("no article text found in the HTML")
    return Article(
        id=source.name.rsplit(".", 1)[0],
        title=title or title_from_name(source.name),
        text=_join([re.sub(r"\s+", " ", line) for line in lines]),
        source=source.name,
        url=document.url,
        date=document.date,
        author=document.author,
    )


# -- json and json lines ----------------------------------------------------------------


def _string(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _load_json(source: SourceFile) -> Loaded:
    text = _read_text(source.path)
    records: list[tuple[str, Any]] = []
    problems: list[Problem] = []
    if source.path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LoadError(f"invalid JSON: {exc}") from None
        if isinstance(data, dict) and isinstance(data.get("articles"), list):
            data = data["articles"]
        items = data if isinstance(data, list) else [data]
        records = [(f"{source.name}#{i}", item) for i, item in enumerate(items, start=1)]
    else:
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            where = f"{source.name}:{number}"
            try:
                records.append((where, json.loads(line)))
            except json.JSONDecodeError as exc:
                problems.append(Problem(where, f"invalid JSON: {exc.msg}"))
    articles = []
    for where, record in records:
        try:
            articles.append(_article_from_record(record, where))
        except LoadError as exc:
            problems.append(Problem(where, str(exc)))
    if not articles and not problems:
        raise LoadError("no articles in the file")
    return Loaded(articles, problems)


def _article_from_record(record: Any, where: str) -> Article:
    if not isinstance(record, dict):
        raise LoadError("not a JSON object")
    body = record.get("text")
    if not isinstance(body, str) or not body.strip():
        raise LoadError('no "text"')
    paragraphs = split_paragraphs(body)
    title = _string(record.get("title")) or _excerpt_title(paragraphs)
    return Article(
        id=_string(record.get("id")) or where,
        title=title,
        text=_join(paragraphs),
        source=where,
        url=_string(record.get("url")),
        date=_string(record.get("date")),
        author=_string(record.get("author")),
    )


def iter_articles(files: Sequence[SourceFile]) -> Iterator[tuple[SourceFile, Loaded | LoadError]]:
    for source in files:
        try:
            yield source, load_file(source)
        except LoadError as exc:
            yield source, exc
