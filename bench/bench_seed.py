"""Paraphrased questions over the seed articles: is the paragraph that states the fact in the top 3?

    .venv/bin/python bench/bench_seed.py ../shared/corpus/seed-articles.txt

The questions paraphrase one fact each (few words shared with the text) and name the
article (by its position in the file) and the paragraph that states it.

Questions about the text (META: "What did the author say about Kinmen?", "Summarise the
piece on TSMC"): is the answer from the right article, with a passage holding one of the
paragraphs named in the top 3 (or, for a question about a whole article, its opening)?
A question naming no article ("What is this article about?") should ask which one is meant.

Near-topic questions (NEAR_TOPIC): a paraphrase above with one specific word changed to
one the seed articles never mention ("How much will the Philippines spend on defense?"):
is the answer refused or qualified by a caveat?
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

# (question, article number, paragraphs that answer it; () for the article's opening; None:
# no article is named, so the answer should ask which one is meant)
META: list[tuple[str, int, tuple[int, ...] | None]] = [
    ("What did the author say about Kinmen?", 1, (6,)),
    ("What does the writer think Taiwan should do?", 1, (11, 12)),
    ("According to the article, why does Taiwan matter more to the US than Ukraine?", 1, (3, 11)),
    ("Does the author mention Penghu?", 1, (6,)),
    ("What does the op-ed say about TSMC's 2-nanometer process?", 1, (4,)),
    ("What does the writer argue about America First?", 1, (7,)),
    ("According to the piece, how much does Taiwan want to spend on defense?", 1, (9,)),
    ("What does the author claim Trump wants from Ukraine?", 1, (2,)),
    ("What does the article say about liquefied natural gas?", 1, (8,)),
    ("What does the writer say about tariffs in Trump's second administration?", 3, (1,)),
    ("According to the article, what did the State Department remove?", 5, (1,)),
    ("What does the author say about personal data leaks?", 4, (1,)),
    ("What does the author argue Taiwan and the US should cooperate on beyond defence?", 1, (12,)),
    ("Who is the author of the article comparing Taiwan and Ukraine?", 1, (13,)),
    ("What does this article say about rare earth materials?", 1, (2,)),
    ("Summarise the piece on TSMC and Intel", 2, ()),
    ("What is the op-ed about smart home devices about?", 4, ()),
    ("What's the gist of the article on the State Department fact sheet?", 5, ()),
    ("What is the main argument of the op-ed on Taiwan and Ukraine?", 1, ()),
    ("What is this article about?", 1, None),
]

# (question, the paraphrase it changes): the changed word is never in the seed articles.
NEAR_TOPIC = [
    ("How much will the Philippines spend on defense?", "economic output ... on its military"),
    ("Have American military advisers been stationed in Palawan?", "Kinmen and Penghu"),
    ("How much money may the Pentagon spend on Vietnam's security cooperation?", "Taiwan's"),
    ("What has Trump accused Samsung of doing to the chip industry?", "Taiwan"),
    ("Why is Samsung's chip technology important to American AI?", "the chipmaker's 2nm"),
    ("What might Japan buy from the US to narrow the trade gap?", "Taiwan"),
    ("Would making Samsung run Intel's factories be simple?", "TSMC"),
    ("Which wording did the State Department drop from its Philippines fact sheet?", "Taiwan"),
    ("Why are internet-connected household gadgets a privacy risk in Brazil?", "(added)"),
    ("What did President Marcos say after the national security meeting?", "Lai"),
    ("What does the 2027 NDAA authorize the Pentagon to provide?", "2025"),
    ("Who does Trump think gives Ukraine more help, America or Japan?", "Europe"),
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
        print(f"{highlighted}/{total} also have the highlighted sentence in that paragraph\n")
        right = sum(meta_right(searcher, ids, *item) for item in META)
        print(f"\n{right}/{len(META)} questions about the text answered from the right article")
        print("(the paragraph in the top 3, or the article's opening; or asked which article)\n")
        held = 0
        for question, _ in NEAR_TOPIC:
            answer = searcher.search(question, k=3)
            caveat = getattr(answer, "caveat", None)
            verdict = "refused" if not answer.answered else "qualified" if caveat else "ANSWERED"
            held += verdict != "ANSWERED"
            print(f"{verdict:9s} {answer.confidence:.3f}  {question}")
            if caveat:
                print(f"          {caveat}")
        print(f"\n{held}/{len(NEAR_TOPIC)} near-topic questions refused or qualified")


def meta_right(
    searcher: Searcher,
    ids: list[str],
    question: str,
    number: int,
    paragraphs: tuple[int, ...] | None,
) -> bool:
    answer = searcher.search(question, k=3)
    kind = getattr(answer, "kind", "passages")
    if paragraphs is None:
        ok = kind == "which_article" and len(answer.nearest) > 1
        print(f"{'asks which' if ok else 'NO':10s} {kind:13s} {question}")
        return ok
    if paragraphs == ():
        first = answer.passages[0] if answer.passages else None
        ok = answer.answered and first is not None and first.article.id == ids[number - 1]
        ok = ok and first.paragraphs[0] == 1
    else:
        ok = answer.answered and any(
            p.article.id == ids[number - 1]
            and any(p.paragraphs[0] <= n <= p.paragraphs[1] for n in paragraphs)
            for p in answer.passages
        )
    print(f"{'ok' if ok else 'MISSED':10s} {kind:13s} {question}")
    return ok


def highlight_paragraph(searcher: Searcher, passage: Passage) -> int:
    article = searcher.article(passage.article.id)
    offset = passage.char_start + passage.highlight_start
    return article.text.count(PARAGRAPH_SEPARATOR, 0, offset) + 1


if __name__ == "__main__":
    main()
