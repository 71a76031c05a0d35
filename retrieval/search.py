"""The one search API that the CLI, the bot and the tests call.

A question is embedded and matched against chunk vectors (dense half) and against
titles and chunk texts with BM25 (keyword half). The two ranked lists are fused;
overlapping or adjacent chunks of one article collapse into one passage; each
passage gets its best sentence as the highlight. When even the best passage is not
similar enough to the question, the answer says the articles do not cover it.
"""

from __future__ import annotations

import bisect
import copy
import functools
import itertools
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from .config import SearchSettings, Settings
from .embedding import Embedder
from .errors import ArticleNotFoundError, BadFilterError, BadQuestionError
from .index import OpenIndex
from .links import passage_link
from .models import open_index_with_model
from .records import (
    PARAGRAPH_SEPARATOR,
    Answer,
    Article,
    ArticleRef,
    ArticleSummary,
    IndexStats,
    Passage,
    SearchFilter,
)
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


def sentence_window(
    text: str, start: int, end: int, budget: int, lo: int = 0, hi: int | None = None
) -> tuple[int, int]:
    """The widest run of whole sentences of ``text[lo:hi]`` around ``[start, end)`` within ``budget``.

    It grows by a sentence after, then before, while it fits. When even the sentences
    holding ``[start, end)`` do not fit, it is ``[start, end)`` itself.
    """
    hi = len(text) if hi is None else hi
    if hi - lo <= budget:
        return lo, hi
    bounds = sorted({lo, hi, *(lo + a for a, _ in sentence_spans(text[lo:hi]))})
    left = max(b for b in bounds if b <= start)
    right = min((b for b in bounds if b >= end), default=hi)
    if right - left > budget:
        return start, end
    grew = True
    while grew:
        grew = False
        after = next((b for b in bounds if b > right), None)
        if after is not None and after - left <= budget:
            right, grew = after, True
        before = next((b for b in reversed(bounds) if b < left), None)
        if before is not None and right - before <= budget:
            left, grew = before, True
    # Sentence starts are offsets after white space; the window ends at the text before it.
    while right > left and text[right - 1].isspace():
        right -= 1
    return left, right


def context_span(text: str, start: int, end: int, budget: int) -> tuple[int, int]:
    """The trimmed view of ``text`` around its highlight ``[start, end)``: the paragraph(s)
    holding it, or, when they are longer than ``budget``, the whole sentences around it that fit.
    """
    left = text.rfind(PARAGRAPH_SEPARATOR, 0, start)
    left = 0 if left < 0 else left + len(PARAGRAPH_SEPARATOR)
    right = text.find(PARAGRAPH_SEPARATOR, end)
    right = len(text) if right < 0 else right
    return sentence_window(text, start, end, budget, left, right)


# A sentence next to the best one joins the highlight when it scores at least this share
# of the best one's score: the answer is often in one of two strong neighbours.
NEIGHBOUR_SHARE = 0.85
# A highlight opening with one of these words refers back: the sentence before joins it,
# so the quote can be read on its own ("He is the oldest quarterback ..." says who).
_COMPOUND = re.compile(r"[^\W_]+(?:-[^\W_]+)+")
_REFERS_BACK = re.compile(
    r"[\"'“‘(]*(he|she|it|its|they|their|them|his|her|this|that|these|those|such)\b", re.IGNORECASE
)

# Questions asking for a quantity or for a time want a number or a date for an answer: a
# sentence holding one that the question does not already name gains this much (in units
# of the sentence score, which is at most 1). On XQuAD the answering sentences of such
# questions hold the cue 99% (quantity) and 80% (time) of the time, their other sentences
# 69% and 31%; the highlight gains 2 of 605 questions (see README). A weak cue, so a small
# bonus: it decides between sentences that meaning and words find about equally good.
ANSWER_TYPE_BONUS = 0.1
_ASKS_QUANTITY = re.compile(
    r"\bhow (?:many|much|old|long|far|large|big|tall|high|deep|fast|often)\b"
    r"|\bwhat (?:percentage|percent|proportion|share|number|amount|size)\b",
    re.IGNORECASE,
)
_ASKS_TIME = re.compile(
    r"\bwhen\b|\b(?:what|which) (?:year|years|century|decade|date|day|month|period|era)\b",
    re.IGNORECASE,
)
_NUMBER_WORDS = frozenset(
    """
    one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty
    sixty seventy eighty ninety hundred hundreds thousand thousands million millions billion
    billions trillion dozen dozens half quarter
    """.split()
)
_MONTHS = frozenset(
    "January February March April May June July August September October November December".split()
)
_ERAS = frozenset(("century", "centuries", "BC", "BCE", "AD", "CE"))
_YEAR = re.compile(r"(?:1\d{3}|20\d{2})s?")
# Numbers (with their separators and any unit stuck to them: "3.5", "1,000", "1990s",
# "5km") and words. One scan of the passage, then set look-ups: a regex of every number
# word or month tried at each position cost several times more.
_CUE_TOKEN = re.compile(r"\d+(?:[.,]\d+)*\w*|[^\W\d_]+")


def _is_quantity(tokens: Sequence[str], i: int) -> bool:
    token = tokens[i]
    return token[0].isdigit() or token.lower() in _NUMBER_WORDS


def _is_time(tokens: Sequence[str], i: int) -> bool:
    token = tokens[i]
    if token == "May":  # a month only beside a number: otherwise the verb
        return any(0 <= j < len(tokens) and tokens[j][0].isdigit() for j in (i - 1, i + 1))
    return bool(_YEAR.fullmatch(token)) or token in _MONTHS or token in _ERAS


# A question about who wrote the text itself, and a sign-off: a paragraph of its own that
# names the writer, as opinion pieces end ("Jane Doe is a professor at ...") or bylines
# read ("By Jane Doe"). Such a question has its answer nowhere else, and a passage holding
# a sign-off highlights it. (Asked about another work, "Who wrote the poem ...?", the
# answer is in a sentence of prose, which no sign-off pattern matches.)
_ASKS_WRITER = re.compile(
    r"\bwho (?:wrote|writes|has written|authored|penned)\b|\bwho is the (?:author|writer)\b"
    r"|\b(?:author|writer) of (?:this|the) (?:article|piece|column|op-ed|editorial|opinion)",
    re.IGNORECASE,
)
_NAME = r"[A-Z][\w'’.-]*(?:\s+(?:[A-Z][\w'’.-]*|de|van|von|da|del|bin))*\s+[A-Z][\w'’.-]*"
_SIGN_OFF = re.compile(
    rf"(?:(?:[Ww]ritten\s+)?[Bb]y\s+{_NAME}\s*|{_NAME},?\s+(?:is|was)\s+(?:a|an|the)\s.*)",
    re.DOTALL,
)
# A sign-off is short: a name and a role, not a paragraph of prose.
SIGN_OFF_MAX_WORDS = 30
# More than any score without it: the question has its answer there and nowhere else.
SIGN_OFF_BONUS = 1.0


def answer_cues(question: str, text: str, spans: Sequence[tuple[int, int]]) -> list[float]:
    """What each sentence (``spans`` of ``text``) gains by holding the kind of answer
    ``question`` asks for: a number, a date, the writer's sign-off; in units of the score."""
    gains = [0.0] * len(spans)
    if _ASKS_WRITER.search(question):
        breaks = [True, *paragraph_breaks(text, spans), True]
        for i, (a, b) in enumerate(spans):
            sentence = text[a:b]
            if (
                breaks[i]
                and breaks[i + 1]
                and len(sentence.split()) <= SIGN_OFF_MAX_WORDS
                and _SIGN_OFF.fullmatch(sentence)
            ):
                gains[i] = SIGN_OFF_BONUS
        return gains
    if _ASKS_QUANTITY.search(question):
        is_cue = _is_quantity
    elif _ASKS_TIME.search(question):
        is_cue = _is_time
    else:
        return gains
    asked = _CUE_TOKEN.findall(question)
    named = {t.lower() for i, t in enumerate(asked) if is_cue(asked, i)}
    found = list(_CUE_TOKEN.finditer(text))
    tokens = [m.group() for m in found]
    sentence_of = _sentence_finder(spans)
    for i, match in enumerate(found):
        cue = is_cue(tokens, i) and tokens[i].lower() not in named
        if cue and (sentence := sentence_of(match.start())) is not None:
            gains[sentence] = ANSWER_TYPE_BONUS
    return gains


def _sentence_finder(spans: Sequence[tuple[int, int]]) -> Callable[[int], int | None]:
    """The index of the sentence (of ``spans``, in order) holding an offset; None between."""
    starts = [a for a, _ in spans]

    def sentence_of(offset: int) -> int | None:
        i = bisect.bisect_right(starts, offset) - 1
        return i if i >= 0 and offset < spans[i][1] else None

    return sentence_of


def paragraph_breaks(text: str, spans: Sequence[tuple[int, int]]) -> list[bool]:
    """For each two consecutive sentences (``spans`` of ``text``): is a paragraph break
    between them?"""
    return [PARAGRAPH_SEPARATOR in text[b:a] for (_, b), (a, _) in itertools.pairwise(spans)]


def terms_by_sentence(
    text: str, spans: Sequence[tuple[int, int]], terms: set[str]
) -> list[set[str]]:
    """Of ``terms`` (stems), those each sentence (``spans`` of ``text``) holds a word of.

    The same as stemming every word of every sentence, but one regex scan of the passage
    finds the few words that start like a term, and only those are stemmed.
    """
    found: list[set[str]] = [set() for _ in spans]
    if not terms or not spans:
        return found
    sentence_of = _sentence_finder(spans)
    for match in _words_starting_like(frozenset(terms)).finditer(text):
        term = stem(match.group().lower().replace("’", "'"))
        if term in terms and (i := sentence_of(match.start())) is not None:
            found[i].add(term)
    return found


@functools.lru_cache(maxsize=256)
def _words_starting_like(terms: frozenset[str]) -> re.Pattern[str]:
    """Whole words (as ``text.words`` cuts them) that start like one of ``terms``: a stem
    is the start of every word it comes from, but for "-ies" words ("policies": "policy")."""
    prefixes = sorted({t[:-1] if t.endswith("y") else t for t in terms}, key=len, reverse=True)
    alternatives = "|".join(re.escape(p).replace("'", "['’]") for p in prefixes)
    # Not inside a word: no letter or digit before it, nor a letter and an apostrophe.
    return re.compile(
        rf"(?<![^\W_])(?<![^\W_]['’])(?:{alternatives})[^\W_]*(?:['’][^\W_]+)*", re.IGNORECASE
    )


def best_sentences(
    question: str,
    text: str,
    meaning: Sequence[float] | None = None,
    meaning_weight: float = 0.0,
    spans: Sequence[tuple[int, int]] | None = None,
) -> tuple[int, int]:
    """Offsets of the sentence, or few adjacent sentences, of ``text`` that best answer ``question``.

    Each sentence scores ``meaning_weight`` x its similarity of meaning to the question
    (``meaning``: one cosine per sentence of ``text``, when known) + the rest x the
    question's content words it shares, each word weighted by how rare it is among the
    passage's sentences and the sum scaled to the best sentence's. With meaning known, the
    better neighbour of the best sentence joins it when it scores nearly as well
    (``NEIGHBOUR_SHARE``), and so does the sentence before when the best one refers back
    to it. Words alone (no meaning), the highlight is the best sentence, or two adjacent
    sentences when together they share words that neither shares alone. Either way a
    sentence holding the kind of answer the question asks for gains (``answer_cues``), and
    a highlight stays within one paragraph.
    """
    spans = sentence_spans(text) if spans is None else spans
    if not spans:
        return 0, len(text)
    terms = {stem(t) for t in keyword_terms(question)}
    sentence_terms = terms_by_sentence(text, spans, terms)
    count = len(spans)
    weight = {t: math.log(1 + count / (1 + sum(t in s for s in sentence_terms))) for t in terms}
    # A hyphenated word of the question ("co-operative") is one word: its parts count once,
    # as much as the rarest part matched, not once each.
    compounds = [{stem(w) for w in words(c)} & terms for c in _COMPOUND.findall(question)]
    in_compound = set().union(*compounds)

    def shared(matched: set[str]) -> float:
        return sum(weight[t] for t in matched - in_compound) + sum(
            max(weight[t] for t in parts & matched) for parts in compounds if parts & matched
        )

    by_words = [shared(m) for m in sentence_terms]
    scale = max(by_words) or 1.0
    with_meaning = meaning is not None and meaning_weight > 0
    similar = list(meaning) if meaning is not None and with_meaning else [0.0] * count
    share = meaning_weight if with_meaning else 0.0

    def score(similarity: float, words_shared: float) -> float:
        return share * similarity + (1 - share) * words_shared / scale

    cues = answer_cues(question, text, spans)
    scores = [score(m, w) + c for m, w, c in zip(similar, by_words, cues, strict=True)]

    # A highlight never crosses a paragraph break: the quote is read as one statement, and
    # the sentence across a break starts or ends another (on XQuAD this loses no answer).
    breaks = paragraph_breaks(text, spans)

    def joined(i: int) -> bool:
        return not breaks[i]

    first = max(range(count), key=lambda i: (scores[i], -i))
    low = high = first
    best_words, best_score = by_words[first], scores[first]
    for i in range(count - 1):
        pair = shared(sentence_terms[i] | sentence_terms[i + 1])
        pair_score = score(max(similar[i], similar[i + 1]), pair) + max(cues[i], cues[i + 1])
        # A pair wins only when its second sentence adds real evidence, not by length.
        if (
            pair > best_words * 1.5
            and min(by_words[i], by_words[i + 1]) > 0
            and pair_score > best_score
            and joined(i)
        ):
            low, high, best_words, best_score = i, i + 1, pair, pair_score
    if with_meaning and low == high:
        neighbours = [i for i in (first - 1, first + 1) if 0 <= i < count and joined(min(i, first))]
        near = max(neighbours, key=lambda i: scores[i], default=None)
        if (
            near is not None
            and scores[first] > 0
            and scores[near] >= NEIGHBOUR_SHARE * scores[first]
        ):
            low, high = min(first, near), max(first, near)
        if low > 0 and joined(low - 1) and _REFERS_BACK.match(text, spans[low][0]):
            low -= 1
    return spans[low][0], spans[high][1]


def sentence_meaning(
    question: np.ndarray,
    spans: Sequence[tuple[int, int]],
    offset: int,
    stored: Sequence[tuple[np.ndarray, np.ndarray]],
) -> list[float] | None:
    """The cosine similarity of ``question`` to each sentence (``spans`` of a passage that
    starts at ``offset`` in its article), from the sentence vectors stored with its chunks;
    None when a sentence has none (a chunk embedded by a model that gives none)."""
    known: dict[tuple[int, int], float] = {}
    for offsets, vectors in stored:
        for (a, b), similarity in zip(offsets.tolist(), (vectors @ question).tolist(), strict=True):
            known[(a, b)] = max(similarity, known.get((a, b), -1.0))
    scores = []
    for a, b in spans:
        a, b = a + offset, b + offset
        if (a, b) not in known:
            # Split otherwise at a chunk's edge: the stored sentences it overlaps.
            overlapping = [s for (x, y), s in known.items() if x < b and a < y]
            if not overlapping:
                return None
            known[(a, b)] = max(overlapping)
        scores.append(known[(a, b)])
    return scores


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
        # Keyword search runs here while the calling thread embeds the question and searches
        # the vectors: the halves are independent, and SQLite, ONNX Runtime and FAISS all
        # let go of the GIL, so a question takes the longer half rather than both.
        self._keyword_thread = ThreadPoolExecutor(1, thread_name_prefix="citebot-keyword")

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None) -> Searcher:
        """The index in ``settings.index_dir``; by default with the model it was built with."""
        index, model = open_index_with_model(
            settings, None if embedder is None else lambda _manifest: embedder
        )
        return cls(index, model, settings.search)

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

    def with_settings(self, **changes: object) -> Searcher:
        """The same index, model and locks with other search settings (for evaluation)."""
        clone = copy.copy(self)
        clone.settings = replace(self.settings, **changes)
        return clone

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
        return self._search(question, max(1, k or self.settings.k), max(0, offset), filters)

    def check_filters(self, filters: SearchFilter) -> None:
        """BadFilterError unless some article passes ``filters``."""
        if not filters:
            return
        with self._store_lock:
            admitted = self.index.store.admits_any(filters)
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
        keyword_search = self._keyword_thread.submit(
            self._keyword, question, candidates, filters, timings
        )
        vector = self.embedder.embed([question])[0]
        lap("embed_ms")
        dense = self._dense(vector, candidates, filters)
        lap("dense_ms")
        keyword = keyword_search.result()
        lap("keyword_wait_ms")
        settings = self.settings
        with self._store_lock:
            ranked = fuse(dense, keyword, settings)
            rows = self.index.store.chunks(c.chunk_id for c in ranked)
            groups = rank_passages(ranked, rows, settings.per_article, settings.relevance_cutoff)
            page = groups[offset : offset + k]
            articles = self.index.store.articles_by_id(g.article_id for g in groups[:1] + page)
            sentences = self.index.store.sentence_vectors(r.id for g in page for r in g.rows)
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
        passages = [
            self._passage(
                question, vector, rank, group, articles[group.article_id], sentences, offset == 0
            )
            for rank, group in enumerate(page, start=offset + 1)
        ]
        lap("assemble_ms")
        return Answer(question, True, tuple(passages), (), confidence, offset, timings, filters)

    def _keyword(
        self, question: str, limit: int, filters: SearchFilter, timings: dict[str, float]
    ) -> list[tuple[int, float]]:
        started = time.perf_counter()
        with self._store_lock:
            found = self.index.store.keyword_search(
                question, limit, filters, self.settings.keyword_budget
            )
        timings["keyword_ms"] = (time.perf_counter() - started) * 1000
        return found

    def _dense(
        self, vector: np.ndarray, limit: int, filters: SearchFilter
    ) -> list[tuple[int, float]]:
        """The nearest chunks admitted by ``filters``. FAISS searches of a finished index are
        safe from several threads at once; the store is not."""
        vectors = self.index.vectors
        if not filters:
            return vectors.search(vector, limit)
        # Among the admitted chunks from the start: measured faster than keeping the admitted
        # ones of a wider search (which a broad filter often leaves short): bench_filters.py.
        with self._store_lock:
            among = self.index.store.admitted_chunk_ids(filters)
        return vectors.search(vector, limit, among=among)

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
                not _starts_paragraph(whole, start + c_start),
                not _ends_paragraph(whole, start + c_end),
            ),
            context_paragraphs=(
                _paragraph_at(whole, start + c_start),
                _paragraph_at(whole, start + c_end - 1),
            ),
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

    def suggest_sources(self, prefix: str, limit: int = 25) -> list[str]:
        """Source filter values starting with ``prefix``: folders (ending in ``/``), files, sources."""
        with self._store_lock:
            return self.index.store.suggest_sources(prefix, limit)

    def suggest_authors(self, prefix: str, limit: int = 25) -> list[str]:
        """Authors containing ``prefix`` (case-insensitive), those starting with it first."""
        with self._store_lock:
            return self.index.store.suggest_authors(prefix, limit)

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
            backend=manifest.backend,
            quantization=manifest.quantization,
            vector_index=self.index.vectors.describe(),
        )


def _starts_paragraph(text: str, offset: int) -> bool:
    return offset == 0 or text.startswith(PARAGRAPH_SEPARATOR, offset - len(PARAGRAPH_SEPARATOR))


def _ends_paragraph(text: str, offset: int) -> bool:
    return offset == len(text) or text.startswith(PARAGRAPH_SEPARATOR, offset)


def _paragraph_at(text: str, offset: int) -> int:
    """1-based number of the paragraph of ``text`` holding ``offset``."""
    return text.count(PARAGRAPH_SEPARATOR, 0, max(0, offset)) + 1


def _distinct(refs: Sequence[ArticleRef]) -> list[ArticleRef]:
    seen: dict[str, ArticleRef] = {}
    for ref in refs:
        seen.setdefault(ref.id, ref)
    return list(seen.values())
