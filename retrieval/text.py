"""Text helpers shared by chunking, keyword search and highlighting: sentences and terms."""

from __future__ import annotations

import functools
import re

# Abbreviations after which a full stop does not end a sentence.
_ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt vs etc inc ltd co corp gov gen col lt sgt rep sen jan
    feb mar apr jun jul aug sep sept oct nov dec e.g i.e u.s u.k u.n a.m p.m fig approx al
    """.split()
)

# A sentence ends at . ! ? (or an ellipsis), optionally followed by closing quotes or
# brackets, then white space and something that can start a sentence. Possessive
# quantifiers, and no match starting inside a run of marks, keep it linear in the
# text's length (a run of 500,000 dots must not be rescanned from each dot).
_SENTENCE_END = re.compile(
    r"""(?:(?<![.!?])[.!?]++|…)["'”’)\]]*+(?=\s++["'“‘(\[]?[A-Z0-9\u00C0-\u024F\u4E00-\u9FFF])"""
)
_WORD_BEFORE = re.compile(r"([\w.]+)$")
# Characters before a full stop looked at for an abbreviation: more than any has.
_ABBREVIATION_WINDOW = 32


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences in ``text``, white space trimmed.

    A rule-based splitter: good enough for news and essay prose, and it keeps every
    character of the text in exactly one span or the white space between two.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        before = text[max(start, match.start() - _ABBREVIATION_WINDOW) : match.start()]
        if match.group(0).startswith(".") and _is_abbreviation(before):
            continue
        spans.append((start, end))
        start = end
    spans.append((start, len(text)))
    trimmed = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            trimmed.append((a, b))
    return trimmed


def _is_abbreviation(before: str) -> bool:
    word = _WORD_BEFORE.search(before)
    if not word:
        return False
    token = word.group(1).lower().rstrip(".")
    # Single capital initials ("J. Smith") do not end sentences either.
    return token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def printable(text: str) -> str:
    """``text`` with what is not valid Unicode shown as U+FFFD: bytes of a file name or a
    command-line argument that were not UTF-8 (which Python keeps as lone surrogates),
    and lone surrogates from JSON. Such text cannot be written to SQLite or a terminal."""
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass")
    return data.decode("utf-8", "replace")


def split_sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not now of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your
    yours yourself yourselves also many much one ones s t did does get got make made us
    """.split()
)

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def keyword_terms(text: str) -> list[str]:
    """The distinct content words of a question, in order, for keyword search."""
    seen: dict[str, None] = {}
    for word in words(text):
        word = word.removesuffix("'s")
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            seen.setdefault(word, None)
    return list(seen)


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A light suffix stripper, so "elections" meets "election" when matching sentences."""
    for suffix in ("'s", "ies", "ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    return word


def is_headline(line: str) -> bool:
    """A short line that does not end like a sentence: a headline, not a paragraph."""
    line = line.strip()
    return 0 < len(line) <= 150 and len(line.split()) <= 20 and line[-1] not in ".,;:"
