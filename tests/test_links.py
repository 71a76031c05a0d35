"""Links from passages to the web: text fragments encoded per the spec, PDF pages."""

from __future__ import annotations

from urllib.parse import unquote

from retrieval.links import encode_term, passage_link, text_fragment
from retrieval.records import Article

URL = "https://example.org/news/night-bus"


def article(paragraphs: list[str], url: str | None = URL, pages: tuple[int, ...] = ()) -> Article:
    return Article("a", "Night bus", "\n\n".join(paragraphs), "a.html", url, pages=pages)


def span(item: Article, first: int, last: int) -> tuple[int, int]:
    """Character offsets of paragraphs ``first`` to ``last`` (1-based)."""
    paragraphs = item.paragraphs
    start = sum(len(p) + 2 for p in paragraphs[: first - 1])
    end = start + len("\n\n".join(paragraphs[first - 1 : last]))
    return start, end


def directive(link: str) -> list[str]:
    """The decoded terms of a link's text directive."""
    assert "#:~:text=" in link
    return [unquote(term) for term in link.split("#:~:text=", 1)[1].split(",")]


def test_the_delimiters_and_everything_but_letters_and_digits_are_encoded() -> None:
    assert encode_term("a-b, c&d") == "a%2Db%2C%20c%26d"
    assert encode_term("café") == "caf%C3%A9"
    assert text_fragment("start", "end") == "#:~:text=start,end"


def test_a_short_passage_is_quoted_whole() -> None:
    item = article(["The night bus runs again.", "Other news follows here today."])
    start, end = span(item, 1, 1)
    link = passage_link(item, start, end)
    assert link == URL + "#:~:text=The%20night%20bus%20runs%20again%2E"


def test_a_long_passage_is_start_and_end_words_within_its_first_and_last_paragraph() -> None:
    item = article(
        [
            "Intro words that come before the passage in the page.",
            "The council voted on Tuesday to bring back the night bus from May.",
            "Drivers welcomed the decision, with some conditions, they said.",
            "Late-night buses & trams, one driver said, are safer.",
        ]
    )
    start, end = span(item, 2, 3)
    terms = directive(passage_link(item, start, end) or "")
    assert terms == ["The council voted on", "some conditions, they said."]
    # The delimiters inside a term are encoded, so the directive still splits right.
    link = passage_link(item, *span(item, 4, 4)) or ""
    assert link.endswith(
        "#:~:text=Late%2Dnight%20buses%20%26%20trams%2C%20one%20driver%20said%2C%20are%20safer%2E"
    )


def test_terms_grow_until_they_are_unique() -> None:
    repeated = "The council said that"
    item = article(
        [
            f"{repeated} it would think about buses.",
            f"{repeated} the night bus returns in May, after a long campaign by workers.",
        ]
    )
    start, end = span(item, 2, 2)
    first, _ = directive(passage_link(item, start, end) or "")
    assert first == "The council said that the"


def test_a_pdf_passage_links_to_its_page() -> None:
    item = article(["Page one text.", "Page two text."], url="https://example.org/r.pdf#x")
    item = Article(**{**vars(item), "pages": (1, 2)})
    assert passage_link(item, *span(item, 2, 2), pages=(2, 2)) == "https://example.org/r.pdf#page=2"


def test_no_link_without_a_web_url() -> None:
    assert passage_link(article(["Text here."], url=None), 0, 10) is None
    assert passage_link(article(["Text here."], url="file:///tmp/a.html"), 0, 10) is None
