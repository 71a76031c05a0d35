"""Paths of the test data and small helpers shared by the test modules."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from retrieval.config import Settings
from tests.fakes import FakeEmbedder

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "corpus"
BROKEN = DATA / "broken"
SHAPES = DATA / "shapes"
SAMPLES = Path(__file__).parent.parent / "retrieval" / "samples"

# Article ids of the test corpus.
CORPUS_IDS = {"orchestra", "ferry", "bakery", "bees-2024", "skatepark"}


def build_index(
    index_dir: Path, paths: list[Path], embedder: FakeEmbedder | None = None
) -> Settings:
    """Ingest ``paths`` into ``index_dir`` with a fake embedder; returns the settings used."""
    from retrieval.ingest import ingest

    settings = Settings(index_dir=index_dir)
    ingest(paths, settings, embedder or FakeEmbedder())
    return settings


def with_search(settings: Settings, **changes: object) -> Settings:
    """``settings`` with some search settings changed."""
    return replace(settings, search=replace(settings.search, **changes))


def make_pdf(
    pages: list[list[str]],
    *,
    title: str | None = None,
    author: str | None = None,
    running_head: str | None = None,
    spaced: bool = True,
) -> bytes:
    """A real PDF (written by fpdf2) with these paragraphs on these pages; ``spaced``
    paragraphs have a gap between them, others only their short last line."""
    from datetime import UTC, datetime

    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(datetime(2024, 3, 5, tzinfo=UTC))
    if title:
        pdf.set_title(title)
    if author:
        pdf.set_author(author)
    pdf.set_font("Helvetica", size=11)
    for number, paragraphs in enumerate(pages, start=1):
        pdf.add_page()
        if running_head:
            pdf.cell(0, 6, f"{running_head} {number}")
            pdf.ln(10)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
            if spaced:
                pdf.ln(4)
    return bytes(pdf.output())


# The copies tables as the release before this layout wrote them: the bands by text id, in
# the table and again in its second index, removed by a trigger.
_BEFORE_ROWID_BANDS = """
DROP TRIGGER copies_article_deleted;
DROP TABLE story_bands;
DROP TABLE copies_removed;
CREATE TABLE copy_bands (
    band_key INTEGER NOT NULL,
    article_id TEXT NOT NULL,
    PRIMARY KEY (band_key, article_id)
) WITHOUT ROWID;
CREATE INDEX copy_bands_article ON copy_bands (article_id);
CREATE TRIGGER copies_article_removed BEFORE DELETE ON articles BEGIN
    INSERT OR IGNORE INTO copies_split (story)
        SELECT story FROM article_copies WHERE article_id = OLD.id;
    DELETE FROM copy_bands WHERE article_id = OLD.id;
    DELETE FROM article_copies WHERE article_id = OLD.id;
    DELETE FROM copies_pending WHERE article_id = OLD.id;
END;
UPDATE copies_state SET value = '32' WHERE key = 'bands';
"""


def as_written_before_rowid_bands(store: Path) -> None:
    """Turn the copies tables of ``store`` (a store.sqlite) into the layout of the release
    before bands by rowid: its bands by text id (filled with one row an article, enough
    to see that they go), its trigger, its copies_state."""
    import sqlite3

    db = sqlite3.connect(store)
    try:
        db.executescript(_BEFORE_ROWID_BANDS)
        db.execute("INSERT INTO copy_bands SELECT 1, id FROM articles")
        db.commit()
    finally:
        db.close()
