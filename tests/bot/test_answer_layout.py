"""The answer's layout in Discord: the best sentence quoted first, then the passages of the
first page trimmed around their highlights, the rest on later pages."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from bot import render
from retrieval.records import Answer, ArticleRef, Passage, SearchFilter

REF = ArticleRef("tools", "Tool libraries", "tools.md", "https://example.org/t", "2024-03-01")
OTHER = ArticleRef("bees", "Bees", "bees.md")
PARAGRAPHS = [
    "Alderbrook opened its tool library in 2019.",
    "Members borrow up to three tools for seven days. Fines are small.",
    "Volunteers repair the drills every Saturday.",
]
TEXT = "\n\n".join(PARAGRAPHS)


def passage(rank: int, shown: bool, ref: ArticleRef = REF) -> Passage:
    highlight = "Members borrow up to three tools for seven days."
    start = TEXT.index(highlight)
    context_start = TEXT.index(PARAGRAPHS[1])
    return Passage(
        rank=rank,
        score=1.0 / rank,
        text=TEXT,
        highlight=highlight,
        highlight_start=start,
        highlight_end=start + len(highlight),
        article=ref,
        paragraphs=(1, 3),
        char_start=0,
        char_end=len(TEXT),
        chunk_ids=(rank,),
        shown=shown,
        context_start=context_start,
        context_end=context_start + len(PARAGRAPHS[1]),
        context_paragraphs=(2, 2),
    )


def test_first_page_leads_with_the_quote_then_trimmed_shown_passages() -> None:
    answer = Answer("How long can I keep a tool?", True, (passage(1, True), passage(2, False)))
    pages = render.answer_pages(answer)
    assert pages.shown_pages == 1 and len(pages.embeds) == 2
    first = pages.embeds[0].description
    lead, block = first.split("\n\n")
    assert lead == (
        "> **“Members borrow up to three tools for seven days.”**\n"
        "— **[1]** [Tool libraries](<https://example.org/t>) · tools.md · 2024-03-01 · ¶2"
    )
    # The passage is trimmed to its paragraph, the sentence in bold, cited with ¶2.
    assert block == (
        "> **Members borrow up to three tools for seven days.** Fines are small.\n"
        "**[1]** [Tool libraries](<https://example.org/t>) · tools.md · 2024-03-01 · ¶2"
    )
    assert "Alderbrook" not in first and "[2]" not in first
    assert pages.embeds[0].footer.text == "Result 1"
    # The result below the cut-off waits on the next page, without a lead quote.
    more = pages.embeds[1].description
    assert more.startswith("> **Members borrow") and "**[2]**" in more
    assert pages.embeds[1].footer.text == "Result 2"
    assert pages.cited == (REF, REF) and pages.chunk_ids == (1, 2)
    assert all(render.fits(e) for e in pages.embeds)


def test_every_shown_passage_is_on_the_first_page() -> None:
    shown = tuple(passage(i, True, REF if i % 2 else OTHER) for i in range(1, 4))
    pages = render.answer_pages(Answer("q", True, (*shown, passage(4, False))))
    assert pages.shown_pages == 1
    first = pages.embeds[0].description
    assert all(f"\n**[{i}]**" in first for i in (1, 2, 3)) and "**[4]**" not in first
    assert pages.embeds[0].footer.text == "Results 1–3"


def test_later_results_have_no_lead_quote() -> None:
    later = Answer("q", True, (passage(6, False), passage(7, False)), offset=5)
    pages = render.answer_pages(later)
    assert pages.shown_pages == 0
    assert not pages.embeds[0].description.startswith("> **“")
    assert pages.embeds[0].footer.text == "Results 6–7"


def test_a_long_view_is_cut_to_the_budget_at_sentence_boundaries() -> None:
    long_paragraph = " ".join(f"Sentence {i} says little." for i in range(200))
    text = f"{long_paragraph} The fine is one pound. {long_paragraph}"
    start = text.index("The fine is one pound.")
    p = replace(
        passage(1, True),
        text=text,
        highlight="The fine is one pound.",
        highlight_start=start,
        highlight_end=start + len("The fine is one pound."),
        context_start=0,
        context_end=len(text),
    )
    block = render.passage_block(p, budget=300)
    quoted = block.split("\n**[1]**")[0]
    assert len(quoted) <= 300 + 10  # the "> " quote marker
    assert quoted.startswith("> …Sentence ") and quoted.endswith("little.…")
    assert "**The fine is one pound.**" in quoted


def test_not_covered_under_a_filter_says_which_articles_were_searched() -> None:
    filters = SearchFilter(source="news/", after=date(2024, 1, 1))
    answer = Answer("Who won?", False, (), (OTHER,), filters=filters)
    description = render.answer_pages(answer).embeds[0].description
    assert description.startswith(
        '**Not covered:** the articles with source "news/" · after 2024-01-01 do not answer'
    )


def test_a_caveat_is_shown_above_the_passages() -> None:
    caveat = "The articles mention “tools”, but not “Reykjavik”."
    answer = Answer("Can I borrow tools in Reykjavik?", True, (passage(1, True),), caveat=caveat)
    first = render.answer_pages(answer).embeds[0].description
    assert first.startswith("⚠️ The articles mention “tools”, but not “Reykjavik”.")
    assert first.index("Reykjavik") < first.index("> **“Members borrow")
    plain = render.answer_pages(replace(answer, caveat=None)).embeds[0].description
    assert "⚠️" not in plain


def test_copies_of_a_passage_article_are_named_under_its_citation() -> None:
    copy = ArticleRef("tools-2", "Tool libraries (repost)", "mirror/tools.md")
    answer = Answer(
        "How long can I keep a tool?", True, (replace(passage(1, True), copies=(copy,)),)
    )
    first = render.answer_pages(answer).embeds[0].description
    assert "also in: *Tool libraries (repost)* (mirror/tools.md)" in first


def test_a_question_about_an_unnamed_article_asks_which() -> None:
    answer = Answer("What is this article about?", False, (), (REF, OTHER), kind="which_article")
    embed = render.answer_pages(answer).embeds[0]
    assert embed.description.startswith("**Which article do you mean?**")
    assert "Tool libraries" in embed.description and "Bees" in embed.description
    assert "Not covered" not in embed.description
