"""PDFs: text by page, in paragraphs, with the page of each paragraph kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.errors import LoadError
from retrieval.pdf import pdf_article, read_pdf
from retrieval.records import Article
from retrieval.search import Searcher
from tests.fakes import FakeEmbedder
from tests.helpers import build_index, make_pdf


def paragraph(label: str) -> str:
    """A paragraph of several lines, its words (so its line breaks) different for each label."""
    sentences = [
        f"In the {label} part, the council discussed the night bus service at length.",
        f"Members said {label} matters for late workers and agreed on a trial.",
        f"The {label} trial starts in spring, and the results come back in autumn.",
    ]
    return f"{label}. " + " ".join(sentences)


def test_paragraphs_keep_their_pages_and_metadata() -> None:
    data = make_pdf(
        [[paragraph("One"), paragraph("Two")], [paragraph("Three")]],
        title="Night buses report",
        author="Jane Roe",
    )
    article = pdf_article(data, article_id="r", source="r.pdf", fallback_title="R")
    assert article.title == "Night buses report"
    assert (article.author, article.date) == ("Jane Roe", "2024-03-05")
    assert [p[:4] for p in article.paragraphs] == ["One.", "Two.", "Thre"]
    assert article.paragraphs[0] == paragraph("One")  # wrapped lines joined back
    assert article.pages == (1, 1, 2)


def test_running_heads_and_page_numbers_are_dropped() -> None:
    seasons = ["Spring", "Summer", "Autumn", "Winter"]
    text = read_pdf(make_pdf([[paragraph(s)] for s in seasons], running_head="Report, page"))
    assert [p for _, p in text.paragraphs] == [paragraph(s) for s in seasons]
    assert [page for page, _ in text.paragraphs] == [1, 2, 3, 4]


def test_without_a_title_a_headline_first_line_is_the_title() -> None:
    data = make_pdf([["Ferries return to the harbour", paragraph("Body")]])
    article = pdf_article(data, article_id="f", source="f.pdf", fallback_title="F")
    assert article.title == "Ferries return to the harbour"
    assert article.paragraphs == [paragraph("Body")]
    assert article.pages == (1,)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.4\nnot really", "not a readable PDF"),
        (make_pdf([[]]), "no text in the PDF (scanned pages need OCR first)"),
    ],
    ids=["damaged", "no-text"],
)
def test_unreadable_pdfs_are_a_load_error(data: bytes, reason: str) -> None:
    with pytest.raises(LoadError) as caught:
        read_pdf(data)
    assert str(caught.value).startswith(reason)


def test_without_gaps_a_short_last_line_ends_a_paragraph() -> None:
    first = paragraph("North") + " It is settled."
    second = paragraph("South") + " Done."
    text = read_pdf(make_pdf([[first, second]], spaced=False))
    assert [p for _, p in text.paragraphs] == [first, second]


def test_a_pdf_file_is_ingested_and_cited_by_page(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    data = make_pdf(
        [[paragraph("Harbour")], [paragraph("Ferry"), "The ferry timetable changes on Sunday."]],
        title="Ferry report",
    )
    (folder / "ferry-report.pdf").write_bytes(data)
    settings = build_index(tmp_path / "index", [folder])
    searcher = Searcher.open(settings, FakeEmbedder()).with_settings(min_confidence=0.0)
    try:
        stored = searcher.article("ferry-report")
        assert stored.pages == (1, 2, 2)
        answer = searcher.search("When does the ferry timetable change?", k=1)
    finally:
        searcher.close()
    passage = answer.passages[0]
    assert passage.article.source == "ferry-report.pdf"
    assert "The ferry timetable changes on Sunday." in passage.text
    # The passage holds the answer on page 2, and perhaps the paragraph before it.
    assert passage.paragraphs in ((3, 3), (2, 3), (1, 3))
    assert passage.pages == stored.page_span(*passage.paragraphs)
    first, last = passage.paragraphs
    pages = "p. 2" if passage.pages == (2, 2) else "pp. 1–2"
    assert passage.location == f"{pages}, ¶{first}" + (f"–{last}" if first != last else "")
    assert passage.link is None  # a local file has no web address
    assert passage.to_dict()["pages"] == list(passage.pages)


def test_pages_round_trip_through_the_store_and_old_stores_still_read(tmp_path: Path) -> None:
    import sqlite3

    from retrieval.index.store import Store

    paged = Article("p", "Paged", "a\n\nb\n\nc\n\nd", "p.pdf", pages=(1, 1, 3, 4))
    plain = Article("q", "Plain", "x\n\ny", "q.txt")
    store = Store(tmp_path / "store.sqlite")
    store.add_article(paged, "h1", [])
    store.add_article(plain, "h2", [])
    store.commit()
    store.close()
    reader = Store(tmp_path / "store.sqlite", read_only=True)
    assert reader.articles_by_id(["p", "q"]) == {"p": paged, "q": plain}
    reader.close()
    # A store written before pages and web sources existed has neither table.
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        db.execute("DROP TABLE article_pages")
        db.execute("DROP TABLE web_resources")
    old = Store(tmp_path / "store.sqlite", read_only=True)
    assert old.article("q") == plain and old.web_resources() == {}
    old.close()


def test_articles_without_pages_keep_the_content_hash_they_had() -> None:
    """Adding the pages field must not make every indexed article look changed."""
    import hashlib
    import json
    from dataclasses import asdict

    from retrieval.config import Settings
    from retrieval.ingest import content_hash

    settings = Settings()
    item = Article("a", "T", "text", "a.txt", "https://x.org/a", "2024-01-01", "Ann")
    before = {k: v for k, v in asdict(item).items() if k != "pages"}
    payload = {"article": before, "chunking": asdict(settings.chunking)}
    expected = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    assert content_hash(item, settings) == expected
    assert content_hash(Article(**{**vars(item), "pages": (1,)}), settings) != expected
