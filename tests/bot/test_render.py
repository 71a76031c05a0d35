"""The pure formatting module: limits, splitting, highlight and citations."""

from __future__ import annotations

import re

import pytest

from bot import render
from retrieval.records import Answer, Article, ArticleRef, ArticleSummary, IndexStats, Passage

REF = ArticleRef(
    "tools", "How tool libraries lend tools", "tools.md", "https://example.org/t", "2024-03-01"
)


def make_passage(rank: int, text: str, highlight: str, ref: ArticleRef = REF) -> Passage:
    start = text.index(highlight)
    return Passage(
        rank=rank,
        score=1.0 / rank,
        text=text,
        highlight=highlight,
        highlight_start=start,
        highlight_end=start + len(highlight),
        article=ref,
        paragraphs=(rank, rank + 1),
        char_start=0,
        char_end=len(text),
        chunk_ids=(rank * 10, rank * 10 + 1),
    )


def sentences(n: int, word: str = "filler") -> str:
    return " ".join(f"Sentence {i} is about {word} things." for i in range(n))


def test_highlight_is_bold_and_citation_is_numbered_and_linked() -> None:
    text = "Members borrow drills. Libraries lend tools with a card. Fines are small."
    passage = make_passage(1, text, "Libraries lend tools with a card.")
    pages = render.answer_pages(Answer("How do libraries lend tools?", True, (passage,)))
    description = pages.embeds[0].description
    assert "**Libraries lend tools with a card.**" in description
    assert "**[1]** [How tool libraries lend tools](<https://example.org/t>)" in description
    assert "tools.md" in description and "2024-03-01" in description and "¶1–2" in description
    assert pages.embeds[0].title == "❓ How do libraries lend tools?"
    assert pages.chunk_ids == (10, 11)
    assert pages.cited == (REF,)


def test_citation_without_url_is_not_a_link() -> None:
    ref = ArticleRef("b", "Bees", "bees.md")
    line = render.citation(2, ref, "¶3")
    assert "](" not in line
    assert line.startswith("**[2]** *Bees*") and line.endswith("¶3")


def test_markdown_and_mentions_in_passages_are_inert() -> None:
    text = "Say @everyone and **shout** [click](https://evil)."
    passage = make_passage(1, text, text)
    description = render.answer_pages(Answer("q", True, (passage,))).embeds[0].description
    assert "@everyone" not in description
    assert "\\*\\*shout\\*\\*" in description
    assert "\\[click\\]" in description


def test_huge_passage_is_trimmed_around_the_highlight_at_sentence_boundaries() -> None:
    text = sentences(300) + " The answer is forty two. " + sentences(300, "other")
    passage = make_passage(1, text, "The answer is forty two.")
    pages = render.answer_pages(Answer("What is the answer?", True, (passage,)))
    assert len(pages.embeds) == 1
    description = pages.embeds[0].description
    assert "**The answer is forty two.**" in description
    assert len(description) <= render.PAGE_BUDGET
    quoted = description.split("\n\n", 1)[1].split("\n**[1]**")[0]  # after the lead quote
    # Cut at sentence boundaries: the snippet starts and ends with an ellipsis next to whole sentences.
    assert re.search(r"^> …Sentence \d+ ", quoted)
    assert quoted.rstrip().endswith("things.…")
    assert render.fits(pages.embeds[0])


def test_unbroken_huge_highlight_still_fits() -> None:
    text = "x" * 20_000
    passage = make_passage(1, text, text)
    pages = render.answer_pages(Answer("q", True, (passage,)))
    assert all(render.fits(e) for e in pages.embeds)
    assert "**[1]**" in pages.embeds[0].description


def test_many_results_paginate_without_cutting_a_citation() -> None:
    passages = tuple(
        make_passage(i, sentences(40) + f" Key fact {i}.", f"Key fact {i}.") for i in range(1, 26)
    )
    pages = render.answer_pages(Answer("q", True, passages))
    assert len(pages.embeds) > 1
    seen = []
    for embed in pages.embeds:
        assert render.fits(embed)
        description = embed.description
        for number in re.findall(r"^\*\*\[(\d+)\]\*\*", description, re.MULTILINE):
            seen.append(int(number))
            # The passage of each citation is on the same page, just above it.
            assert f"**Key fact {number}.**" in description
    assert seen == list(range(1, 26))
    assert pages.embeds[0].footer.text == "Results 1–25 · page 1/" + str(len(pages.embeds))


def test_very_long_question_is_shortened_in_title_but_shown_in_full() -> None:
    question = "word " * 190
    passage = make_passage(1, "A fact.", "A fact.")
    embed = render.answer_pages(Answer(question.strip(), True, (passage,))).embeds[0]
    assert len(embed.title) <= render.TITLE_LIMIT and embed.title.endswith("…")
    assert embed.description.startswith("**Question:** word word")
    assert render.fits(embed)


def test_not_covered_lists_nearest_articles() -> None:
    nearest = (REF, ArticleRef("b", "Bees", "bees.md"))
    pages = render.answer_pages(Answer("Who won the match?", False, (), nearest))
    description = pages.embeds[0].description
    assert description.startswith("**Not covered:**")
    assert (
        "**[1]** [How tool libraries lend tools]" in description and "**[2]** *Bees*" in description
    )
    assert pages.cited == nearest


@pytest.mark.parametrize("limit", [50, 2000])
def test_split_message_respects_limit_and_boundaries(limit: int) -> None:
    text = "\n\n".join(sentences(30, f"p{i}") for i in range(10))
    parts = render.split_message(text, limit)
    assert all(len(p) <= limit for p in parts)
    # No word is cut: every part is made of whole words of the original.
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())
    if limit == 2000:
        # Paragraph boundaries are preferred: no page starts in the middle of a paragraph.
        assert all(p.startswith("Sentence 0 ") for p in parts)


def test_pack_hard_cuts_only_unbroken_runs() -> None:
    parts = render.pack(["y" * 250], 100)
    assert [len(p) for p in parts] == [100, 100, 50]


def test_article_pages_paginate_at_paragraphs() -> None:
    paragraphs = [sentences(15, f"para{i}") for i in range(40)]
    article = Article(
        "a", "T" * 400, "\n\n".join(paragraphs), "a.md", "https://e.org", "2024", "Ann"
    )
    embeds = render.article_pages(article)
    assert len(embeds) > 1
    assert all(render.fits(e) for e in embeds)
    text = "\n\n".join(e.description for e in embeds)
    for i in range(1, 41):
        assert text.count(f"`¶{i}` ") == 1
    assert [f.name for f in embeds[0].fields] == ["Source", "Date", "Author"]
    assert embeds[-1].footer.text.endswith(f"page {len(embeds)}/{len(embeds)}")


def test_sources_pages_and_stats() -> None:
    summaries = [
        ArticleSummary(ArticleRef(f"a{i}", f"Article {i}", f"a{i}.md"), 3, 4) for i in range(40)
    ]
    embeds = render.sources_pages(summaries)
    assert len(embeds) == 3 and all(render.fits(e) for e in embeds)
    assert "**[40]** *Article 39*" in embeds[-1].description
    stats = IndexStats(
        3,
        9,
        "all-MiniLM-L6-v2",
        384,
        3 * 1024 * 1024,
        "2024-01-01",
        "2024-02-02",
        "/x",
        backend="onnx-int8",
        quantization="dynamic int8",
        vector_index="approximate (IVF, 2000 lists, 128 searched, 8-bit vectors)",
    )
    embed = render.stats_embed(stats)
    values = {f.name: f.value for f in embed.fields}
    assert values["Size"] == "3.0 MB" and values["Last ingest"] == "2024-02-02"
    assert "all-MiniLM-L6-v2" in values["Model"]
    assert values["Backend"] == "onnx-int8 (dynamic int8)"
    assert values["Vector index"].startswith("approximate (IVF, 2000 lists")


def test_fits_detects_oversized_embeds() -> None:
    import discord

    assert not render.fits(discord.Embed(title="t" * 257))
    big = discord.Embed(description="d" * 4000)
    big.add_field(name="n", value="v" * 1024).add_field(name="n", value="v" * 1024)
    assert not render.fits(big)  # 6000 in total


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KB"),
        (3 * 1024**2, "3.0 MB"),
        (2 * 1024**4, "2048.0 GB"),
    ],
)
def test_human_size(size: int, shown: str) -> None:
    assert render.human_size(size) == shown
