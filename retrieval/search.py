"""The one search API that the CLI, the bot and the tests call.

A question is embedded and matched against chunk vectors (dense half) and against
titles and chunk texts with BM25 (keyword half). The two ranked lists are fused;
overlapping or adjacent chunks of one article collapse into one passage; each
passage gets its best sentence as the highlight (``retrieval.highlight``) and a view
trimmed around it (``retrieval.trimming``). When even the best passage is not similar
enough to the question, the answer says the articles do not cover it.

(Over 600 lines, for a reason: the path of one question, from fusion to passages,
confidence and caveat, reads top to bottom in one class; the parts that stand alone have
their own modules: ``highlight``, ``trimming``, ``questions``, ``duplicates``.)
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .config import SearchSettings, Settings
from .duplicates import one_per_story
from .embedding import Embedder
from .errors import ArticleNotFoundError, BadFilterError, BadQuestionError
from .highlight import best_sentences, sentence_meaning
from .index import ChunkRow, IndexReader
from .links import passage_link
from .metrics import records_questions
from .models import open_index_with_model
from .questions import (
    WholeArticleQuestion,
    content_terms,
    lead_span,
    near_topic_caveat,
    pick_article,
    specific_terms,
    whole_article,
    without_set_aside,
    without_text_references,
)
from .records import (
    ARTICLE_LEAD,
    PARAGRAPH_SEPARATOR,
    WHICH_ARTICLE,
    Answer,
    Article,
    ArticleRef,
    ArticleSummary,
    IndexStats,
    Passage,
    SearchFilter,
)
from .text import sentence_spans, stem, words
from .trimming import context_span, ends_paragraph, paragraph_at, starts_paragraph

logger = logging.getLogger(__name__)

# A passage grows from at most this many adjacent chunks, so it stays readable.
MAX_CHUNKS_PER_PASSAGE = 2
# Articles named when a question is not covered.
NEAREST_ARTICLES = 3
# Articles named when a question about "the article" could mean several.
CANDIDATE_ARTICLES = 5
# Copies of a passage's article named in an answer, at most (with how many there are): a
# story told by 150 articles cost 12 ms a question to name them all at a million chunks.
COPIES_LISTED = 10


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
    # Above the relevance cut-off: shown on the first page.
    relevant: bool = False

    def touches(self, row: ChunkRow) -> bool:
        return any(
            abs(row.ordinal - r.ordinal) <= 1
            or (row.char_start < r.char_end and r.char_start < row.char_end)
            for r in self.rows
        )


def group_passages(ranked: Sequence[_Candidate], rows: dict[int, ChunkRow]) -> list[_Group]:
    """Collapse touching chunks of an article into passages, best first.

    A passage takes the score of its best chunk and grows from at most
    ``MAX_CHUNKS_PER_PASSAGE`` chunks.
    """
    groups: list[_Group] = []
    by_article: dict[str, list[_Group]] = {}
    for candidate in ranked:
        row = rows.get(candidate.chunk_id)
        if row is None:
            continue
        mates = by_article.setdefault(row.article_id, [])
        home = next((g for g in mates if g.touches(row)), None)
        if home is None:
            group = _Group(row.article_id, [row], candidate.score)
            groups.append(group)
            mates.append(group)
        elif len(home.rows) < MAX_CHUNKS_PER_PASSAGE:
            home.rows.append(row)
    return groups


def rank_passages(
    ranked: Sequence[_Candidate], rows: dict[int, ChunkRow], per_article: int, cutoff: float
) -> list[_Group]:
    """Passages in the order an answer lists them, the relevant ones (first page) first.

    Relevant: the best passage and those scoring at least ``cutoff`` times its score.
    Fair share: an article's passages past its best ``per_article`` are ordered as if they
    scored ``cutoff`` times their score, so they come after other articles' passages that
    are competitive with them (within the cut-off), but never after weaker ones, and they
    never leave the first page. Nothing is dropped.
    """
    groups = group_passages(ranked, rows)
    if not groups:
        return []
    bar = cutoff * groups[0].score
    seen: dict[str, int] = {}
    keys: dict[int, float] = {}
    for group in groups:
        group.relevant = group is groups[0] or group.score >= bar
        extra = seen.get(group.article_id, 0) >= per_article
        seen[group.article_id] = seen.get(group.article_id, 0) + 1
        keys[id(group)] = group.score * (cutoff if extra else 1.0)
    # A stable sort: equal keys keep the fused ranking's order.
    return sorted(groups, key=lambda g: (not g.relevant, -keys[id(g)]))


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
    # Words about the text ("the author", "says") are not looked for (retrieval.questions).
    terms = content_terms(question)
    found = {stem(w) for w in words(top_text)} & terms
    coverage = len(found) / len(terms) if terms else 0.0
    return SIMILARITY_WEIGHT * similarity + COVERAGE_WEIGHT * coverage


class Searcher:
    """Answers questions from one index. Thread-safe."""

    def __init__(self, index: IndexReader, embedder: Embedder, settings: SearchSettings) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings
        # The SQLite connection takes one thread at a time. The embedder guards itself, so
        # title look-ups (autocomplete) never wait behind a model call.
        self._store_lock = threading.Lock()
        # Keyword search runs here while the calling thread embeds the question and searches
        # the vectors: the halves are independent, and SQLite, ONNX Runtime and FAISS all
        # let go of the GIL, so a question takes the longer half rather than both.
        self._keyword_thread = ThreadPoolExecutor(1, thread_name_prefix="citebot-keyword")
        self._chunks: int | None = None

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None) -> Searcher:
        """The index in ``settings.index_dir``; by default with the model it was built with."""
        index, model = open_index_with_model(
            settings, None if embedder is None else lambda _manifest: embedder
        )
        return cls(index, model, settings.search)

    def reopened(self) -> Searcher:
        """A searcher over what is committed now, with this one's model and settings,
        sharing what has not changed (the main vector file, already read and checked):
        following a write costs what the write changed."""
        return Searcher(self.index.reopened(self._store_lock), self.embedder, self.settings)

    def close(self) -> None:
        self._keyword_thread.shutdown()
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

    def with_settings(self, **changes: Any) -> Searcher:
        """The same index, model and locks with other search settings (for evaluation)."""
        clone = copy.copy(self)
        clone.settings = replace(self.settings, **changes)
        return clone

    @records_questions
    def search(
        self,
        question: str,
        k: int | None = None,
        offset: int = 0,
        filters: SearchFilter | None = None,
    ) -> Answer:
        """Passages ``offset + 1`` to ``offset + k`` of the answer to ``question``.

        With ``filters``, only the articles they admit are searched (BadFilterError when
        none is). Passages above the relevance cut-off on the first page (offset 0) are
        marked ``shown``.
        """
        question = check_question(question, self.settings)
        filters = filters or SearchFilter()
        self.check_filters(filters)
        k, offset = max(1, k or self.settings.k), max(0, offset)
        if offset == 0 and (about := whole_article(question)) is not None:
            return self._about_article(about, k, filters)
        return self._search(question, k, offset, filters)

    def check_filters(self, filters: SearchFilter) -> None:
        """BadFilterError unless some article passes ``filters``."""
        if not filters:
            return
        with self._store_lock:
            admitted = self.index.admits_any(filters)
        if not admitted:
            raise BadFilterError(f"No article matches {filters.describe()}.")

    def _search(self, question: str, k: int, offset: int, filters: SearchFilter) -> Answer:
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[name] = (now - clock) * 1000
            clock = now

        candidates = max(self.settings.candidates, (offset + k) * 4)
        # Words about the text ("the author argues") are no keywords of its content.
        keywords = without_text_references(question) or question
        keyword_search = self._keyword_thread.submit(
            self._keyword, keywords, candidates, filters, timings
        )
        vector = self.embedder.embed([question])[0]
        lap("embed_ms")
        dense = self._dense(vector, candidates, filters)
        lap("dense_ms")
        keyword = keyword_search.result()
        lap("keyword_wait_ms")
        settings = self.settings
        if settings.exact_keyword_scores:
            keyword = self._with_dense_scores(keywords, keyword, dense, candidates)
            lap("keyword_dense_ms")
        with self._store_lock:
            ranked = fuse(dense, keyword, settings)
            rows = self.index.chunks(c.chunk_id for c in ranked)
            groups = rank_passages(ranked, rows, settings.per_article, settings.relevance_cutoff)
            groups, shown = self._one_per_story(groups)
            page = groups[offset : offset + k]
            copies, copy_counts = self._copies([g.article_id for g in page], shown)
            articles = self.index.articles_by_id(g.article_id for g in groups[:1] + page)
            # The copies are only named: their citations, not their texts.
            named = self.index.article_refs(c for g in page for c in copies.get(g.article_id, ()))
            sentences = self.index.sentence_vectors(r.id for g in page for r in g.rows)
        confidence = 0.0
        if groups:
            top = groups[0].rows[0]
            top_text = articles[top.article_id].text[top.char_start : top.char_end]
            confidence = answer_confidence(question, dense, top_text)
        if confidence < settings.min_confidence:
            nearest = _distinct([articles[g.article_id].ref for g in groups[:1] + page])
            lap("assemble_ms")
            return Answer(
                question,
                False,
                (),
                tuple(nearest[:NEAREST_ARTICLES]),
                confidence,
                offset,
                timings,
                filters,
            )
        # The highlight's meaning leaves out what the question sets aside ("Beyond trade, ...").
        focus = without_set_aside(question)
        focus_vector = vector if focus == question else self.embedder.embed([focus])[0]
        passages = [
            replace(
                self._passage(
                    question,
                    focus_vector,
                    rank,
                    group,
                    articles[group.article_id],
                    sentences,
                    offset == 0,
                ),
                copies=tuple(named[c] for c in copies.get(group.article_id, ()) if c in named),
                copy_count=copy_counts.get(group.article_id, 0),
            )
            for rank, group in enumerate(page, start=offset + 1)
        ]
        caveat = self._caveat(question, passages, articles)
        lap("assemble_ms")
        return Answer(
            question, True, tuple(passages), (), confidence, offset, timings, filters, caveat
        )

    def _one_per_story(self, groups: list[_Group]) -> tuple[list[_Group], dict[str, str]]:
        """The passages with those of copies of an article listed before them left out (one
        result per story: see retrieval.duplicates), and the story of each kept article
        that has copies."""
        stories = self.index.stories(g.article_id for g in groups)
        if not stories:
            return groups, {}
        keep, shown = one_per_story([g.article_id for g in groups], stories)
        kept = [g for g, kept in zip(groups, keep, strict=True) if kept]
        return kept, {article_id: story for story, article_id in shown.items()}

    def _copies(
        self, article_ids: list[str], story_of: dict[str, str]
    ) -> tuple[dict[str, list[str]], dict[str, int]]:
        """The first COPIES_LISTED copies of each of ``article_ids`` that has copies (its
        story in ``story_of``), and how many it has. Asked for the page's articles only: a
        question ranks four times as many."""
        stories = {story_of[i]: i for i in article_ids if i in story_of}
        if not stories:
            return {}, {}
        # One more than listed: the article itself may be among the first.
        heads = self.index.story_heads(stories, COPIES_LISTED + 1)
        copies, counts = {}, {}
        for story, article_id in stories.items():
            members, total = heads.get(story, ([], 1))
            copies[article_id] = [m for m in members if m != article_id][:COPIES_LISTED]
            counts[article_id] = total - 1
        return copies, counts

    def _caveat(
        self, question: str, passages: Sequence[Passage], articles: dict[str, Article]
    ) -> str | None:
        """What the question's specific words (retrieval.questions) are that the articles of
        its first page never mention, as the sentence shown above it; None when they
        mention them all."""
        shown = [p for p in passages if p.shown] or list(passages[:1])
        if not shown:
            return None
        with self._store_lock:
            specific = specific_terms(
                question,
                self.index.term_counts,
                self._chunk_count(),
                self.settings.caveat_name_share,
            )
        ids = dict.fromkeys(p.article.id for p in shown if p.article.id in articles)
        texts = [t for i in ids for t in (articles[i].title, articles[i].text)]
        return near_topic_caveat(question, specific, texts) if specific else None

    def _chunk_count(self) -> int:
        """Chunks in the index (the searcher's snapshot never changes): its live vectors,
        which the open checked equal the chunks, so a searcher following a write counts no
        rows (counting a million took 13-100 ms, on the first question after each write)."""
        if self._chunks is None:
            main, segment, masked, _ = self.index.describe_segments()
            self._chunks = main - masked + segment
        return self._chunks

    def _about_article(self, about: WholeArticleQuestion, k: int, filters: SearchFilter) -> Answer:
        """A question about an article as a whole: the opening of the one article it points
        at (by title words or topic), else the question back, naming the candidates."""
        query = " ".join(about.topic) or about.question
        found = self._search(query, max(k, CANDIDATE_ARTICLES), 0, filters)
        found = replace(found, question=about.question)
        if not found.answered and about.topic:
            return found
        refs = _distinct([p.article for p in found.passages] + list(found.nearest))
        on_page = _distinct([p.article for p in found.passages if p.shown])
        chosen = pick_article(about, refs, on_page)
        if chosen is None:
            return replace(
                found,
                answered=False,
                passages=(),
                nearest=tuple(refs[:CANDIDATE_ARTICLES]),
                caveat=None,
                kind=WHICH_ARTICLE,
            )
        with self._store_lock:
            index = self.index
            rows = index.chunks(index.chunk_ids(chosen.id))
            copies, copy_counts = self._copies([chosen.id], index.stories([chosen.id]))
            others = copies.get(chosen.id, [])
            article = index.articles_by_id([chosen.id])[chosen.id]
            named = index.article_refs(others)
        lead = sorted(rows.values(), key=lambda r: r.ordinal)[:MAX_CHUNKS_PER_PASSAGE]
        group = _Group(chosen.id, lead, 1.0, True)
        passage = self._lead_passage(about.question, group, article)
        passage = replace(
            passage,
            copies=tuple(named[m] for m in others if m in named),
            copy_count=copy_counts.get(chosen.id, 0),
        )
        return replace(
            found, answered=True, passages=(passage,), nearest=(), kind=ARTICLE_LEAD, caveat=None
        )

    def _lead_passage(self, question: str, group: _Group, article: Article) -> Passage:
        """The opening chunks of ``article`` as a passage, its first sentences highlighted."""
        passage = self._passage(question, np.zeros(1), 1, group, article, {}, True)
        first_end = passage.text.find(PARAGRAPH_SEPARATOR)
        start, end = lead_span(passage.text, len(passage.text) if first_end < 0 else first_end)
        _, c_end = context_span(passage.text, start, end, self.settings.context_chars)
        return replace(
            passage,
            highlight=passage.text[start:end],
            highlight_start=start,
            highlight_end=end,
            context_start=0,
            context_end=c_end,
            context_cut=(False, passage.context_cut[1] if c_end == passage.context_end else True),
            context_paragraphs=(
                passage.paragraphs[0],
                paragraph_at(article.text, passage.char_start + c_end - 1),
            ),
        )

    def _keyword(
        self, question: str, limit: int, filters: SearchFilter, timings: dict[str, float]
    ) -> list[tuple[int, float]]:
        started = time.perf_counter()
        with self._store_lock:
            found = self.index.keyword_search(
                question,
                limit,
                filters,
                self.settings.keyword_budget,
                self.settings.exact_keyword_scores,
            )
        timings["keyword_ms"] = (time.perf_counter() - started) * 1000
        return found

    def _with_dense_scores(
        self,
        question: str,
        keyword: list[tuple[int, float]],
        dense: Sequence[tuple[int, float]],
        limit: int,
    ) -> list[tuple[int, float]]:
        """The keyword ranking with the dense half's chunks that a budgeted keyword search
        did not read, scored by BM25 over the whole index as an unbounded search scores
        them: together, the ranking unbounded BM25 gives over these candidates."""
        read = {chunk_id for chunk_id, _ in keyword}
        with self._store_lock:
            scores = self.index.keyword_scores(
                question, [i for i, _ in dense if i not in read], self.settings.keyword_budget
            )
        if not scores:
            return keyword
        merged = [*keyword, *scores.items()]
        return sorted(merged, key=lambda item: (-item[1], item[0]))[:limit]

    def _dense(
        self, vector: np.ndarray, limit: int, filters: SearchFilter
    ) -> list[tuple[int, float]]:
        """The nearest chunks admitted by ``filters``. ``nearest`` is safe from several
        threads at once; the index's other methods are not."""
        if not filters:
            return self.index.nearest(vector, limit)
        # Among the admitted chunks from the start: measured faster than keeping the admitted
        # ones of a wider search (which a broad filter often leaves short): bench_filters.py.
        with self._store_lock:
            among = self.index.admitted_chunk_ids(filters)
        return self.index.nearest(vector, limit, among=among)

    def _passage(
        self,
        question: str,
        vector: np.ndarray,
        rank: int,
        group: _Group,
        article: Article,
        sentences: dict[int, tuple[np.ndarray, np.ndarray]],
        first_page: bool,
    ) -> Passage:
        start = min(r.char_start for r in group.rows)
        end = max(r.char_end for r in group.rows)
        text = article.text[start:end]
        stored = [sentences[r.id] for r in group.rows if r.id in sentences]
        spans = sentence_spans(text)
        meaning = sentence_meaning(vector, spans, start, stored) if stored else None
        h_start, h_end = best_sentences(
            question, text, meaning, self.settings.highlight_meaning_weight, spans
        )
        c_start, c_end = context_span(text, h_start, h_end, self.settings.context_chars)
        whole = article.text
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
            shown=first_page and group.relevant,
            context_start=c_start,
            context_end=c_end,
            context_cut=(
                not starts_paragraph(whole, start + c_start),
                not ends_paragraph(whole, start + c_end),
            ),
            context_paragraphs=(
                paragraph_at(whole, start + c_start),
                paragraph_at(whole, start + c_end - 1),
            ),
            pages=pages,
            link=passage_link(article, start, end, pages),
        )

    # -- look-up: no model needed ------------------------------------------------------

    def articles(self) -> list[ArticleSummary]:
        with self._store_lock:
            return self.index.summaries()

    def duplicate_groups(self) -> list[list[ArticleRef]]:
        """The stories told by more than one article: each group's articles, original first."""
        with self._store_lock:
            groups = self.index.duplicate_groups()
            found = self.index.articles_by_id(i for group in groups for i in group)
        return [[found[i].ref for i in group if i in found] for group in groups]

    def suggest_titles(self, text: str, limit: int = 25) -> list[ArticleRef]:
        with self._store_lock:
            return self.index.search_titles(text, limit)

    def suggest_sources(self, prefix: str, limit: int = 25) -> list[str]:
        """Source filter values starting with ``prefix``: folders (ending in ``/``), files, sources."""
        with self._store_lock:
            return self.index.suggest_sources(prefix, limit)

    def suggest_authors(self, prefix: str, limit: int = 25) -> list[str]:
        """Authors containing ``prefix`` (case-insensitive), those starting with it first."""
        with self._store_lock:
            return self.index.suggest_authors(prefix, limit)

    def article(self, id_or_title: str) -> Article:
        """By exact id, else by exact title, else the one article whose title contains the text."""
        key = id_or_title.strip()
        with self._store_lock:
            index = self.index
            if found := index.article(key):
                return found
            titled = index.articles_titled(key)
            if len(titled) == 1:
                return titled[0]
            matches = [a.ref for a in titled] or index.search_titles(key, 6)
            if len(matches) == 1 and (found := index.article(matches[0].id)):
                return found
        if not matches:
            raise ArticleNotFoundError(f"no article with id or title {key!r}")
        listed = "; ".join(f"{m.id} ({m.title})" for m in matches[:5])
        raise ArticleNotFoundError(f"{len(matches)} articles match {key!r}: {listed}")

    def stats(self) -> IndexStats:
        with self._store_lock:
            articles, chunks = self.index.counts()
        manifest = self.index.manifest
        main, segment, masked, last_compaction = self.index.describe_segments()
        return IndexStats(
            articles=articles,
            chunks=chunks,
            model=manifest.model,
            dimension=manifest.dimension,
            size_bytes=self.index.size_bytes,
            created=manifest.created,
            updated=self.index.updated,
            path=self.index.location,
            backend=manifest.backend,
            quantization=manifest.quantization,
            vector_index=self.index.describe_vectors(),
            main_vectors=main,
            segment_chunks=segment,
            masked_chunks=masked,
            last_compaction=last_compaction,
        )


def _distinct(refs: Sequence[ArticleRef]) -> list[ArticleRef]:
    seen: dict[str, ArticleRef] = {}
    for ref in refs:
        seen.setdefault(ref.id, ref)
    return list(seen.values())
