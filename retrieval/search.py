"""The one search API that the CLI, the bot and the tests call.

A question is embedded and matched against chunk vectors (dense half) and against
titles and chunk texts with BM25 (keyword half). The two ranked lists are fused;
overlapping or adjacent chunks of one article collapse into one passage; each
passage gets its best sentence as the highlight. When even the best passage is not
similar enough to the question, the answer says the articles do not cover it.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .config import SearchSettings, Settings
from .embedding import Embedder, SentenceTransformerEmbedder
from .errors import ArticleNotFoundError, BadQuestionError
from .index import OpenIndex, open_index
from .links import passage_link
from .records import Answer, Article, ArticleRef, ArticleSummary, IndexStats, Passage
from .store import ChunkRow
from .text import keyword_terms, sentence_spans, stem, words

logger = logging.getLogger(__name__)

# A passage grows from at most this many adjacent chunks, so it stays readable.
MAX_CHUNKS_PER_PASSAGE = 2
# Articles named when a question is not covered.
NEAREST_ARTICLES = 3


@dataclass(frozen=True)
class _Candidate:
    chunk_id: int
    score: float


def fuse(
    dense: Sequence[tuple[int, float]],
    keyword: Sequence[tuple[int, float]],
    settings: SearchSettings,
) -> list[_Candidate]:
    """One ranking from the dense and keyword rankings, best first."""
    if settings.fusion == "dense":
        keyword = []
    elif settings.fusion == "keyword":
        dense = []
    scores: dict[int, float] = {}
    if settings.fusion == "rrf":
        for ranking in (dense, keyword):
            for rank, (chunk_id, _) in enumerate(ranking, start=1):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (settings.rrf_k + rank)
    else:
        weights = (settings.dense_weight, 1.0 - settings.dense_weight)
        for weight, ranking in zip(weights, (dense, keyword), strict=True):
            for chunk_id, normalised in _min_max(ranking):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + weight * normalised
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return [_Candidate(chunk_id, score) for chunk_id, score in ranked]


def _min_max(ranking: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    if not ranking:
        return []
    values = [score for _, score in ranking]
    low, high = min(values), max(values)
    span = high - low
    return [(i, (s - low) / span if span > 0 else 1.0) for i, s in ranking]


@dataclass
class _Group:
    """Chunks of one article that make one passage."""

    article_id: str
    rows: list[ChunkRow]
    score: float

    def touches(self, row: ChunkRow) -> bool:
        return any(
            abs(row.ordinal - r.ordinal) <= 1
            or (row.char_start < r.char_end and r.char_start < row.char_end)
            for r in self.rows
        )


def group_passages(
    ranked: Sequence[_Candidate], rows: dict[int, ChunkRow], per_article: int, limit: int
) -> list[_Group]:
    """Collapse touching chunks of an article into one group; at most ``per_article`` groups each."""
    groups: list[_Group] = []
    per: dict[str, int] = {}
    for candidate in ranked:
        row = rows.get(candidate.chunk_id)
        if row is None:
            continue
        mates = [g for g in groups if g.article_id == row.article_id]
        home = next((g for g in mates if g.touches(row)), None)
        if home is not None:
            if len(home.rows) < MAX_CHUNKS_PER_PASSAGE:
                home.rows.append(row)
            continue
        if per.get(row.article_id, 0) >= per_article:
            continue
        if len(groups) >= limit:
            # Later chunks may still widen a chosen passage, but start no new one.
            continue
        groups.append(_Group(row.article_id, [row], candidate.score))
        per[row.article_id] = per.get(row.article_id, 0) + 1
    return groups


def best_sentences(question: str, text: str) -> tuple[int, int]:
    """Offsets of the sentence, or two adjacent sentences, of ``text`` that best answer ``question``.

    Sentences are scored by the question's content words they contain, each weighted by
    how rare it is among the passage's sentences, so a sentence sharing the question's
    specific words wins over one sharing only its common ones.
    """
    spans = sentence_spans(text)
    if not spans:
        return 0, len(text)
    terms = {stem(t) for t in keyword_terms(question)}
    sentence_terms = [{stem(w) for w in words(text[a:b])} & terms for a, b in spans]
    count = len(spans)
    weight = {t: math.log(1 + count / (1 + sum(t in s for s in sentence_terms))) for t in terms}

    def score(matched: set[str]) -> float:
        return sum(weight[t] for t in matched)

    best, best_score = (spans[0][0], spans[0][1]), 0.0
    for i, matched in enumerate(sentence_terms):
        if score(matched) > best_score:
            best, best_score = spans[i], score(matched)
    for i in range(count - 1):
        pair = score(sentence_terms[i] | sentence_terms[i + 1])
        # A pair wins only when its second sentence adds real evidence, not by length.
        if (
            pair > best_score * 1.5
            and min(score(sentence_terms[i]), score(sentence_terms[i + 1])) > 0
        ):
            best, best_score = (spans[i][0], spans[i + 1][1]), pair
    return best


def check_question(question: str, settings: SearchSettings) -> str:
    """The question with white space folded; BadQuestionError if it is empty or too long."""
    question = " ".join(question.split())
    if not question:
        raise BadQuestionError("Please ask a question: the text was empty.")
    limit = settings.max_question_chars
    if len(question) > limit:
        raise BadQuestionError(
            f"That question is {len(question):,} characters long; please keep it to"
            f" {limit:,} or fewer."
        )
    return question


# Weights of the two kinds of evidence in an answer's confidence, fitted on labelled
# questions asked with and without their article in the index (see README).
SIMILARITY_WEIGHT = 0.7
COVERAGE_WEIGHT = 0.3


def answer_confidence(question: str, dense: Sequence[tuple[int, float]], top_text: str) -> float:
    """How sure we are the articles cover the question, from 0 to about 1.

    It mixes the best cosine similarity of any chunk with the share of the question's
    content words found in the top passage: a question about something the articles
    never mention tends to have neither.
    """
    similarity = max((score for _, score in dense), default=0.0)
    terms = {stem(t) for t in keyword_terms(question)}
    found = {stem(w) for w in words(top_text)} & terms
    coverage = len(found) / len(terms) if terms else 0.0
    return SIMILARITY_WEIGHT * similarity + COVERAGE_WEIGHT * coverage


class Searcher:
    """Answers questions from one index. Thread-safe."""

    def __init__(self, index: OpenIndex, embedder: Embedder, settings: SearchSettings) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings
        # The SQLite connection takes one thread at a time. The embedder guards itself, so
        # title look-ups (autocomplete) never wait behind a model call.
        self._store_lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None) -> Searcher:
        embedder = embedder or SentenceTransformerEmbedder(settings.model)
        return cls(open_index(Path(settings.index_dir), embedder.name), embedder, settings.search)

    def close(self) -> None:
        with self._store_lock:
            self.index.close()

    @property
    def generation(self) -> int:
        """The index generation this searcher answers from."""
        return self.index.manifest.generation

    def is_current(self) -> bool:
        """False once an ingest committed a newer generation: open a new searcher to see it.

        Cheap (reads the small manifest file); raises CitebotError if the manifest is now
        missing or damaged. This searcher keeps working either way.
        """
        return self.index.is_current()

    def with_settings(self, **changes: object) -> Searcher:
        """The same index, model and locks with other search settings (for evaluation)."""
        clone = copy.copy(self)
        clone.settings = replace(self.settings, **changes)
        return clone

    def search(self, question: str, k: int | None = None, offset: int = 0) -> Answer:
        question = check_question(question, self.settings)
        return self._search(question, max(1, k or self.settings.k), max(0, offset))

    def _search(self, question: str, k: int, offset: int) -> Answer:
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[name] = (now - clock) * 1000
            clock = now

        vector = self.embedder.embed([question])[0]
        lap("embed_ms")
        candidates = max(self.settings.candidates, (offset + k) * 4)
        # FAISS searches of a finished index are safe from several threads at once.
        dense = self.index.vectors.search(vector, candidates)
        lap("dense_ms")
        with self._store_lock:
            keyword = self.index.store.keyword_search(question, candidates)
            lap("keyword_ms")
            ranked = fuse(dense, keyword, self.settings)
            rows = self.index.store.chunks(c.chunk_id for c in ranked)
            groups = group_passages(ranked, rows, self.settings.per_article, offset + k)
            articles = self.index.store.articles_by_id(g.article_id for g in groups)
        confidence = 0.0
        if groups:
            top = groups[0].rows[0]
            top_text = articles[top.article_id].text[top.char_start : top.char_end]
            confidence = answer_confidence(question, dense, top_text)
        if confidence < self.settings.min_confidence:
            nearest = _distinct([articles[g.article_id].ref for g in groups])[:NEAREST_ARTICLES]
            lap("assemble_ms")
            return Answer(question, False, (), tuple(nearest), confidence, offset, timings)
        passages = [
            self._passage(question, rank, group, articles[group.article_id])
            for rank, group in enumerate(groups[offset : offset + k], start=offset + 1)
        ]
        lap("assemble_ms")
        return Answer(question, True, tuple(passages), (), confidence, offset, timings)

    @staticmethod
    def _passage(question: str, rank: int, group: _Group, article: Article) -> Passage:
        start = min(r.char_start for r in group.rows)
        end = max(r.char_end for r in group.rows)
        text = article.text[start:end]
        h_start, h_end = best_sentences(question, text)
        paragraphs = (
            min(r.paragraph_start for r in group.rows),
            max(r.paragraph_end for r in group.rows),
        )
        pages = article.page_span(*paragraphs)
        return Passage(
            rank=rank,
            score=group.score,
            text=text,
            highlight=text[h_start:h_end],
            highlight_start=h_start,
            highlight_end=h_end,
            article=article.ref,
            paragraphs=paragraphs,
            char_start=start,
            char_end=end,
            chunk_ids=tuple(sorted(r.id for r in group.rows)),
            pages=pages,
            link=passage_link(article, start, end, pages),
        )

    # -- look-up: no model needed ------------------------------------------------------

    def articles(self) -> list[ArticleSummary]:
        with self._store_lock:
            return self.index.store.summaries()

    def suggest_titles(self, text: str, limit: int = 25) -> list[ArticleRef]:
        with self._store_lock:
            return self.index.store.search_titles(text, limit)

    def article(self, id_or_title: str) -> Article:
        """By exact id, else by exact title, else the one article whose title contains the text."""
        key = id_or_title.strip()
        with self._store_lock:
            store = self.index.store
            if found := store.article(key):
                return found
            titled = store.articles_titled(key)
            if len(titled) == 1:
                return titled[0]
            matches = [a.ref for a in titled] or store.search_titles(key, 6)
            if len(matches) == 1 and (found := store.article(matches[0].id)):
                return found
        if not matches:
            raise ArticleNotFoundError(f"no article with id or title {key!r}")
        listed = "; ".join(f"{m.id} ({m.title})" for m in matches[:5])
        raise ArticleNotFoundError(f"{len(matches)} articles match {key!r}: {listed}")

    def stats(self) -> IndexStats:
        with self._store_lock:
            articles, chunks = self.index.store.counts()
        manifest = self.index.manifest
        return IndexStats(
            articles=articles,
            chunks=chunks,
            model=manifest.model,
            dimension=manifest.dimension,
            size_bytes=self.index.size_bytes,
            created=manifest.created,
            updated=manifest.updated,
            path=str(self.index.path),
        )


def _distinct(refs: Sequence[ArticleRef]) -> list[ArticleRef]:
    seen: dict[str, ArticleRef] = {}
    for ref in refs:
        seen.setdefault(ref.id, ref)
    return list(seen.values())
