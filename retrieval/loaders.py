"""Read articles from files: .txt, .md, .html, .pdf and .json/.jsonl exports.

``files.find_files`` walks a source root; ``load_file`` reads one file. A file that cannot
be read at all raises LoadError; a file with some bad records (or some articles over
a limit) returns the good articles and a problem for each bad one, so one broken
line does not cost the whole export. The limits in ``[ingest]`` bound what one file
may cost: its size, its articles' length and titles, and how deeply its data nests.
Every step on article text is linear in its length.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from .article_split import split_articles
from .config import IngestSettings
from .errors import LoadError, one_line
from .files import (
    HTML_SUFFIXES,
    JSON_SUFFIXES,
    MARKDOWN_SUFFIXES,
    PDF_SUFFIXES,
    SourceFile,
    is_inside,
    kind_of,
)
from .records import PARAGRAPH_SEPARATOR, Article, Problem
from .text import is_headline, printable, split_sentences

logger = logging.getLogger(__name__)

DEFAULT_LIMITS = IngestSettings()


@dataclass(frozen=True)
class Loaded:
    articles: list[Article]
    problems: list[Problem] = field(default_factory=list)


# -- loading one file ----------------------------------------------------------------------


def load_file(source: SourceFile, limits: IngestSettings = DEFAULT_LIMITS) -> Loaded:
    """The articles of one file. LoadError when none can be had; per-record problems else."""
    suffix = source.path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        return Loaded([within_limits(_load_pdf(source, limits), limits)])
    text = read_text(source, limits)
    if suffix in JSON_SUFFIXES:
        return _load_json(source, text, limits)
    if suffix in MARKDOWN_SUFFIXES:
        return Loaded([within_limits(_load_markdown(source, text, limits), limits)])
    if suffix in HTML_SUFFIXES:
        return Loaded([within_limits(article_from_html(text, source.name), limits)])
    articles: list[Article] = []
    problems: list[Problem] = []
    for article in _load_plain_text(source, text):
        try:
            articles.append(within_limits(article, limits))
        except LoadError as exc:
            problems.append(Problem(article.source, str(exc)))
    if not articles:
        raise LoadError(
            problems[0].reason if len(problems) == 1 else "no article within the limits"
        )
    return Loaded(articles, problems)


def within_limits(article: Article, limits: IngestSettings) -> Article:
    """``article``, or LoadError when its title or text is over the [ingest] limits."""
    if len(article.title) > limits.max_title_chars:
        raise LoadError(
            f"the title is {len(article.title):,} characters long, over the limit of"
            f" {limits.max_title_chars:,} ([ingest] max_title_chars)"
        )
    if len(article.text) > limits.max_article_chars:
        raise LoadError(
            f"the article is {len(article.text):,} characters long, over the limit of"
            f" {limits.max_article_chars:,} ([ingest] max_article_chars)"
        )
    return article


# -- reading bytes --------------------------------------------------------------------------


def read_bytes(source: SourceFile, limits: IngestSettings = DEFAULT_LIMITS) -> bytes:
    """The file's bytes, at most ``max_file_mb``; never opens a special file for reading.

    The file is first opened as a path only (O_PATH: no read, no side effect on a
    device), without following a final link; its type, size and, for a confined file,
    real location are checked on that open file; only then is it opened for reading
    through it, so nothing can be swapped in between the check and the read.
    """
    limit = limits.max_file_mb * 1024 * 1024
    path_only = getattr(os, "O_PATH", 0)
    flags = os.O_NOFOLLOW | os.O_CLOEXEC | (path_only or (os.O_RDONLY | os.O_NONBLOCK))
    try:
        fd = os.open(source.path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            # Listing resolved every link: this one was swapped in since.
            raise LoadError("it became a link after its folder was listed; not read") from None
        raise LoadError(f"cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise LoadError(f"not a regular file ({kind_of(info.st_mode)}); not opened")
        if source.confine is not None:
            where = _open_path(fd)
            if where is not None and not is_inside(where, source.confine):
                raise LoadError("it lies outside the source folder (--follow-symlinks reads it)")
        if info.st_size > limit:
            raise LoadError(_too_large(limits))
        if path_only:
            reader = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
        else:
            reader, fd = fd, -1
        with open(reader, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror or exc}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > limit:
        raise LoadError(_too_large(limits))
    return data


def _open_path(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None  # no /proc: the check made when listing the folder stands


def _too_large(limits: IngestSettings) -> str:
    return f"larger than {limits.max_file_mb:,} MB ([ingest] max_file_mb)"


def read_text(source: SourceFile, limits: IngestSettings = DEFAULT_LIMITS) -> str:
    data = read_bytes(source, limits)
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
        logger.info("%s is not UTF-8; read as Windows-1252", source.name)
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


# -- plain text, with several articles in one file --------------------------------

_EXPLICIT_SEPARATOR = re.compile(r"^[ \t]*+(?:-{3,}+|\f)[ \t]*+$|\f", re.MULTILINE)
# A title made from an article's opening words is cut to this many characters.
EXCERPT_TITLE_CHARS = 120


def _excerpt_title(paragraphs: Sequence[str], words: int = 12) -> str:
    first = split_sentences(paragraphs[0])[0] if paragraphs else ""
    tokens = first.split(maxsplit=words)
    title = " ".join(tokens[:words])
    if len(title) > EXCERPT_TITLE_CHARS:
        return title[: EXCERPT_TITLE_CHARS - 1].rstrip() + "…"
    return title + ("…" if len(tokens) > words else "")


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

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)^---[ \t]*$\n?", re.DOTALL | re.MULTILINE)


def _front_matter_loader() -> type:
    """A safe YAML loader for front matter: no aliases (a few hundred bytes of nested
    aliases expand to gigabytes), and dates kept as the text they are written as."""
    import yaml

    class FrontMatterLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise LoadError("bad front matter: YAML aliases (*name) are not allowed")
            return super().compose_node(parent, index)

    timestamp = "tag:yaml.org,2002:timestamp"
    FrontMatterLoader.yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != timestamp]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return FrontMatterLoader


def _front_matter(text: str, limits: IngestSettings) -> tuple[dict[str, Any], str]:
    """YAML front matter (between two ``---`` lines at the start) and the body after it."""
    import yaml

    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        meta = yaml.load(match.group(1), Loader=_front_matter_loader())
    except yaml.YAMLError as exc:
        raise LoadError(f"bad front matter: {one_line(exc)}") from None
    except (ValueError, RecursionError) as exc:  # an int too long to convert; deep nesting
        raise LoadError(f"bad front matter: {one_line(exc)}") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise LoadError("bad front matter: not a list of `key: value` lines")
    _check_depth(meta, limits)
    return meta, text[match.end() :]


def _markdown_heading(line: str) -> str | None:
    """The text of an ATX heading of level 1 ("# Title", optionally "# Title #")."""
    if not line.startswith("#") or not line[1:2].isspace():
        return None
    title = line[1:].strip()
    stripped = title.rstrip("#")
    if stripped != title and (not stripped or stripped[-1].isspace()):
        title = stripped.rstrip()
    return title or None


def _load_markdown(source: SourceFile, text: str, limits: IngestSettings) -> Article:
    meta, body = _front_matter(text, limits)
    body = body.strip()
    title = _field(meta, "title")
    first_line, _, rest = body.partition("\n")
    if not title and (heading := _markdown_heading(first_line)):
        title, body = heading, rest
    paragraphs = split_paragraphs(body)
    if not paragraphs:
        raise LoadError("no text")
    return Article(
        id=source.name.rsplit(".", 1)[0],
        title=title or title_from_name(source.name),
        text=_join(paragraphs),
        source=source.name,
        url=_field(meta, "url"),
        date=_field(meta, "date"),
        author=_field(meta, "author"),
    )


# -- html ----------------------------------------------------------------------------

# Below this share of its letters and digits outside links, an extraction is a menu.
MIN_TEXT_OUTSIDE_LINKS = 0.5
_NOT_WORD = re.compile(r"[\W_]+")


def _letters(text: str | None) -> int:
    return len(_NOT_WORD.sub("", text)) if text else 0


def _letters_outside_links(tree: Any) -> int:
    """Letters and digits of the page's body that are not the text of a link."""
    hidden = {"a", "head", "script", "style", "noscript", "template", "title"}
    count = 0
    stack = [tree]
    while stack:  # iterative: a deeply nested page must not exhaust the stack
        element = stack.pop()
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag.lower() not in hidden:
            count += _letters(element.text)
            stack.extend(element)
        # A tail is the text after an element, inside its parent.
        parent = element.getparent()
        if parent is not None and str(parent.tag).lower() not in hidden:
            count += _letters(element.tail)
    return count


def article_from_html(html: str, name: str, url: str | None = None) -> Article:
    """The article of an HTML page (files, web pages and feed entries alike), cited as ``name``.

    ``url`` is where the page came from, when it came from the web.
    """
    import trafilatura

    tree = trafilatura.load_html(html)
    if tree is None:
        raise LoadError("no article text found in the HTML")
    outside_links = _letters_outside_links(tree)
    # Precision mode: a page with no article (only menus and a footer) yields nothing
    # rather than its navigation text.
    document = trafilatura.bare_extraction(
        tree, url=url, with_metadata=True, include_comments=False, favor_precision=True
    )
    # (A dict comes back only when asked for with as_dict=True.)
    text = "" if document is None or isinstance(document, dict) else document.text or ""
    if not text.strip():
        raise LoadError("no article text found in the HTML")
    assert document is not None and not isinstance(document, dict)
    if outside_links < MIN_TEXT_OUTSIDE_LINKS * _letters(text):
        raise LoadError("no article text found in the HTML (only links, such as a menu)")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    title = (document.title or "").strip()
    if lines and title and lines[0] == title:
        lines = lines[1:]
    if not lines:
        raise LoadError("no article text found in the HTML")
    return Article(
        id=name.rsplit(".", 1)[0],
        title=title or title_from_name(name),
        text=_join([re.sub(r"\s+", " ", line) for line in lines]),
        source=name,
        url=document.url,
        date=document.date,
        author=document.author,
    )


# -- pdf -------------------------------------------------------------------------------


def _load_pdf(source: SourceFile, limits: IngestSettings) -> Article:
    from .pdf import pdf_article

    return pdf_article(
        read_bytes(source, limits),
        article_id=source.name.rsplit(".", 1)[0],
        source=source.name,
        fallback_title=title_from_name(source.name),
    )


# -- json and json lines ----------------------------------------------------------------


def _field(record: dict[str, Any], key: str) -> str | None:
    """A text field of a record or front matter; a list of texts (several authors) is
    joined; anything else (an object, a list of lists) is a problem."""
    value = record.get(key)
    if isinstance(value, list) and all(_is_scalar(v) for v in value):
        value = ", ".join(str(v).strip() for v in value if v is not None and str(v).strip())
    if value is None:
        return None
    if not _is_scalar(value):
        raise LoadError(f'"{key}" is not text')
    text = value.isoformat() if isinstance(value, date) else printable(str(value))
    return text.strip() or None


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | date) and not isinstance(value, bool)


def _check_depth(value: Any, limits: IngestSettings) -> None:
    """LoadError when ``value`` nests lists and objects deeper than the limit (iteratively:
    the check itself must not recurse)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        )
        if children is None:
            continue
        if depth > limits.max_nesting_depth:
            raise LoadError(_too_deep(limits))
        stack.extend((child, depth + 1) for child in children)


def _too_deep(limits: IngestSettings) -> str:
    return f"nested more than {limits.max_nesting_depth} levels deep ([ingest] max_nesting_depth)"


def _parse_json(text: str, limits: IngestSettings) -> Any:
    """Parsed JSON; LoadError for invalid JSON, numbers too long to convert, or deep nesting."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(
            f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise LoadError(_too_deep(limits)) from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise LoadError(f"invalid JSON: {one_line(exc)}") from None
    _check_depth(value, limits)
    return value


def _load_json(source: SourceFile, text: str, limits: IngestSettings) -> Loaded:
    records: list[tuple[str, Any]] = []
    problems: list[Problem] = []
    if source.path.suffix.lower() == ".json":
        data = _parse_json(text, limits)
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
                records.append((where, _parse_json(line, limits)))
            except LoadError as exc:
                problems.append(Problem(where, str(exc)))
    articles = []
    for where, record in records:
        try:
            articles.append(within_limits(_article_from_record(record, where), limits))
        except LoadError as exc:
            problems.append(Problem(where, str(exc)))
    if not articles and not problems:
        raise LoadError("no articles in the file")
    return Loaded(articles, problems)


def article_from_record(
    record: Any, where: str, limits: IngestSettings = DEFAULT_LIMITS
) -> Article:
    """An article from a JSON object ``{text, id?, title?, url?, date?, author?}``, as a
    .json or .jsonl file gives it (``where`` is its id and source when it names none);
    LoadError when it is not one or is over the ``[ingest]`` limits."""
    return within_limits(_article_from_record(record, where), limits)


def _article_from_record(record: Any, where: str) -> Article:
    if not isinstance(record, dict):
        raise LoadError("not a JSON object")
    body = record.get("text")
    if not isinstance(body, str) or not body.strip():
        raise LoadError('no "text"')
    # JSON may spell lone surrogates ("\ud800"), which no UTF-8 store accepts.
    paragraphs = split_paragraphs(printable(body))
    title = _field(record, "title") or _excerpt_title(paragraphs)
    return Article(
        id=_field(record, "id") or where,
        title=title,
        text=_join(paragraphs),
        source=where,
        url=_field(record, "url"),
        date=_field(record, "date"),
        author=_field(record, "author"),
    )
