"""Answers, articles and listings as Discord embeds that always respect Discord's limits.

Pure: no network, no client. Long text is split at paragraph, then sentence, then word
boundaries; a citation line is never split, and a passage's citation always travels in
the same page as its passage.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord

from retrieval.records import (
    ELLIPSIS,
    WHICH_ARTICLE,
    Answer,
    Article,
    ArticleRef,
    ArticleSummary,
    IndexStats,
    Passage,
    SearchFilter,
    pages_label,
    paragraphs_label,
)
from retrieval.text import split_sentences
from retrieval.trimming import sentence_window

if TYPE_CHECKING:
    from retrieval.ingest import IngestReport
    from retrieval.live import SyncResult

    from .feedback import FeedbackReport

# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FIELD_COUNT_LIMIT = 25
FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000

# What a page of long text may use, leaving room for title, footer and fields.
PAGE_BUDGET = 3500
# At most this much of one passage is quoted in an answer; the rest is one click away.
PASSAGE_BUDGET = 900
COLOUR = discord.Colour.blurple()
NOT_COVERED_COLOUR = discord.Colour.light_grey()

_MARKDOWN = re.compile(r"([\\*_~`|>\[\]#])")


def escape(text: str) -> str:
    """Text shown literally: Markdown characters escaped, mentions made inert."""
    text = _MARKDOWN.sub(r"\\\1", text)
    # A zero-width space after "@" stops @everyone/@here even if mentions were allowed.
    return text.replace("@", "@\u200b")


def code(text: str, limit: int = 100) -> str:
    """``text`` as inline code that no backtick in it can end early."""
    return "`" + shorten(text, limit).replace("`", "'") + "`"


def shorten(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, marked with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


# Ways to split text, coarsest first, each with the joiner that undoes it.
_SPLITTERS: tuple[tuple[Callable[[str], list[str]], str], ...] = (
    (re.compile(r"\n\s*\n").split, "\n\n"),
    (str.splitlines, "\n"),
    (split_sentences, " "),
    (str.split, " "),
)


def _pieces(text: str, limit: int) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` chars: paragraphs, then sentences, then words."""
    if len(text) <= limit:
        return [text]
    for splitter, joiner in _SPLITTERS:
        parts = [p.strip() for p in splitter(text) if p.strip()]
        if len(parts) > 1:
            return pack([q for p in parts for q in _pieces(p, limit)], limit, joiner)
    # One unbroken run of characters longer than a page: a hard cut is the only option.
    return [text[i : i + limit] for i in range(0, len(text), limit)]


def pack(blocks: Sequence[str], limit: int, joiner: str = "\n\n") -> list[str]:
    """Greedily join whole blocks into pages of at most ``limit`` characters.

    A block longer than ``limit`` is first split at paragraph/sentence/word boundaries.
    """
    pages: list[str] = []
    current = ""
    for block in blocks:
        for piece in _pieces(block, limit) if len(block) > limit else [block]:
            candidate = f"{current}{joiner}{piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
            else:
                pages.append(current)
                current = piece
    if current:
        pages.append(current)
    return pages


def split_message(text: str, limit: int = CONTENT_LIMIT) -> list[str]:
    """Message contents of at most ``limit`` characters, split at natural boundaries."""
    return pack([text], limit) if text else []


# -- answers ---------------------------------------------------------------------------


def _window(passage: Passage, budget: int) -> tuple[str, int, int]:
    """The passage's trimmed view (the paragraph around its highlight, "…" where cut), or
    the whole sentences of it around the highlight that fit ``budget``; and highlight offsets."""
    text, start, end = passage.trimmed()
    if len(text) <= budget:
        return text, start, end
    if end - start > budget:
        # The highlight alone is too long: keep its opening words.
        cut = shorten(text[start:end], budget)
        return cut, 0, len(cut)
    left, right = sentence_window(text, start, end, budget - 2 * len(ELLIPSIS))
    if right - left > budget - 2 * len(ELLIPSIS):  # no sentence boundary close enough
        left = max(0, min(start, end - budget + 2 * len(ELLIPSIS)))
        right = left + budget - 2 * len(ELLIPSIS)
    prefix = ELLIPSIS if left > 0 and not text[:left].endswith(ELLIPSIS) else ""
    suffix = ELLIPSIS if right < len(text) and not text[right:].startswith(ELLIPSIS) else ""
    snippet = text[left:right]
    return prefix + snippet + suffix, start - left + len(prefix), end - left + len(prefix)


def quote_passage(passage: Passage, budget: int = PASSAGE_BUDGET) -> str:
    """The passage (or its part around the highlight), escaped, with the highlight in bold."""
    text, start, end = _window(passage, budget)
    before, highlight, after = text[:start], text[start:end].strip(), text[end:]
    # Bold each line on its own, so the markers never straddle a quote line.
    bold = "\n".join(
        f"**{escape(line.strip())}**" if line.strip() else line for line in highlight.split("\n")
    )
    body = f"{escape(before)}{bold}{escape(after)}".strip()
    # One quote block: every line starts with "> ".
    return "\n".join(f"> {line}" if line.strip() else ">" for line in body.splitlines())


def citation(
    number: int, article: ArticleRef, location: str | None = None, link: str | None = None
) -> str:
    """``[n] Title (linked) · source · date · ¶p`` on one line, never split.

    The title links to ``link`` (the passage's place on the page) when given, else to the
    article's url.
    """
    title = escape(shorten(article.title, 200))
    url = next((u for u in (link, article.url) if _linkable(u)), None)
    named = f"[{title}](<{url}>)" if url else f"*{title}*"
    parts = [f"**[{number}]** {named}", escape(shorten(article.source, 120))]
    if article.date:
        parts.append(escape(article.date[:32]))
    if location:
        parts.append(location)
    return " · ".join(parts)


def _linkable(url: str | None) -> bool:
    return bool(url and url.startswith(("http://", "https://")) and len(url) <= 512)


def passage_block(passage: Passage, budget: int = PASSAGE_BUDGET) -> str:
    """The passage's trimmed view as a quote, then its citation (the view's paragraphs)."""
    return f"{quote_passage(passage, budget)}\n{passage_citation(passage)}"


def passage_citation(passage: Passage) -> str:
    """The citation of the paragraphs a passage shows (with their pages, for a PDF),
    linked to the passage's place on the web."""
    location = paragraphs_label(*(passage.context_paragraphs or passage.paragraphs))
    if passage.pages:
        location = f"{pages_label(*passage.pages)}, {location}"
    cited = citation(passage.rank, passage.article, location, passage.link)
    if passage.copies:
        named = "; ".join(
            f"*{escape(shorten(c.title, 120))}* ({escape(shorten(c.source, 80))})"
            for c in passage.copies[:COPIES_NAMED]
        )
        more = passage.copy_count - COPIES_NAMED
        cited += f"\nalso in: {named}" + (f" and {more} more" if more > 0 else "")
    return cited


# Copies of a passage's article named under its citation, at most.
COPIES_NAMED = 3


def _title(prefix: str, text: str) -> str:
    return shorten(f"{prefix}{text}", TITLE_LIMIT)


@dataclass(frozen=True)
class AnswerPages:
    """The embeds of one answer (one per page) and the articles it cites, in citation order."""

    embeds: tuple[discord.Embed, ...]
    cited: tuple[ArticleRef, ...]
    chunk_ids: tuple[int, ...]
    # The leading embeds that hold the first page (the shown passages); the others hold
    # the results below the relevance cut-off.
    shown_pages: int = 1


def lead_quote(passage: Passage) -> str:
    """The best sentence, quoted, with its citation: the answer at a glance."""
    sentence = escape(shorten(passage.highlight, PASSAGE_BUDGET))
    return f"> **“{sentence}”**\n— {passage_citation(passage)}"


def _passage_pages(
    blocks: list[str], passages: Sequence[Passage], title: str, budget: int
) -> list[discord.Embed]:
    pages = pack(blocks, budget)
    first, last = passages[0].rank, passages[-1].rank
    footer = f"Results {first}–{last}" if first != last else f"Result {first}"
    return [
        discord.Embed(title=title, description=page, colour=COLOUR).set_footer(
            text=footer + (f" · page {i}/{len(pages)}" if len(pages) > 1 else "")
        )
        for i, page in enumerate(pages, start=1)
    ]


def answer_pages(answer: Answer, *, budget: int = PAGE_BUDGET) -> AnswerPages:
    """The answer as embeds; each passage and its citation stay on one page.

    The first page leads with the best sentence as a quote with its citation, then the
    passages above the relevance cut-off (``shown``), each trimmed to the paragraph around
    its highlight. The remaining results follow on later pages ("More results"); an answer
    for a later offset has only those. ``AnswerPages.shown_pages`` counts the leading
    embeds that hold the first page.
    """
    question = answer.question
    title = _title("❓ ", question)
    head = (
        ""
        if len(question) + 2 <= TITLE_LIMIT
        else f"**Question:** {escape(shorten(question, 900))}"
    )
    if answer.kind == WHICH_ARTICLE:
        lines = ["**Which article do you mean?** Ask again naming it, for example by its title:"]
        lines += [citation(i, ref) for i, ref in enumerate(answer.nearest, start=1)]
        body = "\n".join(([head] if head else []) + lines)
        embed = discord.Embed(
            title=title, description=pack([body], budget)[0], colour=NOT_COVERED_COLOUR
        )
        return AnswerPages((embed,), tuple(answer.nearest), ())
    if not answer.answered:
        lines = ["**Not covered:** the indexed articles do not answer this question."]
        if answer.filters:
            lines[0] = (
                "**Not covered:** the articles with "
                f"{escape(answer.filters.describe())} do not answer this question."
            )
        if answer.nearest:
            lines.append("The nearest articles are:")
            lines += [citation(i, ref) for i, ref in enumerate(answer.nearest, start=1)]
        body = "\n".join(([head] if head else []) + lines)
        embed = discord.Embed(
            title=title, description=pack([body], budget)[0], colour=NOT_COVERED_COLOUR
        )
        return AnswerPages((embed,), tuple(answer.nearest), ())
    if not answer.passages:
        embed = discord.Embed(
            title=title, description="No more results for this question.", colour=NOT_COVERED_COLOUR
        )
        return AnswerPages((embed,), (), ())
    passage_budget = min(PASSAGE_BUDGET, budget - 300)
    shown = list(answer.shown) or ([] if answer.offset else list(answer.passages[:1]))
    rest = [p for p in answer.passages if p not in shown]
    embeds: list[discord.Embed] = []
    if shown:
        blocks = [passage_block(p, passage_budget) for p in shown]
        blocks[0] = f"{lead_quote(shown[0])}\n\n{blocks[0]}"
        if answer.caveat:
            blocks[0] = f"⚠️ {escape(answer.caveat)}\n\n{blocks[0]}"
        if head:
            blocks[0] = f"{head}\n\n{blocks[0]}"
        embeds += _passage_pages(blocks, shown, title, budget)
    shown_pages = len(embeds)
    if rest:
        blocks = [passage_block(p, passage_budget) for p in rest]
        if head and not shown:
            blocks[0] = f"{head}\n\n{blocks[0]}"
        embeds += _passage_pages(blocks, rest, title, budget)
    cited = tuple(p.article for p in answer.passages)
    chunk_ids = tuple(sorted({c for p in answer.passages for c in p.chunk_ids}))
    return AnswerPages(tuple(embeds), cited, chunk_ids, shown_pages)


# -- articles, listings, stats -------------------------------------------------------------


def article_pages(article: Article, *, budget: int = PAGE_BUDGET) -> list[discord.Embed]:
    """The article's metadata and its full text, paginated at paragraph boundaries."""

    def label(i: int) -> str:
        return (
            f"p. {article.pages[i - 1]} {paragraphs_label(i, i)}"
            if article.pages
            else paragraphs_label(i, i)
        )

    numbered = [
        f"`{label(i)}` {escape(p)}" for i, p in enumerate(article.paragraphs, start=1) if p.strip()
    ]
    pages = pack(numbered or ["(This article has no text.)"], budget)
    url = article.url if article.url and article.url.startswith(("http://", "https://")) else None
    embeds = []
    for i, page in enumerate(pages, start=1):
        embed = discord.Embed(title=shorten(article.title, TITLE_LIMIT), url=url, description=page)
        embed.colour = COLOUR
        if i == 1:
            embed.add_field(
                name="Source", value=shorten(article.source, FIELD_VALUE_LIMIT), inline=True
            )
            if article.date:
                embed.add_field(name="Date", value=shorten(article.date, 100), inline=True)
            if article.author:
                embed.add_field(
                    name="Author", value=shorten(escape(article.author), 200), inline=True
                )
        embed.set_footer(text=f"{article.id} · page {i}/{len(pages)}"[:FOOTER_LIMIT])
        embeds.append(embed)
    return embeds


def sources_pages(
    summaries: Sequence[ArticleSummary], *, per_page: int = 15
) -> list[discord.Embed]:
    """The indexed articles, a bounded number per page."""
    if not summaries:
        return [discord.Embed(title="Sources", description="The index has no articles yet.")]
    lines = [
        f"{citation(i, s.article)} · {s.paragraph_count} ¶"
        for i, s in enumerate(summaries, start=1)
    ]
    pages: list[str] = []
    for start in range(0, len(lines), per_page):
        pages.extend(pack(lines[start : start + per_page], PAGE_BUDGET, "\n"))
    return [
        discord.Embed(
            title=f"Sources ({len(summaries)} articles)", description=page, colour=COLOUR
        ).set_footer(text=f"page {i}/{len(pages)}")
        for i, page in enumerate(pages, start=1)
    ]


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def sync_line(result: SyncResult | None, error_message: str | None = None) -> str:
    """When the sources were last read in (a sync or /reindex) and what that did."""
    if result is None:
        return "none since the bot started"
    when = result.at.strftime("%Y-%m-%d %H:%M UTC")
    if result.report is None:
        return f"{when} · failed: {error_message or 'see the log'}"
    return f"{when} · {result.report.changes_line()}"


def stats_embed(stats: IndexStats, last_sync: str | None = None) -> discord.Embed:
    embed = discord.Embed(title="Index statistics", colour=COLOUR)
    embed.add_field(name="Articles", value=f"{stats.articles:,}")
    embed.add_field(name="Passages (chunks)", value=f"{stats.chunks:,}")
    embed.add_field(name="Size", value=human_size(stats.size_bytes))
    embed.add_field(name="Model", value=shorten(f"{stats.model} ({stats.dimension}d)", 1000))
    embed.add_field(name="Backend", value=shorten(stats.runs_as, 1000))
    embed.add_field(name="Vector index", value=shorten(stats.vector_index, 1000))
    embed.add_field(name="Created", value=shorten(stats.created or "unknown", 100))
    embed.add_field(name="Last ingest", value=shorten(stats.updated or "unknown", 100))
    if last_sync is not None:
        embed.add_field(name="Last sync", value=shorten(last_sync, FIELD_VALUE_LIMIT), inline=False)
    return embed


def add_corpus_fields(embed: discord.Embed, corpus: str, message_content: str) -> None:
    """/stats: which corpus answers here, and whether answer channels can work."""
    embed.add_field(name="Corpus", value=shorten(corpus, 100))
    embed.add_field(name="Message Content intent", value=shorten(message_content, 200))


def filters_line(filters: SearchFilter) -> str:
    """The filters an answer was searched with, as one small line above it."""
    return shorten(f"-# Filtered: {escape(filters.describe())}", CONTENT_LIMIT)


def reindex_summary(report: IngestReport, stats: IndexStats) -> str:
    text = (
        f"Re-index finished: {stats.articles:,} articles, {stats.chunks:,} passages"
        f" ({report.added} added, {report.updated} updated, {report.unchanged} unchanged,"
        f" {report.removed} removed)."
    )
    if report.skipped:
        count = len(report.skipped)
        text += f" {count} file{'s' if count != 1 else ''} or record{'s' if count != 1 else ''} skipped:"
    return text


def skipped_embed(
    skipped: Sequence[tuple[str, str]], *, budget: int = PAGE_BUDGET
) -> discord.Embed:
    """What a re-index skipped, ``(name, reason)`` a line, as many as fit; the rest is counted."""
    lines: list[str] = []
    used = 0
    reserve = 80  # room for the closing "…and N more" line
    for index, (name, reason) in enumerate(skipped):
        line = f"{code(name, 200)} — {escape(shorten(reason, 300))}"
        if used + len(line) + 1 > budget - reserve:
            lines.append(f"…and {len(skipped) - index:,} more; the full list is in the bot's log.")
            break
        lines.append(line)
        used += len(line) + 1
    return discord.Embed(
        title=f"Skipped ({len(skipped):,})", description="\n".join(lines), colour=NOT_COVERED_COLOUR
    )


def feedback_pages(report: FeedbackReport) -> list[discord.Embed]:
    """The feedback report (``bot.feedback``) as embeds, paginated."""
    from .feedback import summary_line

    if not report.votes:
        return [discord.Embed(title="Feedback", description="No votes yet.", colour=COLOUR)]
    blocks = [summary_line(report)]
    if report.questions:
        blocks.append("**Most down-voted questions**")
        for q in report.questions:
            lines = [f"👎 {q.down} · 👍 {q.up} — {escape(shorten(q.question, 300))}"]
            lines += [
                f"\u2003[{n}] {escape(shorten(p.title, 120))} · {paragraphs_label(*p.paragraphs)}"
                for n, p in enumerate(q.passages, start=1)
            ]
            if not q.passages:
                lines.append("\u2003(the passages shown were not recorded)")
            blocks.append("\n".join(lines))
    if report.articles:
        blocks.append("**Articles most often voted down**")
        blocks += [
            f"👎 {a.down} · 👍 {a.up} — {escape(shorten(a.title, 200))} ({code(a.article_id)})"
            for a in report.articles
        ]
    pages = pack(blocks, PAGE_BUDGET)
    return [
        discord.Embed(title="Feedback", description=page, colour=COLOUR).set_footer(
            text=f"page {i}/{len(pages)}"
        )
        for i, page in enumerate(pages, start=1)
    ]


def fits(embed: discord.Embed) -> bool:
    """Whether ``embed`` respects every Discord embed limit."""
    data = embed.to_dict()
    fields = data.get("fields", [])
    return (
        len(data.get("title", "")) <= TITLE_LIMIT
        and len(data.get("description", "")) <= DESCRIPTION_LIMIT
        and len(fields) <= FIELD_COUNT_LIMIT
        and all(
            len(f["name"]) <= FIELD_NAME_LIMIT and len(f["value"]) <= FIELD_VALUE_LIMIT
            for f in fields
        )
        and len(data.get("footer", {}).get("text", "")) <= FOOTER_LIMIT
        and len(embed) <= EMBED_TOTAL_LIMIT
    )
