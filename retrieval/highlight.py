"""The highlight: which sentence(s) of a passage answer the question.

Each sentence of a passage is scored by its similarity of meaning to the question (from
the sentence vectors stored with its chunks) and by the question's words it shares, plus
small gains for holding the kind of answer the question asks for (a number, a date, the
writer's sign-off). ``best_sentences`` picks the winner, and maybe a neighbour.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import re
from collections.abc import Callable, Sequence

import numpy as np

from .questions import content_terms, without_set_aside
from .records import PARAGRAPH_SEPARATOR
from .text import sentence_spans, stem, words

# A sentence next to the best one joins the highlight when it scores at least this share
# of the best one's score: the answer is often in one of two strong neighbours.
NEIGHBOUR_SHARE = 0.75
# A highlight opening with one of these words refers back: the sentence before joins it,
# so the quote can be read on its own ("He is the oldest quarterback ..." says who).
_COMPOUND = re.compile(r"[^\W_]+(?:-[^\W_]+)+")
# A sentence opening with one of these goes on from the one before ("These include the
# Miller–Rabin test", "As such, it made ..."): it joins a one-sentence highlight when its
# similarity of meaning is at least CONTINUATION_SHARE of the highlighted sentence's. On
# XQuAD dev the two rules (with NEIGHBOUR_SHARE 0.75, was 0.85) raise the highlight from
# 0.873 to 0.902 of hit passages at 1.56 sentences, from 1.31 (bench_highlight.py).
CONTINUATION_SHARE = 0.8
_CONTINUES = re.compile(
    r"[\"'“‘(]*(?:he|she|it|its|they|their|them|his|her|this|that|these|those|such|both|each"
    r"|most|many|some|all|none|but|however|also|although|though|yet|still|instead|thus"
    r"|therefore|hence|so|then|first|second|finally|later|subsequently|afterwards|meanwhile"
    r"|as such|in this way|as a result|as part of|in addition|moreover|furthermore"
    r"|while these|during this|after this|because of this|for this reason|for example"
    r"|for instance|in particular|including)\b",
    re.IGNORECASE,
)
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
# Not article_split.is_sign_off, on purpose: that one decides where one article of a file ends
# and the next begins, so it is strict (no honorifics, at most four words of name, no
# "By ..." line, which opens an article as often as it closes one); this one only
# favours a sentence for a question about the writer, so it takes any byline form.
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
        if cue and (holder := sentence_of(match.start())) is not None:
            gains[holder] = ANSWER_TYPE_BONUS
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
    (``NEIGHBOUR_SHARE``), the sentence before when the best one refers back to it, and
    the sentence after when it goes on from the best one (``CONTINUATION_SHARE``). Words alone (no meaning), the highlight is the best sentence, or two adjacent
    sentences when together they share words that neither shares alone. Either way a
    sentence holding the kind of answer the question asks for gains (``answer_cues``), and
    a highlight stays within one paragraph.
    """
    spans = sentence_spans(text) if spans is None else spans
    if not spans:
        return 0, len(text)
    # Words about the text ("the author says") are not looked for, nor those of a clause
    # setting things aside ("Beyond defence and trade, ..."): retrieval.questions.
    terms = content_terms(without_set_aside(question))
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
        if (
            low == high
            and high + 1 < count
            and joined(high)
            and _CONTINUES.match(text, spans[high + 1][0])
            and similar[high + 1] >= CONTINUATION_SHARE * similar[high]
        ):
            high += 1
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
