"""Paraphrased questions over the seed articles: is the paragraph that states the fact in the top 3?

    .venv/bin/python bench/bench_seed.py ../shared/corpus/seed-articles.txt

The questions paraphrase one fact each (few words shared with the text) and name the
article (by its position in the file) and the paragraph that states it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from retrieval.config import Settings
from retrieval.embedding import SentenceTransformerEmbedder
from retrieval.ingest import ingest
from retrieval.records import PARAGRAPH_SEPARATOR, Passage
from retrieval.search import Searcher

# (question, article number in the file, paragraph)
QUESTIONS = [
    ("Who does Trump think gives Ukraine more help, America or Europe?", 1, 1),
    ("What does the US president want from Kyiv in exchange for continued support?", 1, 2),
    ("Why is the chipmaker's 2nm technology important to American AI?", 1, 4),
    ("Why does the island matter for US military planning in Asia?", 1, 5),
    ("Where have American military advisers been training troops?", 1, 6),
    ("How much money may the Pentagon spend on Taiwan's security cooperation?", 1, 6),
    ("What has Trump accused Taiwan of doing to the chip industry?", 1, 7),
    ("What might Taiwan buy from the US to narrow the trade gap?", 1, 8),
    ("How much of its economic output does Taiwan plan to spend on its military?", 1, 9),
    ("Beyond defence and trade, where should the two countries cooperate more?", 1, 12),
    ("Who wrote the opinion piece comparing Taiwan and Ukraine?", 1, 13),
    ("Would making TSMC run Intel's factories be simple?", 2, 1),
    ("How did Trump's second term begin?", 3, 1),
    ("Why are internet-connected household gadgets a privacy risk?", 4, 1),
    ("Which wording did the State Department drop from its Taiwan fact sheet?", 5, 1),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("seed_file", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="citebot-seed-") as scratch:
        settings = Settings(index_dir=Path(scratch) / "index")
        embedder = SentenceTransformerEmbedder(settings.model)
        report = ingest([args.seed_file], settings, embedder)
        searcher = Searcher.open(settings, embedder)
        ids = [s.article.id for s in sorted(searcher.articles(), key=lambda s: s.article.source)]
        print(f"{report.articles} articles, {report.chunks_embedded} chunks\n")
        found = highlighted = 0
        for question, number, paragraph in QUESTIONS:
            answer = searcher.search(question, k=3)
            hit = next(
                (
                    p
                    for p in answer.passages
                    if p.article.id == ids[number - 1]
                    and p.paragraphs[0] <= paragraph <= p.paragraphs[1]
                ),
                None,
            )
            # Stricter: is the marked sentence itself in the paragraph that states the fact?
            in_paragraph = hit is not None and highlight_paragraph(searcher, hit) == paragraph
            found += hit is not None
            highlighted += in_paragraph
            where = f"rank {hit.rank}" if hit else "MISSED"
            mark = "highlight in ¶" if in_paragraph else "highlight elsewhere" if hit else ""
            print(f"{where:8s} {mark:20s} article {number} ¶{paragraph}  {question}")
        total = len(QUESTIONS)
        print(f"\n{found}/{total} paraphrased questions have their paragraph in the top 3;")
        print(f"{highlighted}/{total} also have the highlighted sentence in that paragraph")


def highlight_paragraph(searcher: Searcher, passage: Passage) -> int:
    article = searcher.article(passage.article.id)
    offset = passage.char_start + passage.highlight_start
    return article.text.count(PARAGRAPH_SEPARATOR, 0, offset) + 1


if __name__ == "__main__":
    main()
