"""An answer as the CLI prints it: the best sentence as a quote with its citation, then the
passages trimmed around their highlights, highlights marked (bold on a terminal)."""

from __future__ import annotations

import click

from .records import WHICH_ARTICLE, Answer, Passage, location_label


def citation(passage: Passage, paragraphs: tuple[int, int] | None = None) -> str:
    article = passage.article
    where = location_label(paragraphs or passage.paragraphs, passage.pages)
    parts = [article.title, article.source, article.date, where]
    return " · ".join(p for p in parts if p)


def marked_passage(passage: Passage, color: bool, full: bool = False) -> str:
    """The trimmed view (or with ``full`` the whole passage), its highlight marked."""
    if full:
        text, start, end = passage.text, passage.highlight_start, passage.highlight_end
    else:
        text, start, end = passage.trimmed()
    highlight = text[start:end]
    marked = click.style(highlight, bold=True, underline=True) if color else f"**{highlight}**"
    return text[:start] + marked + text[end:]


def _quote(passage: Passage, color: bool) -> str:
    """The best sentence as a quote, with its citation: the answer at a glance."""
    sentence = " ".join(passage.highlight.split())
    quote = f"“{sentence}”"
    cited = f"   — [{passage.rank}] {citation(passage, passage.context_paragraphs)}"
    return f"{click.style(quote, bold=True) if color else quote}\n{cited}"


def _block(passage: Passage, color: bool, full: bool) -> str:
    paragraphs = None if full else passage.context_paragraphs
    head = f"[{passage.rank}] {citation(passage, paragraphs)}"
    if link := passage.link or passage.article.url:
        head += f"\n    {link}"
    if passage.copies:
        head += "\n    also in: " + "; ".join(f"{c.title} ({c.source})" for c in passage.copies)
        if (more := passage.copy_count - len(passage.copies)) > 0:
            head += f" and {more} more"
    body = "\n".join("    " + line for line in marked_passage(passage, color, full).split("\n"))
    return f"{head}\n{body}"


def render_answer(
    answer: Answer, color: bool = False, *, show_all: bool = False, full: bool = False
) -> str:
    """The answer as the CLI prints it: the best sentence as a quote with its citation, then
    each passage of the first page trimmed around its highlight; with ``show_all`` the other
    results too, and with ``full`` whole passages."""
    if answer.kind == WHICH_ARTICLE:
        lines = ["Which article do you mean? Name it in the question, for example by its title:"]
        lines += [f"  - {a.title} ({a.source})" for a in answer.nearest]
        return "\n".join(lines)
    if not answer.answered:
        lines = [f"The articles do not seem to cover: {answer.question}"]
        if answer.filters:
            lines[0] += f" (among articles with {answer.filters.describe()})"
        if answer.nearest:
            lines.append("Nearest articles:")
            lines += [f"  - {a.title} ({a.source})" for a in answer.nearest]
        return "\n".join(lines)
    if not answer.passages:
        return "No more results."
    shown = answer.shown or answer.passages[:1]
    held_back = [p for p in answer.passages if p not in shown]
    blocks = [_quote(answer.passages[0], color)] if answer.offset == 0 else []
    if answer.caveat:
        blocks.insert(0, f"Note: {answer.caveat}")
    blocks += [_block(p, color, full) for p in shown]
    if held_back and show_all:
        blocks.append("More results:")
        blocks += [_block(p, color, full) for p in held_back]
    elif held_back:
        blocks.append(
            f"({len(held_back)} more result{'s' if len(held_back) > 1 else ''} below the"
            " relevance cut-off: --all shows them, --full whole passages.)"
        )
    return "\n\n".join(blocks)
